using System.Text.Json.Nodes;
using NUnit.Framework;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Distributed;
using Vim.Data.Datasets;
using Vim.Data.Demo;
using Vim.Data.Evaluation.Reports;
using Vim.Data.Evaluation.Robustness;
using Vim.Data.Transforms.Corruptions;
using Vim.Tools;
using Vim.Tools.Commands;

namespace Vim.Tests.Engine;

/// <summary>
/// `vim test --corruptions` (mmdet's test_robustness.py): the P / mPC / rPC arithmetic against hand values, the grid's
/// crash safety and resumption, the refusals, and the command end to end on the demo detection and segmentation configs.
/// </summary>
public class RobustnessTests
{
    private string _root = null!;

    [SetUp]
    public void SetUp() => _root = Directory.CreateTempSubdirectory("vimdense-robustness-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    /// <summary>
    /// P = 40; corruption a scores 30 and 20 at its two severities, b 10 and 20: mPC_a = 25 (rPC 62.5 %), mPC_b = 15
    /// (37.5 %), mPC = (30 + 20 + 10 + 20)/4 = 20, rPC = 50 %; without a, 15. pycocotools' −1 (no ground truth) is
    /// undefined, not a score: it makes the means it enters NaN, and a P of 0 or −1 leaves rPC undefined.
    /// </summary>
    [Test]
    public void SummaryArithmeticMatchesHandValues()
    {
        (string, IReadOnlyList<double>)[] cells = [("a", [30.0, 20.0]), ("b", [10.0, 20.0])];
        var summary = RobustnessSummary.Compute("bbox_mAP", 40, cells);
        Assert.That(summary.Clean, Is.EqualTo(40));
        Assert.That(summary.MeanUnderCorruption, Is.EqualTo(20).Within(1e-12));
        Assert.That(summary.Relative, Is.EqualTo(0.5).Within(1e-12));
        Assert.That(summary.Corruptions.Select(c => c.Corruption), Is.EqualTo(new[] { "a", "b" }));
        Assert.That(summary.Corruptions.Select(c => c.MeanUnderCorruption), Is.EqualTo(new[] { 25.0, 15.0 }).Within(1e-12));
        Assert.That(summary.Corruptions.Select(c => c.Relative), Is.EqualTo(new[] { 0.625, 0.375 }).Within(1e-12));
        Assert.That(RobustnessSummary.MeanWithout(cells, "a"), Is.EqualTo(15).Within(1e-12));

        Assert.That(RobustnessSummary.Compute("m", 0, cells).Relative, Is.NaN);
        Assert.That(RobustnessSummary.Compute("m", -1, cells).Clean, Is.NaN);
        var undefined = RobustnessSummary.Compute("m", 40, [("a", [30.0, -1.0])]);
        Assert.That(undefined.MeanUnderCorruption, Is.NaN);
        Assert.That(undefined.Corruptions[0].MeanUnderCorruption, Is.NaN);
    }

    /// <summary>
    /// A subject whose metric is a known function of the cell (bbox_mAP = 50 − 5·severity − corruption's position), which
    /// fails at a chosen call: the cells finished before the failure are in robustness.json, a second run evaluates only
    /// the others, and the summary is the hand value; a changed setup starts afresh; a damaged file is refused by name.
    /// </summary>
    [Test]
    public void TheGridSavesEachCellAndAResumedRunSkipsTheFinishedOnes()
    {
        string[] corruptions = ["gaussian_noise", "fog"];
        int[] severities = [1, 3];
        var setup = new RobustnessSetup("/configs/x.yaml", ["a=1"], "/ckpt/best.safetensors", 10, new DateTime(2025, 1, 2, 3, 4, 5, DateTimeKind.Utc), false, 4);
        var outDir = Path.Combine(_root, "out");
        var crashing = new FakeSubject(corruptions, failAtCall: 4);
        Assert.Throws<InvalidOperationException>(() => RobustnessBenchmark.Run(crashing, corruptions, severities, setup, outDir, TextWriter.Null));
        var jsonPath = Path.Combine(outDir, "robustness", "robustness.json");
        var saved = RobustnessResults.Load(jsonPath);
        Assert.That(saved.Clean!["bbox_mAP"], Is.EqualTo(50));
        Assert.That(saved.Has("gaussian_noise", 1) && saved.Has("gaussian_noise", 3), "cells 2 and 3 finished before the failure");
        Assert.That(saved.Has("fog", 1), Is.False);
        Assert.That(saved.Complete, Is.False);

        var resumed = new FakeSubject(corruptions);
        var progress = new StringWriter();
        var results = RobustnessBenchmark.Run(resumed, corruptions, severities, setup, outDir, progress);
        Assert.That(resumed.Calls, Is.EqualTo(new[] { "fog 1", "fog 3" }));
        Assert.That(progress.ToString(), Does.Contain("3 of 5 cells already in"));
        Assert.That(progress.ToString(), Does.Contain("ETA"));
        Assert.That(results.Complete, Is.True);

        // gaussian_noise (position 0): 45, 35 → 40; fog (position 1): 44, 34 → 39. mPC 39.5, rPC 0.79 of P = 50.
        var json = JsonNode.Parse(File.ReadAllText(jsonPath))!;
        var summary = json["summary"]!["bbox_mAP"]!;
        Assert.That(summary["P"]!.GetValue<double>(), Is.EqualTo(50));
        Assert.That(summary["mPC"]!.GetValue<double>(), Is.EqualTo(39.5).Within(1e-12));
        Assert.That(summary["rPC"]!.GetValue<double>(), Is.EqualTo(0.79).Within(1e-12));
        Assert.That(summary["corruptions"]!["fog"]!["mPC"]!.GetValue<double>(), Is.EqualTo(39).Within(1e-12));
        Assert.That(summary["mPC_without_frost"], Is.Null, "frost is not in the grid");
        Assert.That(json["results"]!["fog"]!["3"]!["bbox_mAP"]!.GetValue<double>(), Is.EqualTo(34));
        Assert.That(json["complete"]!.GetValue<bool>(), Is.True);

        var dir = Path.Combine(outDir, "robustness");
        var markdown = File.ReadAllText(Path.Combine(dir, "robustness.md"));
        Assert.That(markdown, Does.Contain("P 50.00 · mPC 39.50 · rPC 79.0 %"));
        Assert.That(markdown, Does.Contain("| fog | weather | 44.00 | 34.00 | 39.00 | 78.0 % |"));
        Assert.That(File.Exists(Path.Combine(dir, RobustnessReport.ChartName("bbox_mAP"))));
        Assert.That(File.Exists(Path.Combine(dir, RobustnessReport.GroupChartName("bbox_mAP"))), "noise and weather: a chart per group too");
        Assert.That(Directory.GetFiles(Path.Combine(dir, "samples")).Select(Path.GetFileName),
            Is.EquivalentTo(new[] { "clean.png", "gaussian_noise_1.png", "gaussian_noise_3.png", "fog_1.png", "fog_3.png" }));

        // Another checkpoint: nothing is reused.
        var other = new FakeSubject(corruptions);
        progress = new StringWriter();
        RobustnessBenchmark.Run(other, corruptions, severities, setup with { CheckpointBytes = 11 }, outDir, progress);
        Assert.That(other.Calls, Has.Count.EqualTo(4), "every corrupted cell runs again (and the clean pass)");
        Assert.That(progress.ToString(), Does.Contain("was written for another run (its checkpoint file (size or time written) differs)"));

        File.WriteAllText(jsonPath, "{\"format\": \"something-else\"");
        var error = Assert.Throws<VimException>(() => RobustnessBenchmark.Run(new FakeSubject(corruptions), corruptions, severities, setup, outDir, TextWriter.Null))!;
        Assert.That(error.Message, Does.StartWith(jsonPath).And.Contain("not a robustness results file"));
    }

    /// <summary>
    /// The one rule for undefined values, by hand: the mean of 10, 20 and 40 is 70/3; none, a NaN or a −1 among them leaves
    /// it NaN (not the mean of the rest). A metric prints with two decimals, and "n/a" where it is undefined: NaN, −1 and any
    /// other negative value, never "-1.00".
    /// </summary>
    [Test]
    public void UndefinedValuesLeaveMeansUndefinedAndPrintAsNotApplicable()
    {
        Assert.That(RobustnessSummary.Mean([10.0, 20.0, 40.0]), Is.EqualTo(70.0 / 3).Within(1e-12));
        Assert.That(RobustnessSummary.Mean([]), Is.NaN);
        Assert.That(RobustnessSummary.Mean([10.0, double.NaN, 40.0]), Is.NaN);
        Assert.That(RobustnessSummary.Mean([10.0, -1.0, 40.0]), Is.NaN);
        Assert.That(RobustnessSummary.Defined(-1), Is.NaN);
        Assert.That(RobustnessSummary.Defined(0), Is.Zero);

        Assert.That(RobustnessSummary.Format(41.5), Is.EqualTo("41.50"));
        Assert.That(RobustnessSummary.Format(7.126), Is.EqualTo("7.13"));
        Assert.That(RobustnessSummary.Format(0), Is.EqualTo("0.00"));
        Assert.That(RobustnessSummary.Format(100), Is.EqualTo("100.00"));
        foreach (double undefined in new[] { -1.0, -0.5, double.NaN, double.PositiveInfinity })
            Assert.That(RobustnessSummary.Format(undefined), Is.EqualTo("n/a"), undefined.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>
    /// A cell whose metric is −1 (pycocotools' "no ground truth"): its progress line and its table cell say n/a, and so do
    /// the means it enters (the corruption's mPC and rPC, the severity's mean, the overall mPC and rPC); the clean P and the
    /// other cells keep their numbers. fog is the only corruption (position 0): severity 1 scores 50 − 5 = 45.
    /// </summary>
    [Test]
    public void AnUndefinedCellPrintsAsNotApplicableInTheProgressAndTheReport()
    {
        string[] corruptions = ["fog"];
        var setup = new RobustnessSetup("/configs/x.yaml", [], "/ckpt/best.safetensors", 10, new DateTime(2025, 1, 2, 3, 4, 5, DateTimeKind.Utc), false, 4);
        var progress = new StringWriter();
        RobustnessBenchmark.Run(new FakeSubject(corruptions, undefinedAt: "fog 2"), corruptions, [1, 2], setup, Path.Combine(_root, "out"), progress);
        var lines = progress.ToString().Split('\n');
        Assert.That(lines.Single(l => l.Contains("(fog severity 1): bbox_mAP")), Does.Contain("bbox_mAP 45.00 |"));
        Assert.That(lines.Single(l => l.Contains("(fog severity 2): bbox_mAP")), Does.Contain("bbox_mAP n/a |"));
        Assert.That(progress.ToString(), Does.Not.Contain("-1.00"));

        var markdown = File.ReadAllText(Path.Combine(_root, "out", "robustness", "robustness.md"));
        Assert.That(markdown, Does.Contain("P 50.00 · mPC n/a · rPC n/a"));
        Assert.That(markdown, Does.Contain("| fog | weather | 45.00 | n/a | n/a | n/a |"));
        Assert.That(markdown, Does.Contain("| **all** | | 45.00 | n/a | **n/a** | **n/a** |"));
        Assert.That(markdown, Does.Not.Contain("-1.00"));
    }

    private sealed class FakeSubject(string[] corruptions, int failAtCall = int.MaxValue, string? undefinedAt = null) : IRobustnessSubject
    {
        private int _evaluations;

        /// <summary>The corrupted cells evaluated, "corruption severity", in order (the clean pass is not listed).</summary>
        public List<string> Calls { get; } = [];

        public string Task => "detection";

        public int ImageCount => 4;

        public IReadOnlyList<string> SummaryMetrics => ["bbox_mAP"];

        public IReadOnlyDictionary<string, double> Evaluate(Func<ISampleSource, ISampleSource> images, string samplePath, Action onImage)
        {
            if (++_evaluations == failAtCall) throw new InvalidOperationException("simulated crash");
            // The cell is read back from the wrapper the runner hands out; the clean pass leaves the source as it is.
            var (corruption, severity) = images(new EmptySource()) is CorruptedImages cell ? (cell.Corruption, cell.Severity) : ((string?)null, 0);
            if (corruption is not null) Calls.Add($"{corruption} {severity}");
            for (int i = 0; i < ImageCount; i++) onImage();
            File.WriteAllBytes(samplePath, [1]);
            double value = corruption is null ? 50 : 50 - 5 * severity - Array.IndexOf(corruptions, corruption);
            if ($"{corruption} {severity}" == undefinedAt) value = -1;
            return new Dictionary<string, double> { ["bbox_mAP"] = value, ["bbox_mAP_50"] = value + 10 };
        }
    }

    private sealed class EmptySource : ISampleSource
    {
        public int Count => 0;

        public DataSample Load(int index) => throw new ArgumentOutOfRangeException(nameof(index));
    }

    /// <summary>Refused by name before the checkpoint is looked for: combinations that evaluate something else, unknown names, severities outside 0–5.</summary>
    [Test]
    public void TheCommandRefusesWhatTheBenchmarkCannotRun()
    {
        var config = Path.Combine(RepositoryPaths.Root, "configs", "det", "cascade_mask_rcnn_vim_tiny_demo_coco.yaml");
        var absent = Path.Combine(_root, "absent.safetensors");
        (string[] Extra, string[] Expected)[] cases =
        [
            (["--corruptions", "benchmark", "--format-only"], ["error: --corruptions", "--format-only"]),
            (["--corruptions", "noise", "--proposals"], ["error: --corruptions", "--proposals"]),
            (["--corruptions", "noise", "--error-analysis"], ["error: --corruptions", "--error-analysis"]),
            (["--corruptions", "noise,hail"], ["error: --corruptions: unknown corruption 'hail'", "benchmark", "gaussian_noise", "saturate"]),
            (["--corruptions", "blur", "sleet"], ["error: --corruptions: unknown corruption 'sleet'"]),
            (["--corruptions", "noise", "--severities", "1,6"], ["error: --severities", "'6'", "from 0 to 5"]),
            (["--corruptions", "noise", "--severities", "0"], ["error: --severities", "no severity from 1 to 5"]),
            (["--severities", "1,2"], ["error: --severities", "--corruptions"]),
        ];
        CliProcess.AssertRefusedBeforeCheckpoint(cases.Select(c => ((string[])["test", config, "--checkpoint", absent, .. c.Extra], c.Expected)), absent);
    }

    /// <summary>
    /// The demo detector (untrained, 3 validation images of 128² tested at 96²) under 2 corruptions × 2 severities: the
    /// clean cell's metrics are those plain `vim test` writes for the checkpoint, every cell has box and mask AP, the
    /// summary is the arithmetic of the cells, and the report, charts and 5 samples are written; a second run reuses all.
    /// </summary>
    [Test]
    public void DetectionGridEndToEnd()
    {
        DemoDatasetGenerator.Generate(new DemoOptions { Kind = DemoKind.Coco, OutputDir = Path.Combine(_root, "coco"), TrainImages = 4, ValImages = 3, Width = 128, Height = 128, Seed = 3 });
        var configPath = Path.Combine(RepositoryPaths.Root, "configs", "det", "cascade_mask_rcnn_vim_tiny_demo_coco.yaml");
        string[] overrides = [$"data.root={Path.Combine(_root, "coco")}", "data.crop_size=[96,96]", "model.backbone.img_size=96", "data.num_workers=0",
            "model.backbone.pretrained=null"];
        var checkpoint = UntrainedCheckpoint(configPath, overrides);
        RunGridAndCheck(configPath, overrides, checkpoint, ["bbox_mAP", "segm_mAP"]);
    }

    /// <summary>The same for the demo segmentor (untrained Vim-Ti UperNet on 64² demo ADE images): mIoU.</summary>
    [Test]
    public void SegmentationGridEndToEnd()
    {
        DemoDatasetGenerator.Generate(new DemoOptions { Kind = DemoKind.Ade, OutputDir = Path.Combine(_root, "ade"), TrainImages = 4, ValImages = 3, Width = 64, Height = 64, Seed = 3 });
        var configPath = Path.Combine(RepositoryPaths.Root, "configs", "seg", "upernet_vim_tiny_demo_ade.yaml");
        string[] overrides = [$"data.root={Path.Combine(_root, "ade")}", "data.crop_size=[64,64]", "data.scale=[64,64]", "model.backbone.img_size=64",
            "data.num_workers=0", "model.seg_head.channels=16", "model.seg_head.auxiliary_channels=16"];
        var checkpoint = UntrainedCheckpoint(configPath, overrides);
        RunGridAndCheck(configPath, overrides, checkpoint, ["mIoU"]);
    }

    private string UntrainedCheckpoint(string configPath, string[] overrides) => UntrainedCheckpoint(configPath, overrides, Path.Combine(_root, "work"));

    /// <summary>The checkpoint `vim train` writes when stopped before its first iteration: the config's model as initialised.</summary>
    internal static string UntrainedCheckpoint(string configPath, string[] overrides, string workDir)
    {
        using var stop = new CancellationTokenSource();
        stop.Cancel();
        var trained = TrainCommand.Train(ExperimentConfig.Load(configPath, overrides).Config, workDir, null, SingleProcessCommunicator.Instance, stop.Token);
        return trained.LastCheckpoint!;
    }

    private void RunGridAndCheck(string configPath, string[] overrides, string checkpoint, string[] summaryMetrics)
    {
        var sets = overrides.SelectMany(o => new[] { "--set", o }).ToArray();
        var plainDir = Path.Combine(_root, "plain");
        var errors = new StringWriter();
        Assert.That(VimCli.Run(["test", configPath, "--checkpoint", checkpoint, "--out", plainDir, "--overlays", "0", .. sets], errors), Is.EqualTo(0), errors.ToString());
        var plain = JsonNode.Parse(File.ReadAllText(Path.Combine(plainDir, "metrics.json")))!.AsObject();

        var outDir = Path.Combine(_root, "robust");
        var console = new StringWriter();
        int exit = CliProcess.WithConsole(console, () => VimCli.Run(["test", configPath, "--checkpoint", checkpoint, "--out", outDir,
            "--corruptions", "gaussian_noise,fog", "--severities", "1,3", .. sets], errors));
        Assert.That(exit, Is.EqualTo(0), errors.ToString());
        var dir = Path.Combine(outDir, "robustness");
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "robustness.json")))!;
        var clean = json["clean"]!.AsObject();
        Assert.That(clean.Select(p => p.Key), Is.EquivalentTo(plain.Select(p => p.Key)));
        foreach (var (key, value) in plain)
            Assert.That(clean[key]?.GetValue<double>() ?? double.NaN, Is.EqualTo(value?.GetValue<double>() ?? double.NaN), $"clean {key} is plain vim test's");
        Assert.That(json["severities"]!.AsArray().Select(s => s!.GetValue<int>()), Is.EqualTo(new[] { 1, 3 }));
        Assert.That(json["complete"]!.GetValue<bool>(), Is.True);
        foreach (var metric in summaryMetrics)
        {
            var cells = new[] { "gaussian_noise", "fog" }.SelectMany(c => new[] { 1, 3 }.Select(s => json["results"]![c]![s.ToString()]![metric]!.GetValue<double>())).ToList();
            double p = clean[metric]!.GetValue<double>();
            var summary = json["summary"]![metric]!;
            Assert.That(summary["P"]!.GetValue<double>(), Is.EqualTo(p));
            Assert.That(summary["mPC"]!.GetValue<double>(), Is.EqualTo(cells.Average()).Within(1e-9), metric);
            if (p > 0) Assert.That(summary["rPC"]!.GetValue<double>(), Is.EqualTo(cells.Average() / p).Within(1e-9), metric);
            else Assert.That(summary["rPC"], Is.Null, $"{metric}: P is 0, rPC undefined");
            Assert.That(File.Exists(Path.Combine(dir, RobustnessReport.ChartName(metric))), metric);
            Assert.That(File.ReadAllText(Path.Combine(dir, "robustness.md")), Does.Contain($"## {metric}").And.Contain("| gaussian_noise | noise |"));
            Assert.That(console.ToString(), Does.Contain($"{metric}: P "));
        }
        Assert.That(Directory.GetFiles(Path.Combine(dir, "samples")).Select(Path.GetFileName),
            Is.EquivalentTo(new[] { "clean.png", "gaussian_noise_1.png", "gaussian_noise_3.png", "fog_1.png", "fog_3.png" }));
        using (var sample = OpenCvSharp.Cv2.ImRead(Path.Combine(dir, "samples", "fog_3.png")))
        using (var cleanSample = OpenCvSharp.Cv2.ImRead(Path.Combine(dir, "samples", "clean.png")))
        {
            Assert.That(sample.Size(), Is.EqualTo(cleanSample.Size()), "drawn at the image's own size");
            using var difference = new OpenCvSharp.Mat();
            OpenCvSharp.Cv2.Absdiff(sample, cleanSample, difference);
            Assert.That(OpenCvSharp.Cv2.CountNonZero(difference.Reshape(1)), Is.GreaterThan(0), "the fogged image is drawn, not the clean one");
        }
        Assert.That(console.ToString(), Does.Contain("robustness: cell 5/5 (fog severity 3)").And.Contain("ETA"));
        Assert.That(Directory.GetFiles(outDir).Select(Path.GetFileName), Is.Empty, "only robustness/ is written");

        // The same command again: every cell is in robustness.json, none runs.
        var again = new StringWriter();
        Assert.That(CliProcess.WithConsole(again, () => VimCli.Run(["test", configPath, "--checkpoint", checkpoint, "--out", outDir,
            "--corruptions", "gaussian_noise,fog", "--severities", "1,3", .. sets], errors)), Is.EqualTo(0), errors.ToString());
        Assert.That(again.ToString(), Does.Contain("5 of 5 cells already in").And.Not.Contain("robustness: cell 1/"));
    }
}
