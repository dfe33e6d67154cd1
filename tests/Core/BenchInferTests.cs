using System.Globalization;
using System.Text.Json;
using NUnit.Framework;
using OpenCvSharp;
using Vim.Core.Checkpoints;
using Vim.Core.Config;
using Vim.Core.Diagnostics;
using Vim.Core.IO;
using Vim.Data.Demo;
using Vim.Detection;
using Vim.Segmentation;
using Vim.Tests.Detection;
using Vim.Tests.Segmentation;
using Vim.Tools;
using Vim.Tools.Commands;
using static TorchSharp.torch;

namespace Vim.Tests.Core;

/// <summary>
/// `vim bench infer` on tiny detectors and segmentors over generated demo data: which predictions it times and in what
/// order, what its stages and aggregates mean (hand-computed), that timing leaves predictions unchanged, the files it
/// writes, and its refusals. Nothing here asserts a duration.
/// </summary>
[NonParallelizable] // StageProfiler is process-wide
public class BenchInferTests
{
    private string _root = null!;

    [SetUp]
    public void SetUp()
    {
        _root = Directory.CreateTempSubdirectory("vimdense-benchinfer-").FullName;
        DemoDatasetGenerator.Generate(new DemoOptions
        {
            Kind = DemoKind.Coco, OutputDir = Path.Combine(_root, "coco"), TrainImages = 4, ValImages = 3, Width = 64, Height = 64, Seed = 3,
        });
        DemoDatasetGenerator.Generate(new DemoOptions
        {
            Kind = DemoKind.Ade, OutputDir = Path.Combine(_root, "ade"), TrainImages = 4, ValImages = 3, Width = 64, Height = 64, Seed = 5,
        });
    }

    [TearDown]
    public void TearDown()
    {
        StageProfiler.Stop();
        Directory.Delete(_root, recursive: true);
    }

    private DetectionTask TinyDetection() => new(DetectionTaskTests.ConfigAt(_root), TextWriter.Null, DetectionTaskTests.TinyDetector);

    /// <summary>The tiny segmentor with 32² windows at stride 24 over the 64² images (3 × 3 windows) and flip: every stage runs.</summary>
    private (SegmentationTask Task, SegmentationTestConfig Test) TinySegmentation()
    {
        var config = SegmentationTaskTests.ConfigAt(_root);
        config.Model.SegTest.Flip = true;
        return (new SegmentationTask(config, TextWriter.Null, SegmentationTaskTests.TinyModel), config.Model.SegTest);
    }

    private InferenceSubject DetectionSubject(int images) => InferenceSubject.ForDetection("det", "det.yaml", null, TinyDetection(), images);

    private InferenceSubject SegmentationSubject(int images)
    {
        var (task, test) = TinySegmentation();
        return InferenceSubject.ForSegmentation("seg", "seg.yaml", null, task, test, images);
    }

    /// <summary>Records every prediction a benchmark asks of a subject: which image, and whether the stage profiler was on (a timed one) or not (a warm-up).</summary>
    private sealed class ProbeSubject(IInferenceSubject inner, List<(string Subject, int Image, bool Timed)> calls) : IInferenceSubject
    {
        public string Name => inner.Name;
        public string Config => inner.Config;
        public string Task => inner.Task;
        public string? Checkpoint => inner.Checkpoint;
        public IReadOnlyList<string> Stages => inner.Stages;
        public int ImageCount => inner.ImageCount;
        public Device Device => inner.Device;

        public long? Predict(int index)
        {
            calls.Add((Name, index, StageProfiler.Enabled));
            return inner.Predict(index);
        }

        public void Dispose() => inner.Dispose();
    }

