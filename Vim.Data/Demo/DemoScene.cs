using Vim.Data.Masks;

namespace Vim.Data.Demo;

/// <summary>
/// A synthetic scene: a textured background with shapes of five classes painted in order. Masks come
/// from our own polygon rasteriser, and the very same masks are painted, so annotations are exact.
/// Shapes may overlap, but a new shape is rejected if it would hide half or more of one already drawn.
/// </summary>
internal sealed class DemoScene
{
    public static readonly string[] ClassNames = ["circle", "rectangle", "triangle", "ellipse", "star"];

    private static readonly (int R, int G, int B)[] ClassColours =
        [(220, 45, 45), (45, 85, 225), (40, 185, 70), (235, 205, 40), (185, 55, 205)];

    private DemoScene(int height, int width, byte[] rgb, List<DemoObject> objects)
    {
        Height = height;
        Width = width;
        Rgb = rgb;
        Objects = objects;
    }

    public int Height { get; }
    public int Width { get; }
    public byte[] Rgb { get; }

    /// <summary>Bottom to top (a crowd region, when present, comes first).</summary>
    public List<DemoObject> Objects { get; }

    public static DemoScene Generate(Random random, int height, int width, bool empty, bool withCrowd)
    {
        var objects = new List<DemoObject>();
        if (!empty)
        {
            if (withCrowd) objects.Add(CrowdRegion(random, height, width));
            int wanted = random.Next(2, 7);
            for (int attempt = 0; attempt < wanted * 20 && objects.Count(o => !o.IsCrowd) < wanted; attempt++)
            {
                int cls = random.Next(ClassNames.Length);
                var polygon = Outline(random, cls, height, width);
                var mask = PolygonRasterizer.FromPolygon(polygon, height, width).Decode();
                if (mask.Count(p => p != 0) < 40) continue;
                if (!HidesTooMuch(objects, mask)) Place(objects, new DemoObject(cls, false, polygon, mask));
            }
        }
        return new DemoScene(height, width, Paint(random, height, width, objects), objects);
    }

    private static bool HidesTooMuch(List<DemoObject> objects, byte[] mask)
    {
        foreach (var o in objects)
        {
            int remaining = 0;
            for (int p = 0; p < mask.Length; p++) if (o.VisibleMask[p] != 0 && mask[p] == 0) remaining++;
            if (remaining * 2 < o.FullArea) return true;
        }
        return false;
    }

    private static void Place(List<DemoObject> objects, DemoObject added)
    {
        foreach (var o in objects)
            for (int p = 0; p < added.FullMask.Length; p++)
                if (added.FullMask[p] != 0) o.VisibleMask[p] = 0;
        objects.Add(added);
    }

    /// <summary>A cluster of small blobs of one class, annotated as one iscrowd region (as COCO does for crowds).</summary>
    private static DemoObject CrowdRegion(Random random, int height, int width)
    {
        int m = Math.Min(height, width);
        int cls = random.Next(ClassNames.Length);
        int rw = (int)(m * (0.25 + 0.15 * random.NextDouble())), rh = (int)(m * (0.2 + 0.15 * random.NextDouble()));
        int rx = random.Next(0, width - rw), ry = random.Next(0, height - rh);
        var mask = new byte[height * width];
        int blobs = random.Next(10, 17);
        for (int b = 0; b < blobs; b++)
        {
            double r = Math.Max(3, m * (0.015 + 0.02 * random.NextDouble()));
            double cx = rx + r + random.NextDouble() * Math.Max(1, rw - 2 * r), cy = ry + r + random.NextDouble() * Math.Max(1, rh - 2 * r);
            var blob = PolygonRasterizer.FromPolygon(RegularPolygon(cx, cy, r, r, 0, 16), height, width).Decode();
            for (int p = 0; p < mask.Length; p++) mask[p] |= blob[p];
        }
        return new DemoObject(cls, true, null, mask);
    }

