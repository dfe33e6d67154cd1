using System.Collections.Concurrent;
using NUnit.Framework;
using Vim.Data.Datasets;
using Vim.Data.Demo;
using Vim.Data.Evaluation;
using Vim.Data.Loading;
using Vim.Detection;
using Vim.Segmentation;
using Vim.Tests.Detection;
using Vim.Tests.Segmentation;
using static TorchSharp.torch;

namespace Vim.Tests.Data;

/// <summary>
/// Multi-scale test-time augmentation reads one view per scale of every image (`LockstepBatches.Views`): the views of
/// an image share one load (decode) of it, and are exactly the views that one loader per scale, each decoding the
/// image itself (the way evaluation read them before), gives: the same pixels, metas, predictions and metrics.
/// </summary>
public class TestViewDecodeTests
{
    private DataTestFiles _files = null!;

    [SetUp]
    public void SetUp() => _files = new DataTestFiles();

    [TearDown]
    public void TearDown() => _files.Dispose();

    /// <summary>A dataset that counts how often each sample is loaded (each load decodes the image file).</summary>
    private sealed class CountingSource(ISampleSource inner) : ISampleSource
    {
        private readonly ConcurrentDictionary<int, int> _loads = new();

        public int Count => inner.Count;

        public DataSample Load(int index)
        {
            _loads.AddOrUpdate(index, 1, (_, n) => n + 1);
            return inner.Load(index);
        }

        public int LoadsOf(int index) => _loads.GetValueOrDefault(index);
    }

    /// <summary>The views as evaluation read them before they shared a decode: one loader per pipeline over the dataset, each loading every image.</summary>
    private static IEnumerable<Batch[]> SeparatelyDecodedViews(ISampleSource images, IReadOnlyList<Vim.Data.Transforms.TransformPipeline> pipelines,
        Func<ISampleSource, Vim.Data.Transforms.TransformPipeline, DataLoader> loader) =>
        LockstepBatches.Read(pipelines.Select(pipeline => loader(images, pipeline).Epoch(0)));

    private static float[] Pixels(Tensor t) => t.contiguous().data<float>().ToArray();

    /// <summary>Both streams hold the same views of the same images: every batch's pixels to the bit and its metas.</summary>
    private static void AssertSameViews(IReadOnlyList<Batch[]> shared, IReadOnlyList<Batch[]> separate, int scales)
    {
        Assert.That(shared, Has.Count.EqualTo(separate.Count));
        for (int i = 0; i < shared.Count; i++)
        {
            Assert.That(shared[i], Has.Length.EqualTo(scales));
            for (int v = 0; v < scales; v++)
            {
                Assert.That(shared[i][v].Images.shape, Is.EqualTo(separate[i][v].Images.shape), $"image {i}, view {v}");
                Assert.That(Pixels(shared[i][v].Images), Is.EqualTo(Pixels(separate[i][v].Images)), $"image {i}, view {v}");
                Assert.That(shared[i][v].Metas, Is.EqualTo(separate[i][v].Metas), $"image {i}, view {v}");
            }
        }
    }

    private static void DisposeAll(IEnumerable<Batch[]> views)
    {
        foreach (var batches in views)
            foreach (var batch in batches) batch.Dispose();
    }

    /// <summary>
    /// Segmentation with model.seg_test.scales [0.5, 1.0, 1.5] and flip, read by two worker threads per loader: each
    /// validation image is loaded once (three times before), the views are identical to separately decoded ones, and so
    /// are the predictions and the metrics computed from them.
    /// </summary>
    [Test]
    public void SegmentationScalesShareOneDecodeAndPredictTheSame()
    {
        DemoDatasetGenerator.Generate(new DemoOptions { Kind = DemoKind.Ade, OutputDir = _files.PathOf("ade"), TrainImages = 2, ValImages = 3, Width = 64, Height = 48, Seed = 4 });
        var config = SegmentationTaskTests.ConfigAt(_files.Root);
        config.Data.NumWorkers = 2;
        config.Model.SegTest.Scales = [0.5, 1.0, 1.5];
        config.Model.SegTest.Flip = true;
        using var task = new SegmentationTask(config, TextWriter.Null, SegmentationTaskTests.TinyModel);
        var pipelines = task.Data.TestPipelines();
        Assert.That(pipelines, Has.Count.EqualTo(3));

        var counted = new CountingSource(task.ValSet.ImagesOnly);
        var shared = task.EvaluationViews(counted).ToList();
        var separatelyCounted = new CountingSource(task.ValSet.ImagesOnly);
        var separate = SeparatelyDecodedViews(separatelyCounted, pipelines, task.Data.EvaluationLoader).ToList();
        try
        {
            for (int i = 0; i < task.ValSet.Count; i++)
            {
                Assert.That(counted.LoadsOf(i), Is.EqualTo(1), $"image {i}: one decode for its three views");
                Assert.That(separatelyCounted.LoadsOf(i), Is.EqualTo(3), $"image {i}: the separate loaders decode it once each");
            }
            AssertSameViews(shared, separate, scales: 3);

            task.Model.eval();
            var metric = new SegmentationMetric(DemoDatasetGenerator.ClassNames.Count, config.Model.SegHead.IgnoreIndex);
            using (var noGrad = no_grad())
                for (int i = 0; i < shared.Count; i++)
                {
                    using var scope = NewDisposeScope();
                    var meta = separate[i][0].Metas[0];
                    var before = task.Predict(separate[i].Select(b => b.Images).ToList(), meta);
                    Assert.That(task.Predict(shared[i].Select(b => b.Images).ToList(), shared[i][0].Metas[0]), Is.EqualTo(before), $"image {i}: the prediction");
                    metric.Update(before, task.ValSet.LoadLabelMap((int)meta.ImageId).Labels);
                }
            var separately = metric.Compute();
            var evaluated = task.EvaluateFull(null);
            Assert.That(evaluated.MIoU, Is.EqualTo(separately.MIoU), "mIoU of the evaluation (shared decodes) and of the separately decoded views");
            Assert.That(evaluated.AAcc, Is.EqualTo(separately.AAcc));
            Assert.That(evaluated.MAcc, Is.EqualTo(separately.MAcc));
        }
        finally
        {
            DisposeAll(shared);
            DisposeAll(separate);
        }
    }

