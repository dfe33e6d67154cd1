namespace Vim.Data.Transforms;

/// <summary>
/// A training step gives up on a sample (mmdet's transforms return None: a crop that leaves no object); the loader draws
/// another sample in its place, as mmdet's dataset fetches another index.
/// </summary>
public sealed class SampleRejectedException(string message) : Exception(message);
