using System.Threading.Channels;
using Vim.Data.Datasets;
using Vim.Data.Transforms;
using static TorchSharp.torch;

namespace Vim.Data.Loading;

/// <summary>
/// Turns a dataset and a transform pipeline into batches. Worker threads decode and augment whole
/// batches ahead of the consumer through a bounded channel (so memory stays flat), batches arrive in
/// sampler order whatever the number of workers, and every sample's randomness is seeded from
/// (seed, epoch, dataset index), so a run is reproducible and can resume mid-epoch from a
/// <see cref="LoaderPosition"/>.
/// </summary>
public sealed class DataLoader
{
    private readonly ISampleSource _source;
    private readonly ISampleTransform _transform;
    private readonly MixingStage? _mixing;
    /// <summary>The cached mixers' caches of recent epochs; null without a cached mixer.</summary>
    private readonly List<EpochPartnerCaches>? _cachesPerEpoch;

    /// <param name="mixers">Mix partners drawn from <paramref name="source"/> into each sample before the pipeline's first
    /// RandomAffine or Normalize step, one mixer after the other (MMDetection's MultiImageMixDataset: <see cref="Mosaic"/>, <see cref="MixUp"/>,
    /// <see cref="CopyPaste"/>), those that <see cref="ISampleMixer.FollowsRandomAffine">follow RandomAffine</see> right after
    /// that step when it is a RandomAffine; <paramref name="transform"/> must then be a <see cref="TransformPipeline"/> with a Normalize
    /// step. Null or empty: each sample alone through the pipeline.</param>
    public DataLoader(ISampleSource source, ISampleTransform transform, LoaderOptions options, IReadOnlyList<ISampleMixer>? mixers = null)
    {
        if (options.BatchSize <= 0) throw new ArgumentException($"batch_size must be positive, got {options.BatchSize}.");
        if (options.NumWorkers < 0) throw new ArgumentException($"num_workers must be >= 0, got {options.NumWorkers}.");
        if (options.Prefetch <= 0) throw new ArgumentException($"prefetch must be positive, got {options.Prefetch}.");
        if (options.SegPadValue is < 0 or > ushort.MaxValue) throw new ArgumentException($"seg_pad_value must be 0..{ushort.MaxValue}, got {options.SegPadValue}.");
        if (options.SizeDivisor <= 0) throw new ArgumentException($"size_divisor must be positive, got {options.SizeDivisor}.");
        _source = source;
        _transform = transform;
        _mixing = mixers is null || mixers.Count == 0 ? null : new MixingStage(transform, mixers);
        _cachesPerEpoch = mixers is not null && mixers.Any(mixer => mixer.Cache is not null) ? [] : null;
        Options = options;
        Sampler = new DistributedSampler(source.Count, options.Shuffle, options.Seed, options.Rank, options.WorldSize);
        // drop_last (training): an epoch ends when the next global batch (batch × processes) no longer fits in the dataset,
        // the same number of iterations for any split of one global batch over processes, and no iteration reads the
        // sampler's padding. Rank r's strided share of the iteration's global block of the permutation is then, as a set,
        // what one process with the whole global batch reads (DataShard), so a run resumes on another process count.
        BatchesPerEpoch = options.DropLast
            ? source.Count / (options.BatchSize * options.WorldSize)
            : (Sampler.SamplesPerRank + options.BatchSize - 1) / options.BatchSize;
        if (BatchesPerEpoch == 0)
            throw new ArgumentException($"{source.Count} samples make no full global batch of {options.BatchSize} × {options.WorldSize} processes (drop_last).");
    }

    public LoaderOptions Options { get; }
    public DistributedSampler Sampler { get; }

    /// <summary>Batches in one epoch on this rank (the progress-bar length).</summary>
    public int BatchesPerEpoch { get; }

    /// <summary>One epoch, in order.</summary>
    public IEnumerable<Batch> Epoch(int epoch) => Run(new LoaderPosition(epoch, 0), infinite: false);

    /// <summary>Endless stream for iteration-based training, starting at <paramref name="start"/> (e.g. a checkpoint's <see cref="Batch.Next"/>).</summary>
    public IEnumerable<Batch> Infinite(LoaderPosition start = default)
    {
        CheckStart(start);
        return Run(start, infinite: true);
    }