    [Test]
    public void EachRoundRunsEverySubjectsWarmupsThenItsTimedImagesInTurn()
    {
        var calls = new List<(string Subject, int Image, bool Timed)>();
        // Detection keeps 2 of the 3 validation images in memory, segmentation all 3 (it asked for 5): 4 timed predictions cycle through them.
        using var detection = new ProbeSubject(DetectionSubject(images: 2), calls);
        using var segmentation = new ProbeSubject(SegmentationSubject(images: 5), calls);
        Assert.That((detection.ImageCount, segmentation.ImageCount), Is.EqualTo((2, 3)));

        var report = InferenceBenchmark.Run([detection, segmentation], new InferenceBenchmark.Settings(Images: 4, Warmup: 2, Rounds: 2), TextWriter.Null);

        var expected = new List<(string, int, bool)>();
        for (int round = 0; round < 2; round++)
        {
            expected.AddRange([("det", 0, false), ("det", 1, false), ("det", 0, true), ("det", 1, true), ("det", 0, true), ("det", 1, true)]);
            expected.AddRange([("seg", 0, false), ("seg", 1, false), ("seg", 0, true), ("seg", 1, true), ("seg", 2, true), ("seg", 0, true)]);
        }
        Assert.That(calls, Is.EqualTo(expected), "per round and subject: 2 untimed warm-ups, then 4 timed images, image i = i mod the images in memory");
        Assert.That(report.Results.Select(r => r.Name), Is.EqualTo(new[] { "det", "seg" }));
        Assert.That(report.Results.Select(r => r.Rounds.Select(x => x.Round)), Has.All.EqualTo(new[] { 1, 2 }));
        Assert.That(report.Results.Select(r => r.DistinctImages), Is.EqualTo(new[] { 2, 3 }));
        Assert.That(report.Results[0].MeanDetections, Is.Not.Null.And.GreaterThanOrEqualTo(0));
        Assert.That(report.Results[1].MeanDetections, Is.Null, "segmentation makes no detections");
        Assert.That(report.Results[0].SpeedRatio, Is.EqualTo(1.0), "the first subject is the baseline");
        Assert.That(report.Notes, Has.Some.Contains("det: 2 validation image(s) in memory, so the 4 timed per pass cycle through them"));
        Assert.That(report.Notes, Has.Some.Contains("det: no --checkpoint").And.Some.Contains("not representative"));
        Assert.That(report.Notes, Has.Some.Contains("seg: no --checkpoint"));
    }

    [Test]
    public void TimedStagesAreTheSubjectsOwnNonNegativeAndWithinEachImagesTime()
    {
        using var detection = DetectionSubject(images: 3);
        using var segmentation = SegmentationSubject(images: 3);
        Assert.That(detection.Stages, Is.EqualTo(new[] { "backbone", "rpn", "box_stage0", "box_stage1", "box_stage2", "box_inference", "mask_head", "paste" }));
        Assert.That(segmentation.Stages, Is.EqualTo(new[] { "backbone", "decode_head", "slide_window", "rescale", "argmax" }));
        var settings = new InferenceBenchmark.Settings(Images: 3, Warmup: 1, Rounds: 1);
        foreach (var (subject, backboneCalls) in new (IInferenceSubject, long)[] { (detection, 1), (segmentation, 9 * 2) })
        {
            var images = InferenceBenchmark.Pass(subject, settings);
            Assert.That(images, Has.Count.EqualTo(3));
            foreach (var image in images)
            {
                // The backbone's own stages (in_proj, scan, ...) nest inside "backbone" and are not timed.
                Assert.That(image.Stages.Select(s => s.Stage), Is.EquivalentTo(subject.Stages), subject.Name);
                Assert.That(image.Stages.Select(s => s.Milliseconds), Has.All.GreaterThanOrEqualTo(0));
                Assert.That(image.Stages.Sum(s => s.Milliseconds), Is.LessThanOrEqualTo(image.TotalMs), "the stages lie inside the prediction and do not nest");
                // Detection: one image, one backbone pass. Segmentation: (64 − 32 + 24 − 1) / 24 + 1 = 3 windows a side, 9, and the flipped pass again.
                Assert.That(image.Stages.Single(s => s.Stage == "backbone").Calls, Is.EqualTo(backboneCalls), subject.Name);
            }
        }
    }

