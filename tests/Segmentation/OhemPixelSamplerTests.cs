using NUnit.Framework;
using Vim.Core;
using Vim.Segmentation.Losses;
using static TorchSharp.torch;

namespace Vim.Tests.Segmentation;

/// <summary>
/// mmseg's OHEMPixelSampler rules on hand-made two-class probability maps (one row of pixels per image), each kept mask
/// counted by hand from the rule: with thresh, keep p(true class) &lt; max(thresh, the ascending probabilities at index
/// min(min_kept × B, n − 1)); without, the min_kept × B labelled pixels of largest cross-entropy.
/// </summary>
public class OhemPixelSamplerTests
{
    private const long Ignored = 255;

    /// <summary>
    /// Logits (B, 2, 1, W) whose softmax gives each pixel probability <c>truth</c> for its label (the other class gets the
    /// rest); an ignored pixel gets 0.5 / 0.5.
    /// </summary>
    private static (Tensor Logits, Tensor Labels) Map(params (double Truth, long Label)[][] images)
    {
        int width = images[0].Length;
        var logits = new double[images.Length * 2 * width];
        var labels = new long[images.Length * width];
        for (int b = 0; b < images.Length; b++)
            for (int x = 0; x < width; x++)
            {
                var (truth, label) = images[b][x];
                double p1 = label == Ignored ? 0.5 : label == 1 ? truth : 1 - truth;
                logits[(b * 2 + 0) * width + x] = Math.Log(1 - p1);
                logits[(b * 2 + 1) * width + x] = Math.Log(p1);
                labels[b * width + x] = label;
            }
        return (tensor(logits.Select(v => (float)v).ToArray()).reshape(images.Length, 2, 1, width), tensor(labels).reshape(images.Length, 1, width));
    }

    /// <summary>Float64 logits (2 images, 3 classes, 4 × 5 pixels) and labels drawn from <paramref name="seed"/>, two pixels ignored.</summary>
    private static (Tensor Logits, Tensor Labels) RandomMap(int seed, (long B, long Y, long X) ignored, (long B, long Y, long X) alsoIgnored)
    {
        manual_seed(seed);
        var logits = randn(2, 3, 4, 5, dtype: ScalarType.Float64);
        var labels = randint(0, 3, [2, 4, 5], dtype: ScalarType.Int64);
        foreach (var (b, y, x) in new[] { ignored, alsoIgnored }) labels[b, y, x] = tensor(Ignored);
        return (logits, labels);
    }

    private static float[] Kept(OhemPixelSampler sampler, Tensor logits, Tensor labels) =>
        sampler.Weights(logits, labels, () => SegmentationLosses.CrossEntropyPerPixel(logits, labels, Ignored)).data<float>().ToArray();

    /// <summary>
    /// Two images, min_kept 2 (K = 4), labelled probabilities 0.9 0.3 0.6 | 0.2 0.6 0.8 0.5 and one ignored pixel: sorted
    /// 0.2 0.3 0.5 0.6 0.6 0.8 0.9, the floor is index 4, the second 0.6. Thresh 0.55 gives the threshold 0.6, which the tied
    /// 0.6 pixels do not pass: three kept, fewer than K. Thresh 0.85 lies above the floor: all below it are kept.
    /// </summary>
    [Test]
    public void WithAThresholdPixelsBelowTheThresholdOrTheFloorAreKeptAndTiesAtTheFloorAreNot()
    {
        using var scope = NewDisposeScope();
        var (logits, labels) = Map(
            [(0.9, 1), (0.3, 0), (0.6, 1), (0.5, Ignored)],
            [(0.2, 1), (0.6, 1), (0.8, 0), (0.5, 0)]);
        Assert.That(Kept(new OhemPixelSampler(0.55, 2, Ignored), logits, labels), Is.EqualTo(new float[] { 0, 1, 0, 0, 1, 0, 0, 1 }));
        Assert.That(Kept(new OhemPixelSampler(0.85, 2, Ignored), logits, labels), Is.EqualTo(new float[] { 0, 1, 1, 0, 1, 1, 1, 1 }));
        // min_kept 3 (K = 6 of 7): the floor is index 6, the largest, 0.9; all six below it are kept, 0.6 and 0.8 above thresh.
        Assert.That(Kept(new OhemPixelSampler(0.55, 3, Ignored), logits, labels), Is.EqualTo(new float[] { 0, 1, 1, 0, 1, 1, 1, 1 }));
    }

