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

    /// <summary>
    /// Pillow's NEAREST Image.resize of a single-channel map (masks, labels), to the index: along each axis the source
    /// index of output j is the truncated running sum ½·s + j·s (s = in/out, added up in doubles as Pillow's
    /// ImagingScaleAffine does), the pixel under the output pixel's centre.
    /// </summary>
    public static T[] ResizePillowNearest<T>(T[] src, int h, int w, int newH, int newW) where T : unmanaged
    {
        static int[] SourceIndices(int inSize, int outSize)
        {
            var indices = new int[outSize];
            double step = (double)inSize / outSize, position = step * 0.5;
            for (int j = 0; j < outSize; j++, position += step) indices[j] = Math.Min((int)position, inSize - 1);
            return indices;
        }
        var columns = SourceIndices(w, newW);
        var rows = SourceIndices(h, newH);
        var dst = new T[newH * newW];
        for (int y = 0; y < newH; y++)
        {
            int from = rows[y] * w, to = y * newW;
            for (int x = 0; x < newW; x++) dst[to + x] = src[from + columns[x]];
        }
        return dst;
    }

    /// <summary>
    /// Pillow's BILINEAR Image.resize of an 8-bit HWC image, to the byte: per axis a triangle filter of radius
    /// max(1, in/out) source pixels around each output pixel's centre, its weights normalised over the pixels inside the
    /// image and stored as 22-bit fixed point; the horizontal pass first, each pass rounded to 8 bits. An axis whose size
    /// does not change is not resampled (its weights would be exactly 1).
    /// </summary>
    public static byte[] ResizePillowBilinear(byte[] src, int h, int w, int channels, int newH, int newW) =>
        ResizePillow(src, h, w, channels, newH, newW, PillowTaps.Triangle);

    /// <summary>
    /// Pillow's BOX Image.resize of an 8-bit HWC image, to the byte, as <see cref="ResizePillowBilinear"/> but with the box
    /// filter: each output pixel the mean of the source pixels whose centres fall within it (pixelate's downscale).
    /// </summary>
    public static byte[] ResizePillowBox(byte[] src, int h, int w, int channels, int newH, int newW) =>
        ResizePillow(src, h, w, channels, newH, newW, PillowTaps.Box);

    private static byte[] ResizePillow(byte[] src, int h, int w, int channels, int newH, int newW, Func<int, int, PillowTaps> taps)
    {
        if (newH <= 0 || newW <= 0 || h <= 0 || w <= 0)
            throw new ArgumentException($"resize {w}x{h} -> {newW}x{newH}: sizes must be positive.");
        var rows = newW == w ? src : PillowPass(src, h, w, channels, taps(w, newW), alongRows: true);
        if (newH == h) return ReferenceEquals(rows, src) ? (byte[])src.Clone() : rows;
        return PillowPass(rows, h, newW, channels, taps(h, newH), alongRows: false);
    }

    private const int PillowWeightBits = 22;

    /// <summary>For each output index: the first source index, how many follow, and their fixed-point weights (row Stride apart).</summary>
    private sealed record PillowTaps(int[] First, int[] Count, int[] Weights, int Stride)
    {
        /// <summary>Pillow's BILINEAR filter: a triangle of support 1, widened by the shrink factor.</summary>
        public static PillowTaps Triangle(int inSize, int outSize) =>
            Of(inSize, outSize, support: 1.0, distance => Math.Abs(distance) < 1.0 ? 1.0 - Math.Abs(distance) : 0.0);

        /// <summary>
        /// Pillow's BOX filter: support ½ widened by the shrink factor, 1 for a source pixel whose centre lies in
        /// (−½, ½] of the output pixel's span, so a downscale averages the pixels whose centres fall inside each output pixel.
        /// </summary>
        public static PillowTaps Box(int inSize, int outSize) =>
            Of(inSize, outSize, support: 0.5, distance => distance > -0.5 && distance <= 0.5 ? 1.0 : 0.0);

        /// <summary>Pillow's precompute_coeffs for a filter of the given support, evaluated at the source pixels' centres.</summary>
        private static PillowTaps Of(int inSize, int outSize, double support, Func<double, double> filter)
        {
            double scale = (double)inSize / outSize;
            double widening = Math.Max(scale, 1.0);
            double radius = support * widening;
            // Multiplying by the reciprocal (not dividing) keeps Pillow's rounding of each tap's position.
            double reciprocal = 1.0 / widening;
            int stride = (int)Math.Ceiling(radius) * 2 + 1;
            var first = new int[outSize];
            var count = new int[outSize];
            var weights = new int[outSize * stride];
            var raw = new double[stride];
            for (int o = 0; o < outSize; o++)
            {
                double center = (o + 0.5) * scale;
                // Casts truncate toward zero, as Pillow's C does.
                int lo = Math.Max((int)(center - radius + 0.5), 0);
                int n = Math.Min((int)(center + radius + 0.5), inSize) - lo;
                double total = 0;
                for (int i = 0; i < n; i++)
                {
                    raw[i] = filter((i + lo - center + 0.5) * reciprocal);
                    total += raw[i];
                }
                for (int i = 0; i < n; i++)
                {
                    double normalised = total != 0.0 ? raw[i] / total : raw[i];
                    // Both filters' weights are never negative, so rounding half up is Pillow's rounding here.
                    weights[o * stride + i] = (int)(0.5 + normalised * (1 << PillowWeightBits));
                }
                first[o] = lo;
                count[o] = n;
            }
            return new PillowTaps(first, count, weights, stride);
        }
    }

    private static byte[] PillowPass(byte[] src, int h, int w, int channels, PillowTaps taps, bool alongRows)
    {
        const int half = 1 << (PillowWeightBits - 1);
        int outSize = taps.First.Length;
        if (alongRows)
        {
            var dst = new byte[h * outSize * channels];
            var sums = new int[channels];
            fixed (byte* source = src)
            fixed (byte* target = dst)
            fixed (int* weights = taps.Weights)
            {
                for (int y = 0; y < h; y++)
                {
                    for (int o = 0; o < outSize; o++)
                    {
                        byte* pixel = source + ((long)y * w + taps.First[o]) * channels;
                        int* weight = weights + o * taps.Stride;
                        byte* output = target + ((long)y * outSize + o) * channels;
                        if (channels == 3)
                        {
                            int s0 = half, s1 = half, s2 = half;
                            for (int i = 0, n = taps.Count[o]; i < n; i++, pixel += 3)
                            {
                                int k = weight[i];
                                s0 += pixel[0] * k; s1 += pixel[1] * k; s2 += pixel[2] * k;
                            }
                            output[0] = ClipToByte(s0); output[1] = ClipToByte(s1); output[2] = ClipToByte(s2);
                            continue;
                        }
                        Array.Fill(sums, half);
                        for (int i = 0, n = taps.Count[o]; i < n; i++, pixel += channels)
                            for (int c = 0; c < channels; c++) sums[c] += pixel[c] * weight[i];
                        for (int c = 0; c < channels; c++) output[c] = ClipToByte(sums[c]);
                    }
                }
            }
            return dst;
        }
        // Down the columns: whole source rows are added into one accumulator row, which reads memory in order.
        int rowLength = w * channels;
        var result = new byte[outSize * rowLength];
        var accumulator = new int[rowLength];
        fixed (byte* source = src)
        fixed (byte* target = result)
        fixed (int* sum = accumulator)
        {
            for (int o = 0; o < outSize; o++)
            {
                Array.Fill(accumulator, half);
                for (int i = 0, n = taps.Count[o]; i < n; i++)
                {
                    int k = taps.Weights[o * taps.Stride + i];
                    byte* row = source + (long)(taps.First[o] + i) * rowLength;
                    for (int x = 0; x < rowLength; x++) sum[x] += row[x] * k;
                }
                byte* output = target + (long)o * rowLength;
                for (int x = 0; x < rowLength; x++) output[x] = ClipToByte(sum[x]);
            }
        }
        return result;
    }

    private static byte ClipToByte(int fixedPoint) => (byte)Math.Clamp(fixedPoint >> PillowWeightBits, 0, 255);

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

    /// <summary>
    /// cv2.warpAffine of an HWC map of bytes or 16-bit labels into newH×newW: <paramref name="matrix"/> (2×3, row-major) maps
    /// source pixel indices to destination ones; destination pixels whose source falls outside get <paramref name="borderValue"/>
    /// in every channel.
    /// </summary>
    public static T[] WarpAffine<T>(T[] src, int h, int w, int channels, ReadOnlySpan<double> matrix, int newH, int newW,
        InterpolationFlags interpolation, double borderValue) where T : unmanaged
    {
        var type = typeof(T) == typeof(byte) ? MatType.CV_8UC(channels)
            : typeof(T) == typeof(ushort) ? MatType.CV_16UC(channels)
            : throw new ArgumentException($"WarpAffine takes byte or ushort pixels, not {typeof(T).Name}.");
        if (matrix.Length != 6) throw new ArgumentException($"an affine matrix has 6 entries, got {matrix.Length}.", nameof(matrix));
        var dst = new T[newH * newW * channels];
        if (dst.Length == 0 || src.Length == 0) return dst;
        Span<double> m = stackalloc double[6];
        matrix.CopyTo(m);
        fixed (T* s = src)
        fixed (T* d = dst)
        fixed (double* pm = m)
        {
            using var sm = Mat.FromPixelData(h, w, type, (IntPtr)s);
            using var dm = Mat.FromPixelData(newH, newW, type, (IntPtr)d);
            using var mm = Mat.FromPixelData(2, 3, MatType.CV_64FC1, (IntPtr)pm);
            Cv2.WarpAffine(sm, dm, mm, new Size(newW, newH), interpolation, BorderTypes.Constant, Scalar.All(borderValue));
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

    /// <summary>
    /// Copies <paramref name="src"/> (<paramref name="h"/>×<paramref name="w"/>) into <paramref name="dst"/>
    /// (<paramref name="dstH"/>×<paramref name="dstW"/>, same channels) with its pixel (y, x) landing at (y + dy, x + dx);
    /// what falls outside <paramref name="dst"/> is cut, and the rest of <paramref name="dst"/> is left as it was.
    /// </summary>
    public static void Place<T>(T[] src, int h, int w, int channels, T[] dst, int dstH, int dstW, int dx, int dy) where T : unmanaged
    {
        int x0 = Math.Max(0, -dx), x1 = Math.Min(w, dstW - dx), y0 = Math.Max(0, -dy), y1 = Math.Min(h, dstH - dy);
        if (x1 <= x0) return;
        int row = (x1 - x0) * channels;
        for (int y = y0; y < y1; y++)
            Array.Copy(src, (y * w + x0) * channels, dst, ((y + dy) * dstW + x0 + dx) * channels, row);
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
