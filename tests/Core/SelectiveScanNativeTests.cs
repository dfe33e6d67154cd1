using NUnit.Framework;
using TorchSharp;
using Vim.Core.Ssm;
using static TorchSharp.torch;

namespace Vim.Tests.Core;

/// <summary>The native CPU kernel (forward and backward through the autograd function) against the
/// TorchSharp reference, over shapes that exercise the kernel's edges.</summary>
public class SelectiveScanNativeTests
{
    // batch, channels, L, N, D, z, deltaBias, softplus
    private static readonly object[] Cases =
    {
        new object[] { 1L, 4L, 1L, 1L, false, false, false, false },
        new object[] { 2L, 5L, 7L, 16L, true, true, true, true },
        new object[] { 2L, 3L, 33L, 16L, true, false, false, false },
        new object[] { 1L, 4L, 131L, 1L, false, true, true, true },
        new object[] { 3L, 2L, 65L, 16L, false, false, true, true },
        new object[] { 2L, 3L, 129L, 20L, true, true, false, true },
        new object[] { 1L, 2L, 4096L, 2L, true, true, true, true },
    };

    [TestCaseSource(nameof(Cases))]
    public void NativeMatchesReferenceForwardAndGradients(long batch, long channels, long length, long state,
        bool withD, bool withZ, bool withBias, bool softplus)
    {
        using var scope = NewDisposeScope();
        var inputs = SelectiveScanTestInputs.Create(batch, channels, length, state, withD, withZ, withBias, softplus,
            ScalarType.Float32, seed: (int)(length * 31 + state));
        var weights = randn(new[] { batch, channels, length }, generator: new Generator(7));

        var (outRef, gradsRef) = RunWithGrads(SelectiveScanBackend.Reference, inputs, weights);
        var (outNative, gradsNative) = RunWithGrads(SelectiveScanBackend.NativeCpu, inputs, weights);

        Assert.That(outNative.dtype, Is.EqualTo(ScalarType.Float32));
        Assert.That(outNative.shape, Is.EqualTo(new[] { batch, channels, length }));
        Assert.That(SelectiveScanTestInputs.RelativeError(outNative, outRef), Is.LessThanOrEqualTo(1e-5), "forward");
        foreach (var (name, expected) in gradsRef)
        {
            var actual = gradsNative[name];
            Assert.That(actual.shape, Is.EqualTo(expected.shape), $"d{name} shape");
            Assert.That(SelectiveScanTestInputs.RelativeError(actual, expected), Is.LessThanOrEqualTo(1e-4), $"d{name}");
        }
    }

    // batch, channels, L, N, D, z, deltaBias, softplus
    private static readonly object[] ReverseCases =
    {
        new object[] { 1L, 3L, 1L, 1L, false, false, false, false },
        new object[] { 2L, 5L, 7L, 16L, true, true, true, true },
        new object[] { 1L, 4L, 131L, 5L, true, true, false, true },
        new object[] { 2L, 3L, 200L, 16L, false, true, true, true },
    };

    /// <summary>reverse == flip(reference(flip(inputs))): the flips are done here, in the test, on
    /// the reference's inputs; gradients flow back through them to the same leaves.</summary>
    [TestCaseSource(nameof(ReverseCases))]
    public void NativeReverseMatchesReferenceOnFlippedSequences(long batch, long channels, long length, long state,
        bool withD, bool withZ, bool withBias, bool softplus)
    {
        using var scope = NewDisposeScope();
        var inputs = SelectiveScanTestInputs.Create(batch, channels, length, state, withD, withZ, withBias, softplus,
            ScalarType.Float32, seed: (int)(length * 17 + state));
        var weights = randn(new[] { batch, channels, length }, generator: new Generator(11));

        var r = inputs.Leaves();
        var yRef = SelectiveScanReference.Forward(r.u.flip(-1), r.delta.flip(-1), r.A, r.B.flip(-1), r.C.flip(-1), r.D,
            r.z?.flip(-1), r.deltaBias, r.Softplus).flip(-1);
        (yRef * weights).sum().backward();

        var n = inputs.Leaves();
        var yNative = SelectiveScan.Apply(SelectiveScanBackend.NativeCpu, n.u, n.delta, n.A, n.B, n.C, n.D, n.z,
            n.deltaBias, n.Softplus, reverse: true);
        (yNative * weights).sum().backward();

        Assert.That(SelectiveScanTestInputs.RelativeError(yNative.detach(), yRef.detach()), Is.LessThanOrEqualTo(1e-5), "forward");
        var expected = r.Present().ToDictionary(p => p.Name, p => p.Tensor.grad!);
        foreach (var (name, leaf) in n.Present())
        {
            Assert.That(leaf.grad, Is.Not.Null, $"d{name} missing");
            Assert.That(SelectiveScanTestInputs.RelativeError(leaf.grad!, expected[name]), Is.LessThanOrEqualTo(1e-4), $"d{name}");
        }
        // The forward-direction scan of the same inputs differs (the test can tell the directions apart).
        if (length > 1)
        {
            var forwardDir = SelectiveScan.Apply(SelectiveScanBackend.NativeCpu, inputs.u, inputs.delta, inputs.A,
                inputs.B, inputs.C, inputs.D, inputs.z, inputs.deltaBias, inputs.Softplus);
            Assert.That(SelectiveScanTestInputs.RelativeError(forwardDir, yRef.detach()), Is.GreaterThan(1e-2));
        }
        // The reference backend honours the flag too (no-grad path of the native kernel included).
        using (no_grad())
        {
            var viaReference = SelectiveScan.Apply(SelectiveScanBackend.Reference, inputs.u, inputs.delta, inputs.A,
                inputs.B, inputs.C, inputs.D, inputs.z, inputs.deltaBias, inputs.Softplus, reverse: true);
            var nativeNoGrad = SelectiveScan.Apply(SelectiveScanBackend.NativeCpu, inputs.u, inputs.delta, inputs.A,
                inputs.B, inputs.C, inputs.D, inputs.z, inputs.deltaBias, inputs.Softplus, reverse: true);
            Assert.That(SelectiveScanTestInputs.RelativeError(viaReference, yRef.detach()), Is.LessThanOrEqualTo(1e-6));
            Assert.That(SelectiveScanTestInputs.RelativeError(nativeNoGrad, yRef.detach()), Is.LessThanOrEqualTo(1e-5));
        }
    }

