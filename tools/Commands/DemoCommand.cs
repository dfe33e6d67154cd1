using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Vim.Core.Distributed;
using Vim.Core.IO;
using Vim.Data.Demo;
using Vim.Data.Evaluation.Reports;
using Vim.Segmentation;

namespace Vim.Tools.Commands;

/// <summary>
/// `vim demo [--quick]`: the main job on built-in data. Creates the ADE-format demo dataset, trains
/// UperNet on Vim-Ti on the CPU, evaluates it (with a constant-predictor baseline), benchmarks the
/// Vim-Ti and DeiT-Ti backbones over resolutions, and writes one Markdown report with charts.
/// </summary>
public static class DemoCommand
{
    private const string SegmentationConfig = "configs/seg/upernet_vim_tiny_demo_ade.yaml";

    public static Command Create()
    {
        var quick = new Option<bool>("--quick") { Description = "A few minutes on 2 cores (short schedule, two benchmark sizes)." };
        var outDir = new Option<string>("--out") { Description = "Where the demo writes everything.", DefaultValueFactory = _ => "work_dirs/demo" };
        var skipBench = new Option<bool>("--skip-bench") { Description = "Leave out the backbone benchmark." };
        var command = new Command("demo", "Train and evaluate UperNet on Vim-Ti on built-in demo data, benchmark Vim vs DeiT, and write a report.");
        command.Options.Add(quick);
        command.Options.Add(outDir);
        command.Options.Add(skipBench);
        command.SetAction(parse => Run(parse.GetValue(quick), parse.GetValue(outDir)!, parse.GetValue(skipBench)));
        return command;
    }

