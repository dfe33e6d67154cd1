using Vim.Data.Datasets;
using Vim.Data.Transforms;

namespace Vim.Data.Loading;

/// <summary>
/// MMDetection's MultiImageMixDataset inside the loader: the pipeline's steps before its first RandomAffine or Normalize
/// step (mmdet's recipes follow Mosaic with RandomAffine) run on the sample, then each mixing transform in turn draws its
/// partners from the same source, uniformly (the sample itself may come up, as mmdet's draw allows), runs each through the
/// same steps with draws of its own and combines them with the sample (<see cref="ISampleMixer"/>), and the remaining steps
/// (that RandomAffine or Normalize onwards) finish the sample. Every draw comes from the
/// sample's own <see cref="Random"/>, seeded by (seed, epoch, index), so which partners a sample gets and how they are
/// augmented do not depend on the worker thread or the number of workers.
/// </summary>
internal sealed class MixingStage
{
    private readonly TransformPipeline _beforeMixing;
    private readonly TransformPipeline _afterMixing;
    private readonly IReadOnlyList<ISampleMixer> _mixers;

    public MixingStage(ISampleTransform transform, IReadOnlyList<ISampleMixer> mixers)
    {
        if (mixers.Count == 0) throw new ArgumentException("a mixing stage needs at least one mixer.", nameof(mixers));
        if (transform is not TransformPipeline pipeline)
            throw new ArgumentException($"mixing samples needs a {nameof(TransformPipeline)} to split before its Normalize step, got {transform.GetType().Name}.");
        var steps = pipeline.Steps.ToList();
        if (!steps.Any(step => step is Normalize))
            throw new ArgumentException("mixing samples happens before the pipeline's Normalize step, and the pipeline has none.");
        int mixing = steps.FindIndex(step => step is RandomAffine or Normalize);
        _beforeMixing = new TransformPipeline(steps.Take(mixing));
        _afterMixing = new TransformPipeline(steps.Skip(mixing));
        _mixers = mixers;
    }

    /// <summary>Runs the whole pipeline on <paramref name="sample"/>, mixing in partners from <paramref name="source"/> before its first RandomAffine or Normalize step.</summary>
    public void Apply(DataSample sample, Random random, ISampleSource source)
    {
        _beforeMixing.Apply(sample, random);
        foreach (var mixer in _mixers)
        {
            var partners = new DataSample[mixer.PartnerCount];
            for (int k = 0; k < partners.Length; k++) partners[k] = DrawPartner(mixer, random, source);
            mixer.Mix(sample, partners, random);
        }
        _afterMixing.Apply(sample, random);
    }

    private DataSample DrawPartner(ISampleMixer mixer, Random random, ISampleSource source)
    {
        for (int draw = 1; ; draw++)
        {
            int partnerIndex = random.Next(source.Count);
            var partnerRandom = new Random(random.Next());
            var partner = source.Load(partnerIndex);
            _beforeMixing.Apply(partner, partnerRandom);
            if (draw >= mixer.MaxPartnerDraws || mixer.Accepts(partner)) return partner;
        }
    }
}
