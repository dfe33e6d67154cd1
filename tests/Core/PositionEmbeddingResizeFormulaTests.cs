using NUnit.Framework;
using Vim.Core;
using Vim.Core.Models;
using static TorchSharp.torch;

namespace Vim.Tests.Core;

/// <summary>PositionEmbeddingResizer against an independently written bicubic formula, dtypes and grid inference.</summary>
public class PositionEmbeddingResizeFormulaTests
{
    /// <summary>(1, gh·gw [+ class row], 2): channel 0 = the patch's row y, channel 1 = 5; the class row is (99, 99).</summary>
    private static Tensor Table(int gh, int gw, ClassTokenPosition slot)
    {
        var rows = new List<float[]>();
        for (var y = 0; y < gh; y++)
            for (var x = 0; x < gw; x++)
                rows.Add([y, 5f]);
        var classRow = slot switch { ClassTokenPosition.Head => 0, ClassTokenPosition.Middle => gh * gw / 2, _ => -1 };
        if (classRow >= 0)
            rows.Insert(classRow, [99f, 99f]);
        return tensor(rows.SelectMany(r => r).ToArray()).reshape(1, rows.Count, 2);
    }

    [Test]
    public void MiddleClassRowMovesToTheNewMiddleAndIsNotInterpolated()
    {
        using var scope = NewDisposeScope();
        var resized = PositionEmbeddingResizer.Resize(Table(4, 4, ClassTokenPosition.Middle), (4, 4), (6, 8), ClassTokenPosition.Middle);
        Assert.That(resized.shape, Is.EqualTo(new long[] { 1, 49, 2 }));
        Assert.That(resized[0, 24].data<float>().ToArray(), Is.EqualTo(new[] { 99f, 99f }), "class row at 48 // 2");
        var patches = cat([resized[0, ..24], resized[0, 25..]], 0).reshape(6, 8, 2);
        // Bicubic weights sum to one: a constant channel stays constant (no class value bled in).
        Assert.That(patches[.., .., 1].sub(5).abs().max().item<float>(), Is.LessThan(1e-5f));
        // Channel 0 varies only with y: every output row is constant along x.
        var y = patches[.., .., 0];
        Assert.That(y.sub(y[.., ..1]).abs().max().item<float>(), Is.LessThan(1e-5f));
        // Independent expectation: align_corners=false maps output row i to source row s = (i + 0.5)·4/6 − 0.5,
        // and the value is Σ W(s − k)·k over the four taps k (clamped to the grid), W the cubic convolution
        // kernel with a = −0.75 as in PyTorch.
        for (var i = 0; i < 6; i++)
            Assert.That(y[i, 0].item<float>(), Is.EqualTo(Bicubic(i, 4, 6)).Within(1e-5), $"row {i}");
    }

    private static double Bicubic(int outIndex, int inSize, int outSize)
    {
        const double a = -0.75;
        static double W(double x)
        {
            x = Math.Abs(x);
            return x <= 1 ? (a + 2) * x * x * x - (a + 3) * x * x + 1 : a * x * x * x - 5 * a * x * x + 8 * a * x - 4 * a;
        }
        var s = (outIndex + 0.5) * inSize / outSize - 0.5;
        var f = (int)Math.Floor(s);
        return Enumerable.Range(f - 1, 4).Sum(k => W(s - k) * Math.Clamp(k, 0, inSize - 1));
    }

    [Test]
    public void SameGridIsACopyAndHeadSlotKeepsRowZero()
    {
        using var scope = NewDisposeScope();
        var table = Table(3, 3, ClassTokenPosition.Head).to_type(ScalarType.Float16);
        var same = PositionEmbeddingResizer.Resize(table, (3, 3), (3, 3), ClassTokenPosition.Head);
        Assert.That(same.eq(table).all().item<bool>(), Is.True);
        var bigger = PositionEmbeddingResizer.Resize(table, (3, 3), (5, 5), ClassTokenPosition.Head);
        Assert.That(bigger.dtype, Is.EqualTo(ScalarType.Float16));
        Assert.That(bigger.shape, Is.EqualTo(new long[] { 1, 26, 2 }));
        Assert.That(bigger[0, 0].to_type(ScalarType.Float32).data<float>().ToArray(), Is.EqualTo(new[] { 99f, 99f }));
    }

    [Test]
    public void NonSquareGridsNeedAnExplicitSource()
    {
        using var scope = NewDisposeScope();
        var table = Table(2, 3, ClassTokenPosition.None);
        var error = Assert.Throws<VimException>(() => PositionEmbeddingResizer.SquareGridOf(table, ClassTokenPosition.None))!;
        Assert.That(error.Message, Does.Contain("pos_embed: 6 patch rows (class token None) do not form a square grid"));
        Assert.That(PositionEmbeddingResizer.SquareGridOf(Table(3, 3, ClassTokenPosition.Middle), ClassTokenPosition.Middle), Is.EqualTo((3, 3)));
        var resized = PositionEmbeddingResizer.Resize(table, (2, 3), (4, 6), ClassTokenPosition.None);
        Assert.That(resized.shape, Is.EqualTo(new long[] { 1, 24, 2 }));
        Assert.That(resized[0, .., 1].sub(5).abs().max().item<float>(), Is.LessThan(1e-5f));
    }
}
