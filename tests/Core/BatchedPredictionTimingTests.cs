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
/// the same class maps, so the batched run did the same work. Every run is broken down by the model's stages
/// (<see cref="StageProfiler"/>: the process CPU time inside each stage), each stage's ratio paired as the whole run's.
/// An untrained detector keeps about 100 detections per image, whose masks a trained one never pastes: VIM_TIMING_DET_CHECKPOINT
/// names a `vim train` checkpoint of the demo detector config to time instead (a short `vim train` run, e.g. 200 iterations).
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

    /// <summary>
    /// A `vim train` checkpoint of <paramref name="configPath"/>'s model: <paramref name="trained"/> when given, else the
    /// initial weights saved; and the stages the model runs at inference, in order.
    /// </summary>
    private string Checkpoint<TModel>(string configPath, Func<ExperimentConfig, TModel> build, Func<TModel, ExperimentConfig, IReadOnlyList<string>> stagesOf,
        string? trained, out ExperimentConfig config, out IReadOnlyList<string> stages) where TModel : TorchSharp.torch.nn.Module
    {
        config = ExperimentConfig.Load(configPath, [$"data.root={_root}"]).Config;
        var checkpoint = trained ?? Path.Combine(_root, Path.GetFileNameWithoutExtension(configPath) + ".safetensors");
        using var model = build(config);
        stages = stagesOf(model, config);
        if (trained is null) PredictorTestKit.SaveCheckpoint(checkpoint, model, config);
        return checkpoint;
    }

    /// <summary>
    /// One timed run: process CPU and wall seconds, the CPU seconds inside each of the model's stages, and the process's
    /// minor page faults (tensors past glibc's mmap threshold fault their pages in anew each time they are made).
    /// </summary>
    private sealed record Run(double Cpu, double Wall, IReadOnlyDictionary<string, double> StageCpu, long PageFaults);

    /// <summary>The same list predicted one by one and in batches.</summary>
    private sealed record Pair(Run Single, Run Batched);

    /// <summary>What no stage covered: decoding's leftovers, batching, the managed results (masks encoded as RLE).</summary>
    private const string Unstaged = "unstaged";

    private static void Report(string what, int images, int batchSize, IReadOnlyList<string> stages, List<Pair> pairs, string? note = null)
    {
        string F(double v) => v.ToString("0.000", CultureInfo.InvariantCulture);
        static double Median(IEnumerable<double> values)
        {
            var sorted = values.Order().ToList();
            return sorted[sorted.Count / 2];
        }
        string Ratios(Func<Run, double> measure)
        {
            var ratios = pairs.Select(p => measure(p.Batched) / measure(p.Single)).Order().ToList();
            return $"median {F(Median(ratios))} (range {F(ratios[0])}–{F(ratios[^1])})";
        }
        var lines = new List<string>
        {
            $"{what}: {images} images, batch {batchSize}, {pairs.Count} pairs, threads {TorchSharp.torch.get_num_threads()}{(note is null ? "" : $", {note}")}: " +
            $"CPU time batched / one-by-one {Ratios(r => r.Cpu)}; wall median {F(Median(pairs.Select(p => p.Batched.Wall / p.Single.Wall)))}; " +
            $"one-by-one CPU median {F(Median(pairs.Select(p => p.Single.Cpu)))} s; minor page faults median one-by-one " +
            $"{Median(pairs.Select(p => (double)p.Single.PageFaults))}, batched {Median(pairs.Select(p => (double)p.Batched.PageFaults))}",
        };
        foreach (var stage in stages.Append(Unstaged))
        {
            double Of(Run run) => stage == Unstaged ? run.Cpu - run.StageCpu.Values.Sum() : run.StageCpu.GetValueOrDefault(stage);
            if (pairs.Any(p => Of(p.Single) <= 0 || Of(p.Batched) <= 0)) continue;
            lines.Add($"  {stage,-14} one-by-one CPU median {F(Median(pairs.Select(p => Of(p.Single))))} s, batched {F(Median(pairs.Select(p => Of(p.Batched))))} s, " +
                $"batched / one-by-one {Ratios(Of)}");
        }
        foreach (var line in lines) TestContext.Out.WriteLine(line);
        if (Environment.GetEnvironmentVariable("VIM_TIMING_OUT") is { Length: > 0 } file) File.AppendAllLines(file, lines);
    }

    private static (Run Run, T Result) Timed<T>(Func<T> run, IReadOnlyList<string> stages)
    {
        StageProfiler.Start(stages);
        try
        {
            long cpu = ResourceUsage.ProcessCpuMicroseconds(), faults = ResourceUsage.MinorPageFaults();
            var wall = Stopwatch.StartNew();
            var result = run();
            var (cpuSeconds, wallSeconds) = ((ResourceUsage.ProcessCpuMicroseconds() - cpu) / 1e6, wall.Elapsed.TotalSeconds);
            faults = ResourceUsage.MinorPageFaults() - faults;
            var stageCpu = StageProfiler.Stop().ToDictionary(s => s.Stage, s => s.CpuMilliseconds / 1000);
            return (new Run(cpuSeconds, wallSeconds, stageCpu, faults), result);
        }
        finally
        {
            StageProfiler.Stop();
        }
    }

    /// <summary>
    /// Each pair's one-by-one and batched runs, the one-by-one run first in even pairs and second in odd ones;
    /// <paramref name="check"/> compares each pair's results.
    /// </summary>
    private static List<Pair> Pairs<T>(Func<T> single, Func<T> batched, IReadOnlyList<string> stages, Action<T, T> check)
    {
        var pairs = new List<Pair>();
        for (int pair = 0; pair < PairCount; pair++)
        {
            (Run Run, T Result) one, many;
            if (pair % 2 == 0)
            {
                one = Timed(single, stages);
                many = Timed(batched, stages);
            }
            else
            {
                many = Timed(batched, stages);
                one = Timed(single, stages);
            }
            check(one.Result, many.Result);
            pairs.Add(new Pair(one.Run, many.Run));
        }
        return pairs;
    }

    private static int PairCount => int.TryParse(Environment.GetEnvironmentVariable("VIM_TIMING_PAIRS"), out int n) ? n : 7;

    [Test]
    public void DetectionDemoConfig([Values(4)] int batchSize)
    {
        var configPath = Path.Combine(RepositoryPaths.Root, "configs", "det", "cascade_mask_rcnn_vim_tiny_demo_coco.yaml");
        var trained = Environment.GetEnvironmentVariable("VIM_TIMING_DET_CHECKPOINT") is { Length: > 0 } file ? file : null;
        var checkpoint = Checkpoint(configPath, DetectionTask.FromConfig, (model, _) => DetectionStages.Of(model), trained, out var config, out var stages);
        using var detector = Detector.Load(config, checkpoint);
        var images = DemoImages(DemoKind.Coco, perSize: 4);
        var warm = detector.Predict(images, batchSize: batchSize);
        var pairs = Pairs(() => detector.Predict(images), () => detector.Predict(images, batchSize: batchSize), stages,
            (single, batched) => Assert.That(batched.Select(r => r.Detections.Count), Is.EqualTo(single.Select(r => r.Detections.Count))));
        var weights = trained is null ? "initial weights" : $"trained weights ({Path.GetFileName(trained)})";
        Report("detection (cascade_mask_rcnn_vim_tiny_demo_coco)", images.Count, batchSize, stages, pairs,
            string.Create(CultureInfo.InvariantCulture, $"{weights}, {warm.Average(r => r.Detections.Count):0.#} detections per image"));
    }

    [Test]
    public void SegmentationDemoConfig([Values(4)] int batchSize)
    {
        var configPath = Path.Combine(RepositoryPaths.Root, "configs", "seg", "upernet_vim_tiny_demo_ade.yaml");
        var checkpoint = Checkpoint(configPath, c => EncoderDecoder.FromConfig(c, c.Runtime.Seed), (_, c) => SegmentationStages.Of(c.Model.SegTest),
            trained: null, out var config, out var stages);
        using var segmentor = Segmentor.Load(config, checkpoint);
        var images = DemoImages(DemoKind.Ade, perSize: 4);
        _ = segmentor.Predict(images.Take(batchSize).ToList(), batchSize: batchSize);
        var pairs = Pairs(() => segmentor.Predict(images), () => segmentor.Predict(images, batchSize: batchSize), stages, (single, batched) =>
        {
            for (int i = 0; i < single.Count; i++)
                Assert.That(batched[i].ClassMap.Zip(single[i].ClassMap).Count(p => p.First != p.Second), Is.LessThanOrEqualTo(single[i].ClassMap.Length / 1000), $"image {i}");
        });
        Report("segmentation (upernet_vim_tiny_demo_ade)", images.Count, batchSize, stages, pairs);
    }
}
