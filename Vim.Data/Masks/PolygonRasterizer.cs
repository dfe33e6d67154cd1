using System.Runtime.CompilerServices;

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

    /// <summary>
    /// Coordinates beyond this many pixels are clamped, so the 5× grid fits in a long; pycocotools' int grid overflows
    /// already at about 4e8, so nothing it can rasterise changes.
    /// </summary>
    private const double MaxCoordinate = 1e15;

    /// <summary>One polygon given as flat [x1, y1, x2, y2, …] in pixel coordinates.</summary>
    public static Rle FromPolygon(ReadOnlySpan<double> xy, int height, int width)
    {
        int k = xy.Length / 2;
        var walk = new OutlineWalk(height, width);
        for (int j = 0; j < k; j++)
        {
            int next = (j + 1) % k;
            walk.AddEdge(ToGrid(xy[2 * j]), ToGrid(xy[2 * j + 1]), ToGrid(xy[2 * next]), ToGrid(xy[2 * next + 1]));
        }
        var boundary = walk.Crossings;
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

    /// <summary>pycocotools' vertex position on the 5× grid, (int)(5x + .5).</summary>
    private static long ToGrid(double coordinate) => (long)(Scale * Math.Clamp(coordinate, -MaxCoordinate, MaxCoordinate) + .5);

    /// <summary>
    /// pycocotools walks every integer point of every edge on the 5× grid and records, wherever consecutive points change
    /// column, a crossing: the column must be a pixel centre (x = 5c + 2) and the row, from the upper of the two points,
    /// is clamped to [0, height]. That walk costs the polygon's length, unbounded for vertices far outside the image.
    /// This one gives the same crossings in O(width + height) per edge:
    /// <list type="bullet">
    /// <item>The walk's column moves by at most one per point, so a stretch outside [0, 5·width] leaves and re-enters
    /// the band at the same column and makes no crossing (crossings need columns 2..5·width−2): points there are
    /// skipped.</item>
    /// <item>On a steep edge (one row per point) the stretches above row 2 or below row 5·height + 2 all clamp to the
    /// same pixel row, so their crossings follow from the columns at the stretch's ends alone.</item>
    /// </list>
    /// </summary>
    private sealed class OutlineWalk(int height, int width)
    {
        private readonly long _columnHigh = (long)Scale * width;
        private const long RowLow = 2;
        private readonly long _rowHigh = Math.Max(RowLow + 1, (long)Scale * height + 2);
        private bool _started;
        private long _column, _row;

        public List<uint> Crossings { get; } = [];

        public void AddEdge(long xs, long ys, long xe, long ye)
        {
            long dx = Math.Abs(xe - xs), dy = Math.Abs(ys - ye);
            // Points are made from the lower end (as pycocotools does, for the same rounding) but visited in edge order.
            bool flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
            if (flip) { (xs, xe) = (xe, xs); (ys, ye) = (ye, ys); }
            if (dx >= dy)
            {
                double s = (double)(ye - ys) / dx;
                long first = Math.Max(0, -xs), last = Math.Min(dx, _columnHigh - xs);
                for (long i = 0; i <= last - first; i++)
                {
                    long t = flip ? last - i : first + i;
                    Visit(t + xs, (long)(ys + s * t + .5));
                }
            }
            else
            {
                double s = (double)(xe - xs) / dy;
                long Column(long t) => (long)(xs + s * t + .5);
                // Ranges of t in increasing order: rows up to RowLow, rows in between, rows from _rowHigh on.
                long aboveEnd = Math.Min(dy, RowLow - ys), belowStart = Math.Max(0, _rowHigh - ys);
                long middleStart = Math.Max(0, aboveEnd + 1), middleEnd = Math.Min(dy, belowStart - 1);
                if (!flip)
                {
                    if (aboveEnd >= 0) ClampedStretch(Column(0), Column(aboveEnd), ys, ys + aboveEnd);
                    for (long t = middleStart; t <= middleEnd; t++) Visit(Column(t), ys + t);
                    if (belowStart <= dy) ClampedStretch(Column(belowStart), Column(dy), ys + belowStart, ys + dy);
                }
                else
                {
                    if (belowStart <= dy) ClampedStretch(Column(dy), Column(belowStart), ys + dy, ys + belowStart);
                    for (long t = middleEnd; t >= middleStart; t--) Visit(Column(t), ys + t);
                    if (aboveEnd >= 0) ClampedStretch(Column(aboveEnd), Column(0), ys + aboveEnd, ys);
                }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private void Visit(long column, long row)
        {
            if (_started && column != _column)
                AddCrossing(column < _column ? column : column - 1, Math.Min(row, _row));
            (_started, _column, _row) = (true, column, row);
        }

        /// <summary>
        /// A steep stretch from (firstColumn, firstRow) to (lastColumn, lastRow) whose rows all clamp alike: one crossing
        /// per column step, as the point-by-point walk would make.
        /// </summary>
        private void ClampedStretch(long firstColumn, long lastColumn, long firstRow, long lastRow)
        {
            Visit(firstColumn, firstRow);
            long low = Math.Max(Math.Min(firstColumn, lastColumn), 0), high = Math.Min(Math.Max(firstColumn, lastColumn) - 1, _columnHigh);
            for (long column = low; column <= high; column++)
                AddCrossing(column, firstRow);
            (_column, _row) = (lastColumn, lastRow);
        }

        private void AddCrossing(long column, long upperRow)
        {
            double xd = (column + .5) / Scale - .5;
            if (Math.Floor(xd) != xd || xd < 0 || xd > width - 1) return;
            double yd = (upperRow + .5) / Scale - .5;
            if (yd < 0) yd = 0;
            else if (yd > height) yd = height;
            yd = Math.Ceiling(yd);
            Crossings.Add((uint)((int)xd * height + (int)yd));
        }
    }
}
