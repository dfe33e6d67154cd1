using NUnit.Framework;
using Vim.Data.Datasets;
using Vim.Data.Transforms;

namespace Vim.Tests.Data;

/// <summary>
/// A grey image with one filled red rectangle, and the matching box, mask (instance 0, class 2) and
/// label map (class 2 inside, 0 outside): the fixture for geometric-consistency checks.
/// </summary>
public static class RectangleScene
{
    public static readonly (byte R, byte G, byte B) Red = (250, 10, 10);

    public static DataSample Create(int height = 120, int width = 160, int x0 = 30, int y0 = 20, int x1 = 90, int y1 = 70)
    {
        var image = new byte[height * width * 3];
        var mask = new byte[height * width];
        var labels = new ushort[height * width];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                int p = y * width + x;
                bool inside = x >= x0 && x < x1 && y >= y0 && y < y1;
                image[3 * p] = inside ? Red.R : (byte)60;
                image[3 * p + 1] = inside ? Red.G : (byte)60;
                image[3 * p + 2] = inside ? Red.B : (byte)60;
                mask[p] = inside ? (byte)1 : (byte)0;
                labels[p] = inside ? (ushort)2 : (ushort)0;
            }
        return new DataSample(1, "rect", image, height, width)
        {
            Boxes = [x0, y0, x1, y1],
            Labels = [2],
            IsCrowd = [false],
            AnnotationIds = [7],
            Masks = [new InstanceMask(height, width, mask)],
            LabelMap = labels,
        };
    }

    /// <summary>Tight [x0, y0, x1, y1) bounds of the non-zero pixels, or null when there are none.</summary>
    public static (int X0, int Y0, int X1, int Y1)? Bounds<T>(T[] pixels, int height, int width, Func<int, bool> selected)
    {
        int minX = int.MaxValue, minY = int.MaxValue, maxX = -1, maxY = -1;
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                if (!selected(y * width + x)) continue;
                minX = Math.Min(minX, x); maxX = Math.Max(maxX, x);
                minY = Math.Min(minY, y); maxY = Math.Max(maxY, y);
            }
        return maxX < 0 ? null : (minX, minY, maxX + 1, maxY + 1);
    }

    /// <summary>
    /// Runs both transforms on fresh scenes with the same seeds and asserts equal results (normalised image, labels, boxes);
    /// returns the label maps of the first, one per seed.
    /// </summary>
    public static List<ushort[]> AssertSameAugmentation(ISampleTransform first, ISampleTransform second, int seeds)
    {
        var labelMaps = new List<ushort[]>();
        for (int seed = 0; seed < seeds; seed++)
        {
            var a = Create();
            var b = Create();
            first.Apply(a, new Random(seed));
            second.Apply(b, new Random(seed));
            Assert.That(a.NormalizedImage, Is.EqualTo(b.NormalizedImage), $"seed {seed}");
            Assert.That(a.LabelMap, Is.EqualTo(b.LabelMap), $"seed {seed}");
            Assert.That(a.Boxes, Is.EqualTo(b.Boxes), $"seed {seed}");
            labelMaps.Add(a.LabelMap!);
        }
        return labelMaps;
    }

    public static bool IsStrongRed(byte[] rgb, int p) => rgb[3 * p] > 200 && rgb[3 * p + 1] < 50 && rgb[3 * p + 2] < 50;
}
