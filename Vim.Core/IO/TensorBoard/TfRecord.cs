using System.Buffers.Binary;

namespace Vim.Core.IO.TensorBoard;

/// <summary>
/// TFRecord framing, the container of TensorBoard event files: the payload's length as a little-endian uint64, the
/// masked CRC-32C of those 8 bytes, the payload, the masked CRC-32C of the payload.
/// </summary>
public static class TfRecord
{
    /// <summary>Bytes a record adds around its payload: length (8) and its CRC (4) before, the payload's CRC (4) after.</summary>
    public const int Overhead = 16;

    public static byte[] Frame(ReadOnlySpan<byte> payload)
    {
        var record = new byte[payload.Length + Overhead];
        BinaryPrimitives.WriteUInt64LittleEndian(record, (ulong)payload.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(8), Crc32C.Masked(record.AsSpan(0, 8)));
        payload.CopyTo(record.AsSpan(12));
        BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(12 + payload.Length), Crc32C.Masked(payload));
        return record;
    }
}
