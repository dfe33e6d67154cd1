using OpenCvSharp;

namespace Vim.Data.Transforms;

/// <summary>Pixel operations on plain HWC byte arrays (OpenCV does the resampling; no Mat outlives a call).</summary>
internal static unsafe class ImageOps
{
    public static byte[] Resize(byte[] src, int h, int w, int channels, int newH, int newW, InterpolationFlags interpolation)
    {
        var dst = new byte[newH * newW * channels];
        if (dst.Length == 0 || src.Length == 0) return dst;
        fixed (byte* s = src)
        fixed (byte* d = dst)
        {
            using var sm = Mat.FromPixelData(h, w, MatType.CV_8UC(channels), (IntPtr)s);
            using var dm = Mat.FromPixelData(newH, newW, MatType.CV_8UC(channels), (IntPtr)d);
            Cv2.Resize(sm, dm, new Size(newW, newH), 0, 0, interpolation);
        }
        return dst;
    }

    public static byte[] Crop(byte[] src, int w, int channels, int y0, int x0, int cropH, int cropW)
    {
        var dst = new byte[cropH * cropW * channels];
        int rowBytes = cropW * channels;
        for (int y = 0; y < cropH; y++)
            Buffer.BlockCopy(src, ((y0 + y) * w + x0) * channels, dst, y * rowBytes, rowBytes);
        return dst;
    }

    public static byte[] FlipHorizontal(byte[] src, int h, int w, int channels)
    {
        var dst = new byte[src.Length];
        for (int y = 0; y < h; y++)
        {
            int row = y * w * channels;
            for (int x = 0; x < w; x++)
            {
                int from = row + x * channels, to = row + (w - 1 - x) * channels;
                for (int c = 0; c < channels; c++) dst[to + c] = src[from + c];
            }
        }
        return dst;
    }

    /// <summary>Pads at the bottom and right (content stays at the top-left, so boxes need no shift).</summary>
    public static byte[] Pad(byte[] src, int h, int w, int channels, int newH, int newW, byte value)
    {
        var dst = new byte[newH * newW * channels];
        if (value != 0) Array.Fill(dst, value);
        int rowBytes = w * channels;
        for (int y = 0; y < h; y++) Buffer.BlockCopy(src, y * rowBytes, dst, y * newW * channels, rowBytes);
        return dst;
    }

    public static float[] PadChw(float[] src, int channels, int h, int w, int newH, int newW, float value)
    {
        var dst = new float[channels * newH * newW];
        if (value != 0) Array.Fill(dst, value);
        for (int c = 0; c < channels; c++)
            for (int y = 0; y < h; y++)
                Array.Copy(src, (c * h + y) * w, dst, (c * newH + y) * newW, w);
        return dst;
    }

    /// <summary>Runs an OpenCV operation on an RGB byte image in place.</summary>
    public static void WithMat(byte[] rgb, int h, int w, Action<Mat> action)
    {
        fixed (byte* p = rgb)
        {
            using var mat = Mat.FromPixelData(h, w, MatType.CV_8UC3, (IntPtr)p);
            action(mat);
        }
    }
}