    /// <summary>
    /// Three labelled pixels (0.3 0.9 0.5) and min_kept 10: the floor is the largest probability, 0.9, so mmseg keeps
    /// everything below it and drops the most confident pixel unless the threshold lies above it. Without a threshold every
    /// labelled pixel is kept.
    /// </summary>
    [Test]
    public void WithFewerLabelledPixelsThanMinKeptOnlyTheMostConfidentCanBeDropped()
    {
        using var scope = NewDisposeScope();
        var (logits, labels) = Map([(0.3, 0), (0.9, 1), (0.5, Ignored), (0.5, 1)]);
        Assert.That(Kept(new OhemPixelSampler(0.7, 10, Ignored), logits, labels), Is.EqualTo(new float[] { 1, 0, 0, 1 }));
        Assert.That(Kept(new OhemPixelSampler(0.95, 10, Ignored), logits, labels), Is.EqualTo(new float[] { 1, 1, 0, 1 }));
        Assert.That(Kept(new OhemPixelSampler(null, 10, Ignored), logits, labels), Is.EqualTo(new float[] { 1, 1, 0, 1 }));
    }

    /// <summary>
    /// Without a threshold the K = min_kept × B hardest labelled pixels of the whole batch are kept, wherever they are: here
    /// 0.1, 0.15, 0.2, 0.3 (three in the first image, one in the second). An ignored pixel is never kept, however wrong the
    /// prediction there. Between equal losses at the cut the earlier pixel wins.
    /// </summary>
    [Test]
    public void WithoutAThresholdTheHardestPixelsOfTheBatchAreKeptAndTiesGoToTheEarlierPixel()
    {
        using var scope = NewDisposeScope();
        var (logits, labels) = Map(
            [(0.1, 0), (0.2, 1), (0.3, 0), (0.5, Ignored)],
            [(0.7, 1), (0.8, 0), (0.15, 1), (0.01, Ignored)]);
        // The ignored pixels' logits are made extreme: a sampler looking at them would rank them first.
        logits[1, 0, 0, 3] = tensor(20f);
        Assert.That(Kept(new OhemPixelSampler(null, 2, Ignored), logits, labels), Is.EqualTo(new float[] { 1, 1, 1, 0, 0, 0, 1, 0 }));

        // Probabilities 0.3, 0.6, 0.3, 0.9, ignored, 0.2: the hardest is 0.2, then the tied 0.3s in pixel order.
        var (tied, tiedLabels) = Map([(0.3, 0), (0.6, 0), (0.3, 0), (0.9, 0), (0.5, Ignored), (0.2, 0)]);
        Assert.That(Kept(new OhemPixelSampler(null, 2, Ignored), tied, tiedLabels), Is.EqualTo(new float[] { 1, 0, 0, 0, 0, 1 }));
        Assert.That(Kept(new OhemPixelSampler(null, 3, Ignored), tied, tiedLabels), Is.EqualTo(new float[] { 1, 0, 1, 0, 0, 1 }));
    }

    [Test]
    public void ABatchWithoutLabelledPixelsKeepsNothing()
    {
        using var scope = NewDisposeScope();
        var (logits, labels) = Map([(0.5, Ignored), (0.5, Ignored)], [(0.5, Ignored), (0.5, Ignored)]);
        Assert.That(Kept(new OhemPixelSampler(0.7, 2, Ignored), logits, labels), Is.All.Zero);
        Assert.That(Kept(new OhemPixelSampler(null, 2, Ignored), logits, labels), Is.All.Zero);
    }

