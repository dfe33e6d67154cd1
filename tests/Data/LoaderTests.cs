using NUnit.Framework;
using TorchSharp;
using Vim.Data.Datasets;
using Vim.Data.Loading;
using Vim.Data.Transforms;
using static TorchSharp.torch;

namespace Vim.Tests.Data;

public class LoaderTests
{
    /// <summary>In-memory samples of varying size whose pixels and labels encode their index.</summary>
    private sealed class SyntheticSource(int count, int failAt = -1) : ISampleSource
    {
        private int _loads;

        public int Count => count;
        public int Loads => Volatile.Read(ref _loads);

        public DataSample Load(int index)
        {
            Interlocked.Increment(ref _loads);
            if (index == failAt) throw new Vim.Core.VimException($"sample {index}: broken on purpose");
            int h = 20 + index % 5, w = 24 + index % 7;
            var image = new byte[h * w * 3];
            Array.Fill(image, (byte)(index % 250));
            var labels = new ushort[h * w];
            Array.Fill(labels, (ushort)(index % 3));
            return new DataSample(index, $"mem/{index}", image, h, w)
            {
                LabelMap = labels,
                Boxes = [1, 2, 5, 6],
                Labels = [index % 4],
                IsCrowd = [false],
                AnnotationIds = [index],
                Masks = [new InstanceMask(h, w, () => Enumerable.Repeat((byte)1, h * w).ToArray())],
            };
        }
    }

    private static readonly ISampleTransform Augment = new TransformPipeline(
        new RandomFlip(new RandomFlipOptions()),
        new PhotoMetricDistortion(new PhotoMetricDistortionOptions()),
        new Normalize(new NormalizeOptions()));

    private static List<(long[] Ids, float Sum, LoaderPosition Position)> Drain(IEnumerable<Batch> batches, int take = int.MaxValue)
    {
        var result = new List<(long[], float, LoaderPosition)>();
        foreach (var b in batches)
        {
            using var scope = NewDisposeScope();
            using (b) result.Add((b.Metas.Select(m => m.ImageId).ToArray(), b.Images.sum().item<float>(), b.Position));
            if (result.Count == take) break;
        }
        return result;
    }

    [Test]
    public void SamplerShardsDisjointlyAndPadsByWrapping()
    {
        var all = new List<int>();
        for (int rank = 0; rank < 3; rank++)
        {
            var s = new DistributedSampler(12, shuffle: true, seed: 5, rank: rank, worldSize: 3);
            Assert.That(s.Indices(0), Has.Length.EqualTo(4));
            all.AddRange(s.Indices(0));
        }
        Assert.That(all.Order(), Is.EqualTo(Enumerable.Range(0, 12)), "ranks partition the epoch");
        var padded = Enumerable.Range(0, 3).SelectMany(r => new DistributedSampler(10, false, 0, r, 3).Indices(0)).ToArray();
        Assert.That(padded.Order(), Is.EqualTo(new[] { 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 1 }.Order()), "10 samples over 3 ranks: wrap two");
        var s0 = new DistributedSampler(50, seed: 5);
        Assert.That(s0.Indices(3), Is.EqualTo(new DistributedSampler(50, seed: 5).Indices(3)), "same seed and epoch, same order");
        Assert.That(s0.Indices(3), Is.Not.EqualTo(s0.Indices(4)), "reshuffled each epoch");
        Assert.That(s0.Indices(3).Order(), Is.EqualTo(Enumerable.Range(0, 50)));
    }

    [Test]
    public void WorkersProduceExactlyTheSameBatchesAsTheConsumerThread()
    {
        var source = new SyntheticSource(23);
        var options = new LoaderOptions { BatchSize = 4, Seed = 9, Kind = BatchKind.Segmentation };
        var serial = Drain(new DataLoader(source, Augment, options with { NumWorkers = 0 }).Epoch(2));
        var parallel = Drain(new DataLoader(source, Augment, options with { NumWorkers = 2, Prefetch = 2 }).Epoch(2));
        Assert.That(serial, Has.Count.EqualTo(5), "23 samples, batch 4, drop_last");
        Assert.That(parallel.Select(p => p.Ids), Is.EqualTo(serial.Select(p => p.Ids)));
        Assert.That(parallel.Select(p => p.Sum), Is.EqualTo(serial.Select(p => p.Sum)), "per-sample seeds make augmentation independent of threads");
        var other = Drain(new DataLoader(source, Augment, options with { NumWorkers = 2 }).Epoch(3));
        Assert.That(other.Select(p => p.Ids), Is.Not.EqualTo(serial.Select(p => p.Ids)));
    }

