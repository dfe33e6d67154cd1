using NUnit.Framework;
using Vim.Data.Datasets;
using Vim.Data.Transforms;

namespace Vim.Tests.Data;

/// <summary>
/// detectron2 resizes with Pillow's BILINEAR, mmcv with OpenCV's INTER_LINEAR; the ViTDet pipelines must resample as
/// Pillow does. Expectations are worked by hand from Pillow's filter: output pixel o of an axis shrunk by s = in/out
/// (s ≥ 1) is centred at (o + ½)·s and weighs source pixel i by the triangle 1 − |i + ½ − centre| / s, normalised over
/// the pixels inside the image; the sum is rounded half up to 8 bits.
/// </summary>
public class PillowResizeTests
{
    /// <summary>
    /// [0, 100, 200, 255] to 2 pixels (s = 2). Pixel 0 (centre 1): sources 0, 1, 2 with weights 0.75, 0.75, 0.25,
    /// i.e. 3/7, 3/7, 1/7: (300 + 200)/7 = 71.4 → 71. Pixel 1 (centre 3): sources 1, 2, 3 weighted 1/7, 3/7, 3/7:
    /// (100 + 600 + 765)/7 = 209.3 → 209. OpenCV's INTER_LINEAR averages the two middle neighbours instead: 50 and 228.
    /// </summary>
    [Test]
    public void ShrinkingAveragesEverySourcePixelUnderTheWidenedTriangle()
    {
        byte[] row = [0, 100, 200, 255];
        Assert.That(ImageOps.ResizePillowBilinear(row, 1, 4, 1, 1, 2), Is.EqualTo(new byte[] { 71, 209 }));
        Assert.That(ImageOps.Resize(row, 1, 4, 1, 1, 2, OpenCvSharp.InterpolationFlags.Linear), Is.EqualTo(new byte[] { 50, 228 }));
        // The same along a column: the vertical pass.
        Assert.That(ImageOps.ResizePillowBilinear(row, 4, 1, 1, 2, 1), Is.EqualTo(new byte[] { 71, 209 }));
    }

    /// <summary>
    /// [0, 100] to 4 pixels (s = ½, triangle radius 1): centres 0.25, 0.75, 1.25, 1.75. The first and last see one pixel
    /// inside the image (0 and 100); the middle two weigh 0.75/0.25 and 0.25/0.75: 25 and 75.
    /// </summary>
    [Test]
    public void EnlargingInterpolatesBetweenPixelCentres()
    {
        Assert.That(ImageOps.ResizePillowBilinear([0, 100], 1, 2, 1, 1, 4), Is.EqualTo(new byte[] { 0, 25, 75, 100 }));
    }

    /// <summary>
    /// Random RGB images, shrunk and enlarged on each axis: the result is the horizontal pass then the vertical one, each
    /// rounded to bytes, computed here from the filter's definition over every source pixel, with each normalised weight
    /// rounded to Pillow's 22 fractional bits (exact ties such as ½·a + ½·b are then ties in both).
    /// </summary>
    [TestCase(37, 53, 11, 17)]
    [TestCase(20, 30, 47, 61)]
    [TestCase(16, 64, 40, 7)]
    public void TwoPassesMatchTheFilterDefinition(int h, int w, int newH, int newW)
    {
        var random = new Random(h * 1000 + w);
        var image = new byte[h * w * 3];
        random.NextBytes(image);
        var resized = ImageOps.ResizePillowBilinear(image, h, w, 3, newH, newW);
        var rows = ReferencePass(image, h, w, newW, horizontal: true);
        var expected = ReferencePass(rows, h, newW, newH, horizontal: false);
        Assert.That(resized, Is.EqualTo(expected));
    }

