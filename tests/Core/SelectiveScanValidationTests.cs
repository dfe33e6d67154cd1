using NUnit.Framework;
using TorchSharp;
using Vim.Core.Ssm;
using static TorchSharp.torch;

namespace Vim.Tests.Core;

/// <summary>Bad arguments are refused with an error that names the argument and what was expected.</summary>
public class SelectiveScanValidationTests
{
    private static SelectiveScanTestInputs Inputs() =>
        SelectiveScanTestInputs.Create(2, 4, 7, 16, true, true, true, true, ScalarType.Float32, 9);

    [Test]
    public void WrongBShapeNamesBAndTheExpectedShape()
    {
        using var scope = NewDisposeScope();
        var x = Inputs();
        var badB = randn(2, 16, 8);
        var e = Assert.Throws<ArgumentException>(() =>
            SelectiveScan.Apply(x.u, x.delta, x.A, badB, x.C, x.D, x.z, x.deltaBias, true));
        Assert.That(e!.ParamName, Is.EqualTo("B"));
        Assert.That(e.Message, Does.StartWith("SelectiveScan: B must have shape (batch=2, N=16, L=7), got [2, 16, 8]"));
    }

    [TestCase("delta")]
    [TestCase("A")]
    [TestCase("C")]
    [TestCase("D")]
    [TestCase("z")]
    [TestCase("deltaBias")]
    public void EachWrongShapeIsNamed(string which)
    {
        using var scope = NewDisposeScope();
        var x = Inputs();
        Tensor Bad(Tensor t) => randn(t.shape.Select((s, i) => i == t.shape.Length - 1 ? s + 1 : s).ToArray());
        var e = Assert.Throws<ArgumentException>(() => SelectiveScan.Apply(x.u,
            which == "delta" ? Bad(x.delta) : x.delta,
            which == "A" ? randn(5, 16) : x.A,
            x.B,
            which == "C" ? Bad(x.C) : x.C,
            which == "D" ? Bad(x.D!) : x.D,
            which == "z" ? Bad(x.z!) : x.z,
            which == "deltaBias" ? Bad(x.deltaBias!) : x.deltaBias,
            true));
        Assert.That(e!.ParamName, Is.EqualTo(which));
        Assert.That(e.Message, Does.StartWith($"SelectiveScan: {which} must have shape ("));
    }

    [Test]
    public void TwoDimensionalUIsRefused()
    {
        using var scope = NewDisposeScope();
        var x = Inputs();
        var e = Assert.Throws<ArgumentException>(() => SelectiveScan.Apply(x.u[0], x.delta, x.A, x.B, x.C));
        Assert.That(e!.ParamName, Is.EqualTo("u"));
        Assert.That(e.Message, Does.Contain("u must have shape (batch, channels, L), got [4, 7]"));
    }

    [Test]
    public void IntegerTensorIsRefusedByName()
    {
        using var scope = NewDisposeScope();
        var x = Inputs();
        var e = Assert.Throws<ArgumentException>(() =>
            SelectiveScan.Apply(x.u, x.delta, x.A, x.B, x.C.to_type(ScalarType.Int32)));
        Assert.That(e!.ParamName, Is.EqualTo("C"));
        Assert.That(e.Message, Does.Contain("C must be a floating-point tensor, got Int32"));
    }

    [Test]
    public void NativeBackendRefusesFloat64ByName()
    {
        using var scope = NewDisposeScope();
        var x = Inputs();
        var e = Assert.Throws<ArgumentException>(() => SelectiveScan.Apply(SelectiveScanBackend.NativeCpu,
            x.u, x.delta.to_type(ScalarType.Float64), x.A, x.B, x.C));
        Assert.That(e!.ParamName, Is.EqualTo("delta"));
        Assert.That(e.Message, Does.Contain("NativeCpu backend needs float32 tensors, but delta is Float64"));
    }

    [Test]
    public void CudaBackendOnCpuTensorsIsRefused()
    {
        using var scope = NewDisposeScope();
        var x = Inputs();
        var e = Assert.Throws<ArgumentException>(() => SelectiveScan.Apply(SelectiveScanBackend.Cuda,
            x.u, x.delta, x.A, x.B, x.C));
        Assert.That(e!.ParamName, Is.EqualTo("u"));
        Assert.That(e.Message, Does.Contain("Cuda backend needs CUDA tensors"));
    }
}
