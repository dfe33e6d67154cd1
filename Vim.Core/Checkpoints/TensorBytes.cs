using System.Buffers.Binary;
using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace Vim.Core.Checkpoints;

/// <summary>Moves raw bytes between streams and the memory of contiguous CPU tensors without managed copies.</summary>
internal static class TensorBytes
{
    [DllImport("LibTorchSharp")]
    private static extern IntPtr THSTensor_data(IntPtr handle);

    private const int Chunk = 1 << 30;

    /// <summary>Fills a fresh contiguous CPU tensor from the stream (exactly its byte size).</summary>
    public static unsafe void ReadInto(Tensor tensor, Stream stream, bool bigEndian)
    {
        var total = tensor.NumberOfElements * tensor.ElementSize;
        if (total == 0)
            return;
        var ptr = (byte*)THSTensor_data(tensor.Handle);
        for (long done = 0; done < total;)
        {
            var n = (int)Math.Min(Chunk, total - done);
            stream.ReadExactly(new Span<byte>(ptr + done, n));
            done += n;
        }
        if (bigEndian)
            SwapToLittleEndian(ptr, total, (int)tensor.ElementSize);
    }

    /// <summary>Writes the bytes of a contiguous CPU tensor to the stream.</summary>
    public static unsafe void WriteFrom(Tensor tensor, Stream stream)
    {
        var total = tensor.NumberOfElements * tensor.ElementSize;
        if (total == 0)
            return;
        var ptr = (byte*)THSTensor_data(tensor.Handle);
        for (long done = 0; done < total;)
        {
            var n = (int)Math.Min(Chunk, total - done);
            stream.Write(new ReadOnlySpan<byte>(ptr + done, n));
            done += n;
        }
    }

    private static unsafe void SwapToLittleEndian(byte* ptr, long total, int elementSize)
    {
        for (long done = 0; done < total;)
        {
            // Chunks are multiples of every element size, so no element straddles two of them.
            var n = (int)Math.Min(Chunk, total - done);
            var bytes = new Span<byte>(ptr + done, n);
            switch (elementSize)
            {
                case 2: { var s = MemoryMarshal.Cast<byte, ushort>(bytes); BinaryPrimitives.ReverseEndianness(s, s); break; }
                case 4: { var s = MemoryMarshal.Cast<byte, uint>(bytes); BinaryPrimitives.ReverseEndianness(s, s); break; }
                case 8: { var s = MemoryMarshal.Cast<byte, ulong>(bytes); BinaryPrimitives.ReverseEndianness(s, s); break; }
            }
            done += n;
        }
    }
}