    private static byte[] ReferencePass(byte[] src, int h, int w, int outSize, bool horizontal)
    {
        int inSize = horizontal ? w : h;
        if (outSize == inSize) return src;
        int outH = horizontal ? h : outSize, outW = horizontal ? outSize : w;
        var dst = new byte[outH * outW * 3];
        double s = (double)inSize / outSize, width = Math.Max(s, 1);
        for (int y = 0; y < outH; y++)
            for (int x = 0; x < outW; x++)
            {
                int o = horizontal ? x : y;
                double centre = (o + 0.5) * s;
                var weights = new double[inSize];
                for (int i = 0; i < inSize; i++)
                {
                    // Pillow's window: the pixels whose index rounds into [centre - width, centre + width).
                    bool inWindow = i >= (int)Math.Max(centre - width + 0.5, 0) && i < (int)(centre + width + 0.5);
                    weights[i] = inWindow ? Math.Max(0, 1 - Math.Abs(i + 0.5 - centre) / width) : 0;
                }
                double total = weights.Sum();
                var sum = new double[3];
                for (int i = 0; i < inSize; i++)
                {
                    double weight = Math.Round(weights[i] / total * (1 << 22), MidpointRounding.AwayFromZero) / (1 << 22);
                    for (int c = 0; c < 3; c++)
                        sum[c] += weight * src[(horizontal ? y * w + i : i * w + x) * 3 + c];
                }
                for (int c = 0; c < 3; c++)
                    dst[(y * outW + x) * 3 + c] = (byte)Math.Clamp(Math.Floor(sum[c] + 0.5), 0, 255);
            }
        return dst;
    }

    /// <summary>
    /// A mask row [1, 0, 1] shrunk to 2 pixels (s = 1.5). Pillow-style resampling takes the pixel under each output
    /// centre, ⌊(j + ½)·1.5⌋ = 0, 2: [1, 1], where a polygon mask would be; mmcv's INTER_NEAREST takes ⌊j·1.5⌋ = 0, 1:
    /// [1, 0], half a pixel off the image.
    /// </summary>
    [TestCase(ImageResampling.PillowBilinear, new byte[] { 1, 1 })]
    [TestCase(ImageResampling.OpenCvBilinear, new byte[] { 1, 0 })]
    public void MasksFollowTheResamplingsPixelGrid(ImageResampling resampling, byte[] expected)
    {
        var sample = new DataSample(1, "row.png", new byte[3 * 3], 1, 3)
        {
            Boxes = [0, 0, 3, 1], Labels = [0], IsCrowd = [false], AnnotationIds = [1], Masks = [new InstanceMask(1, 3, [1, 0, 1])],
        };
        new Resize(new ResizeOptions { Scales = [[2, 1]], KeepRatio = false, Resampling = resampling }).Apply(sample, new Random(0));
        Assert.That(sample.Masks![0].Pixels, Is.EqualTo(expected));
    }

    /// <summary>
    /// Pillow's NEAREST takes source index ⌊½·s + j·s⌋ (s = in/out). A 333-row label column stretched to 1617 rows:
    /// output row 286 reads row ⌊286.5·333/1617⌋ = ⌊59.0009⌋ = 59 (OpenCV's INTER_NEAREST_EXACT reads 58 there), and
    /// every row j reads ⌊(j + ½)·333/1617⌋.
    /// </summary>
    [Test]
    public void LabelsAndMasksFollowPillowsNearestIndices()
    {
        var rows = Enumerable.Range(0, 333).Select(r => (ushort)r).ToArray();
        var stretched = ImageOps.ResizePillowNearest(rows, 333, 1, 1617, 1);
        Assert.That(stretched[286], Is.EqualTo(59));
        for (int j = 0; j < 1617; j++)
            Assert.That(stretched[j], Is.EqualTo((ushort)Math.Floor((j + 0.5) * 333 / 1617)), $"row {j}");
    }

    /// <summary>The ViTDet pipelines resample as detectron2 does; mmseg's as mmcv does.</summary>
    [Test]
    public void RecipesPickTheirLibrarysResampling()
    {
        Assert.That(TransformPipeline.DetectionLsjTraining(64).Steps.OfType<ResizeScale>().Single().Options.Resampling, Is.EqualTo(ImageResampling.PillowBilinear));
        Assert.That(TransformPipeline.DetectionTesting(64).Steps.OfType<Resize>().Single().Options.Resampling, Is.EqualTo(ImageResampling.PillowBilinear));
        Assert.That(TransformPipeline.SegmentationTraining().Steps.OfType<Resize>().Single().Options.Resampling, Is.EqualTo(ImageResampling.OpenCvBilinear));
        Assert.That(TransformPipeline.SegmentationTesting().Steps.OfType<Resize>().Single().Options.Resampling, Is.EqualTo(ImageResampling.OpenCvBilinear));
    }
}