    /// <summary>
    /// The samples the batches from the start of <paramref name="firstEpoch"/> hold, one at a time and in the same order,
    /// loaded and transformed with the same per-sample seeds, before collation turns them into tensors: what the model is
    /// fed, for looking at (`vim data browse`). <paramref name="endless"/> goes on into the following epochs, as training
    /// does; otherwise the stream ends with the epoch. Runs on the calling thread.
    /// </summary>
    public IEnumerable<DataSample> Samples(int firstEpoch, bool endless)
    {
        if (firstEpoch < 0) throw new ArgumentOutOfRangeException(nameof(firstEpoch), $"epoch {firstEpoch} must be >= 0.");
        return Samples(new LoaderPosition(firstEpoch, 0), endless);
    }

    /// <summary>
    /// <see cref="Samples(int, bool)"/> from the batch at <paramref name="start"/>, ending before the batch at
    /// <paramref name="until"/> where given (a training stream that switches its pipeline there: data.pipeline_switch).
    /// </summary>
    public IEnumerable<DataSample> Samples(LoaderPosition start, bool endless, LoaderPosition? until = null)
    {
        CheckStart(start);
        return SamplesFrom(start, endless, until);
    }

    private void CheckStart(LoaderPosition start)
    {
        if (start.BatchIndex < 0 || start.BatchIndex >= BatchesPerEpoch || start.Epoch < 0)
            throw new ArgumentOutOfRangeException(nameof(start), $"position {start} is outside epoch >= 0, batch 0..{BatchesPerEpoch - 1}.");
    }

    private IEnumerable<DataSample> SamplesFrom(LoaderPosition start, bool endless, LoaderPosition? until)
    {
        int[]? order = null;
        int orderEpoch = -1;
        foreach (var p in Positions(start, endless))
        {
            if (p == until) yield break;
            if (orderEpoch != p.Epoch) { order = Sampler.Indices(p.Epoch); orderEpoch = p.Epoch; }
            int first = p.BatchIndex * Options.BatchSize;
            for (int i = first; i < Math.Min(first + Options.BatchSize, order!.Length); i++) yield return Transformed(order[i], p.Epoch, Sampler.GlobalPosition(i));
        }
    }

    private IEnumerable<LoaderPosition> Positions(LoaderPosition start, bool infinite)
    {
        for (int epoch = start.Epoch; ; epoch++)
        {
            for (int b = epoch == start.Epoch ? start.BatchIndex : 0; b < BatchesPerEpoch; b++) yield return new LoaderPosition(epoch, b);
            if (!infinite) yield break;
        }
    }

    private LoaderPosition After(LoaderPosition p) =>
        p.BatchIndex + 1 < BatchesPerEpoch ? p with { BatchIndex = p.BatchIndex + 1 } : new LoaderPosition(p.Epoch + 1, 0);

