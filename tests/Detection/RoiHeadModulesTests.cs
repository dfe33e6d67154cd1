using NUnit.Framework;
using TorchSharp;
using Vim.Detection.Modeling;
using static TorchSharp.torch;

namespace Vim.Tests.Detection;

public class RoiHeadModulesTests
{
    [Test]
    public void BoxHeadHasDetectron2KeysShapesAndInit()
    {
        using var scope = NewDisposeScope();
        var head = new FastRcnnConvFcHead(8, 7, new long[] { 16, 16, 16, 16 }, new long[] { 32 }, seed: 1);
        var sd = head.state_dict();
        var expected = new List<string>();
        for (int k = 1; k <= 4; k++)
            expected.AddRange(new[] { $"conv{k}.weight", $"conv{k}.norm.weight", $"conv{k}.norm.bias" });
        expected.AddRange(new[] { "fc1.weight", "fc1.bias" });
        Assert.That(sd.Keys, Is.EquivalentTo(expected));
        Assert.That(sd["conv1.weight"].shape, Is.EqualTo(new long[] { 16, 8, 3, 3 }));
        Assert.That(sd["conv2.weight"].shape, Is.EqualTo(new long[] { 16, 16, 3, 3 }));
        Assert.That(sd["fc1.weight"].shape, Is.EqualTo(new long[] { 32, 16 * 49 }));
        // c2_msra_fill: N(0, 2 / fan_out), fan_out = 16·9.
        Assert.That(sd["conv2.weight"].std().ToDouble(), Is.EqualTo(Math.Sqrt(2.0 / 144)).Within(0.1 * Math.Sqrt(2.0 / 144)));
        // c2_xavier_fill: U(±√(3 / fan_in)), std = bound / √3.
        double bound = Math.Sqrt(3.0 / (16 * 49));
        Assert.That(sd["fc1.weight"].abs().max().ToDouble(), Is.LessThanOrEqualTo(bound));
        Assert.That(sd["fc1.weight"].std().ToDouble(), Is.EqualTo(bound / Math.Sqrt(3)).Within(0.05 * bound));
        Assert.That(sd["fc1.bias"].abs().sum().ToDouble(), Is.EqualTo(0));
        var output = head.forward(randn(5, 8, 7, 7, generator: new Generator(2)));
        Assert.That(output.shape, Is.EqualTo(new long[] { 5, 32 }));
        Assert.That(output.min().ToDouble(), Is.GreaterThanOrEqualTo(0), "the FC is followed by ReLU");
        Assert.Throws<ArgumentException>(() => head.forward(randn(5, 8, 14, 14)));

        var vitdet = FastRcnnConvFcHead.VitDet();
        Assert.That(vitdet.state_dict()["fc1.weight"].shape, Is.EqualTo(new long[] { 1024, 256 * 49 }));
        Assert.That(vitdet.OutputSize, Is.EqualTo(1024));
    }

    [Test]
    public void PredictorHasDetectron2KeysShapesAndInit()
    {
        using var scope = NewDisposeScope();
        var predictor = new FastRcnnOutputLayers(1024, 80, new Box2BoxTransform(10, 10, 5, 5), seed: 3);
        var sd = predictor.state_dict();
        Assert.That(sd.Keys, Is.EquivalentTo(new[] { "cls_score.weight", "cls_score.bias", "bbox_pred.weight", "bbox_pred.bias" }));
        Assert.That(sd["cls_score.weight"].shape, Is.EqualTo(new long[] { 81, 1024 }));
        Assert.That(sd["bbox_pred.weight"].shape, Is.EqualTo(new long[] { 4, 1024 }), "class-agnostic regression");
        Assert.That(sd["cls_score.weight"].std().ToDouble(), Is.EqualTo(0.01).Within(0.0005));
        Assert.That(sd["bbox_pred.weight"].std().ToDouble(), Is.EqualTo(0.001).Within(0.0001));
        Assert.That(sd["cls_score.bias"].abs().sum().ToDouble() + sd["bbox_pred.bias"].abs().sum().ToDouble(), Is.EqualTo(0));
        var (scores, deltas) = predictor.forward(randn(6, 1024));
        Assert.That(scores.shape, Is.EqualTo(new long[] { 6, 81 }));
        Assert.That(deltas.shape, Is.EqualTo(new long[] { 6, 4 }));
    }

