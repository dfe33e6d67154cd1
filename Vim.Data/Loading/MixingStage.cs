using Vim.Data.Datasets;
using Vim.Data.Transforms;

namespace Vim.Data.Loading;

/// <summary>
/// MMDetection's MultiImageMixDataset with one mixing transform, inside the loader: the pipeline's steps before its
/// Normalize run on the sample, then a second sample of the same source, drawn uniformly (the sample itself may come up,
/// as mmdet's draw allows), runs through the same steps with draws of its own, <see cref="ISampleMixer"/> combines the
/// two, and the remaining steps (Normalize onwards) finish the sample. Every draw comes from the sample's own
/// <see cref="Random"/>, seeded by (seed, epoch, index), so which partner a sample gets and how it is augmented do not
/// depend on the worker thread or the number of workers.
/// </summary>
internal sealed class MixingStage
{
    private readonly TransformPipeline _beforeMixing;
    private readonly TransformPipeline _afterMixing;
    private readonly ISampleMixer _mixer;

    public MixingStage(ISampleTransform transform, ISampleMixer mixer)
    {
        if (transform is not TransformPipeline pipeline)
            throw new ArgumentException($"mixing samples needs a {nameof(TransformPipeline)} to split before its Normalize step, got {transform.GetType().Name}.");
        int normalize = pipeline.Steps.ToList().FindIndex(step => step is Normalize);
        if (normalize < 0)
            throw new ArgumentException("mixing samples happens before the pipeline's Normalize step, and the pipeline has none.");
        _beforeMixing = new TransformPipeline(pipeline.Steps.Take(normalize));
        _afterMixing = new TransformPipeline(pipeline.Steps.Skip(normalize));
        _mixer = mixer;
    }

    /// <summary>Runs the whole pipeline on <paramref name="sample"/>, mixing in a partner from <paramref name="source"/> before Normalize.</summary>
    public void Apply(DataSample sample, Random random, ISampleSource source)
    {
        _beforeMixing.Apply(sample, random);
        int partnerIndex = random.Next(source.Count);
        var partnerRandom = new Random(random.Next());
        var partner = source.Load(partnerIndex);
        _beforeMixing.Apply(partner, partnerRandom);
        _mixer.Mix(sample, partner, random);
        _afterMixing.Apply(sample, random);
    }
}
