using static TorchSharp.torch;

namespace Vim.Detection.Modeling;

/// <summary>
/// Detectron2's _ScaleGradient: the value passes through unchanged, the gradient flowing back is
/// multiplied by a factor. Cascade R-CNN applies it with 1/stages to the pooled box features, so
/// the stage losses can be summed (each head's parameters see its full loss) while the shared
/// features receive the stages' average gradient.
/// </summary>
public static class ScaleGradient
{
    public static Tensor Apply(Tensor input, double factor)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (double.IsNaN(factor) || double.IsInfinity(factor))
            throw new ArgumentException($"ScaleGradient: the factor must be finite, got {factor}.", nameof(factor));
        return ScaleGradientFunction.apply(input, factor);
    }
}
