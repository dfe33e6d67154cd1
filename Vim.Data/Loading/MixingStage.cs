using Vim.Data.Datasets;
using Vim.Data.Transforms;

namespace Vim.Data.Loading;

/// <summary>
/// MMDetection's MultiImageMixDataset inside the loader: the pipeline's steps before its first RandomAffine or Normalize
/// step (the mixing point; mmdet's recipes follow Mosaic with RandomAffine) run on the sample, then each mixing transform
/// in turn draws its partners from the same source, uniformly (the sample itself may come up, as mmdet's draw allows),
/// runs each through those same steps with draws of its own and combines them with the sample (<see cref="ISampleMixer"/>),
/// and the remaining steps finish the sample. A mixer that <see cref="ISampleMixer.FollowsRandomAffine">follows
/// RandomAffine</see> (MixUp) mixes after the first RandomAffine step instead, when the mixing point is one: YOLOX's
/// Mosaic → RandomAffine → MixUp, its partners still prepared by the steps before the mixing point, as mmdet's go through
/// the loading pipeline only. Every draw comes from the sample's own <see cref="Random"/>, seeded by (seed, epoch, index),
/// so which partners a sample gets and how they are augmented do not depend on the worker thread or the number of workers.
/// A cached mixer (<see cref="ISampleMixer.Cache"/>, mmdet 3.x's CachedMosaic / CachedMixUp) takes its partners from the
/// epoch's cache at the sample's stream position instead (<see cref="PartnerCache"/>), each re-produced by the loader as its
/// own run reached that mixer.
/// </summary>
internal sealed class MixingStage
{
    private readonly TransformPipeline _beforeMixing;
    private readonly IReadOnlyList<ISampleMixer> _mixersAtMixingPoint;
    private readonly TransformPipeline _randomAffine;
    private readonly IReadOnlyList<ISampleMixer> _mixersAfterRandomAffine;
    private readonly TransformPipeline _afterMixing;

    public MixingStage(ISampleTransform transform, IReadOnlyList<ISampleMixer> mixers)
    {
        if (mixers.Count == 0) throw new ArgumentException("a mixing stage needs at least one mixer.", nameof(mixers));
        if (transform is not TransformPipeline pipeline)
            throw new ArgumentException($"mixing samples needs a {nameof(TransformPipeline)} to split before its Normalize step, got {transform.GetType().Name}.");
        var steps = pipeline.Steps.ToList();
        if (!steps.Any(step => step is Normalize))
            throw new ArgumentException("mixing samples happens before the pipeline's Normalize step, and the pipeline has none.");
        int mixing = steps.FindIndex(step => step is RandomAffine or Normalize);
        bool splitAtAffine = steps[mixing] is RandomAffine && mixers.Any(mixer => mixer.FollowsRandomAffine);
        int afterMixing = splitAtAffine ? mixing + 1 : mixing;
        _beforeMixing = new TransformPipeline(steps.Take(mixing));
        _randomAffine = new TransformPipeline(steps.Take(afterMixing).Skip(mixing));
        _afterMixing = new TransformPipeline(steps.Skip(afterMixing));
        _mixersAtMixingPoint = mixers.Where(mixer => !splitAtAffine || !mixer.FollowsRandomAffine).ToList();
        _mixersAfterRandomAffine = mixers.Where(mixer => splitAtAffine && mixer.FollowsRandomAffine).ToList();
    }

    /// <summary>
    /// Runs the whole pipeline on <paramref name="sample"/>, mixing in partners from <paramref name="source"/> before its
    /// first RandomAffine or Normalize step, and those of the mixers that follow RandomAffine right after that step.
    /// </summary>
    public void Apply(DataSample sample, Random random, ISampleSource source) => Apply(sample, random, source, cached: null, stopBefore: null);