    /// <summary>
    /// The sampled cross-entropy is mmseg's weight_reduce_loss: each pixel's loss times its weight, divided by every pixel
    /// (avg_non_ignore false) or by the labelled pixels (true), not by the kept ones. Pixels: p = 0.25 kept, 0.5 not kept
    /// (weight 0), one ignored.
    /// </summary>
    [Test]
    public void TheSampledCrossEntropyDividesByThePixelsAsMmsegDoes()
    {
        using var scope = NewDisposeScope();
        var (logits, labels) = Map([(0.25, 1), (0.5, 0), (0.5, Ignored)]);
        var weights = tensor(new float[] { 1, 0, 0 }).reshape(1, 1, 3);
        Assert.That(SegmentationLosses.CrossEntropy(logits, labels, Ignored, pixelWeights: weights).item<float>(), Is.EqualTo(-Math.Log(0.25) / 3).Within(1e-6));
        Assert.That(SegmentationLosses.CrossEntropy(logits, labels, Ignored, averageOverNonIgnored: true, pixelWeights: weights).item<float>(),
            Is.EqualTo(-Math.Log(0.25) / 2).Within(1e-6));
    }

    /// <summary>
    /// In float64, the gradient of the OHEM-weighted cross-entropy with respect to the logits equals that of a cross-entropy
    /// computed by hand over the kept pixels alone (the others relabelled as ignored, the divisor unchanged), for both
    /// averages; the dropped and ignored pixels get exactly zero gradient.
    /// </summary>
    [Test]
    public void TheSampledCrossEntropysGradientIsTheHandMaskedCrossEntropys()
    {
        using var scope = NewDisposeScope();
        var (logits, labels) = RandomMap(11, (0, 1, 2), (1, 3, 0));
        var sampler = new OhemPixelSampler(null, 6, Ignored);
        var kept = sampler.Weights(logits, labels, () => SegmentationLosses.CrossEntropyPerPixel(logits, labels, Ignored)).to_type(ScalarType.Float64);
        Assert.That(kept.sum().item<double>(), Is.EqualTo(12), "min_kept 6 × 2 images");
        long labelled = labels.ne(Ignored).sum().item<long>();
        foreach (bool overLabelled in new[] { false, true })
        {
            var sampledInput = logits.detach().requires_grad_();
            SegmentationLosses.CrossEntropy(sampledInput, labels, Ignored, averageOverNonIgnored: overLabelled, pixelWeights: kept).backward();

            var handInput = logits.detach().requires_grad_();
            var maskedLabels = labels.where(kept.gt(0), full_like(labels, Ignored));
            var logProbabilities = handInput.log_softmax(1);
            var truth = logProbabilities.gather(1, maskedLabels.where(maskedLabels.ne(Ignored), zeros_like(maskedLabels)).unsqueeze(1)).squeeze(1);
            var total = -(truth * maskedLabels.ne(Ignored).to_type(ScalarType.Float64)).sum();
            (total / (overLabelled ? labelled : labels.numel())).backward();

            Assert.That(sampledInput.grad!.allclose(handInput.grad!, rtol: 1e-12, atol: 1e-15), Is.True, $"averageOverNonIgnored {overLabelled}");
            var dropped = kept.eq(0).unsqueeze(1).expand_as(logits);
            Assert.That(sampledInput.grad!.masked_select(dropped).abs().max().item<double>(), Is.Zero);
            Assert.That(sampledInput.grad!.abs().sum().item<double>(), Is.GreaterThan(0));
        }
    }

