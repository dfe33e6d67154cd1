using System.Buffers.Binary;
using System.IO.Compression;
using NUnit.Framework;
using OpenCvSharp;
using Vim.Core;
using Vim.Data.Datasets;
using Vim.Data.Evaluation;

namespace Vim.Tests.Data;

/// <summary>
/// Label PNGs in the layouts OpenCV converts (palette: to colours; 1-bit: to 0/255) read as the class indices they store,
/// as mmseg's Pillow reader gives them.
/// </summary>
public class LabelPngLayoutTests
{
    /// <summary>A 3×5 index image: every index of a 4-bit palette's 16 entries but one, in no order a filter would flatter.</summary>
    private static readonly byte[] Indices = [0, 1, 15, 7, 3, 9, 2, 14, 8, 4, 12, 5, 10, 6, 11];

    private const int Width = 3, Height = 5;

    /// <summary>Distinct palette colours, so OpenCV's colour image maps back to indices unambiguously.</summary>
    private static (byte R, byte G, byte B) Colour(int index) => ((byte)(16 * index + 3), (byte)(255 - 9 * index), (byte)(index * index));

    [TestCase(8)]
    [TestCase(4)]
    public void PaletteImagesGiveTheirIndicesAndOpenCvSeesTheSameColours(int bitDepth)
    {
        using var files = new DataTestFiles();
        var path = files.PathOf("palette.png");
        File.WriteAllBytes(path, PalettePng(bitDepth));

        var (labels, height, width) = ImageDecoder.ReadLabelMap(path);
        Assert.That((height, width), Is.EqualTo((Height, Width)));
        Assert.That(labels, Is.EqualTo(Indices.Select(i => (ushort)i).ToArray()));

        // An independent decoder (OpenCV, which checks the CRCs) reads the same file as the palette's colours.
        using var bgr = Cv2.ImRead(path, ImreadModes.Color);
        for (int p = 0; p < Indices.Length; p++)
        {
            var pixel = bgr.At<Vec3b>(p / Width, p % Width);
            Assert.That((pixel.Item2, pixel.Item1, pixel.Item0), Is.EqualTo(Colour(Indices[p])), $"pixel {p}");
        }
        Assert.That(SegmentationLabelMaps.Read(path, out _, out _), Is.EqualTo(Indices.Select(i => (int)i).ToArray()), "vim eval seg reads the same");
    }

    [Test]
    public void OneBitGrayscaleGivesZeroAndOne()
    {
        using var files = new DataTestFiles();
        var path = files.PathOf("mask.png");
        using (var mat = new Mat(Height, Width, MatType.CV_8UC1))
        {
            for (int p = 0; p < Indices.Length; p++) mat.Set(p / Width, p % Width, (byte)(Indices[p] % 2 == 1 ? 255 : 0));
            Assert.That(Cv2.ImWrite(path, mat, new ImageEncodingParam(ImwriteFlags.PngBilevel, 1)), Is.True);
        }
        Assert.That(File.ReadAllBytes(path)[24], Is.EqualTo(1), "OpenCV wrote a 1-bit PNG");
        var (labels, _, _) = ImageDecoder.ReadLabelMap(path);
        Assert.That(labels, Is.EqualTo(Indices.Select(i => (ushort)(i % 2)).ToArray()));
    }

    [Test]
    public void DamagedPaletteImagesNameTheFile()
    {
        using var files = new DataTestFiles();
        var good = PalettePng(8);
        var path = files.PathOf("bad.png");
        // Image data cut short: IDAT's length still says the full size.
        File.WriteAllBytes(path, good[..^30]);
        Assert.That(Assert.Throws<VimException>(() => ImageDecoder.ReadLabelMap(path))!.Message, Does.StartWith(path + ": damaged PNG"));
        // A changed header field without its checksum (OpenCV, which checks it, accepts the good file above).
        var flipped = (byte[])good.Clone();
        flipped[20] ^= 0x40;
        File.WriteAllBytes(path, flipped);
        Assert.That(Assert.Throws<VimException>(() => ImageDecoder.ReadLabelMap(path))!.Message, Does.Contain("IHDR checksum does not match"));
        // A header declaring far more pixels than its data could hold is refused before anything is allocated.
        File.WriteAllBytes(path, PalettePng(8, declaredHeight: 46340));
        Assert.That(Assert.Throws<VimException>(() => ImageDecoder.ReadLabelMap(path))!.Message, Does.Contain("cannot hold 3x46340 pixels"));
        File.WriteAllBytes(path, PalettePng(8, interlace: 2));
        Assert.That(Assert.Throws<VimException>(() => ImageDecoder.ReadLabelMap(path))!.Message, Does.Contain("interlace method 2 (expected 0, none, or 1, Adam7)"));
    }

