using NUnit.Framework;
using TorchSharp;
using Vim.Detection.Modeling;
using static TorchSharp.torch;

namespace Vim.Tests.Detection;

public class RoiLossTests
{
    [Test]
    public void ScaleGradientIsIdentityForwardAndScalesTheNumericalGradient()
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(1);
        var x = randn(new long[] { 3, 4 }, ScalarType.Float64, generator: gen).requires_grad_(true);
        var w = randn(new long[] { 3, 4 }, ScalarType.Float64, generator: gen);
        var y = ScaleGradient.Apply(x, 0.25);
        Assert.That(y.eq(x).all().item<bool>(), Is.True);
        (y.sin() * w).sum().backward();
        // Finite differences of f(x) = Σ w·sin(x) (the op is the identity in value).
        var xv = x.detach().clone();
        var numeric = zeros_like(xv);
        double eps = 1e-6;
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 4; j++)
            {
                var plus = xv.clone();
                plus[i, j] += eps;
                var minus = xv.clone();
                minus[i, j] -= eps;
                numeric[i, j] = ((plus.sin() * w).sum() - (minus.sin() * w).sum()) / (2 * eps);
            }
        Assert.That((x.grad! - 0.25 * numeric).abs().max().ToDouble(), Is.LessThan(1e-8));
        Assert.Throws<ArgumentException>(() => ScaleGradient.Apply(x, double.NaN));
    }

    [Test]
    public void BoxLossesMatchHandComputation()
    {
        using var scope = NewDisposeScope();
        var predictor = new FastRcnnOutputLayers(4, 2, new Box2BoxTransform(10, 10, 5, 5));
        var scores = tensor(new[] { 1f, 0, -1, 0, 0, 2, 0.5f, 1.5f, 0 }).view(3, 3);
        var classes = tensor(new long[] { 0, 2, 1 }); // foreground, background (K = 2), foreground
        var proposals = tensor(new[] { 0f, 0, 10, 10, 5, 5, 9, 9, 0, 0, 20, 20 }).view(3, 4);
        var gtBoxes = tensor(new[] { 1f, 2, 11, 14, 0, 0, 1, 1, 0, 0, 20, 20 }).view(3, 4);
        var deltas = tensor(new[] { 0.5f, 3, 0.2f, 0, 9, 9, 9, 9, 0.1f, 0, 0, 0 }).view(3, 4);
        var (cls, box) = predictor.Losses(scores, deltas, proposals, classes, gtBoxes);
        double Ce(double[] logits, int target) => Math.Log(logits.Sum(Math.Exp)) - logits[target];
        double expectedCls = (Ce(new[] { 1.0, 0, -1 }, 0) + Ce(new[] { 0.0, 0, 2 }, 2) + Ce(new[] { 0.5, 1.5, 0 }, 1)) / 3;
        // Row 0 targets: (10·0.1, 10·0.3, 5·0, 5·ln 1.2); row 2 targets 0; row 1 is background (ignored).
        double expectedBox = (0.5 + 0 + 0.2 + 5 * Math.Log(1.2) + 0.1) / 3;
        Assert.That(cls.ToDouble(), Is.EqualTo(expectedCls).Within(1e-6));
        Assert.That(box.ToDouble(), Is.EqualTo(expectedBox).Within(1e-5));

        // No RoI: zero losses that still backpropagate.
        var emptyScores = zeros(0, 3).requires_grad_(true);
        var emptyDeltas = zeros(0, 4).requires_grad_(true);
        var (c0, b0) = predictor.Losses(emptyScores, emptyDeltas, zeros(0, 4), zeros(0, ScalarType.Int64), zeros(0, 4));
        (c0 + b0).backward();
        Assert.That(c0.ToDouble() + b0.ToDouble(), Is.EqualTo(0));
        Assert.That(emptyScores.grad, Is.Not.Null);
    }

    /// <summary>
    /// Half-precision deltas (an autocast forward) meet float32 targets: the difference is taken in float32, as torch
    /// promotes it, so the loss is the hand-computed one to float precision; rounding the targets to bf16 (8 significant
    /// bits) would move 5·ln 1.2 by up to 2e-3.
    /// </summary>
    [Test]
    public void HalfPrecisionDeltasAreComparedWithFloat32Targets()
    {
        using var scope = NewDisposeScope();
        var predictor = new FastRcnnOutputLayers(4, 2, new Box2BoxTransform(10, 10, 5, 5));
        var scores = zeros(3, 3, dtype: ScalarType.BFloat16);
        var classes = tensor(new long[] { 0, 2, 1 });
        var proposals = tensor(new[] { 0f, 0, 10, 10, 5, 5, 9, 9, 0, 0, 20, 20 }).view(3, 4);
        var gtBoxes = tensor(new[] { 1f, 2, 11, 14, 0, 0, 1, 1, 0, 0, 20, 20 }).view(3, 4);
        var deltas = tensor(new[] { 0.5f, 3, 0.2f, 0, 9, 9, 9, 9, 0.1f, 0, 0, 0 }).view(3, 4).to_type(ScalarType.BFloat16);
        var (_, box) = predictor.Losses(scores, deltas, proposals, classes, gtBoxes);
        double Bf16(float v) => tensor(v).to_type(ScalarType.BFloat16).to_type(ScalarType.Float64).item<double>();
        double expectedBox = (0.5 + 0 + Bf16(0.2f) + 5 * Math.Log(1.2) + Bf16(0.1f)) / 3;
        Assert.That(box.dtype, Is.EqualTo(ScalarType.Float32));
        Assert.That(box.ToDouble(), Is.EqualTo(expectedBox).Within(1e-6));
    }

    [Test]
    public void MaskLossIsBceOnTheGroundTruthClassChannel()
    {
        using var scope = NewDisposeScope();
        // Two RoIs, 2 classes, 2×2 masks. Channels that must not be read hold 100.
        var logits = full(new long[] { 2, 2, 2, 2 }, 100f);
        logits[0, 1] = tensor(new[] { 0f, 2, -1, 3 }).view(2, 2);
        logits[1, 0] = tensor(new[] { 1f, 1, 1, 1 }).view(2, 2);
        var targets = tensor(new[] { true, false, false, true, false, false, false, false }).view(2, 2, 2);
        var loss = MaskRcnnConvUpsampleHead.Loss(logits, tensor(new long[] { 1, 0 }), targets);
        double Softplus(double v) => Math.Log(1 + Math.Exp(v));
        double expected = (Softplus(-0) + Softplus(2) + Softplus(-1) + Softplus(-3) + 4 * Softplus(1)) / 8;
        Assert.That(loss.ToDouble(), Is.EqualTo(expected).Within(1e-6));
        var none = MaskRcnnConvUpsampleHead.Loss(zeros(0, 2, 2, 2), zeros(0, ScalarType.Int64), zeros(0, 2, 2));
        Assert.That(none.ToDouble(), Is.EqualTo(0));
    }
}
