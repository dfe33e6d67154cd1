using System.Runtime.InteropServices;
using OpenCvSharp;
using Vim.Core;

namespace Vim.Data.Datasets;

/// <summary>Reads images and label maps with OpenCV: into plain arrays, or for drawing (<see cref="ReadBgr"/>) as a Mat.</summary>
public static class ImageDecoder
{
    /// <summary>How images are decoded, from files and from memory alike: three 8-bit channels, EXIF orientation ignored.</summary>
    private const ImreadModes ImageModes = ImreadModes.Color | ImreadModes.IgnoreOrientation;

    /// <summary>
    /// Decodes a JPEG/PNG as an 8-bit BGR Mat for drawing on (the caller disposes it), with the same pixel grid as
    /// <see cref="ReadRgb"/>: EXIF orientation ignored, so predictions made on the stored pixels line up.
    /// </summary>
    public static Mat ReadBgr(string path)
    {
        if (!File.Exists(path)) throw new VimException($"{path}: image file not found.");
        var bgr = Cv2.ImRead(path, ImageModes);
        if (!bgr.Empty()) return bgr;
        bgr.Dispose();
        throw new VimException($"{path}: cannot decode image (corrupt file or not JPEG/PNG).");
    }

    /// <summary>
    /// Decodes a JPEG/PNG as 8-bit RGB (HWC). Grayscale and RGBA are converted to three channels; EXIF
    /// orientation is ignored because annotation coordinates refer to the stored pixel grid.
    /// </summary>
    public static (byte[] Rgb, int Height, int Width) ReadRgb(string path)
    {
        using var bgr = ReadBgr(path);
        return ToRgb(bgr);
    }

    /// <summary>
    /// Decodes an encoded image held in memory (the bytes of a JPEG/PNG file, e.g. an upload) as 8-bit RGB (HWC), with
    /// the decoder and options <see cref="ReadRgb"/> reads the file with, so both give the same pixels;
    /// <paramref name="name"/> says what the bytes are, for the error.
    /// </summary>
    public static (byte[] Rgb, int Height, int Width) DecodeRgb(byte[] encoded, string name)
    {
        ArgumentNullException.ThrowIfNull(encoded);
        if (encoded.Length == 0) throw new VimException($"{name}: cannot decode image (no bytes).");
        using var bgr = Cv2.ImDecode(encoded, ImageModes);
        if (bgr.Empty()) throw new VimException($"{name}: cannot decode image ({encoded.Length} bytes, corrupt or not JPEG/PNG).");
        return ToRgb(bgr);
    }

    /// <summary>An 8-bit BGR Mat (a decoded image or video frame) as 8-bit RGB (HWC), the layout <see cref="ReadRgb"/> gives.</summary>
    public static (byte[] Rgb, int Height, int Width) ToRgb(Mat bgr)
    {
        using var rgb = new Mat();
        Cv2.CvtColor(bgr, rgb, ColorConversionCodes.BGR2RGB);
        return (CopyPixels(rgb), rgb.Rows, rgb.Cols);
    }

    /// <summary>
    /// Decodes a label PNG as 16-bit class indices (one label type for every dataset, whatever its class count), with
    /// the values Pillow, mmseg's reader, gives: 8-bit and 16-bit grayscale unchanged, palette images as their palette
    /// indices (VOC-style labels), 1-bit grayscale as 0/1.
    /// </summary>
    public static (ushort[] Labels, int Height, int Width) ReadLabelMap(string path)
    {
        if (!File.Exists(path)) throw new VimException($"{path}: label map file not found.");
        // Read once: the PNG header picks the decoder, and OpenCV decodes the same bytes.
        var file = File.ReadAllBytes(path);
        var png = PngLabelLayout.ReadHeader(file, path);
        if (png is { ColorType: PngLabelLayout.Palette })
            return (PngLabelLayout.ReadPaletteIndices(file, path, png), png.Height, png.Width);
        if (file.Length == 0) throw new VimException($"{path}: cannot decode label map (empty file).");
        using var mat = Cv2.ImDecode(file, ImreadModes.Unchanged);
        if (mat.Empty()) throw new VimException($"{path}: cannot decode label map (corrupt file or not PNG).");
        if (mat.Channels() != 1 || (mat.Depth() != MatType.CV_8U && mat.Depth() != MatType.CV_16U))
            throw new VimException($"{path}: expected a single-channel 8-bit or 16-bit (or palette) label PNG, got {mat.Channels()} channel(s) of depth {mat.Depth()} " +
                "(colour label images must be converted to class indices).");
        var labels = new ushort[mat.Rows * mat.Cols];
        var bytes = CopyPixels(mat);
        if (mat.Depth() == MatType.CV_16U) Buffer.BlockCopy(bytes, 0, labels, 0, bytes.Length);
        // OpenCV widens 1-bit samples to 0/255; the file holds 0/1.
        else if (png is { ColorType: PngLabelLayout.Grayscale, BitDepth: 1 })
            for (int i = 0; i < labels.Length; i++) labels[i] = (ushort)(bytes[i] != 0 ? 1 : 0);
        else
            for (int i = 0; i < labels.Length; i++) labels[i] = bytes[i];
        return (labels, mat.Rows, mat.Cols);
    }

    internal static byte[] CopyPixels(Mat mat)
    {
        int rows = mat.Rows;
        int rowBytes = mat.Cols * mat.Channels() * (int)mat.ElemSize1();
        var data = new byte[rows * rowBytes];
        if (mat.IsContinuous()) Marshal.Copy(mat.Data, data, 0, data.Length);
        else
            for (int y = 0; y < rows; y++) Marshal.Copy(mat.Ptr(y), data, y * rowBytes, rowBytes);
        return data;
    }
}
