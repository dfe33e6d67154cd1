using System.Buffers.Binary;
using System.IO.Compression;
using Vim.Core;

namespace Vim.Data.Datasets;

/// <summary>
/// The PNG layouts whose class indices OpenCV does not return as stored, read as Pillow (mmseg's label reader) reads them:
/// palette images as their palette indices (OpenCV converts them to colours) and 1-bit grayscale as 0/1 (OpenCV expands
/// it to 0/255, where 255 is the ignore index).
/// </summary>
internal static class PngLabelLayout
{
    internal sealed record Header(int Width, int Height, int BitDepth, int ColorType, int Interlace);

    private static ReadOnlySpan<byte> Signature => [137, 80, 78, 71, 13, 10, 26, 10];

    public const int Grayscale = 0;
    public const int Palette = 3;

    /// <summary>The IHDR fields of a PNG file's bytes; null when they are not a PNG (OpenCV then decides what they are).</summary>
    public static Header? ReadHeader(ReadOnlySpan<byte> file, string path)
    {
        if (file.Length < 8 + 8 + 13 + 4 || !file[..8].SequenceEqual(Signature)) return null;
        if (!file.Slice(12, 4).SequenceEqual("IHDR"u8) || BinaryPrimitives.ReadUInt32BigEndian(file.Slice(8, 4)) != 13)
            throw new VimException($"{path}: damaged PNG: the first chunk is not a 13-byte IHDR.");
        // The size decides what is allocated: a flipped bit must not ask for gigabytes.
        if (BinaryPrimitives.ReadUInt32BigEndian(file.Slice(29, 4)) != Crc32(file.Slice(12, 17)))
            throw new VimException($"{path}: damaged PNG: the IHDR checksum does not match.");
        var fields = file.Slice(16, 13);
        uint width = BinaryPrimitives.ReadUInt32BigEndian(fields), height = BinaryPrimitives.ReadUInt32BigEndian(fields[4..]);
        if (width == 0 || height == 0 || width > int.MaxValue || height > int.MaxValue || (long)width * height > int.MaxValue)
            throw new VimException($"{path}: PNG size {width}x{height} is empty or too large for a label map.");
        return new Header((int)width, (int)height, fields[8], fields[9], fields[12]);
    }