    /// <summary>
    /// Adam7-interlaced palette PNGs (Pillow reads them; so must we), at every palette bit depth, in sizes where all seven
    /// passes hold pixels, where some are empty, and a single pixel. OpenCV (libpng) decodes the same file independently.
    /// </summary>
    [TestCase(8, 9, 10)]
    [TestCase(4, 13, 11)]
    [TestCase(2, 3, 2)]
    [TestCase(1, 17, 9)]
    [TestCase(8, 1, 1)]
    public void InterlacedPaletteImagesGiveTheirIndices(int bitDepth, int width, int height)
    {
        var random = new Random(bitDepth * 100 + width);
        var indices = Enumerable.Range(0, width * height).Select(_ => (byte)random.Next(1 << Math.Min(bitDepth, 4))).ToArray();
        using var files = new DataTestFiles();
        var path = files.PathOf("interlaced.png");
        File.WriteAllBytes(path, PalettePng(indices, width, height, bitDepth, height, interlace: 1));

        var (labels, readHeight, readWidth) = ImageDecoder.ReadLabelMap(path);
        Assert.That((readHeight, readWidth), Is.EqualTo((height, width)));
        Assert.That(labels, Is.EqualTo(indices.Select(i => (ushort)i).ToArray()));
        using var bgr = Cv2.ImRead(path, ImreadModes.Color);
        Assert.That((bgr.Rows, bgr.Cols), Is.EqualTo((height, width)), "libpng reads the hand-written interlaced file");
        for (int p = 0; p < indices.Length; p++)
        {
            var pixel = bgr.At<Vec3b>(p / width, p % width);
            Assert.That((pixel.Item2, pixel.Item1, pixel.Item0), Is.EqualTo(Colour(indices[p])), $"pixel {p}");
        }
    }

    /// <summary>
    /// A palette PNG written by hand: PLTE with 16 colours, each image row filtered with PNG filter type (row mod 5) (none,
    /// sub, up, average, Paeth), so the reader must undo each. Interlaced (1): the pixels go out in Adam7's seven reduced
    /// images (PNG spec §8.2), each filtered on its own.
    /// </summary>
    private static byte[] PalettePng(int bitDepth, int declaredHeight = Height, byte interlace = 0) =>
        PalettePng(Indices, Width, Height, bitDepth, declaredHeight, interlace);

    private static byte[] PalettePng(byte[] indices, int width, int height, int bitDepth, int declaredHeight, byte interlace)
    {
        // Pass p takes the pixels whose column is x0 + k·dx and row y0 + k·dy.
        (int X0, int Y0, int Dx, int Dy)[] passes = interlace == 0
            ? [(0, 0, 1, 1)]
            : [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)];
        var filtered = new List<byte>();
        foreach (var (x0, y0, dx, dy) in passes)
        {
            var columns = Enumerable.Range(0, width).Where(x => x >= x0 && (x - x0) % dx == 0).ToArray();
            var rows = Enumerable.Range(0, height).Where(y => y >= y0 && (y - y0) % dy == 0).ToArray();
            if (columns.Length == 0 || rows.Length == 0) continue;
            int rowBytes = (columns.Length * bitDepth + 7) / 8;
            var raw = new byte[rows.Length][];
            for (int r = 0; r < rows.Length; r++)
            {
                raw[r] = new byte[rowBytes];
                for (int c = 0; c < columns.Length; c++)
                {
                    int perByte = 8 / bitDepth, shift = 8 - bitDepth * (c % perByte + 1);
                    raw[r][c / perByte] |= (byte)(indices[rows[r] * width + columns[c]] << shift);
                }
            }
            for (int r = 0; r < rows.Length; r++)
            {
                int filter = r % 5;
                filtered.Add((byte)filter);
                for (int i = 0; i < rowBytes; i++)
                {
                    int left = i > 0 ? raw[r][i - 1] : 0, up = r > 0 ? raw[r - 1][i] : 0, upLeft = i > 0 && r > 0 ? raw[r - 1][i - 1] : 0;
                    int estimate = left + up - upLeft;
                    int paeth = Math.Abs(estimate - left) <= Math.Abs(estimate - up) && Math.Abs(estimate - left) <= Math.Abs(estimate - upLeft) ? left
                        : Math.Abs(estimate - up) <= Math.Abs(estimate - upLeft) ? up : upLeft;
                    int predictor = filter switch { 1 => left, 2 => up, 3 => (left + up) / 2, 4 => paeth, _ => 0 };
                    filtered.Add((byte)(raw[r][i] - predictor));
                }
            }
        }
        using var zlib = new MemoryStream();
        using (var deflate = new ZLibStream(zlib, CompressionLevel.Optimal, leaveOpen: true))
            deflate.Write(filtered.ToArray());
        var header = new byte[13];
        BinaryPrimitives.WriteUInt32BigEndian(header, (uint)width);
        BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(4), (uint)declaredHeight);
        header[8] = (byte)bitDepth;
        header[9] = 3;
        header[12] = interlace;
        var palette = Enumerable.Range(0, 16).SelectMany(i => { var (r, g, b) = Colour(i); return new[] { r, g, b }; }).ToArray();
        using var png = new MemoryStream();
        png.Write([137, 80, 78, 71, 13, 10, 26, 10]);
        Chunk(png, "IHDR", header);
        Chunk(png, "PLTE", palette);
        Chunk(png, "IDAT", zlib.ToArray());
        Chunk(png, "IEND", []);
        return png.ToArray();
    }

    private static void Chunk(Stream png, string type, byte[] data)
    {
        var length = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(length, (uint)data.Length);
        png.Write(length);
        var typed = System.Text.Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
        png.Write(typed);
        var crc = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(crc, PngLabelLayout.Crc32(typed));
        png.Write(crc);
    }

}
