using System.Diagnostics;
using NUnit.Framework;
using TorchSharp;
using Vim.Core.Diagnostics;
using static TorchSharp.torch;

namespace Vim.Tests.Core;

/// <summary>
/// The backward breakdown (`vim bench train --backward-breakdown`): which component a backward's time goes to, and that
/// marking changes no gradient.
/// </summary>
[NonParallelizable] // BackwardProfiler is process-wide
public class BackwardProfilerTests
{
    [TearDown]
    public void TearDown()
    {
        BackwardProfiler.Enable(false);
        BackwardProfiler.TakeEnded();
    }

    [Test]
    public void SelfTimesGiveEachIntervalToTheComponentThatStartedIt()
    {
        long f = Stopwatch.Frequency;
        // a from 0 to 1 s, b from 1 to 3 s, a again from 3 to 6 s; the last entry only ends the timeline.
        var times = BackwardProfiler.SelfTimes(
            [(0, 0, "a"), (f, 500, "b"), (3 * f, 2_500, "a"), (6 * f, 2_600, "ignored")], marks: 3);
        Assert.That(times.Components.Select(c => c.Component), Is.EqualTo(new[] { "a", "b" }));
        Assert.That(times.Components[0].Milliseconds, Is.EqualTo(4000).Within(1e-9));
        Assert.That(times.Components[0].CpuMilliseconds, Is.EqualTo(0.5 + 0.1).Within(1e-9));
        Assert.That(times.Components[1].Milliseconds, Is.EqualTo(2000).Within(1e-9));
        Assert.That(times.Components[1].CpuMilliseconds, Is.EqualTo(2.0).Within(1e-9));
        Assert.That(times.Marks, Is.EqualTo(3));
    }

    /// <summary>
    /// Stage "first" then stage "second" (with a nested "inner") in forward: backward runs them in reverse, so the pass
    /// goes outside → second → second/inner → second → outside → first → outside, and every mark fires once.
    /// </summary>
    [Test]
    public void MarksFollowTheStagesInReverseForwardOrder()
    {
        using var scope = NewDisposeScope();
        var x = randn(4, 3).requires_grad_();
        var w = randn(3, 3).requires_grad_();
        BackwardProfiler.Enable(true);
        Tensor y, z;
        using (var first = BackwardProfiler.Open("first"))
            y = first.Output(first.Input(x).matmul(w).tanh());
        using (var second = BackwardProfiler.Open("second"))
        {
            var hidden = second.Input(y) * 2;
            using (var inner = BackwardProfiler.Open("inner"))
            {
                Assert.That(inner.Path, Is.EqualTo("second/inner"));
                hidden = inner.Output(inner.Input(hidden).exp());
            }
            z = second.Output(hidden.sum(1));
        }
        BackwardProfiler.BeginPass();
        z.square().sum().backward();
        var pass = BackwardProfiler.EndPass()!;
        Assert.That(pass.Components.Select(c => c.Component),
            Is.EqualTo(new[] { BackwardProfiler.Outside, "second", "second/inner", "first" }));
        Assert.That(pass.Marks, Is.EqualTo(6), "two marks per stage, each firing once");
        Assert.That(BackwardProfiler.TakeEnded(), Has.Count.EqualTo(1));
    }

    [Test]
    public void MarkingChangesNoGradientAndStaysOffUnlessEnabled()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(5);
        var input = randn(new long[] { 2, 8, 6, 6 }, generator: generator);
        using var conv = new Vim.Core.Models.NormedConv2d(8, 8, 3, 1, new Generator(6));
        Tensor Gradient(bool marked)
        {
            BackwardProfiler.Enable(marked);
            var x = input.clone().requires_grad_();
            var loss = conv.call(x).square().sum();
            BackwardProfiler.BeginPass();
            loss.backward();
            var pass = BackwardProfiler.EndPass();
            Assert.That(pass is null, Is.EqualTo(!marked), "a pass records only while enabled");
            if (pass is not null)
                Assert.That(pass.Components.Select(c => c.Component), Is.SupersetOf(new[] { "conv2d", "layer_norm2d" }));
            BackwardProfiler.Enable(false);
            return x.grad!.clone();
        }
        Assert.That(TensorBits.Same(Gradient(true), Gradient(false)), "the marks are identities in both directions");
    }
}
