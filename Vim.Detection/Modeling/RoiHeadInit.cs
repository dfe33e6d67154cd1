using TorchSharp;
using static TorchSharp.torch;

namespace Vim.Detection.Modeling;

/// <summary>Detectron2's Caffe2-style initialisers (weight_init.c2_msra_fill / c2_xavier_fill), seeded.</summary>
internal static class RoiHeadInit
{
    /// <summary>kaiming_normal_(mode fan_out, ReLU gain): N(0, 2 / fan_out), fan_out = dim0 × receptive field.</summary>
    public static void MsraFill(Tensor weight, Generator generator)
    {
        using var noGrad = no_grad();
        long receptive = 1;
        for (int d = 2; d < weight.dim(); d++) receptive *= weight.shape[d];
        weight.normal_(0, Math.Sqrt(2.0 / (weight.shape[0] * receptive)), generator);
    }

    /// <summary>kaiming_uniform_(a = 1): U(±√(3 / fan_in)).</summary>
    public static void XavierFill(Tensor weight, Generator generator)
    {
        using var noGrad = no_grad();
        long receptive = 1;
        for (int d = 2; d < weight.dim(); d++) receptive *= weight.shape[d];
        double bound = Math.Sqrt(3.0 / (weight.shape[1] * receptive));
        weight.uniform_(-bound, bound, generator);
    }

    public static void Zero(Tensor? bias)
    {
        if (bias is null) return;
        using var noGrad = no_grad();
        bias.zero_();
    }
}
