using NUnit.Framework;
using TorchSharp;
using Vim.Detection.Ops;
using static TorchSharp.torch;

namespace Vim.Tests.Detection;

/// <summary>The native RoIAlign through its C# wrapper against a direct bilinear-sampling
/// computation in doubles, and its gradient against finite differences.</summary>
public class RoiAlignTests
{
    /// <summary>Independent reference: RoIAlign written straight from torchvision's definition.</summary>
    private static double[,,,] Reference(double[,,,] x, double[,] rois, int outH, int outW, double scale, int ratio, bool aligned)
    {
        int k = rois.GetLength(0), c = x.GetLength(1), h = x.GetLength(2), w = x.GetLength(3);
        var result = new double[k, c, outH, outW];
        double Pixel(int n, int ch, double y, double xx)
        {
            if (y < -1 || y > h || xx < -1 || xx > w) return 0;
            y = Math.Max(y, 0);
            xx = Math.Max(xx, 0);
            int y0 = (int)Math.Floor(y), x0 = (int)Math.Floor(xx);
            int y1 = Math.Min(y0 + 1, h - 1), x1 = Math.Min(x0 + 1, w - 1);
            if (y0 >= h - 1) { y0 = h - 1; y = y0; }
            if (x0 >= w - 1) { x0 = w - 1; xx = x0; }
            double ly = y - y0, lx = xx - x0;
            return (1 - ly) * (1 - lx) * x[n, ch, y0, x0] + (1 - ly) * lx * x[n, ch, y0, x1]
                + ly * (1 - lx) * x[n, ch, y1, x0] + ly * lx * x[n, ch, y1, x1];
        }
        double shift = aligned ? 0.5 : 0;
        for (int r = 0; r < k; r++)
        {
            int n = (int)rois[r, 0];
            double x1 = rois[r, 1] * scale - shift, y1 = rois[r, 2] * scale - shift;
            double rw = rois[r, 3] * scale - shift - x1, rh = rois[r, 4] * scale - shift - y1;
            if (!aligned) { rw = Math.Max(rw, 1); rh = Math.Max(rh, 1); }
            int gh = ratio > 0 ? ratio : Math.Max(0, (int)Math.Ceiling(rh / outH));
            int gw = ratio > 0 ? ratio : Math.Max(0, (int)Math.Ceiling(rw / outW));
            for (int ch = 0; ch < c; ch++)
                for (int ph = 0; ph < outH; ph++)
                    for (int pw = 0; pw < outW; pw++)
                    {
                        double sum = 0;
                        for (int iy = 0; iy < gh; iy++)
                            for (int ix = 0; ix < gw; ix++)
                                sum += Pixel(n, ch, y1 + rh / outH * (ph + (iy + 0.5) / gh), x1 + rw / outW * (pw + (ix + 0.5) / gw));
                        result[r, ch, ph, pw] = sum / Math.Max(gh * gw, 1);
                    }
        }
        return result;
    }

    private static (Tensor Features, Tensor Rois) RandomProblem(int seed, long batch, long channels, long h, long w, int count,
        double scale, ScalarType dtype)
    {
        var gen = new Generator((ulong)seed);
        var features = randn(new[] { batch, channels, h, w }, dtype: dtype, generator: gen);
        var rng = new Random(seed);
        var rows = new double[count * 5];
        double imgW = w / scale, imgH = h / scale;
        for (int i = 0; i < count; i++)
        {
            // Some boxes hang over the border, some are tiny.
            double x1 = (rng.NextDouble() * 1.4 - 0.2) * imgW, y1 = (rng.NextDouble() * 1.4 - 0.2) * imgH;
            double bw = (i % 4 == 3 ? 0.03 : 0.8) * rng.NextDouble() * imgW, bh = (i % 4 == 3 ? 0.03 : 0.8) * rng.NextDouble() * imgH;
            new[] { rng.Next((int)batch), x1, y1, x1 + bw, y1 + bh }.CopyTo(rows, i * 5);
        }
        return (features, tensor(rows, dtype: dtype).view(count, 5));
    }

    private static double[,,,] ToArray4(Tensor t)
    {
        var d = t.to_type(ScalarType.Float64).contiguous().data<double>().ToArray();
        var s = t.shape;
        var a = new double[s[0], s[1], s[2], s[3]];
        Buffer.BlockCopy(d, 0, a, 0, d.Length * sizeof(double));
        return a;
    }

