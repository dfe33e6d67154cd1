namespace Vim.Data.Transforms;

/// <summary>
/// mmcv's RandomChoice (DETR's augmentation): each sample runs one of <see cref="Transforms"/>' sub-pipelines, drawn
/// uniformly or with the probabilities <see cref="Prob"/>.
/// </summary>
public sealed record RandomChoiceOptions
{
    /// <summary>The sub-pipelines, each a list of steps as in data.train_pipeline; at least one, none empty; required.</summary>
    public List<List<TransformStepConfig>>? Transforms { get; init; }

    /// <summary>One probability per sub-pipeline, summing to 1; null draws them uniformly.</summary>
    public double[]? Prob { get; init; }
}
