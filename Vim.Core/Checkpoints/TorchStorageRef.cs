using static TorchSharp.torch;

namespace Vim.Core.Checkpoints;

/// <summary>A storage named by a persistent id ('storage', type, key, location, numel); its bytes live in data/KEY.</summary>
internal sealed record TorchStorageRef(string Key, ScalarType DType, string Location, long DeclaredElements);