    /// <summary>
    /// Faster R-CNN (one class-specific stage, no mask head): the stages it runs are the ones timed, box_stage0 alone and no
    /// mask_head, each once per image.
    /// </summary>
    [Test]
    public void AOneStageDetectorWithoutMasksTimesTheStagesItRuns()
    {
        var config = DetectionTaskTests.ConfigAt(_root);
        config.Model.DetHead.MaskOn = false;
        var task = new DetectionTask(config, TextWriter.Null,
            () => DetectionTaskTests.TinyDetector(roi => MaskRcnnTests.OneStageClassSpecific(roi) with { MaskOn = false }));
        using var subject = InferenceSubject.ForDetection("faster", "faster.yaml", null, task, images: 2);
        Assert.That(subject.Stages, Is.EqualTo(new[] { "backbone", "rpn", "box_stage0", "box_inference", "paste" }));
        var images = InferenceBenchmark.Pass(subject, new InferenceBenchmark.Settings(Images: 2, Warmup: 0, Rounds: 1));
        foreach (var image in images)
        {
            Assert.That(image.Stages.Select(s => s.Stage), Is.EquivalentTo(subject.Stages));
            Assert.That(image.Stages.Select(s => s.Calls), Has.All.EqualTo(1));
        }
    }

    /// <summary>
    /// Hand-computed: images of 10, 20 and 60 ms; stage a 4, 6 and absent; stage b 5 (in two calls of 2 and 3), 10, 30. a: median 4, mean
    /// 10/3, share (10/3) / 30 = 1/9. b: median 10, mean 15, share 1/2. other (what no stage covered): 1, 4, 30: median 4, mean 35/3. The
    /// pass: median 20, mean 30, 3 images in 90 ms = 33.3 images/s.
    /// </summary>
    [Test]
    public void StageBreakdownAndPassSummaryFollowTheirDefinitions()
    {
        static StageProfiler.StageTotal Stage(string name, double ms) => new(name, ms, ms, 1);
        var images = new List<InferenceBenchmark.ImageTiming>
        {
            new(10, [Stage("a", 4), Stage("b", 2), Stage("b", 3)], null),
            new(20, [Stage("a", 6), Stage("b", 10)], null),
            new(60, [Stage("b", 30)], null),
        };
        var stages = InferenceBenchmark.StageBreakdown(["a", "b"], images);
        Assert.That(stages.Select(s => s.Stage), Is.EqualTo(new[] { "a", "b", InferenceBenchmark.OtherStage }));
        Assert.That(stages[0].MedianMs, Is.EqualTo(4));
        Assert.That(stages[0].MeanMs, Is.EqualTo(10.0 / 3).Within(1e-12));
        Assert.That(stages[0].Share, Is.EqualTo(1.0 / 9).Within(1e-12));
        Assert.That((stages[1].MedianMs, stages[1].MeanMs), Is.EqualTo((10.0, 15.0)));
        Assert.That(stages[1].Share, Is.EqualTo(0.5).Within(1e-12));
        Assert.That(stages[2].MedianMs, Is.EqualTo(4).Within(1e-12));
        Assert.That(stages[2].MeanMs, Is.EqualTo(35.0 / 3).Within(1e-12));

        var pass = InferenceBenchmark.Summarise(7, images);
        Assert.That(pass.Round, Is.EqualTo(7));
        Assert.That((pass.MedianMs, pass.MeanMs), Is.EqualTo((20.0, 30.0)));
        Assert.That(pass.ImagesPerSecond, Is.EqualTo(1000.0 / 30).Within(1e-12));
    }

    /// <summary>Round 2 ran in a slow spell of both: per-round ratios 2, 2 and 1.5 (median 2), where the ratio of the median times would be 300 / 120 = 2.5.</summary>
    [Test]
    public void SpeedRatiosPairTheRoundsAndSkipRoundsWithoutBothTimes()
    {
        static InferenceBenchmark.RoundResult Round(int round, double medianMs) => new(round, medianMs, medianMs, 1000 / medianMs);
        var baseline = new[] { Round(1, 200), Round(2, 600), Round(3, 300) };
        var candidate = new[] { Round(1, 100), Round(2, 300), Round(3, 200) };
        Assert.That(InferenceBenchmark.SpeedRatio(baseline, candidate), Is.EqualTo(2.0).Within(1e-12));
        Assert.That(InferenceBenchmark.SpeedRatio(baseline, baseline), Is.EqualTo(1.0));
        Assert.That(InferenceBenchmark.SpeedRatio(baseline, [Round(3, 200), Round(4, 50)]), Is.EqualTo(1.5).Within(1e-12), "round 4 has no baseline");
        Assert.That(InferenceBenchmark.SpeedRatio(baseline, [Round(4, 50)]), Is.NaN);
        Assert.That(PairedRounds.MedianRatio(new Dictionary<int, double> { [1] = double.NaN, [2] = 8 }, new Dictionary<int, double> { [1] = 1, [2] = 2 }),
            Is.EqualTo(4.0), "a round with an undefined time drops out");
    }

