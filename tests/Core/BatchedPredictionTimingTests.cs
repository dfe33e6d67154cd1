using System.Diagnostics;
using System.Globalization;
using NUnit.Framework;
using Vim.Core.Config;
using Vim.Core.Diagnostics;
using Vim.Core.Engine;
using Vim.Data.Datasets;
using Vim.Data.Demo;
using Vim.Detection;
using Vim.Segmentation;

namespace Vim.Tests.Core;

/// <summary>
/// The CPU time of batched against one-by-one prediction on the demo configs (docs/ARCHITECTURE.md, "Batched prediction"):
/// run by hand, it is minutes of work (`dotnet test ... --filter BatchedPredictionTimingTests`, with VIM_TIMING_OUT naming
/// a file for the table). Untrained models from the demo configs, saved and opened as `vim infer` opens a checkpoint; demo
/// images of three sizes, interleaved and decoded beforehand. Each pair runs the list one by one and in batches, the
/// order alternating between pairs; the ratio of the pair's process CPU times (all threads) is the measure, reported as
/// the median over the pairs with its range. Each pair also checks that both runs found the same number of detections or
/// the same class maps, so the batched run did the same work.
/// </summary>
[Explicit("timing, minutes: run by hand"), NonParallelizable]
public class BatchedPredictionTimingTests
{
    private static readonly (int Width, int Height)[] Sizes = [(256, 256), (320, 240), (240, 320)];

    private string _root = null!;

    [OneTimeSetUp]
    public void SetUp() => _root = Directory.CreateTempSubdirectory("vimdense-batch-timing-").FullName;

