using NUnit.Framework;
using Vim.Segmentation.Losses;
using static TorchSharp.torch;

namespace Vim.Tests.Segmentation;

public class SegmentationLossesTests
{
    // One image, two classes, one row of pixels; logits are log-probabilities so softmax gives them back.
    private static Tensor Logits(params double[][] probabilitiesPerPixel)
    {
        var classes = probabilitiesPerPixel[0].Length;
        var data = new float[classes * probabilitiesPerPixel.Length];
        for (int p = 0; p < probabilitiesPerPixel.Length; p++)
            for (int c = 0; c < classes; c++) data[c * probabilitiesPerPixel.Length + p] = (float)Math.Log(probabilitiesPerPixel[p][c]);
        return tensor(data).reshape(1, classes, 1, probabilitiesPerPixel.Length);
    }

    private static Tensor Labels(params long[] labels) => tensor(labels).reshape(1, 1, labels.Length);

    [Test]
    public void CrossEntropyAveragesLikeMmseg()
    {
        using var scope = NewDisposeScope();
        var logits = Logits([0.25, 0.75], [0.5, 0.5]);
        var labels = Labels(1, 255);
        double pixel = -Math.Log(0.75);
        Assert.That(SegmentationLosses.CrossEntropy(logits, labels).item<float>(), Is.EqualTo(pixel / 2).Within(1e-6), "mean over all pixels, ignored = 0");
        Assert.That(SegmentationLosses.CrossEntropy(logits, labels, averageOverNonIgnored: true).item<float>(), Is.EqualTo(pixel).Within(1e-6));
        var weights = tensor(new float[] { 1, 2 });
        Assert.That(SegmentationLosses.CrossEntropy(logits, labels, classWeights: weights).item<float>(), Is.EqualTo(2 * pixel / 2).Within(1e-6));
    }

    [Test]
    public void CrossEntropyResizesLogitsToTheLabels()
    {
        using var scope = NewDisposeScope();
        // Constant logits upsample to the same constant, so the loss equals the 1×1 case.
        var logits = tensor(new float[] { 0f, (float)Math.Log(3) }).reshape(1, 2, 1, 1);
        var labels = ones(new long[] { 1, 4, 4 }, dtype: ScalarType.Int64);
        Assert.That(SegmentationLosses.CrossEntropy(logits, labels).item<float>(), Is.EqualTo(-Math.Log(0.75)).Within(1e-6));
    }

    [Test]
    public void DiceMatchesHandComputation()
    {
        using var scope = NewDisposeScope();
        // Pixel A: p = (0.25, 0.75), label 1; pixel B: p = (0.5, 0.5), label 0.
        // class 0: p = (.25, .5), t = (0, 1): 1 − (2·0.5 + 1)/(0.3125 + 1 + 1) = 1 − 2/2.3125
        // class 1: p = (.75, .5), t = (1, 0): 1 − (2·0.75 + 1)/(0.8125 + 1 + 1) = 1 − 2.5/2.8125
        double expected = ((1 - 2 / 2.3125) + (1 - 2.5 / 2.8125)) / 2;
        var loss = SegmentationLosses.Dice(Logits([0.25, 0.75], [0.5, 0.5]), Labels(1, 0));
        Assert.That(loss.item<float>(), Is.EqualTo(expected).Within(1e-6));
    }

    [Test]
    public void LovaszSoftmaxMatchesHandComputation()
    {
        using var scope = NewDisposeScope();
        // Class-1 probabilities (0.9, 0.4, 0.2), labels (1, 1, 0), plus one ignored pixel.
        // Class 1: errors (0.1, 0.6, 0.2) sorted 0.6 (fg), 0.2 (bg), 0.1 (fg); |gt| = 2;
        //   Jaccard losses after each: 1 − 1/2, 1 − 1/3, 1 − 0/3 → increments 0.5, 1/6, 1/3 → 0.3 + 0.2/6 + 0.1/3.
        // Class 0: errors (0.1, 0.6, 0.2) sorted 0.6 (bg), 0.2 (fg), 0.1 (bg); |gt| = 1;
        //   losses 1 − 1/2, 1, 1 → increments 0.5, 0.5, 0 → 0.3 + 0.1.
        double class1 = 0.6 * 0.5 + 0.2 * (1.0 / 6) + 0.1 * (1.0 / 3);
        double class0 = 0.6 * 0.5 + 0.2 * 0.5;
        var loss = SegmentationLosses.LovaszSoftmax(Logits([0.1, 0.9], [0.6, 0.4], [0.8, 0.2], [0.5, 0.5]), Labels(1, 1, 0, 255));
        Assert.That(loss.item<float>(), Is.EqualTo((class0 + class1) / 2).Within(1e-6));
    }

    [Test]
    public void PerfectPredictionsGiveZeroLovaszAndNearZeroDice()
    {
        using var scope = NewDisposeScope();
        var logits = Logits([1e-6, 1 - 1e-6], [1 - 1e-6, 1e-6]);
        Assert.That(SegmentationLosses.LovaszSoftmax(logits, Labels(1, 0)).item<float>(), Is.EqualTo(0).Within(1e-5));
        Assert.That(SegmentationLosses.Dice(logits, Labels(1, 0)).item<float>(), Is.EqualTo(0).Within(1e-5));
    }
}