    /// <summary>
    /// Detection with model.det_test.scales [0.75, 1.0] and flip, in the consumer thread (data.num_workers 0): each
    /// validation image is loaded once, its views are those of separately decoded loaders, and so are its detections.
    /// </summary>
    [Test]
    public void DetectionScalesShareOneDecodeAndDetectTheSame()
    {
        var config = TrainSplitListTests.DemoCoco(_files, trainImages: 2, valImages: 3, "train");
        config.Model.DetTest.Scales = [0.75, 1.0];
        config.Model.DetTest.Flip = true;
        using var task = new DetectionTask(config, TextWriter.Null, DetectionTaskTests.TinyDetector);
        var pipelines = task.Data.TestPipelines();
        Assert.That(pipelines, Has.Count.EqualTo(2));

        var counted = new CountingSource(task.ValSet);
        var shared = task.Data.EvaluationViews(counted).ToList();
        var separate = SeparatelyDecodedViews(task.ValSet, pipelines, task.Data.EvaluationLoader).ToList();
        try
        {
            for (int i = 0; i < task.ValSet.Count; i++) Assert.That(counted.LoadsOf(i), Is.EqualTo(1), $"image {i}: one decode for its two views");
            AssertSameViews(shared, separate, scales: 2);

            task.Detector.eval();
            using var noGrad = no_grad();
            long detections = 0;
            for (int i = 0; i < shared.Count; i++)
            {
                using var scope = NewDisposeScope();
                var before = task.Predict(separate[i].Select(b => b.Images).ToList(), separate[i].Select(b => b.Metas[0]).ToList());
                var after = task.Predict(shared[i].Select(b => b.Images).ToList(), shared[i].Select(b => b.Metas[0]).ToList());
                Assert.That(Pixels(after.Boxes.Tensor), Is.EqualTo(Pixels(before.Boxes.Tensor)), $"image {i}: the boxes");
                Assert.That(Pixels(after.Scores!), Is.EqualTo(Pixels(before.Scores!)), $"image {i}: the scores");
                Assert.That(after.Classes!.data<long>().ToArray(), Is.EqualTo(before.Classes!.data<long>().ToArray()), $"image {i}: the classes");
                detections += after.Count;
            }
            Assert.That(detections, Is.GreaterThan(0), "the untrained detector detects something, so the comparison compares boxes");
        }
        finally
        {
            DisposeAll(shared);
            DisposeAll(separate);
        }
    }

    /// <summary>A sample's copy is transformed without touching the original: every array is its own, the sizes carried over.</summary>
    [Test]
    public void ACopyIsIndependentOfItsSample()
    {
        var sample = new DataSample(7, "a.png", [1, 2, 3, 4, 5, 6], 1, 2)
        {
            Boxes = [0, 0, 1, 1], Labels = [3], IsCrowd = [false], AnnotationIds = [11], LabelMap = [4, 5], ScaleX = 2, ScaleY = 3, Flipped = true,
            ContentHeight = 1, ContentWidth = 1,
        };
        var copy = sample.Copy();
        copy.Image[0] = 99;
        copy.Boxes[0] = 99;
        copy.Labels[0] = 99;
        copy.IsCrowd[0] = true;
        copy.AnnotationIds[0] = 99;
        copy.LabelMap![0] = 99;
        Assert.That(sample.Image, Is.EqualTo(new byte[] { 1, 2, 3, 4, 5, 6 }));
        Assert.That(sample.Boxes, Is.EqualTo(new float[] { 0, 0, 1, 1 }));
        Assert.That((sample.Labels[0], sample.IsCrowd[0], sample.AnnotationIds[0], sample.LabelMap![0]), Is.EqualTo((3, false, 11L, (ushort)4)));
        Assert.That((copy.ImageId, copy.FilePath, copy.Height, copy.Width, copy.OriginalHeight, copy.OriginalWidth, copy.ContentHeight, copy.ContentWidth),
            Is.EqualTo((7L, "a.png", 1, 2, 1, 2, 1, 1)));
        Assert.That((copy.ScaleX, copy.ScaleY, copy.Flipped), Is.EqualTo((2.0, 3.0, true)));
    }
}