    private IEnumerable<Batch> Run(LoaderPosition start, bool infinite)
    {
        if (Options.NumWorkers == 0)
        {
            int[]? sequence = null;
            int sequenceEpoch = -1;
            foreach (var p in Positions(start, infinite))
            {
                if (sequenceEpoch != p.Epoch) { sequence = Sampler.Indices(p.Epoch); sequenceEpoch = p.Epoch; }
                yield return ToTensors(BuildHost(p, sequence!));
            }
            yield break;
        }

        using var cancel = new CancellationTokenSource();
        var token = cancel.Token;
        // The order channel is bounded: the producer blocks once Prefetch batches are in flight, which
        // is what keeps memory flat however fast the workers are.
        var order = Channel.CreateBounded<TaskCompletionSource<HostBatch>>(new BoundedChannelOptions(Options.Prefetch) { SingleReader = true, SingleWriter = true });
        var work = Channel.CreateUnbounded<(LoaderPosition Position, int[] Order, TaskCompletionSource<HostBatch> Result)>();
        var producer = Task.Run(async () =>
        {
            try
            {
                int[]? epochOrder = null;
                int orderEpoch = -1;
                foreach (var p in Positions(start, infinite))
                {
                    if (orderEpoch != p.Epoch) { epochOrder = Sampler.Indices(p.Epoch); orderEpoch = p.Epoch; }
                    var result = new TaskCompletionSource<HostBatch>(TaskCreationOptions.RunContinuationsAsynchronously);
                    await order.Writer.WriteAsync(result, token).ConfigureAwait(false);
                    await work.Writer.WriteAsync((p, epochOrder!, result), token).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
            }
            finally
            {
                order.Writer.TryComplete();
                work.Writer.TryComplete();
            }
        }, token);
        var workers = new Task[Options.NumWorkers];
        for (int w = 0; w < workers.Length; w++)
        {
            workers[w] = Task.Factory.StartNew(() =>
            {
                var reader = work.Reader;
                try
                {
                    while (reader.WaitToReadAsync(token).AsTask().GetAwaiter().GetResult())
                    {
                        while (reader.TryRead(out var job))
                        {
                            if (token.IsCancellationRequested) { job.Result.TrySetCanceled(token); continue; }
                            try
                            {
                                job.Result.TrySetResult(BuildHost(job.Position, job.Order));
                            }
                            catch (Exception e)
                            {
                                job.Result.TrySetException(e);
                            }
                        }
                    }
                }
                catch (OperationCanceledException) when (token.IsCancellationRequested)
                {
                }
            }, token, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }

        try
        {
            var reader = order.Reader;
            while (reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
            {
                while (reader.TryRead(out var pending))
                {
                    var host = pending.Task.GetAwaiter().GetResult();
                    yield return ToTensors(host);
                }
            }
            producer.GetAwaiter().GetResult();
        }
        finally
        {
            cancel.Cancel();
            while (order.Reader.TryRead(out var abandoned)) abandoned.TrySetCanceled();
            try
            {
                Task.WaitAll([producer, .. workers]);
            }
            catch (AggregateException e) when (e.InnerExceptions.All(x => x is OperationCanceledException))
            {
            }
        }
    }

    /// <summary>Loads, transforms and collates one batch into plain arrays (safe on any thread).</summary>
    private HostBatch BuildHost(LoaderPosition position, int[] order)
    {
        int first = position.BatchIndex * Options.BatchSize;
        int count = Math.Min(Options.BatchSize, order.Length - first);
        var samples = new DataSample[count];
        for (int i = 0; i < count; i++) samples[i] = Transformed(order[first + i], position.Epoch, Sampler.GlobalPosition(first + i));
        return Collate(samples, position);
    }

    /// <summary>mmengine's BaseDataset.max_refetch: how many other samples the loader tries after a step gives one up.</summary>
    public const int MaxRefetch = 1000;

    /// <summary>
    /// Dataset sample <paramref name="index"/> through the pipeline (and the mixing stage, with a mixer), its randomness
    /// seeded by (seed, epoch, index); where a step gives it up (<see cref="SampleRejectedException"/>), another sample drawn
    /// by that generator in its place.
    /// </summary>
    /// <remarks>
    /// With a cached mixer, <paramref name="globalPosition"/> is the sample's place in the epoch's global order, whose cache
    /// it mixes from, and <paramref name="stopBefore"/> (a cache entry re-produced) ends the run as it reaches that mixer:
    /// the sample's own run up to there, refetches included, so the entry equals what its own run handed the cache.
    /// </remarks>
    private DataSample Transformed(int index, int epoch, int globalPosition, ISampleMixer? stopBefore = null)
    {
        var random = new Random(SampleSeeds.Mix(Options.Seed, epoch, index));
        CachedPartners? cached = null;
        if (_cachesPerEpoch is not null)
        {
            var caches = CachesOf(epoch);
            cached = new CachedPartners(caches, globalPosition, (position, mixer) => Transformed(caches.GlobalOrder[position], epoch, position, mixer));
        }
        DataSample sample;
        for (int fetch = 0; ; fetch++)
        {
            sample = _source.Load(index);
            try
            {
                if (_mixing is null) _transform.Apply(sample, random);
                else if (!_mixing.Apply(sample, random, _source, cached, stopBefore)) return sample;
                break;
            }
            catch (SampleRejectedException rejected)
            {
                if (fetch == MaxRefetch)
                    throw new InvalidOperationException($"the training pipeline gave up on {MaxRefetch + 1} samples in a row, the last: {rejected.Message}; " +
                        "check the steps that give samples up (random_crop's allow_negative_crop, filter_annotations' keep_empty) against the data", rejected);
                // mmdet's BaseDataset: another index, drawn uniformly (here by the sample's own generator, so it stays reproducible).
                index = random.Next(_source.Count);
            }
        }
        if (sample.NormalizedImage is null)
            throw new InvalidOperationException($"{sample.FilePath}: the transform pipeline must end with Normalize (the loader batches float images).");
        return sample;
    }

    /// <summary>
    /// The caches of <paramref name="epoch"/>, evolved over the whole epoch's global order once (no sample is loaded for
    /// that) and kept for the epoch and the one before, which worker threads may still be finishing.
    /// </summary>
    private EpochPartnerCaches CachesOf(int epoch)
    {
        lock (_cachesPerEpoch!)
        {
            var found = _cachesPerEpoch.Find(caches => caches.Epoch == epoch);
            if (found is not null) return found;
            var order = Sampler.GlobalOrder(epoch);
            var contents = new Dictionary<ISampleMixer, int[][]>();
            var mixers = _mixing!.Mixers;
            for (int slot = 0; slot < mixers.Count; slot++)
                if (mixers[slot].Cache is { } settings)
                    contents[mixers[slot]] = PartnerCache.Evolve(order.Length, settings, new Random(PartnerCache.PopSeed(Options.Seed, epoch, slot)));
            found = new EpochPartnerCaches(epoch, order, contents);
            _cachesPerEpoch.Add(found);
            if (_cachesPerEpoch.Count > 2) _cachesPerEpoch.RemoveAt(0);
            return found;
        }
    }

    private HostBatch Collate(DataSample[] samples, LoaderPosition position)
    {
        int d = Options.SizeDivisor;
        int h = (samples.Max(s => s.Height) + d - 1) / d * d;
        int w = (samples.Max(s => s.Width) + d - 1) / d * d;
        int plane = h * w;
        var images = new float[samples.Length * 3 * plane];
        long[]? labels = null;
        if (Options.Kind == BatchKind.Segmentation)
        {
            labels = new long[samples.Length * plane];
            Array.Fill(labels, (long)Options.SegPadValue);
        }
        var targets = Options.Kind == BatchKind.Detection ? new List<HostTarget>(samples.Length) : null;
        var metas = new List<SampleMeta>(samples.Length);
        for (int n = 0; n < samples.Length; n++)
        {
            var s = samples[n];
            var chw = s.NormalizedImage!;
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < s.Height; y++)
                    Array.Copy(chw, (c * s.Height + y) * s.Width, images, ((n * 3 + c) * h + y) * w, s.Width);
            if (labels is not null)
            {
                var map = s.LabelMap ?? throw new InvalidOperationException($"{s.FilePath}: a segmentation batch needs a label map.");
                for (int y = 0; y < s.Height; y++)
                    for (int x = 0; x < s.Width; x++)
                        labels[(long)n * plane + y * w + x] = map[y * s.Width + x];
            }
            if (targets is not null)
            {
                byte[]? masks = null;
                if (s.Masks is not null)
                {
                    int area = s.Height * s.Width;
                    masks = new byte[s.Masks.Count * area];
                    for (int i = 0; i < s.Masks.Count; i++) Buffer.BlockCopy(s.Masks[i].Pixels, 0, masks, i * area, area);
                }
                targets.Add(new HostTarget(s.Boxes, s.Labels.Select(l => (long)l).ToArray(), s.IsCrowd, masks, s.Height, s.Width,
                    s.Masks?.Select(m => m.Outlines).ToArray()));
            }
            metas.Add(new SampleMeta(s.ImageId, s.FilePath, s.OriginalHeight, s.OriginalWidth, s.ContentHeight, s.ContentWidth, s.ScaleX, s.ScaleY, s.Flipped));
        }
        return new HostBatch { Position = position, Height = h, Width = w, Images = images, Labels = labels, Targets = targets, Metas = metas };
    }

    /// <summary>Runs on the consumer thread, so the tensors belong to its dispose scopes.</summary>
    private Batch ToTensors(HostBatch host)
    {
        long n = host.Metas.Count;
        var images = tensor(host.Images, [n, 3, host.Height, host.Width]);
        var labels = host.Labels is null ? null : tensor(host.Labels, [n, host.Height, host.Width]);
        List<DetectionTarget>? targets = null;
        if (host.Targets is not null)
        {
            targets = new List<DetectionTarget>(host.Targets.Count);
            foreach (var t in host.Targets)
            {
                long k = t.Labels.Length;
                targets.Add(new DetectionTarget(
                    tensor(t.Boxes, [k, 4]),
                    tensor(t.Labels, [k]),
                    tensor(t.IsCrowd, [k]),
                    t.Masks is null ? null : tensor(t.Masks, [k, t.MaskHeight, t.MaskWidth]),
                    t.Outlines));
            }
        }
        return new Batch(images, labels, targets, host.Metas, host.Position, After(host.Position));
    }
}
