using NUnit.Framework;
using TorchSharp;
using Vim.Core.Models;
using static TorchSharp.torch;

namespace Vim.Tests.Core;

public class ModelTrainingTests
{
    [Test]
    public void DropPathScheduleFollowsTheOfficialShift()
    {
        var rates = DropPath.OfficialBlockRates(0.1, 24);
        Assert.That(rates[0], Is.EqualTo(0));
        Assert.That(rates[1], Is.EqualTo(0), "block 1 drops block 0's output with dpr[0] = 0");
        Assert.That(rates[2], Is.EqualTo(0.1 / 23).Within(1e-15));
        Assert.That(rates[23], Is.EqualTo(0.1 * 22 / 23).Within(1e-15));
        using var model = new VisionMamba(VimVariants.Tiny with { DropPathRate = 0.1, NumClasses = 0, Readout = VimReadout.Mean, Depth = 4, EmbedDim = 16 });
        Assert.That(model.Layers.Select(l => l.DropPathRate), Is.EqualTo(new[] { 0, 0, 0.1 / 3, 0.2 / 3 }).Within(1e-15));
    }

    [Test]
    public void DropPathDropsWholeSamplesAndRescalesSurvivors()
    {
        using var scope = NewDisposeScope();
        using var drop = new DropPath(0.5);
        drop.train();
        var y = drop.forward(ones(256, 3, 4));
        var perSample = y.reshape(256, -1);
        var first = perSample.select(1, 0);
        Assert.That(perSample.eq(first.unsqueeze(1)).all().item<bool>(), Is.True, "a sample is kept or dropped as a whole");
        Assert.That(first.eq(0).logical_or(first.eq(2)).all().item<bool>(), Is.True, "survivors are scaled by 1/keep");
        double kept = first.eq(2).to_type(ScalarType.Float64).mean().item<double>();
        Assert.That(kept, Is.InRange(0.35, 0.65));
        drop.eval();
        Assert.That(drop.forward(ones(4, 3)).eq(1).all().item<bool>(), Is.True);
    }

    [Test]
    public void GradientsReachEveryParameter()
    {
        using var scope = NewDisposeScope();
        using var model = new VisionMamba(ModelTestConfigs.TinyVim with { UseRope = true, RopeResidual = true }, seed: 6);
        model.train();
        var loss = model.forward(randn(2, 3, 32, 48)).square().sum();
        loss.backward();
        foreach (var (name, parameter) in model.named_parameters())
        {
            var grad = parameter.grad;
            Assert.That(grad, Is.Not.Null, name);
            Assert.That(grad!.isfinite().all().item<bool>(), Is.True, name);
            Assert.That(grad.abs().sum().item<float>(), Is.GreaterThan(0f), name);
        }
    }

    [Test]
    public void SameSeedGivesTheSameWeights()
    {
        using var scope = NewDisposeScope();
        using var a = new VisionMamba(ModelTestConfigs.TinyVim, seed: 42);
        using var b = new VisionMamba(ModelTestConfigs.TinyVim, seed: 42);
        using var c = new VisionMamba(ModelTestConfigs.TinyVim, seed: 43);
        var pa = a.parameters().ToList();
        var pb = b.parameters().ToList();
        var pc = c.parameters().ToList();
        Assert.That(pa.Zip(pb).All(t => t.First.eq(t.Second).all().item<bool>()), Is.True);
        Assert.That(pa.Zip(pc).Any(t => !t.First.eq(t.Second).all().item<bool>()), Is.True);
    }
}