    [OneTimeTearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    /// <summary>The demo generator's validation images at each size, interleaved (size 0, 1, 2, 0, …), decoded.</summary>
    private List<RgbImage> DemoImages(DemoKind kind, int perSize)
    {
        var perSizeFiles = Sizes.Select((size, k) =>
        {
            var dir = Path.Combine(_root, $"{kind}-{size.Width}x{size.Height}");
            DemoDatasetGenerator.Generate(new DemoOptions { Kind = kind, OutputDir = dir, TrainImages = 1, ValImages = perSize, Width = size.Width, Height = size.Height, Seed = k });
            return Directory.EnumerateFiles(dir, "*.jpg", SearchOption.AllDirectories).Where(f => f.Contains("val", StringComparison.Ordinal)).Order().Take(perSize).ToList();
        }).ToList();
        var images = new List<RgbImage>();
        for (int i = 0; i < perSize; i++)
            foreach (var files in perSizeFiles)
            {
                var (rgb, height, width) = ImageDecoder.ReadRgb(files[i]);
                images.Add(new RgbImage(height, width, rgb));
            }
        return images;
    }

    private string Checkpoint(string configPath, Func<ExperimentConfig, TorchSharp.torch.nn.Module> build, out ExperimentConfig config)
    {
        config = ExperimentConfig.Load(configPath, [$"data.root={_root}"]).Config;
        var checkpoint = Path.Combine(_root, Path.GetFileNameWithoutExtension(configPath) + ".safetensors");
        using var model = build(config);
        PredictorTestKit.SaveCheckpoint(checkpoint, model, config);
        return checkpoint;
    }

    private static void Report(string what, int images, int batchSize, List<(double Single, double Batched, double SingleWall, double BatchedWall)> pairs)
    {
        var ratios = pairs.Select(p => p.Batched / p.Single).Order().ToList();
        var wallRatios = pairs.Select(p => p.BatchedWall / p.SingleWall).Order().ToList();
        string F(double v) => v.ToString("0.000", CultureInfo.InvariantCulture);
        var line = $"{what}: {images} images, batch {batchSize}, {pairs.Count} pairs, threads {TorchSharp.torch.get_num_threads()}: CPU time batched / one-by-one " +
            $"median {F(ratios[ratios.Count / 2])} (range {F(ratios[0])}–{F(ratios[^1])}); wall median {F(wallRatios[wallRatios.Count / 2])}; " +
            $"one-by-one CPU median {F(pairs.Select(p => p.Single).Order().ElementAt(pairs.Count / 2))} s";
        TestContext.Out.WriteLine(line);
        if (Environment.GetEnvironmentVariable("VIM_TIMING_OUT") is { Length: > 0 } file) File.AppendAllText(file, line + "\n");
    }

    private static (double Cpu, double Wall, T Result) Timed<T>(Func<T> run)
    {
        long cpu = ResourceUsage.ProcessCpuMicroseconds();
        var wall = Stopwatch.StartNew();
        var result = run();
        return ((ResourceUsage.ProcessCpuMicroseconds() - cpu) / 1e6, wall.Elapsed.TotalSeconds, result);
    }

    /// <summary>
    /// The CPU and wall seconds of each pair's one-by-one and batched runs, the one-by-one run first in even pairs and
    /// second in odd ones; <paramref name="check"/> compares each pair's results.
    /// </summary>
    private static List<(double Single, double Batched, double SingleWall, double BatchedWall)> Pairs<T>(Func<T> single, Func<T> batched, Action<T, T> check)
    {
        var pairs = new List<(double, double, double, double)>();
        for (int pair = 0; pair < PairCount; pair++)
        {
            (double Cpu, double Wall, T Result) one, many;
            if (pair % 2 == 0)
            {
                one = Timed(single);
                many = Timed(batched);
            }
            else
            {
                many = Timed(batched);
                one = Timed(single);
            }
            check(one.Result, many.Result);
            pairs.Add((one.Cpu, many.Cpu, one.Wall, many.Wall));
        }
        return pairs;
    }

    private static int PairCount => int.TryParse(Environment.GetEnvironmentVariable("VIM_TIMING_PAIRS"), out int n) ? n : 7;

    [Test]
    public void DetectionDemoConfig([Values(4)] int batchSize)
    {
        var configPath = Path.Combine(RepositoryPaths.Root, "configs", "det", "cascade_mask_rcnn_vim_tiny_demo_coco.yaml");
        var checkpoint = Checkpoint(configPath, DetectionTask.FromConfig, out var config);
        using var detector = Detector.Load(config, checkpoint);
        var images = DemoImages(DemoKind.Coco, perSize: 4);
        _ = detector.Predict(images.Take(batchSize).ToList(), batchSize: batchSize);
        var pairs = Pairs(() => detector.Predict(images), () => detector.Predict(images, batchSize: batchSize),
            (single, batched) => Assert.That(batched.Select(r => r.Detections.Count), Is.EqualTo(single.Select(r => r.Detections.Count))));
        Report("detection (cascade_mask_rcnn_vim_tiny_demo_coco)", images.Count, batchSize, pairs);
    }

    [Test]
    public void SegmentationDemoConfig([Values(4)] int batchSize)
    {
        var configPath = Path.Combine(RepositoryPaths.Root, "configs", "seg", "upernet_vim_tiny_demo_ade.yaml");
        var checkpoint = Checkpoint(configPath, c => EncoderDecoder.FromConfig(c, c.Runtime.Seed), out var config);
        using var segmentor = Segmentor.Load(config, checkpoint);
        var images = DemoImages(DemoKind.Ade, perSize: 4);
        _ = segmentor.Predict(images.Take(batchSize).ToList(), batchSize: batchSize);
        var pairs = Pairs(() => segmentor.Predict(images), () => segmentor.Predict(images, batchSize: batchSize), (single, batched) =>
        {
            for (int i = 0; i < single.Count; i++)
                Assert.That(batched[i].ClassMap.Zip(single[i].ClassMap).Count(p => p.First != p.Second), Is.LessThanOrEqualTo(single[i].ClassMap.Length / 1000), $"image {i}");
        });
        Report("segmentation (upernet_vim_tiny_demo_ade)", images.Count, batchSize, pairs);
    }
}