    /// <summary>
    /// <see cref="Apply(DataSample, Random, ISampleSource)"/> with the partners of cached mixers
    /// (<see cref="ISampleMixer.Cache"/>) from <paramref name="cached"/>; with <paramref name="stopBefore"/>, the sample as it
    /// reaches that mixer, which is what that mixer's cache holds of it: false when it stopped there.
    /// </summary>
    public bool Apply(DataSample sample, Random random, ISampleSource source, CachedPartners? cached, ISampleMixer? stopBefore)
    {
        _beforeMixing.Apply(sample, random);
        if (!Mix(_mixersAtMixingPoint, sample, random, source, cached, stopBefore)) return false;
        _randomAffine.Apply(sample, random);
        if (!Mix(_mixersAfterRandomAffine, sample, random, source, cached, stopBefore)) return false;
        _afterMixing.Apply(sample, random);
        return true;
    }

    /// <summary>The mixers in the order they run.</summary>
    public IReadOnlyList<ISampleMixer> Mixers => [.. _mixersAtMixingPoint, .. _mixersAfterRandomAffine];

    private bool Mix(IReadOnlyList<ISampleMixer> mixers, DataSample sample, Random random, ISampleSource source, CachedPartners? cached, ISampleMixer? stopBefore)
    {
        foreach (var mixer in mixers)
        {
            if (mixer == stopBefore) return false;
            if (mixer.Cache is { } cache)
            {
                MixCached(mixer, cache, sample, random, cached ?? throw new InvalidOperationException($"{mixer.GetType().Name} is cached, and the loader passed no cache."));
                continue;
            }
            var partners = new DataSample[mixer.PartnerCount];
            for (int k = 0; k < partners.Length; k++) partners[k] = DrawPartner(mixer, random, source);
            mixer.Mix(sample, partners, random);
        }
        return true;
    }

    /// <summary>
    /// mmdet's CachedMosaic / CachedMixUp after the sample joined the cache: too few cached, or the prob test failed, and the
    /// sample passes unchanged; else each partner is a uniformly drawn cache entry other than the sample's own (redrawn up to MaxPartnerDraws times
    /// until one is accepted, as CachedMixUp's get_indexes), re-produced as the pipeline made it up to this mixer.
    /// </summary>
    private static void MixCached(ISampleMixer mixer, PartnerCacheSettings settings, DataSample sample, Random random, CachedPartners cached)
    {
        var cache = cached.Caches.Contents[mixer][cached.Position];
        if (cache.Length < settings.MinimumToMix) return;
        if (random.NextDouble() > settings.Prob) return;
        var partners = new DataSample[mixer.PartnerCount];
        for (int k = 0; k < partners.Length; k++)
            for (int draw = 1; ; draw++)
            {
                // numpy's randint(0, len - 1) excludes its bound: never the last entry, the sample itself.
                var partner = cached.Produce(cache[random.Next(cache.Length - 1)], mixer);
                if (draw >= mixer.MaxPartnerDraws || mixer.Accepts(partner)) { partners[k] = partner; break; }
            }
        mixer.MixChosen(sample, partners, random);
    }

    private DataSample DrawPartner(ISampleMixer mixer, Random random, ISampleSource source)
    {
        for (int draw = 1, givenUp = 0; ; draw++)
        {
            int partnerIndex = random.Next(source.Count);
            var partnerRandom = new Random(random.Next());
            var partner = source.Load(partnerIndex);
            try
            {
                _beforeMixing.Apply(partner, partnerRandom);
            }
            catch (SampleRejectedException) when (++givenUp <= DataLoader.MaxRefetch)
            {
                // mmdet's partners come from the dataset, which fetches another index for one its pipeline gives up; the
                // sample being mixed stays. A given-up partner is no draw the mixer refused, so it does not count as one.
                draw--;
                continue;
            }
            if (draw >= mixer.MaxPartnerDraws || mixer.Accepts(partner)) return partner;
        }
    }
}

/// <summary>
/// What a sample's cached mixers draw from: the epoch's caches, the sample's own stream position in them, and how to
/// re-produce the entry at a stream position as it reached a mixer.
/// </summary>
internal sealed record CachedPartners(EpochPartnerCaches Caches, int Position, Func<int, ISampleMixer, DataSample> Produce);
