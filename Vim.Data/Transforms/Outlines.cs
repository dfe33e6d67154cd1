namespace Vim.Data.Transforms;

/// <summary>
/// Geometry on polygon outlines (x0, y0, x1, y1, … in pixels), as detectron2 transforms PolygonMasks: each function
/// returns new arrays and passes null (an RLE instance: no outlines) through.
/// </summary>
public static class Outlines
{
    public static IReadOnlyList<double[]>? Scale(IReadOnlyList<double[]>? outlines, double sx, double sy) =>
        outlines?.Select(xy =>
        {
            var scaled = new double[xy.Length];
            for (int i = 0; i < xy.Length; i += 2) { scaled[i] = xy[i] * sx; scaled[i + 1] = xy[i + 1] * sy; }
            return scaled;
        }).ToList();

    /// <summary>Mirrors across the vertical centre line of an image <paramref name="width"/> wide (x → width − x).</summary>
    public static IReadOnlyList<double[]>? FlipHorizontal(IReadOnlyList<double[]>? outlines, int width) =>
        outlines?.Select(xy =>
        {
            var flipped = (double[])xy.Clone();
            for (int i = 0; i < xy.Length; i += 2) flipped[i] = width - xy[i];
            return flipped;
        }).ToList();

    /// <summary>
    /// Maps every point through the 2×3 affine <paramref name="matrix"/> (row-major; x' = m0·x + m1·y + m2, y' = m3·x + m4·y + m5),
    /// as mmdet's PolygonMasks.rotate moves polygons.
    /// </summary>
    public static IReadOnlyList<double[]>? Affine(IReadOnlyList<double[]>? outlines, IReadOnlyList<double> matrix) =>
        outlines?.Select(xy =>
        {
            var moved = new double[xy.Length];
            for (int i = 0; i + 1 < xy.Length; i += 2)
            {
                moved[i] = matrix[0] * xy[i] + matrix[1] * xy[i + 1] + matrix[2];
                moved[i + 1] = matrix[3] * xy[i] + matrix[4] * xy[i + 1] + matrix[5];
            }
            return moved;
        }).ToList();

    /// <summary>
    /// The part of each outline inside the window [x0, x0 + width] × [y0, y0 + height], in the window's coordinates
    /// (detectron2 intersects each polygon with the crop box). The window is convex, so clipping against its four edges
    /// in turn (Sutherland–Hodgman) gives the intersection's area exactly; where an outline leaves and re-enters, the
    /// pieces stay joined by edges along the border, which enclose nothing. Outlines left with no area are dropped.
    /// </summary>
    public static IReadOnlyList<double[]> Crop(IReadOnlyList<double[]> outlines, double x0, double y0, double width, double height)
    {
        var result = new List<double[]>(outlines.Count);
        foreach (var xy in outlines)
        {
            var points = new List<(double X, double Y)>(xy.Length / 2);
            for (int i = 0; i + 1 < xy.Length; i += 2) points.Add((xy[i] - x0, xy[i + 1] - y0));
            points = ClipAgainst(points, alongX: true, 0, keepAbove: true);
            points = ClipAgainst(points, alongX: true, width, keepAbove: false);
            points = ClipAgainst(points, alongX: false, 0, keepAbove: true);
            points = ClipAgainst(points, alongX: false, height, keepAbove: false);
            var flat = points.SelectMany(p => new[] { p.X, p.Y }).ToArray();
            // What shapely returns as a line or a point (an outline touching the window from outside) is no polygon.
            if (points.Count >= 3 && TwiceArea(flat) != 0) result.Add(flat);
        }
        return result;
    }

    /// <summary>The area the outlines enclose, each outline's counted whole and added (mmdet's PolygonMasks.areas).</summary>
    public static double Area(IReadOnlyList<double[]> outlines) => outlines.Sum(xy => Math.Abs(TwiceArea(xy))) / 2;

    /// <summary>Twice the signed area (shoelace) of an outline x0, y0, x1, y1, ….</summary>
    private static double TwiceArea(double[] xy)
    {
        double sum = 0;
        int n = xy.Length / 2;
        for (int i = 0, j = n - 1; i < n; j = i++) sum += xy[2 * j] * xy[2 * i + 1] - xy[2 * i] * xy[2 * j + 1];
        return sum;
    }

    /// <summary>[x0, y0, x1, y1] around every point of every outline (detectron2's PolygonMasks.get_bounding_boxes); null when there is none.</summary>
    public static float[]? Extent(IReadOnlyList<double[]> outlines)
    {
        double minX = double.PositiveInfinity, minY = double.PositiveInfinity, maxX = double.NegativeInfinity, maxY = double.NegativeInfinity;
        foreach (var xy in outlines)
            for (int i = 0; i + 1 < xy.Length; i += 2)
            {
                minX = Math.Min(minX, xy[i]); maxX = Math.Max(maxX, xy[i]);
                minY = Math.Min(minY, xy[i + 1]); maxY = Math.Max(maxY, xy[i + 1]);
            }
        return double.IsInfinity(minX) ? null : [(float)minX, (float)minY, (float)maxX, (float)maxY];
    }

    /// <summary>
    /// One Sutherland–Hodgman pass: keeps the side of the line x = <paramref name="edge"/> (or y = edge) named by
    /// <paramref name="keepAbove"/>; crossings land exactly on the line.
    /// </summary>
    private static List<(double X, double Y)> ClipAgainst(List<(double X, double Y)> points, bool alongX, double edge, bool keepAbove)
    {
        var kept = new List<(double X, double Y)>(points.Count + 4);
        if (points.Count == 0) return kept;
        double Coordinate((double X, double Y) p) => alongX ? p.X : p.Y;
        bool Inside((double X, double Y) p) => keepAbove ? Coordinate(p) >= edge : Coordinate(p) <= edge;
        var previous = points[^1];
        foreach (var current in points)
        {
            bool currentIn = Inside(current), previousIn = Inside(previous);
            if (currentIn != previousIn)
            {
                double t = (edge - Coordinate(previous)) / (Coordinate(current) - Coordinate(previous));
                kept.Add(alongX ? (edge, previous.Y + t * (current.Y - previous.Y)) : (previous.X + t * (current.X - previous.X), edge));
            }
            if (currentIn) kept.Add(current);
            previous = current;
        }
        return kept;
    }
}