    private static double[,] ToArray2(Tensor t)
    {
        var d = t.to_type(ScalarType.Float64).contiguous().data<double>().ToArray();
        var a = new double[t.shape[0], t.shape[1]];
        Buffer.BlockCopy(d, 0, a, 0, d.Length * sizeof(double));
        return a;
    }

    [TestCase(1, 7, 7, 1.0, 0, true)]
    [TestCase(2, 7, 7, 0.25, 0, true)]
    [TestCase(3, 14, 14, 0.125, 2, true)]
    [TestCase(4, 3, 5, 0.5, 0, false)]
    [TestCase(5, 2, 2, 0.5, 1, false)]
    public void ForwardMatchesDirectBilinearSampling(int seed, int outH, int outW, double scale, int ratio, bool aligned)
    {
        using var scope = NewDisposeScope();
        foreach (var dtype in new[] { ScalarType.Float32, ScalarType.Float64 })
        {
            var (features, rois) = RandomProblem(seed, 2, 3, 12, 10, 17, scale, dtype);
            var output = RoiAlign.Apply(features, rois, (outH, outW), scale, ratio, aligned);
            Assert.That(output.shape, Is.EqualTo(new long[] { 17, 3, outH, outW }));
            Assert.That(output.dtype, Is.EqualTo(dtype));
            var expected = Reference(ToArray4(features), ToArray2(rois), outH, outW, scale, ratio, aligned);
            var actual = ToArray4(output);
            double tolerance = dtype == ScalarType.Float64 ? 1e-10 : 2e-5, worst = 0;
            for (int a = 0; a < expected.GetLength(0); a++)
                for (int b = 0; b < expected.GetLength(1); b++)
                    for (int c = 0; c < outH; c++)
                        for (int d = 0; d < outW; d++)
                            worst = Math.Max(worst, Math.Abs(actual[a, b, c, d] - expected[a, b, c, d]));
            Assert.That(worst, Is.LessThan(tolerance), $"{dtype}");
        }
    }

    [Test]
    public void GradientMatchesFiniteDifferencesInFloat64()
    {
        using var scope = NewDisposeScope();
        var (features, rois) = RandomProblem(11, 2, 2, 5, 6, 6, 0.5, ScalarType.Float64);
        var weights = randn(new long[] { 6, 2, 3, 3 }, dtype: ScalarType.Float64, generator: new Generator(4));
        var x = features.clone().requires_grad_(true);
        var loss = (RoiAlign.Apply(x, rois, (3, 3), 0.5, 0, true) * weights).sum();
        loss.backward();
        var analytic = x.grad!.contiguous().data<double>().ToArray();
        var flat = features.contiguous().data<double>().ToArray();
        const double eps = 1e-4;
        double Loss(double[] values)
        {
            using var inner = NewDisposeScope();
            var f = tensor(values, dtype: ScalarType.Float64).view(features.shape);
            return (RoiAlign.Apply(f, rois, (3, 3), 0.5, 0, true) * weights).sum().ToDouble();
        }
        int nonZero = 0;
        for (int i = 0; i < flat.Length; i++)
        {
            var plus = (double[])flat.Clone();
            var minus = (double[])flat.Clone();
            plus[i] += eps;
            minus[i] -= eps;
            double numeric = (Loss(plus) - Loss(minus)) / (2 * eps);
            Assert.That(analytic[i], Is.EqualTo(numeric).Within(1e-7), $"d loss / d x[{i}]");
            if (Math.Abs(numeric) > 1e-6) nonZero++;
        }
        Assert.That(nonZero, Is.GreaterThan(flat.Length / 4), "the check must cover many sampled pixels");
    }

    [Test]
    public void Float32GradientAgreesWithFloat64Gradient()
    {
        using var scope = NewDisposeScope();
        var (features, rois) = RandomProblem(12, 2, 4, 16, 16, 30, 0.25, ScalarType.Float32);
        var g = randn(new long[] { 30, 4, 7, 7 }, generator: new Generator(9));
        Tensor Grad(ScalarType t)
        {
            var x = features.detach().to_type(t).clone().requires_grad_(true);
            (RoiAlign.Apply(x, rois.to_type(t), (7, 7), 0.25, 0, true) * g.to_type(t)).sum().backward();
            return x.grad!.to_type(ScalarType.Float64);
        }
        var g32 = Grad(ScalarType.Float32);
        var g64 = Grad(ScalarType.Float64);
        Assert.That((g32 - g64).abs().max().ToDouble(), Is.LessThan(1e-4 * Math.Max(1, g64.abs().max().ToDouble())));
    }

