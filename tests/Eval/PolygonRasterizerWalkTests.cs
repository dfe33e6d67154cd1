using NUnit.Framework;
using Vim.Data.Masks;

namespace Vim.Tests.Eval;

/// <summary>
/// The rasteriser's bounded walk against the point-by-point walk pycocotools' frPoly does (kept here as the oracle,
/// in longs), on random polygons inside, across and far outside the image; and vertices no grid can hold.
/// </summary>
public class PolygonRasterizerWalkTests
{
    /// <summary>frPoly step by step: every integer point of every edge on the 5× grid, then the column crossings.</summary>
    private static uint[] DenseWalkCounts(double[] xy, int height, int width)
    {
        const double scale = 5;
        int k = xy.Length / 2;
        var px = new long[k + 1];
        var py = new long[k + 1];
        for (int j = 0; j < k; j++) px[j] = (long)(scale * xy[2 * j] + .5);
        for (int j = 0; j < k; j++) py[j] = (long)(scale * xy[2 * j + 1] + .5);
        if (k > 0) { px[k] = px[0]; py[k] = py[0]; }
        var u = new List<long>();
        var v = new List<long>();
        for (int j = 0; j < k; j++)
        {
            long xs = px[j], xe = px[j + 1], ys = py[j], ye = py[j + 1];
            long dx = Math.Abs(xe - xs), dy = Math.Abs(ys - ye);
            bool flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
            if (flip) { (xs, xe) = (xe, xs); (ys, ye) = (ye, ys); }
            double s = dx >= dy ? (double)(ye - ys) / dx : (double)(xe - xs) / dy;
            long n = dx >= dy ? dx : dy;
            for (long d = 0; d <= n; d++)
            {
                long t = flip ? n - d : d;
                if (dx >= dy) { u.Add(t + xs); v.Add((long)(ys + s * t + .5)); }
                else { v.Add(t + ys); u.Add((long)(xs + s * t + .5)); }
            }
        }
        var boundary = new List<uint>();
        for (int j = 1; j < u.Count; j++)
        {
            if (u[j] == u[j - 1]) continue;
            double xd = u[j] < u[j - 1] ? u[j] : u[j] - 1;
            xd = (xd + .5) / scale - .5;
            if (Math.Floor(xd) != xd || xd < 0 || xd > width - 1) continue;
            double yd = v[j] < v[j - 1] ? v[j] : v[j - 1];
            yd = (yd + .5) / scale - .5;
            yd = Math.Ceiling(Math.Clamp(yd, 0, height));
            boundary.Add((uint)((int)xd * height + (int)yd));
        }
        boundary.Add((uint)(height * width));
        boundary.Sort();
        var a = boundary.ToArray();
        uint prev = 0;
        for (int j = 0; j < a.Length; j++) { uint t = a[j]; a[j] -= prev; prev = t; }
        var b = new List<uint> { a[0] };
        for (int i = 1; i < a.Length;)
        {
            if (a[i] > 0) b.Add(a[i++]);
            else if (++i < a.Length) b[^1] += a[i++];
        }
        return [.. b];
    }

    [TestCase(1, 1.5, 40, 30)]
    [TestCase(2, 4.0, 40, 30)]
    [TestCase(3, 60.0, 17, 23)]
    [TestCase(4, 3000.0, 8, 5)]
    public void BoundedWalkMakesTheSameMaskAsThePointByPointWalk(int seed, double spread, int width, int height)
    {
        // Vertices spread `spread` image sizes around the image: inside, straddling its border, or far outside it;
        // half of them on the 0.2-pixel grid, where rounding ties and axis-parallel edges are common.
        var random = new Random(seed);
        for (var polygon = 0; polygon < 400; polygon++)
        {
            var k = random.Next(1, 9);
            var xy = new double[2 * k];
            var snapped = random.Next(2) == 0;
            for (var i = 0; i < xy.Length; i++)
            {
                var size = i % 2 == 0 ? width : height;
                var value = size / 2.0 + (random.NextDouble() - 0.5) * size * spread;
                xy[i] = snapped ? Math.Round(value * 5) / 5 : value;
            }
            var expected = DenseWalkCounts(xy, height, width);
            var actual = PolygonRasterizer.FromPolygon(xy, height, width).Counts.ToArray();
            Assert.That(actual, Is.EqualTo(expected), $"polygon [{string.Join(", ", xy)}] in {width}x{height}");
        }
    }

    [TestCase(1e12)]
    [TestCase(1e300)]
    [TestCase(double.MaxValue)]
    public void SquareFarBeyondTheImageCoversItWithoutWalkingItsOutline(double far)
    {
        // A walk point by point would take ~10^13 steps per edge (or overflow its grid); the image lies inside the square.
        var rle = PolygonRasterizer.FromPolygon([-far, -far, far, -far, far, far, -far, far], 30, 40);
        Assert.That(rle.Area, Is.EqualTo(30 * 40));
        // A triangle whose far vertex is off to the right: the mask is the part of the image below its top edge and
        // above its bottom edge, which become horizontal within the image: rows 10..19 over every column.
        var wedge = PolygonRasterizer.FromPolygon([-0.5, 9.5, far, 9.5, -0.5, 19.5], 30, 40);
        Assert.That(wedge.Area, Is.EqualTo(10 * 40).Within(40), "a thin wedge: the bottom edge climbs by far less than a pixel");
    }
}