    [Test]
    public void ProcessesTogetherReadWhatOneProcessWithTheWholeGlobalBatchReads()
    {
        // 10 samples, a global batch of 4: two iterations per epoch however the 4 are split over processes, and the
        // processes' samples of each iteration are together the one-process batch (no padding, no sample twice).
        var source = new SyntheticSource(10);
        var single = new DataLoader(source, Augment, new LoaderOptions { BatchSize = 4, Seed = 3, NumWorkers = 0 });
        var ranks = Enumerable.Range(0, 4)
            .Select(r => new DataLoader(source, Augment, new LoaderOptions { BatchSize = 1, Seed = 3, NumWorkers = 0, Rank = r, WorldSize = 4 })).ToList();
        Assert.That(single.BatchesPerEpoch, Is.EqualTo(2));
        Assert.That(ranks.Select(l => l.BatchesPerEpoch), Is.All.EqualTo(2), "ceil(10 / 4) = 3 samples per rank would make 3 batches of 1");
        var expected = Drain(single.Infinite(), take: 6);
        var perRank = ranks.Select(l => Drain(l.Infinite(), take: 6)).ToList();
        for (int i = 0; i < 6; i++)
        {
            var together = perRank.SelectMany(r => r[i].Ids).Order().ToArray();
            Assert.That(together, Is.EqualTo(expected[i].Ids.Order().ToArray()), $"iteration {i}");
            Assert.That(perRank.Select(r => r[i].Position), Is.All.EqualTo(expected[i].Position));
        }
    }

    [Test]
    public void APositionPastTheEpochsLastGlobalBatchStartsTheNextEpoch()
    {
        // Saved by a run with a global batch of 2 after 8 of 10 samples; with a global batch of 4 no batch fits in the
        // 2 samples left, so the run continues with epoch 1, as it would have had it used 4 throughout.
        var source = new SyntheticSource(10);
        var loader = new DataLoader(source, Augment, new LoaderOptions { BatchSize = 4, Seed = 3, NumWorkers = 0 });
        using var batches = new LoaderBatchSource(loader, new Vim.Core.Engine.DataPosition(0, 8), globalBatch: 4);
        using var first = batches.Next();
        Assert.That(first.Position, Is.EqualTo(new LoaderPosition(1, 0)));
        Assert.That(batches.Position, Is.EqualTo(new Vim.Core.Engine.DataPosition(1, 4)));
    }

    [Test]
    public void InfiniteIterationResumesExactlyFromACheckpointedPosition()
    {
        var source = new SyntheticSource(10);
        var loader = new DataLoader(source, Augment, new LoaderOptions { BatchSize = 3, Seed = 1, NumWorkers = 2 });
        Assert.That(loader.BatchesPerEpoch, Is.EqualTo(3));
        var full = Drain(loader.Infinite(), take: 8);
        Assert.That(full.Select(b => b.Position), Is.EqualTo(new[]
        {
            new LoaderPosition(0, 0), new(0, 1), new(0, 2), new(1, 0), new(1, 1), new(1, 2), new(2, 0), new(2, 1),
        }));
        LoaderPosition checkpoint;
        using (var b = loader.Infinite().Skip(3).First()) checkpoint = b.Next;
        Assert.That(checkpoint, Is.EqualTo(new LoaderPosition(1, 1)));
        var resumed = Drain(loader.Infinite(checkpoint), take: 4);
        Assert.That(resumed.Select(b => b.Ids), Is.EqualTo(full.Skip(4).Select(b => b.Ids)));
        Assert.That(resumed.Select(b => b.Sum), Is.EqualTo(full.Skip(4).Select(b => b.Sum)));
    }