    [Test]
    public void AutoPicksNativeForCpuFloat32AndReferenceForFloat64()
    {
        using var scope = NewDisposeScope();
        var f32 = SelectiveScanTestInputs.Create(1, 2, 5, 3, true, true, true, true, ScalarType.Float32, 1);
        var f64 = SelectiveScanTestInputs.Create(1, 2, 5, 3, true, true, true, true, ScalarType.Float64, 1);
        Assert.That(SelectiveScan.Choose(f32.u, f32.delta, f32.A, f32.B, f32.C, f32.D, f32.z, f32.deltaBias),
            Is.EqualTo(SelectiveScanBackend.NativeCpu));
        Assert.That(SelectiveScan.Choose(f64.u, f64.delta, f64.A, f64.B, f64.C, f64.D, f64.z, f64.deltaBias),
            Is.EqualTo(SelectiveScanBackend.Reference));
        var y64 = SelectiveScan.Apply(f64.u, f64.delta, f64.A, f64.B, f64.C, f64.D, f64.z, f64.deltaBias, true);
        Assert.That(y64.dtype, Is.EqualTo(ScalarType.Float64));
        // The default entry point on float32 agrees with the reference (i.e. it ran a correct backend).
        var y32 = SelectiveScan.Apply(f32.u, f32.delta, f32.A, f32.B, f32.C, f32.D, f32.z, f32.deltaBias, true);
        var r32 = SelectiveScanReference.Forward(f32.u, f32.delta, f32.A, f32.B, f32.C, f32.D, f32.z, f32.deltaBias, true);
        Assert.That(SelectiveScanTestInputs.RelativeError(y32, r32), Is.LessThanOrEqualTo(1e-5));
    }

    [Test]
    public void NonContiguousInputsAreHandled()
    {
        using var scope = NewDisposeScope();
        var x = SelectiveScanTestInputs.Create(2, 3, 9, 4, true, true, true, true, ScalarType.Float32, 3);
        // Same values, transposed storage.
        Tensor T(Tensor t) => t.transpose(-1, -2).contiguous().transpose(-1, -2);
        var uT = T(x.u);
        var bT = T(x.B);
        Assert.That(uT.is_contiguous(), Is.False);
        var native = SelectiveScan.Apply(SelectiveScanBackend.NativeCpu, uT, x.delta, x.A, bT, x.C, x.D, x.z, x.deltaBias, true);
        var reference = SelectiveScanReference.Forward(x.u, x.delta, x.A, x.B, x.C, x.D, x.z, x.deltaBias, true);
        Assert.That(SelectiveScanTestInputs.RelativeError(native, reference), Is.LessThanOrEqualTo(1e-5));
    }

    [Test]
    public void InputsThatDoNotRequireGradGetNone()
    {
        using var scope = NewDisposeScope();
        var x = SelectiveScanTestInputs.Create(1, 2, 6, 3, true, true, true, true, ScalarType.Float32, 5);
        var u = x.u.detach().clone().requires_grad_(true);
        var y = SelectiveScan.Apply(SelectiveScanBackend.NativeCpu, u, x.delta, x.A, x.B, x.C, x.D, x.z, x.deltaBias, true);
        y.sum().backward();
        Assert.That(u.grad, Is.Not.Null);
        Assert.That(x.A.grad, Is.Null);
        var ur = x.u.detach().clone().requires_grad_(true);
        SelectiveScanReference.Forward(ur, x.delta, x.A, x.B, x.C, x.D, x.z, x.deltaBias, true).sum().backward();
        Assert.That(SelectiveScanTestInputs.RelativeError(u.grad!, ur.grad!), Is.LessThanOrEqualTo(1e-4));
    }

    private static (Tensor Output, Dictionary<string, Tensor> Grads) RunWithGrads(SelectiveScanBackend backend,
        SelectiveScanTestInputs inputs, Tensor weights)
    {
        var x = inputs.Leaves();
        var y = SelectiveScan.Apply(backend, x.u, x.delta, x.A, x.B, x.C, x.D, x.z, x.deltaBias, x.Softplus);
        (y * weights).sum().backward();
        var grads = x.Present().ToDictionary(p => p.Name, p => p.Tensor.grad ?? throw new AssertionException($"{backend}: no gradient for {p.Name}"));
        return (y.detach(), grads);
    }
}
