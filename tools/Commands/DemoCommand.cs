using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using TorchSharp;
using Vim.Core.Checkpoints;
using Vim.Core.Distributed;
using Vim.Core.Engine;
using Vim.Core.IO;
using Vim.Data.Demo;
using Vim.Data.Evaluation;
using Vim.Data.Evaluation.Reports;
using Vim.Detection;
using Vim.Segmentation;

namespace Vim.Tools.Commands;

/// <summary>
/// `vim demo [--quick]`: the main job on built-in data. Creates the ADE- and COCO-format demo
/// datasets, trains UperNet and Cascade Mask R-CNN on Vim-Ti on the CPU, evaluates them (against a
/// constant predictor and the untrained detector), benchmarks the Vim-Ti and DeiT-Ti backbones over
/// resolutions, and writes one Markdown report with charts.
/// </summary>
public static class DemoCommand
{
    private const string SegmentationConfig = "configs/seg/upernet_vim_tiny_demo_ade.yaml";
    private const string DetectionConfig = "configs/det/cascade_mask_rcnn_vim_tiny_demo_coco.yaml";


    public static Command Create()
    {
        var quick = new Option<bool>("--quick") { Description = "About 5 minutes on 2 quiet cores, 8 on a busy machine (short schedules, two benchmark sizes)." };
        var outDir = new Option<string>("--out") { Description = "Where the demo writes everything.", DefaultValueFactory = _ => "work_dirs/demo" };
        var skipBench = new Option<bool>("--skip-bench") { Description = "Leave out the backbone benchmark." };
        var command = new Command("demo", "Train and evaluate UperNet and Cascade Mask R-CNN on Vim-Ti on built-in demo data, benchmark Vim vs DeiT, and write a report.");
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
        Console.WriteLine($"[demo] training UperNet + Vim-Ti on {adeRoot} for {config.Schedule.IterationCount()} iterations (config {SegmentationConfig})");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var trained = TrainCommand.Train(config, segDir, resumeFrom: null, SingleProcessCommunicator.Instance, CancellationToken.None);
        double trainMinutes = clock.Elapsed.TotalMinutes;
        Console.WriteLine("[demo] evaluating the best checkpoint");
        Dictionary<string, double> metrics;
        (int Class, double MIoU, double MAcc, double AAcc) baseline;
        using (var task = new SegmentationTask(config, TextWriter.Null))
        {
            var result = SegmentationTester.Run(task, Path.Combine(segDir, "best.safetensors"), Path.Combine(segDir, "test"), overlays: 4, ema: false);
            metrics = SegmentationTask.Metrics(result).ToDictionary();
            var (cls, constant) = task.ConstantPredictorBaseline();
            baseline = (cls, 100 * constant.MIoU, 100 * constant.MAcc, 100 * constant.AAcc);
            report.AppendLine("## Semantic segmentation (UperNet + Vim-Ti, ADE-format demo data)").AppendLine();
            report.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"Trained from scratch for {trained.Iteration} iterations (batch {config.Data.BatchSize}, crop {config.Data.CropSize[0]}²) in {trainMinutes:0.0} min; " +
                $"evaluated on {task.ValSet.Count} validation images at their original size ({config.Model.SegTest.Mode} inference)."));
            report.AppendLine();
            report.AppendLine("| | mIoU | mAcc | aAcc |").AppendLine("|---|---|---|---|");
            report.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| Vim-Ti UperNet (best checkpoint) | {metrics["mIoU"]:0.00} | {metrics["mAcc"]:0.00} | {metrics["aAcc"]:0.00} |"));
            report.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| constant predictor (always '{task.ClassNames[cls]}') | {baseline.MIoU:0.00} | {baseline.MAcc:0.00} | {baseline.AAcc:0.00} |"));
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
        // 3. Detection: the untrained model (iteration 0) as the floor, then train and evaluate the best checkpoint.
        var detection = RunDetection(quick, outDir, report);