    [Test]
    public void StageProfilerTimesOnlyTheNamedStagesAndSynchronisesAtBothEndsOfEach()
    {
        int synchronisations = 0;
        StageProfiler.Start(["a"], () => synchronisations++);
        using (StageProfiler.Measure("a")) { }
        using (StageProfiler.Measure("b")) { }
        using (StageProfiler.Measure("a")) { }
        var stages = StageProfiler.Stop();
        Assert.That(stages.Select(s => (s.Stage, s.Calls)), Is.EqualTo(new[] { ("a", 2L) }));
        Assert.That(synchronisations, Is.EqualTo(4), "before each of the two timed stages starts and before it ends");

        StageProfiler.Start();
        using (StageProfiler.Measure("a")) { }
        using (StageProfiler.Measure("b")) { }
        Assert.That(StageProfiler.Stop().Select(s => s.Stage), Is.EqualTo(new[] { "a", "b" }), "no list: every stage");
        Assert.That(StageProfiler.Enabled, Is.False);
        using (StageProfiler.Measure("a")) { }
        Assert.That(StageProfiler.Stop(), Is.Empty, "nothing is collected while stopped");
    }

    [Test]
    public void TimingLeavesDetectionsUnchanged()
    {
        using var task = TinyDetection();
        task.Model.eval();
        var batch = task.Data.EvaluationLoader(task.ValSet).Epoch(0).First();
        using var owned = batch;
        using var scope = NewDisposeScope();
        var plain = task.Predict(batch.Images, batch.Metas[0]);
        StageProfiler.Start(DetectionStages.Of(task.Detector));
        var timed = task.Predict(batch.Images, batch.Metas[0]);
        var stages = StageProfiler.Stop();
        Assert.That(stages.Select(s => s.Stage), Is.EqualTo(DetectionStages.Of(task.Detector)), "every stage was timed");
        Assert.That(plain.Count, Is.GreaterThan(0), "an untrained head still scores above the 0.05 threshold");
        Assert.That(timed.Count, Is.EqualTo(plain.Count));
        static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();
        Assert.That(Same(timed.Boxes.Tensor, plain.Boxes.Tensor), Is.True, "boxes");
        Assert.That(Same(timed.Scores!, plain.Scores!), Is.True, "scores");
        Assert.That(Same(timed.Classes!, plain.Classes!), Is.True, "classes");
        Assert.That(Same(timed.Masks!, plain.Masks!), Is.True, "pasted masks");
    }

    [Test]
    public void TimingLeavesSegmentationsUnchanged()
    {
        var (task, test) = TinySegmentation();
        using var owned = task;
        task.Model.eval();
        var views = task.EvaluationViews(task.ValSet).First();
        try
        {
            var images = views.Select(v => v.Images).ToList();
            var plain = task.Predict(images, views[0].Metas[0]);
            StageProfiler.Start(SegmentationStages.Of(test));
            var timed = task.Predict(images, views[0].Metas[0]);
            var stages = StageProfiler.Stop();
            Assert.That(stages.Select(s => s.Stage), Is.EquivalentTo(SegmentationStages.Of(test)), "every stage was timed");
            Assert.That(plain, Has.Length.EqualTo(64 * 64));
            Assert.That(timed, Is.EqualTo(plain));
        }
        finally
        {
            foreach (var view in views) view.Dispose();
        }
    }

    /// <summary>A config file of the repository's demo detector on the generated data, at 64², keeping fewer proposals and detections.</summary>
    private string WriteDetectionConfig()
    {
        var path = Path.Combine(_root, "det.yaml");
        var demo = Path.Combine(RepositoryPaths.Root, "configs", "det", "cascade_mask_rcnn_vim_tiny_demo_coco.yaml");
        File.WriteAllText(path, $"""
            _base_: {demo}
            data:
              root: {Path.Combine(_root, "coco")}
              crop_size: [64, 64]
              num_workers: 0
            model:
              backbone:
                img_size: 64
              det_head:
                rpn_pre_nms_topk_test: 100
                rpn_post_nms_topk_test: 30
                detections_per_image: 10
            """);
        return path;
    }

