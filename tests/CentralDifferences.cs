using NUnit.Framework;
using static TorchSharp.torch;

namespace Vim.Tests;

/// <summary>Analytic float64 gradients against central finite differences of a scalar loss, element by element.</summary>
internal static class CentralDifferences
{
    /// <summary>
    /// For every element of <paramref name="variable"/> (a float64 tensor the loss reads), (loss(v + h) − loss(v − h)) / 2h
    /// must equal <paramref name="analytic"/>'s element within <paramref name="tolerance"/>; the variable is restored after each.
    /// </summary>
    public static void Check(Func<double> loss, Tensor variable, Tensor analytic, string name, double h = 1e-6, double tolerance = 1e-7)
    {
        var flat = variable.detach().view(-1);
        var expected = analytic.reshape(-1).data<double>().ToArray();
        for (int i = 0; i < flat.shape[0]; i++)
        {
            double original = flat[i].item<double>();
            using (no_grad()) flat[i].fill_(original + h);
            double plus = loss();
            using (no_grad()) flat[i].fill_(original - h);
            double minus = loss();
            using (no_grad()) flat[i].fill_(original);
            Assert.That(expected[i], Is.EqualTo((plus - minus) / (2 * h)).Within(tolerance), $"{name}[{i}]");
        }
    }
}
