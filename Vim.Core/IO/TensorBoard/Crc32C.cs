using System.Buffers.Binary;
using System.Numerics;

namespace Vim.Core.IO.TensorBoard;

/// <summary>
/// CRC-32C (Castagnoli polynomial, reflected 0x82F63B78; initial value and final XOR all ones), the checksum of TFRecord
/// framing. <see cref="BitOperations.Crc32C(uint, ulong)"/> uses the CPU's crc32 instruction where it has one.
/// </summary>
public static class Crc32C
{
    public static uint Compute(ReadOnlySpan<byte> data)
    {
        uint crc = uint.MaxValue;
        // Eight bytes at a time: the instruction takes them in memory order from a little-endian word.
        for (; data.Length >= sizeof(ulong); data = data[sizeof(ulong)..])
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
        foreach (var b in data) crc = BitOperations.Crc32C(crc, b);
        return ~crc;
    }

    /// <summary>
    /// The CRC as TFRecord stores it, rotated right by 15 bits plus a constant: a CRC computed over data that itself holds
    /// CRCs would otherwise be weak (TensorFlow's crc32c::Mask).
    /// </summary>
    public static uint Masked(ReadOnlySpan<byte> data)
    {
        uint crc = Compute(data);
        return unchecked(((crc >> 15) | (crc << 17)) + 0xA282EAD8u);
    }
}
