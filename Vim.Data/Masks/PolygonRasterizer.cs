namespace Vim.Data.Masks;

/// <summary>
/// Polygon → RLE with the same rasterisation rule as pycocotools' frPoly: the outline is walked on a
/// 5× up-sampled integer grid, and a pixel (x, y) is inside when its centre lies below a crossing of
/// the outline with the column x. Matching this rule (not a generic scan-line fill) is what makes our
/// mask areas and mask IoUs equal to pycocotools' to the last pixel.
/// </summary>
public static class PolygonRasterizer
{
    private const double Scale = 5;

    /// <summary>One polygon given as flat [x1, y1, x2, y2, …] in pixel coordinates.</summary>
    public static Rle FromPolygon(ReadOnlySpan<double> xy, int height, int width)
    {
        int k = xy.Length / 2;
        var px = new int[k + 1];
        var py = new int[k + 1];
        for (int j = 0; j < k; j++) px[j] = (int)(Scale * xy[2 * j] + .5);
        for (int j = 0; j < k; j++) py[j] = (int)(Scale * xy[2 * j + 1] + .5);
        if (k > 0) { px[k] = px[0]; py[k] = py[0]; }

        // Dense integer points along every edge, in the up-sampled grid.
        long total = 0;
        for (int j = 0; j < k; j++) total += Math.Max(Math.Abs(px[j] - px[j + 1]), Math.Abs(py[j] - py[j + 1])) + 1;
        var u = new int[total];
        var v = new int[total];
        int m = 0;
        for (int j = 0; j < k; j++)
        {
            int xs = px[j], xe = px[j + 1], ys = py[j], ye = py[j + 1];
            int dx = Math.Abs(xe - xs), dy = Math.Abs(ys - ye);
            bool flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
            if (flip) { (xs, xe) = (xe, xs); (ys, ye) = (ye, ys); }
            double s = dx >= dy ? (double)(ye - ys) / dx : (double)(xe - xs) / dy;
            if (dx >= dy)
            {
                for (int d = 0; d <= dx; d++)
                {
                    int t = flip ? dx - d : d;
                    u[m] = t + xs;
                    v[m] = (int)(ys + s * t + .5);
                    m++;
                }
            }
            else
            {
                for (int d = 0; d <= dy; d++)
                {
                    int t = flip ? dy - d : d;
                    v[m] = t + ys;
                    u[m] = (int)(xs + s * t + .5);
                    m++;
                }
            }
        }

        // Where the outline crosses a pixel column centre, record the first pixel below it.
        var boundary = new List<uint>(m / 4 + 2);
        for (int j = 1; j < m; j++)
        {
            if (u[j] == u[j - 1]) continue;
            double xd = u[j] < u[j - 1] ? u[j] : u[j] - 1;
            xd = (xd + .5) / Scale - .5;
            if (Math.Floor(xd) != xd || xd < 0 || xd > width - 1) continue;
            double yd = v[j] < v[j - 1] ? v[j] : v[j - 1];
            yd = (yd + .5) / Scale - .5;
            if (yd < 0) yd = 0;
            else if (yd > height) yd = height;
            yd = Math.Ceiling(yd);
            boundary.Add((uint)((int)xd * height + (int)yd));
        }
        boundary.Add((uint)(height * width));
        boundary.Sort();

        // Successive crossings toggle inside/outside; differences are the run lengths, and a zero
        // difference (two crossings at one pixel) cancels by folding the next run into the previous.
        var a = boundary.ToArray();
        uint prev = 0;
        for (int j = 0; j < a.Length; j++) { uint t = a[j]; a[j] -= prev; prev = t; }
        var b = new List<uint>(a.Length);
        int i = 0;
        b.Add(a[i++]);
        while (i < a.Length)
        {
            if (a[i] > 0) b.Add(a[i++]);
            else
            {
                i++;
                if (i < a.Length) b[^1] += a[i++];
            }
        }
        return Rle.CreateTrusted(height, width, b.ToArray());
    }

    /// <summary>Several polygons of one object, merged (union) into one mask like pycocotools' annToRLE.</summary>
    public static Rle FromPolygons(IReadOnlyList<double[]> polygons, int height, int width)
    {
        if (polygons.Count == 0) return Rle.CreateTrusted(height, width, [(uint)(height * width)]);
        var parts = new Rle[polygons.Count];
        for (int i = 0; i < parts.Length; i++) parts[i] = FromPolygon(polygons[i], height, width);
        return Rle.Merge(parts);
    }
}