        // 4. Backbone benchmark.
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
            $"{{\n  \"iterations\": {trained.Iteration},\n  \"miou\": {JsonNumber(metrics["mIoU"])},\n  \"baseline_miou\": {JsonNumber(baseline.MIoU)},\n  \"train_minutes\": {trainMinutes:0.##},\n" +
            $"  \"det_iterations\": {detection.Iterations},\n  \"box_ap\": {JsonNumber(detection.BoxAp)},\n  \"box_ap50\": {JsonNumber(detection.BoxAp50)},\n  \"mask_ap\": {JsonNumber(detection.MaskAp)},\n" +
            $"  \"untrained_box_ap\": {JsonNumber(detection.UntrainedBoxAp)},\n  \"untrained_mask_ap\": {JsonNumber(detection.UntrainedMaskAp)},\n  \"det_train_minutes\": {detection.TrainMinutes:0.##}\n}}\n");
        AtomicFile.WriteText(Path.Combine(outDir, "summary.json"), summary);
        Console.WriteLine($"[demo] report: {Path.GetFullPath(path)}");
        return 0;
    }

    /// <summary>What the detection part of the demo measured (AP in percent).</summary>
    private sealed record DetectionOutcome(int Iterations, double BoxAp, double BoxAp50, double MaskAp, double UntrainedBoxAp, double UntrainedMaskAp, double TrainMinutes);

    /// <summary>
    /// Cascade Mask R-CNN + Vim-Ti on the COCO-format demo data: evaluates the untrained detector
    /// (the same seed, so exactly the weights training starts from), trains, evaluates the best
    /// checkpoint as `vim test` does (results, metrics, PR curves, per-category AP), draws a few
    /// validation predictions, and appends the "Detection" section to the report.
    /// </summary>
    private static DetectionOutcome RunDetection(bool quick, string outDir, StringBuilder report)
    {
        var cocoRoot = Path.Combine("data", "demo", "coco");
        if (!File.Exists(Path.Combine(cocoRoot, "annotations", "instances_val.json")) || !File.Exists(Path.Combine(cocoRoot, "annotations", "instances_train.json")))
        {
            Console.WriteLine($"[demo] creating the COCO-format demo dataset in {cocoRoot}");
            DemoDatasetGenerator.Generate(new DemoOptions { Kind = DemoKind.Coco, OutputDir = cocoRoot });
        }
        var detDir = Path.Combine(outDir, "det");
        if (Directory.Exists(detDir)) Directory.Delete(detDir, recursive: true);
        // The quick schedule trains on 192² crops (and tests at 192) with a 3x learning rate, which
        // measured 0.8-3.0 box AP after 120 iterations (0.0 at 60; 0.03 for 80 iterations at 256² and the
        // config's 2e-4), too close to the start of learning for a stable CI check, hence 160 iterations;
        // it evaluates half-way and at the end. The backbone's size follows the crop, as the official 1024 does: batches
        // are padded to that square, and 192 crops padded to 256 learned too slowly for this schedule (0.0 AP at 160).
        // The full schedule is the config's
        // (256², 2e-4: about 37 box AP at 400 iterations), evaluated every 100 iterations.
        string[] overrides = quick
            ? ["schedule.max_iters=160", "schedule.warmup_iters=10", "schedule.milestones=[135,155]", "optimizer.lr=6e-4", "data.crop_size=[192,192]", "model.backbone.img_size=192",
               "train.eval_interval=80", "train.checkpoint_interval=80", "train.log_interval=10"]
            : ["schedule.max_iters=400", "schedule.warmup_iters=50", "schedule.milestones=[300,370]", "train.eval_interval=100", "train.checkpoint_interval=100", "train.log_interval=20"];
        var (config, _) = TrainCommand.Prepare(DetectionConfig, detDir, [$"data.root={cocoRoot}", .. overrides]);
        // After the quick schedule the detector is right but not yet confident (top scores near 0.15),
        // so its overlays draw from a lower score than the full run's.
        double overlayThreshold = quick ? 0.1 : 0.3;

        Console.WriteLine("[demo] evaluating the untrained detector (iteration 0: the weights training starts from)");
        (CocoSummary Box, CocoSummary? Mask) untrained;
        using (var fresh = new DetectionTask(config, TextWriter.Null))
        {
            var (box, mask, _) = fresh.EvaluateFull();
            untrained = (box, mask);
        }
        var untrainedMetrics = DetectionTask.Metrics(untrained);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[demo] untrained box AP {untrainedMetrics["bbox_mAP"]:0.00}"));

        Console.WriteLine($"[demo] training Cascade Mask R-CNN + Vim-Ti on {cocoRoot} for {config.Schedule.IterationCount()} iterations (config {DetectionConfig})");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var trained = TrainCommand.Train(config, detDir, resumeFrom: null, SingleProcessCommunicator.Instance, CancellationToken.None);
        double trainMinutes = clock.Elapsed.TotalMinutes;

        // The untrained model's evaluation files go beside the trained one's (the work dir is prepared by training).
        var untrainedDir = Path.Combine(detDir, "untrained");
        Directory.CreateDirectory(untrainedDir);
        AtomicFile.WriteText(Path.Combine(untrainedDir, "metrics.json"), JsonSerializer.Serialize(untrainedMetrics, MetricJson.Indented));
        CocoReport.Write(untrained.Box, Path.Combine(untrainedDir, "bbox"), "Box AP: untrained detector");

        Console.WriteLine("[demo] evaluating the best detection checkpoint");
        var best = Path.Combine(detDir, "best.safetensors");
        int bestIteration;
        using (var file = CheckpointFile.Load(best))
            bestIteration = int.Parse(file.Metadata["iteration"], CultureInfo.InvariantCulture);
        IReadOnlyDictionary<string, double> metrics;
        var overlays = new List<string>();
        using (var task = new DetectionTask(config, TextWriter.Null))
        {
            // One process: rank 0's result.
            var (box, mask, _) = DetectionTester.Run(task, best, Path.Combine(detDir, "test"), ema: false)!.Value;
            metrics = DetectionTask.Metrics((box, mask));
            overlays.AddRange(DetectionTester.WriteOverlays(task, Path.Combine(detDir, "overlays"), 4, overlayThreshold));
            ApOverTraining(detDir, untrainedMetrics, Path.Combine(detDir, "ap_over_training.png"));
            TrainingReport.Write(detDir, Path.Combine(detDir, "report"));

            var m = metrics;
            var u = untrainedMetrics;
            report.AppendLine("## Instance detection and segmentation (Cascade Mask R-CNN + Vim-Ti, COCO-format demo data)").AppendLine();
            int empty = task.ValSet.Images.Count(i => !task.ValSet.HoldsObject(i));
            report.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"Trained from scratch for {trained.Iteration} iterations (batch {config.Data.BatchSize}, LSJ crops of {config.Data.CropSize[0]}²) in {trainMinutes:0.0} min; " +
                $"the best checkpoint (iteration {bestIteration}) evaluated with COCO box and mask AP on {task.ValSet.Count} validation images " +
                $"({empty} without objects; crowd regions are ignored as in COCO). " +
                $"The untrained row is the same config and seed before its first step: the floor training must clear."));
            report.AppendLine();
            report.AppendLine("| | box AP | box AP50 | box AP75 | mask AP | mask AP50 |").AppendLine("|---|---|---|---|---|---|");
            report.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| Vim-Ti Cascade Mask R-CNN (best checkpoint) | {m["bbox_mAP"]:0.0} | {m["bbox_mAP_50"]:0.0} | {m["bbox_mAP_75"]:0.0} | {Get(m, "segm_mAP"):0.0} | {Get(m, "segm_mAP_50"):0.0} |"));
            report.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| untrained (iteration 0) | {u["bbox_mAP"]:0.0} | {u["bbox_mAP_50"]:0.0} | {u["bbox_mAP_75"]:0.0} | {Get(u, "segm_mAP"):0.0} | {Get(u, "segm_mAP_50"):0.0} |"));
            report.AppendLine();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"[demo] box AP {m["bbox_mAP"]:0.00}, mask AP {Get(m, "segm_mAP"):0.00} (untrained: box {u["bbox_mAP"]:0.00}, mask {Get(u, "segm_mAP"):0.00})"));
        }
        foreach (var (file, caption) in new[]
                 {
                     ("det/ap_over_training.png", "Box and mask AP over training (iteration 0: the untrained detector)"),
                     ("det/report/loss.png", "Detection training losses"),
                     ("det/test/bbox/pr_curves.png", "Box precision-recall curves of the best checkpoint (one per IoU threshold)"),
                     ("det/test/bbox/per_category_ap.png", "Box AP per category"),
                     ("det/test/segm/per_category_ap.png", "Mask AP per category"),
                 })
            report.AppendLine($"![{caption}]({file})").AppendLine().AppendLine($"*{caption}*").AppendLine();
        if (overlays.Count > 0)
        {
            report.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"Detections on validation images (score ≥ {overlayThreshold}; boxes, filled masks, class and score):")).AppendLine();
            report.AppendLine(string.Join(" ", overlays.Select(o => $"![{Path.GetFileName(o)}]({Path.GetRelativePath(outDir, o)})"))).AppendLine();
        }
        return new DetectionOutcome(trained.Iteration, metrics["bbox_mAP"], metrics["bbox_mAP_50"], Get(metrics, "segm_mAP"),
            untrainedMetrics["bbox_mAP"], Get(untrainedMetrics, "segm_mAP"), trainMinutes);
    }

    /// <summary>Box and mask AP at each evaluation of the training log, starting from the untrained model at iteration 0.</summary>
    private static void ApOverTraining(string workDir, IReadOnlyDictionary<string, double> untrained, string path)
    {
        var evaluations = TrainingLogHistory.Read(Path.Combine(workDir, TrainingLogWriter.LocalFileName)).Evaluations
            .Select(r => (Iteration: (double)r.Iteration, Box: r.Number("bbox_mAP"), Mask: r.Number("segm_mAP")))
            .ToList();
        double[] xs = [0, .. evaluations.Select(e => e.Iteration)];
        var series = new List<(string, double[], double[])> { ("box AP", xs, [untrained["bbox_mAP"], .. evaluations.Select(e => e.Box)]) };
        if (untrained.ContainsKey("segm_mAP")) series.Add(("mask AP", xs, [untrained["segm_mAP"], .. evaluations.Select(e => e.Mask)]));
        ReportCharts.SaveLines(path, "COCO AP on the validation split", "iteration", "AP (%)", series, markers: true, legend: ScottPlot.Alignment.UpperLeft);
    }

    /// <summary>A JSON number, or null where a metric is undefined (NaN is not JSON).</summary>
    private static string JsonNumber(double value) =>
        double.IsFinite(value) ? value.ToString("0.####", CultureInfo.InvariantCulture) : "null";

    private static double Get(IReadOnlyDictionary<string, double> metrics, string key) => metrics.TryGetValue(key, out var v) ? v : double.NaN;

    private static string BenchmarkTable(string jsonPath)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(jsonPath));
        var rows = new StringBuilder("| model | attention | input | tokens | GFLOPs | median latency (ms) | peak memory above idle (MiB) |\n|---|---|---|---|---|---|---|\n");
        foreach (var m in doc.RootElement.EnumerateArray())
        {
            string Field(string name, string format = "0.#") => m.GetProperty(name).ValueKind == JsonValueKind.Number
                ? m.GetProperty(name).GetDouble().ToString(format, CultureInfo.InvariantCulture)
                : m.GetProperty(name).ToString();
            rows.AppendLine($"| {Field("Model")} | {Field("Attention")} | {Field("InputSize")} | {Field("Tokens")} | {Field("Gflops", "0.##")} | {Field("MedianMs")} | {Field("PeakMiB")} |");
        }
        return rows.ToString();
    }
}
