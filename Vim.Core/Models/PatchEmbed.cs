using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Vim.Core.Models;

/// <summary>
/// Image to token sequence: Conv2d(in → dim, kernel = patch, stride configurable) flattened row-major
/// to (B, h·w, dim). With stride &lt; patch the patches overlap (the stride-8 "+" models).
/// </summary>
public sealed class PatchEmbed : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d proj;

    public int PatchSize { get; }
    public int Stride { get; }

    public PatchEmbed(int inChannels, long dim, int patchSize, int stride) : base(nameof(PatchEmbed))
    {
        if (patchSize <= 0 || stride <= 0) throw new VimException($"PatchEmbed: patch size and stride must be positive, got {patchSize}/{stride}.");
        PatchSize = patchSize;
        Stride = stride;
        proj = nn.Conv2d(inChannels, dim, patchSize, stride: stride);
        RegisterComponents();
    }

    internal Conv2d Projection => proj;

    /// <summary>Token grid (rows, cols) for an image of the given size; throws if the size does not tile.</summary>
    public (int Rows, int Cols) GridFor(long height, long width)
    {
        return (Axis(height, "height"), Axis(width, "width"));

        int Axis(long size, string name)
        {
            if (size < PatchSize || (size - PatchSize) % Stride != 0)
                throw new VimException($"Input {name} {size} does not tile with patch {PatchSize} and stride {Stride}: expected patch + k·stride (k ≥ 0).");
            return (int)((size - PatchSize) / Stride + 1);
        }
    }

    public override Tensor forward(Tensor images)
    {
        if (images.dim() != 4) throw new VimException($"PatchEmbed expects images (B, C, H, W), got shape [{string.Join(", ", images.shape)}].");
        GridFor(images.shape[2], images.shape[3]);
        using var scope = NewDisposeScope();
        return proj.call(images).flatten(2).transpose(1, 2).MoveToOuterDisposeScope();
    }
}