    /// <summary>
    /// Autocast hands RoIAlign bf16 / fp16 features: they are pooled in float32 (boxes unrounded) and the result comes
    /// back in their dtype, as torchvision's autocast roi_align does. Box corners sit at fractional coordinates that
    /// bf16 cannot hold (steps of 1 above 128), so pooling at rounded boxes would miss the reference by far more than
    /// the tolerance.
    /// </summary>
    [TestCase(ScalarType.BFloat16, 1.0 / 128)]
    [TestCase(ScalarType.Float16, 1.0 / 1024)]
    public void HalfFeaturesArePooledInFloat32AndTheGradientReturnsInTheirDtype(ScalarType half, double relativeTolerance)
    {
        using var scope = NewDisposeScope();
        var (features, _) = RandomProblem(21, 2, 3, 40, 48, 1, 0.25, ScalarType.Float32);
        var rois = tensor(new[] { 0, 130.37, 141.61, 171.13, 158.29, 1, 3.3, 5.7, 150.9, 133.1, 1, 97.41, 12.77, 185.05, 61.93 }).view(3, 5)
            .to_type(ScalarType.Float32);
        var x = features.to_type(half).requires_grad_(true);
        var output = RoiAlign.Apply(x, rois, (7, 7), 0.25, 0, true);
        Assert.That(output.dtype, Is.EqualTo(half));

        // Independent reference: direct bilinear sampling in doubles of the half-rounded features at the exact boxes.
        var expected = Reference(ToArray4(x.detach()), ToArray2(rois), 7, 7, 0.25, 0, true);
        var actual = ToArray4(output.detach());
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++)
                for (int c = 0; c < 7; c++)
                    for (int d = 0; d < 7; d++)
                        Assert.That(actual[a, b, c, d], Is.EqualTo(expected[a, b, c, d]).Within(relativeTolerance * Math.Abs(expected[a, b, c, d]) + 1e-5),
                            $"output[{a}, {b}, {c}, {d}]");

        // Backward: the float32 RoIAlign gradient (of the half-rounded upstream gradient) cast to the input's dtype.
        var g = randn(new long[] { 3, 3, 7, 7 }, generator: new Generator(5));
        (output.to_type(ScalarType.Float32) * g).sum().backward();
        Assert.That(x.grad, Is.Not.Null);
        Assert.That(x.grad!.dtype, Is.EqualTo(half));
        var x32 = x.detach().to_type(ScalarType.Float32).requires_grad_(true);
        (RoiAlign.Apply(x32, rois, (7, 7), 0.25, 0, true) * g.to_type(half).to_type(ScalarType.Float32)).sum().backward();
        var expectedGrad = x32.grad!.to_type(half).to_type(ScalarType.Float64);
        var actualGrad = x.grad.to_type(ScalarType.Float64);
        Assert.That(expectedGrad.abs().max().ToDouble(), Is.GreaterThan(0.1), "the boxes must reach many pixels");
        var excess = (actualGrad - expectedGrad).abs() - (expectedGrad.abs() * relativeTolerance + 1e-6);
        Assert.That(excess.max().ToDouble(), Is.LessThanOrEqualTo(0), "gradient = float32 gradient in the input's dtype");
    }

    [Test]
    public void BadInputsAreRejectedWithClearErrors()
    {
        using var scope = NewDisposeScope();
        var f = zeros(1, 2, 4, 4);
        var ex = Assert.Throws<ArgumentException>(() => RoiAlign.Apply(f, tensor(new[] { 1f, 0, 0, 2, 2 }).view(1, 5), (2, 2), 1, 0, true));
        Assert.That(ex!.Message, Does.Contain("batch indices"));
        Assert.Throws<ArgumentException>(() => RoiAlign.Apply(f, zeros(3, 4), (2, 2), 1, 0, true));
        Assert.Throws<ArgumentException>(() => RoiAlign.Apply(zeros(2, 4, 4), zeros(1, 5), (2, 2), 1, 0, true));
        Assert.Throws<ArgumentException>(() => RoiAlign.Apply(f, zeros(1, 5), (0, 2), 1, 0, true));
        Assert.Throws<ArgumentException>(() => RoiAlign.Apply(f, zeros(1, 5), (2, 2), 0, 0, true));
        var empty = RoiAlign.Apply(f, zeros(0, 5), (7, 7), 1, 0, true);
        Assert.That(empty.shape, Is.EqualTo(new long[] { 0, 2, 7, 7 }));
    }
}
