using NUnit.Framework;
using TorchSharp;
using Vim.Core.Ssm;
using static TorchSharp.torch;

namespace Vim.Tests.Core;

/// <summary>The inference form SelectiveScan.ForwardInto (writing into a given tensor, possibly Δ's or u's
/// own memory) against the TorchSharp reference.</summary>
public class SelectiveScanForwardIntoTests
{
    public enum Target { Fresh, OverDelta, OverU }

    [TestCase(Target.Fresh, false)]
    [TestCase(Target.OverDelta, false)]
    [TestCase(Target.OverDelta, true)]
    [TestCase(Target.OverU, true)]
    public void ForwardIntoMatchesTheReference(Target target, bool reverse)
    {
        using var scope = NewDisposeScope();
        // 2 × 3 rows of 150 steps: several kernel chunks, and rows handled by different threads.
        var inputs = SelectiveScanTestInputs.Create(2, 3, 150, 16, withD: true, withZ: true, withBias: true, softplus: true,
            ScalarType.Float32, seed: 21);
        var expected = SelectiveScan.Apply(SelectiveScanBackend.Reference, inputs.u, inputs.delta, inputs.A, inputs.B, inputs.C,
            inputs.D, inputs.z, inputs.deltaBias, deltaSoftplus: true, reverse: reverse);

        var u = inputs.u.clone();
        var delta = inputs.delta.clone();
        var output = target switch
        {
            Target.OverDelta => delta,
            Target.OverU => u,
            _ => full(new long[] { 2, 3, 150 }, float.NaN),
        };
        using (no_grad())
            SelectiveScan.ForwardInto(output, u, delta, inputs.A, inputs.B, inputs.C, inputs.D, inputs.z, inputs.deltaBias,
                deltaSoftplus: true, reverse: reverse);
        Assert.That(SelectiveScanTestInputs.RelativeError(output, expected), Is.LessThanOrEqualTo(1e-5));
    }

    [Test]
    public void ForwardIntoRejectsAnOutputOfTheWrongShapeOrLayout()
    {
        using var scope = NewDisposeScope();
        var inputs = SelectiveScanTestInputs.Create(1, 4, 10, 4, withD: false, withZ: false, withBias: false, softplus: false,
            ScalarType.Float32, seed: 3);
        var wrongShape = empty(1, 4, 9);
        var strided = empty(1, 10, 4).transpose(1, 2);
        var ex = Assert.Throws<ArgumentException>(() => SelectiveScan.ForwardInto(wrongShape, inputs.u, inputs.delta, inputs.A, inputs.B, inputs.C));
        Assert.That(ex!.ParamName, Is.EqualTo("output"));
        ex = Assert.Throws<ArgumentException>(() => SelectiveScan.ForwardInto(strided, inputs.u, inputs.delta, inputs.A, inputs.B, inputs.C));
        Assert.That(ex!.ParamName, Is.EqualTo("output"));
        ex = Assert.Throws<ArgumentException>(() => SelectiveScan.ForwardInto(empty(1, 4, 10, dtype: ScalarType.Float64),
            inputs.u.to_type(ScalarType.Float64), inputs.delta.to_type(ScalarType.Float64), inputs.A.to_type(ScalarType.Float64),
            inputs.B.to_type(ScalarType.Float64), inputs.C.to_type(ScalarType.Float64)));
        Assert.That(ex!.ParamName, Is.EqualTo("u"));
    }
}