    /// <summary>A checkpoint of the model <paramref name="config"/> builds, in the layout `vim train` writes (weights under "model.").</summary>
    private string WriteCheckpoint(string config, string name)
    {
        var path = Path.Combine(_root, name);
        using var scope = NewDisposeScope();
        using var detector = DetectionTask.FromConfig(ExperimentConfig.Load(config, []).Config);
        SafeTensorsFormat.Write(path, detector.state_dict().Select(p => new KeyValuePair<string, Tensor>("model." + p.Key, p.Value)).ToList(),
            new Dictionary<string, string>());
        return path;
    }

    [Test]
    public void AConfigAgainstItselfIsRatedFromItsPairedRoundsAndTheFilesParse()
    {
        var config = WriteDetectionConfig();
        var checkpoint = WriteCheckpoint(config, "fits.safetensors");
        var outDir = Path.Combine(_root, "out");
        var error = new StringWriter();
        Assert.That(VimCli.Run(["bench", "infer", config, config, "--checkpoint", checkpoint, "--images", "2", "--warmup", "1", "--rounds", "3", "--out", outDir], error),
            Is.Zero, error.ToString());
        Assert.That(Directory.GetFiles(outDir).Select(Path.GetFileName), Is.EquivalentTo(new[] { "infer.json", "infer.csv", "stages.csv", "stages.png" }),
            "the four results and no temporary file");

        var report = JsonSerializer.Deserialize<InferenceBenchmark.Report>(File.ReadAllText(Path.Combine(outDir, "infer.json")), MetricJson.Compact)!;
        Assert.That((report.Images, report.Warmup, report.Rounds), Is.EqualTo((2, 1, 3)));
        Assert.That(report.Results.Select(r => r.Name), Is.EqualTo(new[] { "det", "det (2)" }), "a config given twice gets a numbered name");
        Assert.That(report.Results.Select(r => r.Checkpoint), Has.All.EqualTo(checkpoint), "one checkpoint serves every config");
        Assert.That(report.Notes, Has.None.Contains("no --checkpoint"));
        foreach (var result in report.Results)
        {
            Assert.That(result.Rounds.Select(r => r.Round), Is.EqualTo(new[] { 1, 2, 3 }));
            var medians = result.Rounds.Select(r => r.MedianMs).Order().ToList();
            Assert.That(result.MedianMs, Is.EqualTo(medians[1]), "the median of the rounds' medians");
            Assert.That(result.MeanMs, Is.EqualTo(result.Rounds.Average(r => r.MeanMs)).Within(1e-9), "equal images per round: the mean of the rounds' means");
            Assert.That(result.ImagesPerSecond, Is.EqualTo(1000 / result.MeanMs).Within(1e-9));
            foreach (var round in result.Rounds) Assert.That(round.ImagesPerSecond, Is.EqualTo(1000 / round.MeanMs).Within(1e-9));
            Assert.That(result.Stages.Select(s => s.MeanMs), Has.All.GreaterThanOrEqualTo(0));
            Assert.That(result.Stages.Sum(s => s.MeanMs), Is.EqualTo(result.MeanMs).Within(1e-6), "the stages and the rest make up the mean");
            Assert.That(result.Stages.Sum(s => s.Share), Is.EqualTo(1).Within(1e-9));
        }
        var (first, second) = (report.Results[0], report.Results[1]);
        Assert.That(first.SpeedRatio, Is.EqualTo(1.0));
        var ratios = first.Rounds.Zip(second.Rounds, (a, b) => a.MedianMs / b.MedianMs).Order().ToList();
        Assert.That(second.SpeedRatio, Is.EqualTo(ratios[1]).Within(1e-12), "the median over rounds of the first's median time over its own");

        // The CSV writes d decimals: half a unit of the last, and a hair more for the binary value of a tie (103.5145 → 103.514).
        static double Rounded(int decimals) => 0.5 * Math.Pow(10, -decimals) * (1 + 1e-9);
        var summary = File.ReadAllLines(Path.Combine(outDir, "infer.csv"));
        Assert.That(summary[0], Is.EqualTo("name,config,task,checkpoint,device,distinct_images,median_ms,mean_ms,images_per_s,speed_ratio,mean_detections,rounds"));
        Assert.That(summary, Has.Length.EqualTo(3));
        for (int i = 0; i < 2; i++)
        {
            var fields = summary[i + 1].Split(',');
            var result = report.Results[i];
            Assert.That(fields[..6], Is.EqualTo(new[] { result.Name, config, "detection", checkpoint, "cpu", "2" }), "--images 2 of the 3 in memory");
            Assert.That(double.Parse(fields[6], CultureInfo.InvariantCulture), Is.EqualTo(result.MedianMs).Within(Rounded(3)));
            Assert.That(double.Parse(fields[9], CultureInfo.InvariantCulture), Is.EqualTo(result.SpeedRatio).Within(Rounded(4)));
            Assert.That(double.Parse(fields[10], CultureInfo.InvariantCulture), Is.EqualTo(result.MeanDetections!.Value).Within(Rounded(2)));
            Assert.That(fields[11], Is.EqualTo("3"));
        }
        var stageRows = File.ReadAllLines(Path.Combine(outDir, "stages.csv")).Skip(1).Select(line => line.Split(',')).ToList();
        var expectedStages = report.Results.SelectMany(r => r.Stages.Select(s => (r.Name, s.Stage, s.MeanMs))).ToList();
        Assert.That(stageRows.Select(f => (f[0], f[1])), Is.EqualTo(expectedStages.Select(s => (s.Name, s.Stage))));
        for (int i = 0; i < stageRows.Count; i++)
            Assert.That(double.Parse(stageRows[i][3], CultureInfo.InvariantCulture), Is.EqualTo(expectedStages[i].MeanMs).Within(Rounded(3)));
        using var chart = Cv2.ImRead(Path.Combine(outDir, "stages.png"));
        Assert.That(chart.Empty(), Is.False, "the chart is a readable PNG");
    }

