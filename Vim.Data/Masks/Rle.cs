namespace Vim.Data.Masks;

/// <summary>
/// A binary mask in COCO run-length encoding: pixels are visited in column-major order (down each
/// column, then the next column) and <see cref="Counts"/> holds alternating run lengths, starting
/// with a run of zeros (which may be empty). This is the layout pycocotools uses, so masks and
/// compressed strings are interchangeable with COCO json files.
/// </summary>
public sealed class Rle
{
    /// <summary>Creates an RLE; the counts must sum to height·width.</summary>
    public Rle(int height, int width, uint[] counts)
    {
        if (height < 0 || width < 0)
            throw new ArgumentOutOfRangeException(nameof(height), $"RLE size must be non-negative, got {height}x{width}.");
        long total = 0;
        foreach (var c in counts) total += c;
        if (total != (long)height * width)
            throw new ArgumentException($"RLE counts sum to {total}, expected height*width = {(long)height * width}.", nameof(counts));
        Height = height;
        Width = width;
        Counts = counts;
    }

    private Rle(int height, int width, uint[] counts, bool trusted)
    {
        _ = trusted;
        Height = height;
        Width = width;
        Counts = counts;
    }

    internal static Rle CreateTrusted(int height, int width, uint[] counts) => new(height, width, counts, trusted: true);

    public int Height { get; }
    public int Width { get; }

    /// <summary>Alternating run lengths (zeros first), column-major.</summary>
    public uint[] Counts { get; }

    /// <summary>Number of foreground pixels (sum of the odd-indexed runs).</summary>
    public long Area
    {
        get
        {
            long area = 0;
            for (int i = 1; i < Counts.Length; i += 2) area += Counts[i];
            return area;
        }
    }

    /// <summary>Encodes a row-major mask (index y·width + x; any non-zero byte is foreground).</summary>
    public static Rle Encode(ReadOnlySpan<byte> rowMajorMask, int height, int width)
    {
        if (rowMajorMask.Length != height * width)
            throw new ArgumentException($"mask has {rowMajorMask.Length} pixels, expected {height}x{width}.", nameof(rowMajorMask));
        var counts = new List<uint>();
        bool current = false;
        uint run = 0;
        for (int x = 0; x < width; x++)
        {
            for (int y = 0; y < height; y++)
            {
                bool v = rowMajorMask[y * width + x] != 0;
                if (v != current)
                {
                    counts.Add(run);
                    run = 0;
                    current = v;
                }
                run++;
            }
        }
        counts.Add(run);
        return CreateTrusted(height, width, counts.ToArray());
    }

    /// <summary>Decodes to a row-major mask of 0/1 bytes (index y·width + x).</summary>
    public byte[] Decode()
    {
        var mask = new byte[Height * Width];
        int x = 0, y = 0;
        for (int i = 0; i < Counts.Length; i++)
        {
            uint run = Counts[i];
            if ((i & 1) == 0)
            {
                // Skip a background run: advance the column-major cursor without touching pixels.
                long pos = (long)x * Height + y + run;
                x = (int)(pos / Math.Max(1, Height));
                y = (int)(pos - (long)x * Height);
                continue;
            }
            for (uint r = 0; r < run; r++)
            {
                mask[y * Width + x] = 1;
                if (++y == Height) { y = 0; x++; }
            }
        }
        return mask;
    }

    /// <summary>
    /// Tight bounding box [x, y, w, h] of the foreground, computed like pycocotools' toBbox
    /// (a mask that wraps across columns spans the full height); all zeros for an empty mask.
    /// </summary>
    public double[] ToBbox()
    {
        int m = Counts.Length / 2 * 2;
        if (m == 0) return [0, 0, 0, 0];
        uint h = (uint)Height;
        uint xs = (uint)Width, ys = h, xe = 0, ye = 0, cc = 0, xp = 0;
        for (int j = 0; j < m; j++)
        {
            cc += Counts[j];
            uint t = cc - (uint)(j % 2);
            uint y = t % h, x = (t - y) / h;
            if (j % 2 == 0) xp = x;
            else if (xp < x) { ys = 0; ye = h - 1; }
            xs = Math.Min(xs, x); xe = Math.Max(xe, x);
            ys = Math.Min(ys, y); ye = Math.Max(ye, y);
        }
        return [xs, ys, xe - xs + 1, ye - ys + 1];
    }