    [Test]
    public void MaskHeadHasDetectron2KeysShapesAndInit()
    {
        using var scope = NewDisposeScope();
        var head = new MaskRcnnConvUpsampleHead(8, 3, new long[] { 16, 16, 16, 16, 12 }, seed: 4);
        var sd = head.state_dict();
        var expected = new List<string>();
        for (int k = 1; k <= 4; k++)
            expected.AddRange(new[] { $"mask_fcn{k}.weight", $"mask_fcn{k}.norm.weight", $"mask_fcn{k}.norm.bias" });
        expected.AddRange(new[] { "deconv.weight", "deconv.bias", "predictor.weight", "predictor.bias" });
        Assert.That(sd.Keys, Is.EquivalentTo(expected));
        Assert.That(sd["deconv.weight"].shape, Is.EqualTo(new long[] { 16, 12, 2, 2 }));
        Assert.That(sd["predictor.weight"].shape, Is.EqualTo(new long[] { 3, 12, 1, 1 }));
        var logits = head.forward(randn(2, 8, 14, 14));
        Assert.That(logits.shape, Is.EqualTo(new long[] { 2, 3, 28, 28 }));
        var vitdet = MaskRcnnConvUpsampleHead.VitDet(80);
        Assert.That(vitdet.state_dict()["predictor.weight"].std().ToDouble(), Is.EqualTo(0.001).Within(0.0002));
        Assert.That(vitdet.state_dict()["mask_fcn4.weight"].shape, Is.EqualTo(new long[] { 256, 256, 3, 3 }));
    }

    [Test]
    public void CascadeHeadsNameStagesLikeDetectron2AndAreSeedStable()
    {
        using var scope = NewDisposeScope();
        var settings = TinySettings();
        var heads = new CascadeRoiHeads(8, settings, seed: 5);
        var keys = heads.state_dict().Keys.ToArray();
        foreach (var k in new[] { 0, 1, 2 })
        {
            Assert.That(keys, Does.Contain($"box_head.{k}.conv1.weight"));
            Assert.That(keys, Does.Contain($"box_head.{k}.conv4.norm.bias"));
            Assert.That(keys, Does.Contain($"box_head.{k}.fc1.weight"));
            Assert.That(keys, Does.Contain($"box_predictor.{k}.cls_score.weight"));
            Assert.That(keys, Does.Contain($"box_predictor.{k}.bbox_pred.bias"));
        }
        Assert.That(keys, Does.Contain("mask_head.mask_fcn1.weight"));
        Assert.That(keys, Does.Contain("mask_head.predictor.bias"));
        // 3 × (4 convs × 3 tensors + 2 FC) + 3 × 4 predictor + 4 × 3 mask convs + 4.
        Assert.That(keys.Length, Is.EqualTo(3 * 14 + 3 * 4 + 12 + 4));
        Assert.That(heads.Predictors.Select(p => p.BoxCoder.WeightX), Is.EqualTo(new[] { 10.0, 20.0, 30.0 }));
        Assert.That(heads.Predictors.Select(p => p.BoxCoder.WeightH), Is.EqualTo(new[] { 5.0, 10.0, 15.0 }));
        // Stages are initialised independently, and the same seed rebuilds the same weights.
        var sd = heads.state_dict();
        Assert.That(sd["box_head.0.conv1.weight"].eq(sd["box_head.1.conv1.weight"]).all().item<bool>(), Is.False);
        var again = new CascadeRoiHeads(8, settings, seed: 5).state_dict();
        Assert.That(keys.All(k => again[k].eq(sd[k]).all().item<bool>()), Is.True);
        Assert.That(new CascadeRoiHeads(8, settings with { MaskOn = false }).state_dict().Keys.Any(k => k.StartsWith("mask_head")), Is.False);
    }

    /// <summary>
    /// A mask head the settings make unbuildable fails the constructor after the three box stages exist: their tensors are
    /// freed, not left for the GC. Built in a dispose scope, which frees initialisation temporaries but not parameters.
    /// </summary>
    [Test]
    public void CascadeHeadsThatFailToBuildFreeTheStagesAlreadyBuilt()
    {
        long before = DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount;
        using (NewDisposeScope())
            Assert.Throws<ArgumentException>(() => new CascadeRoiHeads(8, TinySettings() with { MaskHeadConvDims = [] }).Dispose());
        Assert.That(DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount - before, Is.Zero);
        using (NewDisposeScope())
        using (var built = new CascadeRoiHeads(8, TinySettings()))
            Assert.That(DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount - before, Is.AtLeast(3 * 14 + 3 * 4 + 12 + 4), "at least its state dict");
        Assert.That(DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount - before, Is.Zero);
    }

    internal static CascadeRoiHeadsSettings TinySettings() => new()
    {
        NumClasses = 3,
        BoxHeadConvDims = new long[] { 8, 8, 8, 8 },
        BoxHeadFcDims = new long[] { 16 },
        MaskHeadConvDims = new long[] { 8, 8, 8, 8, 8 },
        BatchSizePerImage = 32,
    };
}
