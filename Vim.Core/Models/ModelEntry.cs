using static TorchSharp.torch;

namespace Vim.Core.Models;

/// <summary>A registered model: its name, what it is, and how to build it with a given init seed and model.backbone settings.</summary>
public sealed record ModelEntry(string Name, string Description, Func<long, BackboneOverrides, nn.Module> Create);