    private static int Run(bool quick, string outDir, bool skipBench)
    {
        Directory.CreateDirectory(outDir);
        var report = new StringBuilder();
        report.AppendLine("# VimDense demo report").AppendLine();
        report.AppendLine($"Made by `./vim demo{(quick ? " --quick" : "")}` on {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} CPU cores.").AppendLine();

        // 1. Data.
        var adeRoot = Path.Combine("data", "demo", "ade");
        if (!File.Exists(Path.Combine(adeRoot, "class_names.txt")))
        {
            Console.WriteLine($"[demo] creating the ADE-format demo dataset in {adeRoot}");
            DemoDatasetGenerator.Generate(new DemoOptions { Kind = DemoKind.Ade, OutputDir = adeRoot });
        }

        // 2. Segmentation: train, then evaluate the best checkpoint.
        var segDir = Path.Combine(outDir, "seg");
        if (Directory.Exists(segDir)) Directory.Delete(segDir, recursive: true);
        string[] overrides = quick
            ? ["schedule.max_iters=60", "schedule.warmup_iters=10", "train.eval_interval=30", "train.checkpoint_interval=30", "train.log_interval=10"]
            : ["schedule.max_iters=600", "schedule.warmup_iters=50", "train.eval_interval=100", "train.checkpoint_interval=100", "train.log_interval=20"];
        var (config, _) = TrainCommand.Prepare(SegmentationConfig, segDir, [$"data.root={adeRoot}", .. overrides]);
        Console.WriteLine($"[demo] training UperNet + Vim-Ti on {adeRoot} for {config.Schedule.MaxIters} iterations (config {SegmentationConfig})");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var trained = TrainCommand.Train(config, segDir, resumeFrom: null, SingleProcessCommunicator.Instance, CancellationToken.None);
        double trainMinutes = clock.Elapsed.TotalMinutes;
        Console.WriteLine("[demo] evaluating the best checkpoint");
        Dictionary<string, double> metrics;
        (int Class, double MIoU, double AAcc) baseline;
        using (var task = new SegmentationTask(config, TextWriter.Null))
        {
            var result = SegmentationTester.Run(task, Path.Combine(segDir, "best.safetensors"), Path.Combine(segDir, "test"), overlays: 4, ema: false);
            metrics = SegmentationTask.Metrics(result).ToDictionary();
            var (cls, constant) = task.ConstantPredictorBaseline();
            baseline = (cls, 100 * constant.MIoU, 100 * constant.AAcc);
            report.AppendLine("## Semantic segmentation (UperNet + Vim-Ti, ADE-format demo data)").AppendLine();
            report.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"Trained from scratch for {trained.Iteration} iterations (batch {config.Data.BatchSize}, crop {config.Data.CropSize[0]}²) in {trainMinutes:0.0} min; " +
                $"evaluated on {task.ValSet.Count} validation images at their original size ({config.Model.SegTest.Mode} inference)."));
            report.AppendLine();
            report.AppendLine("| | mIoU | mAcc | aAcc |").AppendLine("|---|---|---|---|");
            report.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| Vim-Ti UperNet (best checkpoint) | {metrics["mIoU"]:0.00} | {metrics["mAcc"]:0.00} | {metrics["aAcc"]:0.00} |"));
            report.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| constant predictor (always '{task.ClassNames[cls]}') | {baseline.MIoU:0.00} | {100.0 / task.ClassNames.Count:0.00} | {baseline.AAcc:0.00} |"));
            report.AppendLine();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[demo] mIoU {metrics["mIoU"]:0.00} (constant predictor {baseline.MIoU:0.00})"));
        }
        TrainingReport.Write(segDir, Path.Combine(segDir, "report"));
        foreach (var (file, caption) in new[]
                 {
                     ("seg/report/loss.png", "Training losses"), ("seg/report/metrics.png", "Validation metrics over training"),
                     ("seg/test/per_class_iou.png", "Per-class IoU of the best checkpoint"),
                 })
            report.AppendLine($"![{caption}]({file})").AppendLine().AppendLine($"*{caption}*").AppendLine();
        var overlays = Directory.EnumerateFiles(Path.Combine(segDir, "test", "predictions", "overlay"), "*.png").Order().Take(4).ToList();
        if (overlays.Count > 0)
        {
            report.AppendLine("Predictions on validation images (colour overlay):").AppendLine();
            report.AppendLine(string.Join(" ", overlays.Select(o => $"![{Path.GetFileName(o)}]({Path.GetRelativePath(outDir, o)})"))).AppendLine();
        }
        report.AppendLine("## Detection").AppendLine();
        report.AppendLine("Cascade Mask R-CNN is not part of this build yet, so the demo trains segmentation only.").AppendLine();

        // 3. Backbone benchmark.
        if (!skipBench)
        {
            var benchDir = Path.Combine(outDir, "bench");
            int[] sizes = quick ? [224, 512] : [224, 512, 738, 1024];
            Console.WriteLine($"[demo] benchmarking vim_tiny vs deit_tiny at {string.Join(", ", sizes)} (each in a fresh process)");
            BenchBackboneCommand.RunAll(["vim_tiny", "deit_tiny"], sizes, batch: 1, warmup: 1, repeats: quick ? 3 : 5, benchDir, timeoutSeconds: 900);
            report.AppendLine("## Backbone speed and memory: Vim-Ti vs DeiT-Ti (CPU, batch 1, feature extraction)").AppendLine();
            report.AppendLine(BenchmarkTable(Path.Combine(benchDir, "backbone.json"))).AppendLine();
            report.AppendLine("![latency](bench/latency.png)").AppendLine().AppendLine("![memory](bench/memory.png)").AppendLine();
        }

        var path = Path.Combine(outDir, "report.md");
        AtomicFile.WriteText(path, report.ToString());
        // One key per line so shell scripts (CI) can read it without a JSON tool.
        var summary = string.Create(CultureInfo.InvariantCulture,
            $"{{\n  \"iterations\": {trained.Iteration},\n  \"miou\": {metrics["mIoU"]:0.####},\n  \"baseline_miou\": {baseline.MIoU:0.####},\n  \"train_minutes\": {trainMinutes:0.##}\n}}\n");
        AtomicFile.WriteText(Path.Combine(outDir, "summary.json"), summary);
        Console.WriteLine($"[demo] report: {Path.GetFullPath(path)}");
        return 0;
    }

    private static string BenchmarkTable(string jsonPath)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(jsonPath));
        var rows = new StringBuilder("| model | attention | input | tokens | median latency (ms) | peak memory above idle (MiB) |\n|---|---|---|---|---|---|\n");
        foreach (var m in doc.RootElement.EnumerateArray())
        {
            string Field(string name) => m.GetProperty(name).ValueKind == JsonValueKind.Number
                ? m.GetProperty(name).GetDouble().ToString("0.#", CultureInfo.InvariantCulture)
                : m.GetProperty(name).ToString();
            rows.AppendLine($"| {Field("Model")} | {Field("Attention")} | {Field("InputSize")} | {Field("Tokens")} | {Field("MedianMs")} | {Field("PeakMiB")} |");
        }
        return rows.ToString();
    }
}