    /// <summary>
    /// Where each reduced image of a PNG lies in the full one: Adam7's seven passes (first column and row, column and row
    /// steps) for an interlaced file, one pass covering every pixel otherwise.
    /// </summary>
    private static readonly (int X0, int Y0, int DX, int DY)[] Adam7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)];

    private static readonly (int X0, int Y0, int DX, int DY)[] Progressive = [(0, 0, 1, 1)];

    /// <summary>The palette index of every pixel (row-major) of a palette PNG, interlaced (Adam7) or not.</summary>
    public static ushort[] ReadPaletteIndices(byte[] file, string path, Header header)
    {
        if (header.ColorType != Palette || header.BitDepth is not (1 or 2 or 4 or 8))
            throw new VimException($"{path}: PNG colour type {header.ColorType} with {header.BitDepth}-bit samples is not a palette image.");
        var passes = header.Interlace switch
        {
            0 => Progressive,
            1 => Adam7,
            _ => throw new VimException($"{path}: damaged PNG: interlace method {header.Interlace} (expected 0, none, or 1, Adam7)."),
        };
        // Each non-empty pass is a small image of its own: its rows, each a filter byte and the packed samples.
        var layout = new List<(int X0, int Y0, int DX, int DY, int Width, int Height, int RowBytes, long Offset)>();
        long expected = 0;
        foreach (var (x0, y0, dx, dy) in passes)
        {
            int width = header.Width > x0 ? (header.Width - x0 + dx - 1) / dx : 0;
            int height = header.Height > y0 ? (header.Height - y0 + dy - 1) / dy : 0;
            if (width == 0 || height == 0) continue;
            int rowBytes = (int)(((long)width * header.BitDepth + 7) / 8);
            layout.Add((x0, y0, dx, dy, width, height, rowBytes, expected));
            expected += (long)height * (rowBytes + 1);
        }
        if (expected > int.MaxValue) throw new VimException($"{path}: PNG size {header.Width}x{header.Height} is too large for a label map.");
        var data = ImageData(file, path);
        // DEFLATE expands at most 1032-fold: more declared pixels than that cannot be in the file.
        if (expected > (long)data.Length * 1032 + 1032)
            throw new VimException($"{path}: damaged PNG: {data.Length} bytes of image data cannot hold {header.Width}x{header.Height} pixels.");
        var scanlines = new byte[expected];
        try
        {
            using var compressed = new MemoryStream(data);
            using var inflate = new ZLibStream(compressed, CompressionMode.Decompress);
            int read = inflate.ReadAtLeast(scanlines, scanlines.Length, throwOnEndOfStream: false);
            if (read < scanlines.Length)
                throw new VimException($"{path}: damaged PNG: the image data holds {read} of the {scanlines.Length} bytes its {header.Width}x{header.Height} size needs.");
        }
        catch (InvalidDataException e)
        {
            throw new VimException($"{path}: damaged PNG: the image data is not a valid zlib stream ({e.Message}).", e);
        }
        var indices = new ushort[(long)header.Width * header.Height];
        int depth = header.BitDepth, perByte = 8 / depth, mask = (1 << depth) - 1;
        foreach (var pass in layout)
        {
            var rows = scanlines.AsSpan((int)pass.Offset, pass.Height * (pass.RowBytes + 1));
            Unfilter(path, rows, pass.Height, pass.RowBytes);
            for (int py = 0; py < pass.Height; py++)
            {
                int row = py * (pass.RowBytes + 1) + 1;
                long target = (long)(pass.Y0 + py * pass.DY) * header.Width + pass.X0;
                for (int px = 0; px < pass.Width; px++)
                {
                    int packed = rows[row + px / perByte];
                    // Samples narrower than a byte are packed from the most significant bit.
                    int shift = 8 - depth * (px % perByte + 1);
                    indices[target + (long)px * pass.DX] = (ushort)((packed >> shift) & mask);
                }
            }
        }
        return indices;
    }

    /// <summary>The concatenated IDAT chunks.</summary>
    private static byte[] ImageData(byte[] bytes, string path)
    {
        using var data = new MemoryStream();
        long at = 8;
        while (at + 8 <= bytes.Length)
        {
            uint length = BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan((int)at));
            var type = bytes.AsSpan((int)at + 4, 4);
            if (at + 12 + length > bytes.Length)
                throw new VimException($"{path}: damaged PNG: a {System.Text.Encoding.ASCII.GetString(type)} chunk of {length} bytes runs past the end of the file.");
            if (type.SequenceEqual("IDAT"u8)) data.Write(bytes, (int)at + 8, (int)length);
            if (type.SequenceEqual("IEND"u8)) break;
            at += 12 + length;
        }
        if (data.Length == 0) throw new VimException($"{path}: damaged PNG: no image data (IDAT) chunk.");
        return data.ToArray();
    }

    /// <summary>Undoes PNG's per-row filters of one (reduced) image in place (one byte per pixel step: palette samples are at most 8 bits).</summary>
    private static void Unfilter(string path, Span<byte> scanlines, int height, int rowBytes)
    {
        int stride = rowBytes + 1;
        for (int y = 0; y < height; y++)
        {
            int row = y * stride, previous = row - stride;
            int filter = scanlines[row];
            for (int i = 1; i <= rowBytes; i++)
            {
                int left = i > 1 ? scanlines[row + i - 1] : 0;
                int up = y > 0 ? scanlines[previous + i] : 0;
                int upLeft = y > 0 && i > 1 ? scanlines[previous + i - 1] : 0;
                int predictor = filter switch
                {
                    0 => 0,
                    1 => left,
                    2 => up,
                    3 => (left + up) / 2,
                    4 => Paeth(left, up, upLeft),
                    _ => throw new VimException($"{path}: damaged PNG: row {y} has filter type {filter} (expected 0 to 4)."),
                };
                scanlines[row + i] = (byte)(scanlines[row + i] + predictor);
            }
        }
    }

    /// <summary>PNG's CRC-32 (ISO 3309: polynomial 0xEDB88320 reflected, start and final inversion) over a chunk's type and data.</summary>
    internal static uint Crc32(ReadOnlySpan<byte> bytes)
    {
        uint crc = 0xFFFFFFFF;
        foreach (var b in bytes)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320 : crc >> 1;
        }
        return ~crc;
    }

    private static int Paeth(int left, int up, int upLeft)
    {
        int estimate = left + up - upLeft;
        int toLeft = Math.Abs(estimate - left), toUp = Math.Abs(estimate - up), toUpLeft = Math.Abs(estimate - upLeft);
        return toLeft <= toUp && toLeft <= toUpLeft ? left : toUp <= toUpLeft ? up : upLeft;
    }
}
