using System.Runtime.InteropServices;
using OpenCvSharp;
using Vim.Core;
using Vim.Core.IO;

namespace Vim.Data.Datasets;

/// <summary>The way back from <see cref="ImageDecoder"/>: pixels a pipeline produced as a Mat to draw on, and drawings as PNG files.</summary>
public static class ImageEncoder
{
    /// <summary>An 8-bit BGR Mat (the caller disposes it) of RGB HWC bytes, such as <see cref="DataSample.Image"/>.</summary>
    public static Mat ToBgr(byte[] rgb, int height, int width)
    {
        if (rgb.Length != height * width * 3)
            throw new ArgumentException($"image has {rgb.Length} bytes, expected {height}x{width}x3.", nameof(rgb));
        var pinned = GCHandle.Alloc(rgb, GCHandleType.Pinned);
        try
        {
            using var view = Mat.FromPixelData(height, width, MatType.CV_8UC3, pinned.AddrOfPinnedObject());
            var bgr = new Mat();
            Cv2.CvtColor(view, bgr, ColorConversionCodes.RGB2BGR);
            return bgr;
        }
        finally
        {
            pinned.Free();
        }
    }

    /// <summary>
    /// <paramref name="left"/> and <paramref name="right"/> (8-bit BGR, the same height) next to each other, as one PNG
    /// twice as wide (<see cref="WritePng"/>): e.g. ground truth beside a prediction on the same image.
    /// </summary>
    public static void WritePngSideBySide(string path, Mat left, Mat right)
    {
        if (left.Rows != right.Rows || left.Type() != right.Type())
            throw new ArgumentException($"{path}: side-by-side halves differ ({left.Cols}x{left.Rows} {left.Type()} against {right.Cols}x{right.Rows} {right.Type()}).");
        using var both = new Mat();
        Cv2.HConcat(left, right, both);
        WritePng(path, both);
    }

    /// <summary>Encodes <paramref name="image"/> as PNG and writes it atomically (<see cref="AtomicFile"/>), creating the folder.</summary>
    public static void WritePng(string path, Mat image)
    {
        if (!Cv2.ImEncode(".png", image, out byte[] encoded)) throw new VimException($"{path}: could not encode the PNG");
        AtomicFile.Write(path, stream => stream.Write(encoded));
    }
}