    private static double[] Outline(Random random, int cls, int height, int width)
    {
        int m = Math.Min(height, width);
        double r = m * (0.06 + 0.14 * random.NextDouble());
        double cx = r + random.NextDouble() * (width - 2 * r), cy = r + random.NextDouble() * (height - 2 * r);
        double angle = random.NextDouble() * Math.PI;
        switch (cls)
        {
            case 0: return RegularPolygon(cx, cy, r, r, 0, 40);
            case 1:
            {
                double aspect = 0.5 + 0.5 * random.NextDouble();
                return RegularPolygon(cx, cy, r, r * aspect, angle, 4, Math.PI / 4);
            }
            case 2: return RegularPolygon(cx, cy, r, r, angle, 3);
            case 3: return RegularPolygon(cx, cy, r, r * (0.35 + 0.25 * random.NextDouble()), angle, 40);
            default:
            {
                var xy = new double[20];
                for (int k = 0; k < 10; k++)
                {
                    double radius = k % 2 == 0 ? r : r * 0.45, t = angle + k * Math.PI / 5;
                    xy[2 * k] = Math.Round(cx + radius * Math.Cos(t), 2);
                    xy[2 * k + 1] = Math.Round(cy + radius * Math.Sin(t), 2);
                }
                return xy;
            }
        }
    }

    /// <summary>n vertices on an ellipse with radii (rx, ry), rotated by <paramref name="rotation"/>.</summary>
    private static double[] RegularPolygon(double cx, double cy, double rx, double ry, double rotation, int n, double phase = 0)
    {
        var xy = new double[2 * n];
        double cos = Math.Cos(rotation), sin = Math.Sin(rotation);
        for (int k = 0; k < n; k++)
        {
            double t = phase + 2 * Math.PI * k / n;
            double ex = rx * Math.Cos(t), ey = ry * Math.Sin(t);
            // Rounded to 0.01 px to keep the json small; the rounded outline is the one rasterised and painted.
            xy[2 * k] = Math.Round(cx + ex * cos - ey * sin, 2);
            xy[2 * k + 1] = Math.Round(cy + ex * sin + ey * cos, 2);
        }
        return xy;
    }

    private static byte[] Paint(Random random, int height, int width, List<DemoObject> objects)
    {
        var rgb = new byte[height * width * 3];
        // Background: a muted two-colour gradient, a faint wave texture and pixel noise.
        var c1 = MutedColour(random);
        var c2 = MutedColour(random);
        double angle = random.NextDouble() * 2 * Math.PI, fx = 0.05 + 0.2 * random.NextDouble(), fy = 0.05 + 0.2 * random.NextDouble();
        double phase = random.NextDouble() * 2 * Math.PI, norm = Math.Abs(Math.Cos(angle)) * width + Math.Abs(Math.Sin(angle)) * height;
        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                double t = Math.Clamp(((x - width / 2.0) * Math.Cos(angle) + (y - height / 2.0) * Math.Sin(angle)) / norm + 0.5, 0, 1);
                double wave = 12 * Math.Sin(fx * x + fy * y + phase);
                int p = 3 * (y * width + x);
                rgb[p] = Clamp(c1.R + (c2.R - c1.R) * t + wave + Noise(random, 14));
                rgb[p + 1] = Clamp(c1.G + (c2.G - c1.G) * t + wave + Noise(random, 14));
                rgb[p + 2] = Clamp(c1.B + (c2.B - c1.B) * t + wave + Noise(random, 14));
            }
        }
        foreach (var o in objects)
        {
            var (r, g, b) = ClassColours[o.ClassIndex];
            int jr = random.Next(-20, 21), jg = random.Next(-20, 21), jb = random.Next(-20, 21);
            for (int p = 0; p < o.FullMask.Length; p++)
            {
                if (o.FullMask[p] == 0) continue;
                rgb[3 * p] = Clamp(r + jr + Noise(random, 10));
                rgb[3 * p + 1] = Clamp(g + jg + Noise(random, 10));
                rgb[3 * p + 2] = Clamp(b + jb + Noise(random, 10));
            }
        }
        return rgb;
    }

    /// <summary>Greyish colours, so the saturated object colours stand out without being trivially separable by brightness.</summary>
    private static (int R, int G, int B) MutedColour(Random random)
    {
        int grey = random.Next(60, 180);
        return (grey + random.Next(-25, 26), grey + random.Next(-25, 26), grey + random.Next(-25, 26));
    }

    private static double Noise(Random random, int amplitude) => (random.NextDouble() * 2 - 1) * amplitude;

    private static byte Clamp(double v) => (byte)Math.Clamp((int)Math.Round(v), 0, 255);
}