    /// <summary>
    /// The decode head's sampled loss (<see cref="OhemPixelSampler.CrossEntropy"/>), which computes each pixel's loss once
    /// for the ranking and the loss, against the rule done by hand in float64 from the logits: a pixel's loss is
    /// w_c · (log Σ exp x − x_c) at its label c, class weights (3, 0.5, 1); pixels are ranked by 2 × that (the loss's
    /// weight), the min_kept × B = 6 largest kept; the loss is Σ kept / 40 pixels (or / 38 labelled), its gradient
    /// w_c (softmax − onehot) / divisor at a kept pixel and 0 elsewhere. The class weights change which pixels are kept, so
    /// the ranking must read them. The loss and its gradient also equal, to the bit, the sampler's weights fed to a second
    /// cross-entropy (the two computations this replaces).
    /// </summary>
    [Test]
    public void TheSampledCrossEntropyRanksAndAveragesOneComputationOfThePixelLosses()
    {
        using var scope = NewDisposeScope();
        var (logits, labels) = RandomMap(5, (0, 0, 0), (1, 2, 3));
        double[] classWeights = [3, 0.5, 1];
        const double lossWeight = 2;
        var sampler = new OhemPixelSampler(null, 3, Ignored);

        var x = logits.data<double>().ToArray();
        var y = labels.data<long>().ToArray();
        const int B = 2, C = 3, P = 20;
        int At(int b, int c, int p) => (b * C + c) * P + p;
        var loss = new double[B * P];
        var softmax = new double[B * C * P];
        for (int b = 0; b < B; b++)
            for (int p = 0; p < P; p++)
            {
                double max = Enumerable.Range(0, C).Max(c => x[At(b, c, p)]);
                double sum = Enumerable.Range(0, C).Sum(c => Math.Exp(x[At(b, c, p)] - max));
                for (int c = 0; c < C; c++) softmax[At(b, c, p)] = Math.Exp(x[At(b, c, p)] - max) / sum;
                long label = y[b * P + p];
                if (label != Ignored) loss[b * P + p] = classWeights[label] * (max + Math.Log(sum) - x[At(b, (int)label, p)]);
            }
        int[] Hardest(Func<int, double> hardness) => Enumerable.Range(0, B * P).Where(i => y[i] != Ignored)
            .OrderByDescending(hardness).ThenBy(i => i).Take(6).Order().ToArray();
        var kept = Hardest(i => lossWeight * loss[i]);
        Assert.That(kept, Is.Not.EqualTo(Hardest(i => loss[i] / classWeights[y[i]])), "unweighted losses would keep other pixels");

        var weights = tensor(classWeights);
        foreach (bool overLabelled in new[] { false, true })
        {
            double divisor = overLabelled ? 38 : 40;
            var input = logits.detach().requires_grad_();
            var sampled = sampler.CrossEntropy(input, labels, weights, lossWeight, overLabelled);
            sampled.backward();
            Assert.That(sampled.item<double>(), Is.EqualTo(kept.Sum(i => loss[i]) / divisor).Within(1e-12), $"averageOverNonIgnored {overLabelled}");
            var gradient = input.grad!.data<double>().ToArray();
            for (int b = 0; b < B; b++)
                for (int p = 0; p < P; p++)
                    for (int c = 0; c < C; c++)
                    {
                        int i = b * P + p;
                        double expected = kept.Contains(i) ? classWeights[y[i]] * (softmax[At(b, c, p)] - (c == y[i] ? 1 : 0)) / divisor : 0;
                        Assert.That(gradient[At(b, c, p)], Is.EqualTo(expected).Within(1e-14), $"d/dx[{b}, {c}, {p}]");
                    }

            var twice = logits.detach().requires_grad_();
            var pixelWeights = sampler.Weights(twice, labels, () => lossWeight * SegmentationLosses.CrossEntropyPerPixel(twice, labels, Ignored, weights));
            var separate = SegmentationLosses.CrossEntropy(twice, labels, Ignored, weights, overLabelled, pixelWeights);
            separate.backward();
            Assert.That(sampled.item<double>(), Is.EqualTo(separate.item<double>()), "the same value as two computations");
            Assert.That(input.grad!.data<double>().ToArray(), Is.EqualTo(twice.grad!.data<double>().ToArray()), "the same gradient as two computations");
        }
    }

    [TestCase(null, 1, "model.seg_head.sampler.min_kept must be more than 1")]
    [TestCase(1.5, 100, "model.seg_head.sampler.thresh must be a probability in [0, 1] or null, got 1.5")]
    [TestCase(-0.1, 100, "model.seg_head.sampler.thresh must be a probability in [0, 1] or null, got -0.1")]
    public void UnusableSettingsNameTheirKey(double? threshold, int minKept, string expected)
    {
        var error = Assert.Throws<VimException>(() => _ = new OhemPixelSampler(threshold, minKept, Ignored))!;
        Assert.That(error.Message, Does.StartWith(expected));
    }
}
