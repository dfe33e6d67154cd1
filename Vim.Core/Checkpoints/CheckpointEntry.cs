namespace Vim.Core.Checkpoints;

/// <summary>
/// One leaf of a checkpoint: its dotted path (dict keys and list indices joined with '.') and its value,
/// a TorchSharp tensor or plain data (string, long, double, bool, null, byte[], <see cref="PickledObject"/>, ...).
/// </summary>
public sealed record CheckpointEntry(string Name, object? Value);