    /// <summary>Union (or intersection) of masks of the same size.</summary>
    public static Rle Merge(IReadOnlyList<Rle> masks, bool intersect = false)
    {
        if (masks.Count == 0) throw new ArgumentException("cannot merge zero masks.", nameof(masks));
        if (masks.Count == 1) return masks[0];
        var acc = masks[0];
        for (int i = 1; i < masks.Count; i++) acc = MergePair(acc, masks[i], intersect);
        return acc;
    }

    private static Rle MergePair(Rle a, Rle b, bool intersect)
    {
        if (a.Height != b.Height || a.Width != b.Width)
            throw new ArgumentException($"cannot merge masks of size {a.Height}x{a.Width} and {b.Height}x{b.Width}.");
        var output = new List<uint>(a.Counts.Length + b.Counts.Length);
        var ac = a.Counts; var bc = b.Counts;
        int ia = 0, ib = 0;
        uint ra = ac.Length > 0 ? ac[0] : 0, rb = bc.Length > 0 ? bc[0] : 0;
        bool va = false, vb = false;
        bool vPrev = false;
        uint run = 0;
        long remaining = (long)a.Height * a.Width;
        while (remaining > 0)
        {
            // Skip exhausted (empty) runs so both cursors sit on a run with pixels left.
            while (ra == 0 && ia + 1 < ac.Length) { ra = ac[++ia]; va = !va; }
            while (rb == 0 && ib + 1 < bc.Length) { rb = bc[++ib]; vb = !vb; }
            uint step = Math.Min(ra, rb);
            bool v = intersect ? (va && vb) : (va || vb);
            if (v != vPrev)
            {
                output.Add(run);
                run = 0;
                vPrev = v;
            }
            run += step;
            ra -= step; rb -= step; remaining -= step;
        }
        output.Add(run);
        return CreateTrusted(a.Height, a.Width, output.ToArray());
    }

    /// <summary>
    /// This mask placed into a larger, empty canvas of <paramref name="height"/> × <paramref name="width"/> with its top-left
    /// pixel at (<paramref name="left"/>, <paramref name="top"/>): e.g. a mask predicted in a patch of an image, in the
    /// image's pixels. Built run by run (no canvas-sized bitmap), so placing into a very large image costs the mask's runs
    /// and columns, not the image's pixels.
    /// </summary>
    public Rle PlaceIn(int height, int width, int left, int top)
    {
        if (left < 0 || top < 0 || left + (long)Width > width || top + (long)Height > height)
            throw new ArgumentOutOfRangeException(nameof(left),
                $"a {Width}x{Height} mask at ({left}, {top}) does not lie within a {width}x{height} canvas.");
        if (Width == 0 || Height == 0) return CreateTrusted(height, width, [checked((uint)((long)height * width))]);
        var output = new List<uint>(Counts.Length + 2 * Width + 2);
        bool current = false;
        uint run = 0;
        void Append(bool value, long length)
        {
            if (length == 0) return;
            if (value != current)
            {
                output.Add(run);
                (run, current) = (0, value);
            }
            run += checked((uint)length);
        }
        // Column-major: the canvas columns left of the mask, then the rows above it in its first column.
        Append(false, (long)left * height + top);
        int row = 0, column = 0;
        for (int i = 0; i < Counts.Length && column < Width; i++)
        {
            bool value = (i & 1) == 1;
            long remaining = Counts[i];
            while (remaining > 0)
            {
                long take = Math.Min(remaining, Height - row);
                Append(value, take);
                (remaining, row) = (remaining - take, row + (int)take);
                if (row < Height) continue;
                // The canvas rows below this column of the mask and above its next one.
                (row, column) = (0, column + 1);
                if (column < Width) Append(false, height - Height);
            }
        }
        Append(false, height - (long)top - Height + (long)(width - left - Width) * height);
        output.Add(run);
        return CreateTrusted(height, width, output.ToArray());
    }

    /// <summary>Parses a COCO compressed counts string (the LEB128-like ASCII form).</summary>
    public static Rle FromCompressedString(string counts, int height, int width)
    {
        var decoded = RleStringCodec.Decode(counts);
        return new Rle(height, width, decoded);
    }

    /// <summary>The COCO compressed counts string of this mask.</summary>
    public string ToCompressedString() => RleStringCodec.Encode(Counts);
}
