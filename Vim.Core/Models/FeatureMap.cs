using static TorchSharp.torch;

namespace Vim.Core.Models;

/// <summary>One level of a multi-scale feature pyramid: its name (p2, p3, …), map (B, C, H, W) and stride in pixels.</summary>
public sealed record FeatureMap(string Name, Tensor Map, int Stride);
