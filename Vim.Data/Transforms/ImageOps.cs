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

    /// <summary>Nearest-neighbour resize of a 16-bit label map (labels are never interpolated).</summary>
    public static ushort[] ResizeLabels(ushort[] src, int h, int w, int newH, int newW)
    {
        var dst = new ushort[newH * newW];
        if (dst.Length == 0 || src.Length == 0) return dst;
        fixed (ushort* s = src)
        fixed (ushort* d = dst)
        {
            using var sm = Mat.FromPixelData(h, w, MatType.CV_16UC1, (IntPtr)s);
            using var dm = Mat.FromPixelData(newH, newW, MatType.CV_16UC1, (IntPtr)d);
            Cv2.Resize(sm, dm, new Size(newW, newH), 0, 0, InterpolationFlags.Nearest);
        }
        return dst;
    }

    public static T[] Crop<T>(T[] src, int w, int channels, int y0, int x0, int cropH, int cropW) where T : unmanaged
    {
        var dst = new T[cropH * cropW * channels];
        int row = cropW * channels;
        for (int y = 0; y < cropH; y++)
            Array.Copy(src, ((y0 + y) * w + x0) * channels, dst, y * row, row);
        return dst;
    }

    public static T[] FlipHorizontal<T>(T[] src, int h, int w, int channels) where T : unmanaged
    {
        var dst = new T[src.Length];
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
    public static T[] Pad<T>(T[] src, int h, int w, int channels, int newH, int newW, T value) where T : unmanaged
    {
        var dst = new T[newH * newW * channels];
        if (!EqualityComparer<T>.Default.Equals(value, default)) Array.Fill(dst, value);
        int row = w * channels;
        for (int y = 0; y < h; y++) Array.Copy(src, y * row, dst, y * newW * channels, row);
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