    [Test]
    public void SegmentationBatchesArePaddedWithZeroImagesAndIgnoreLabels()
    {
        var source = new SyntheticSource(4);
        var loader = new DataLoader(source, new Normalize(new NormalizeOptions { Mean = [0, 0, 0], Std = [1, 1, 1] }),
            new LoaderOptions { BatchSize = 4, Shuffle = false, NumWorkers = 1, SizeDivisor = 8 });
        using var scope = NewDisposeScope();
        using var batch = loader.Epoch(0).Single();
        // Sizes 20×24, 21×25, 22×26, 23×27 → max 23×27 → padded to 24×32.
        Assert.That(batch.Images.shape, Is.EqualTo(new long[] { 4, 3, 24, 32 }));
        Assert.That(batch.Images.dtype, Is.EqualTo(ScalarType.Float32));
        Assert.That(batch.Labels!.shape, Is.EqualTo(new long[] { 4, 24, 32 }));
        Assert.That(batch.Labels.dtype, Is.EqualTo(ScalarType.Int64));
        Assert.That(batch.Images[1, 0, 20, 24].item<float>(), Is.EqualTo(1f), "sample 1 pixel value = its index");
        Assert.That(batch.Images[1, 0, 21, 24].item<float>(), Is.Zero, "below sample 1's 21 rows: padding");
        Assert.That(batch.Images[1, 2, 0, 25].item<float>(), Is.Zero, "right of its 25 columns: padding");
        Assert.That(batch.Labels[2, 21, 25].item<long>(), Is.EqualTo(2));
        Assert.That(batch.Labels[2, 22, 25].item<long>(), Is.EqualTo(255));
        Assert.That(batch.Metas[3].ContentWidth, Is.EqualTo(27));
    }

    [Test]
    public void DetectionBatchesCarryPerImageTargets()
    {
        var source = new SyntheticSource(6);
        var loader = new DataLoader(source, new Normalize(new NormalizeOptions()),
            new LoaderOptions { BatchSize = 3, Shuffle = false, NumWorkers = 2, Kind = BatchKind.Detection });
        using var scope = NewDisposeScope();
        using var batch = loader.Epoch(0).First();
        Assert.That(batch.Labels, Is.Null);
        Assert.That(batch.Targets, Has.Count.EqualTo(3));
        var t = batch.Targets![2];
        Assert.That(t.Boxes.shape, Is.EqualTo(new long[] { 1, 4 }));
        Assert.That(t.Boxes.data<float>().ToArray(), Is.EqualTo(new float[] { 1, 2, 5, 6 }));
        Assert.That(t.Labels.item<long>(), Is.EqualTo(2L));
        Assert.That(t.IsCrowd.dtype, Is.EqualTo(ScalarType.Bool));
        Assert.That(t.Masks!.shape, Is.EqualTo(new long[] { 1, 22, 26 }));
        Assert.That(t.Masks.sum().item<long>(), Is.EqualTo(22 * 26));
    }

    [Test]
    public void WorkerErrorsReachTheConsumer()
    {
        var loader = new DataLoader(new SyntheticSource(12, failAt: 7), Augment,
            new LoaderOptions { BatchSize = 2, Shuffle = false, NumWorkers = 2 });
        var e = Assert.Throws<Vim.Core.VimException>(() => Drain(loader.Epoch(0)))!;
        Assert.That(e.Message, Does.Contain("sample 7"));
    }

    [Test]
    public void PrefetchIsBoundedWhileTheConsumerIsSlow()
    {
        var source = new SyntheticSource(400);
        var loader = new DataLoader(source, Augment, new LoaderOptions { BatchSize = 2, NumWorkers = 2, Prefetch = 3 });
        using (var e = loader.Infinite().GetEnumerator())
        {
            Assert.That(e.MoveNext(), Is.True);
            e.Current.Dispose();
            Thread.Sleep(300);
            // At most: the consumed batch, Prefetch queued, one more per worker being built → 2·(1+3+2).
            Assert.That(source.Loads, Is.LessThanOrEqualTo(2 * (1 + 3 + 2)));
        }
        int afterStop = source.Loads;
        Thread.Sleep(100);
        Assert.That(source.Loads, Is.EqualTo(afterStop), "disposing the enumerator stops the workers");
    }

    [Test]
    public void MemoryStaysFlatOverEpochs()
    {
        var source = new SyntheticSource(300);
        var loader = new DataLoader(source, Augment, new LoaderOptions { BatchSize = 4, NumWorkers = 2, Kind = BatchKind.Detection });
        // Other tests' undisposed temporaries would otherwise be finalised mid-measurement.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long liveBefore = Tensor.TotalCount;
        long[] managed = new long[3];
        for (int epoch = 0; epoch < 3; epoch++)
        {
            foreach (var batch in loader.Epoch(epoch))
            {
                using var scope = NewDisposeScope();
                batch.Dispose();
            }
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
            managed[epoch] = GC.GetTotalMemory(forceFullCollection: true);
            Assert.That(Tensor.TotalCount, Is.EqualTo(liveBefore), $"epoch {epoch}: tensors leaked");
        }
        Assert.That(managed[2] - managed[0], Is.LessThan(8L * 1024 * 1024), $"managed heap grew from {managed[0]} to {managed[2]} bytes");
    }
}
