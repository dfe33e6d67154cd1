using TorchSharp.Modules;

namespace Vim.Core.Engine;

/// <summary>Parameters sharing a weight decay and a learning-rate scale (layer-wise decay).</summary>
public sealed record ParameterGroup(string Name, IReadOnlyList<(string Name, Parameter Parameter)> Parameters, double WeightDecay, double LrScale);