    [Test]
    public void RefusalsNameTheOptionAndLeaveNoOutput()
    {
        var config = WriteDetectionConfig();
        var outDir = Path.Combine(_root, "out");
        string Refused(params string[] args)
        {
            var error = new StringWriter();
            Assert.That(VimCli.Run(["bench", "infer", .. args, "--out", outDir], error), Is.EqualTo(1), string.Join(' ', args));
            Assert.That(Directory.Exists(outDir), Is.False, $"no output folder after: {string.Join(' ', args)}");
            return error.ToString();
        }

        Assert.That(Refused(config, "--images", "0"), Does.Contain("--images must be positive, got 0"));
        Assert.That(Refused(config, "--rounds", "0"), Does.Contain("--rounds must be positive, got 0"));
        Assert.That(Refused(config, "--warmup", "-1"), Does.Contain("--warmup must be 0 or more, got -1"));
        var missing = Path.Combine(_root, "missing.yaml");
        Assert.That(Refused(config, missing), Does.Contain("config file not found").And.Contain(missing));

        var fits = WriteCheckpoint(config, "fits.safetensors");
        Assert.That(Refused(config, "--checkpoint", fits, "--checkpoint", fits), Does.Contain("--checkpoint: 2 checkpoints for 1 configs"));
        var absent = Path.Combine(_root, "absent.safetensors");
        Assert.That(Refused(config, "--checkpoint", absent), Does.Contain(absent));

        // The tiny test detector's weights do not fit the demo config's vimdet_tiny.
        var other = Path.Combine(_root, "other.safetensors");
        using (var scope = NewDisposeScope())
        using (var detector = DetectionTaskTests.TinyDetector())
            SafeTensorsFormat.Write(other, detector.state_dict().Select(p => new KeyValuePair<string, Tensor>("model." + p.Key, p.Value)).ToList(),
                new Dictionary<string, string>());
        Assert.That(Refused(config, "--checkpoint", other), Does.Contain($"--checkpoint {other}").And.Contain("do not fit").And.Contain(config));
    }
}
