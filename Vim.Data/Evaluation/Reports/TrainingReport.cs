using System.Globalization;
using System.Text;
using Vim.Core;
using Vim.Core.Engine;
using Vim.Core.IO;

namespace Vim.Data.Evaluation.Reports;

/// <summary>
/// The report of a training run, from its JSON-lines log (work_dir/log.jsonl): loss terms, learning
/// rate and time per iteration over training, the validation metrics at each evaluation, and a
/// Markdown summary linking the charts. An epoch-counted run's charts keep iterations on their x axis and mark each
/// epoch's end (as mmdet's analyze_logs plots by epoch).
/// </summary>
public static class TrainingReport
{
    // "epoch": an epoch-counted run's (schedule.max_epochs) records carry it; the charts keep iterations on their x axis.
    // "momentum": a momentum scheduler's beta1 / SGD momentum (~0.9), charted apart: beside acc_seg's percent it is a flat line.
    // "lr_reduced", "momentum_reduced": an evaluation record's note of the ReduceOnPlateauLR / ReduceOnPlateauMomentum entries
    // it triggered (text), reported as a sentence.
    private static readonly HashSet<string> NonLossFields = ["iter", "epoch", "lr", "momentum", "lr_reduced", "momentum_reduced", "time", "data_time", "memory_mb", "mode",
        "loss_scale", "skipped", "overflows", "grad_norm"];

    /// <summary>The fields of a training record that are loss terms (the total and each task's terms).</summary>
    public static List<string> LossTerms(IEnumerable<string> fields) => fields.Where(n => !NonLossFields.Contains(n) && TrainingTerms.IsLoss(n)).ToList();

    /// <summary>The task's logged terms that are no losses (mmseg's decode.acc_seg, in percent).</summary>
    public static List<string> StatisticTerms(IEnumerable<string> fields) => fields.Where(n => !NonLossFields.Contains(n) && !TrainingTerms.IsLoss(n)).ToList();

    /// <summary>How a logged statistic reads: a count per image, a fraction in [0, 1], or anything else.</summary>
    public enum StatisticKind { Count, Fraction, Other }

    /// <summary>
    /// detectron2's EventStorage names (a '/' in them): those whose last part starts with num_ are counts per image
    /// (rpn/num_pos_anchors, stage1/roi_head/num_fg_samples), the others fractions (fast_rcnn/cls_accuracy,
    /// mask_rcnn/false_negative); any other name (mmseg's decode.acc_seg, a percentage) is Other.
    /// </summary>
    public static StatisticKind StatisticKindOf(string name)
    {
        int slash = name.LastIndexOf('/');
        if (slash < 0) return StatisticKind.Other;
        return name.AsSpan(slash + 1).StartsWith("num_", StringComparison.Ordinal) ? StatisticKind.Count : StatisticKind.Fraction;
    }

    /// <summary>Writes report.md and its charts into <paramref name="outDir"/>; returns the Markdown path.</summary>
    public static string Write(string workDir, string outDir, string? title = null)
    {
        var logPath = Path.Combine(workDir, TrainingLogWriter.LocalFileName);
        if (!File.Exists(logPath)) throw new VimException($"{logPath}: no training log (is {workDir} a work dir of `vim train`?)");
        var history = TrainingLogHistory.Read(logPath);
        var intervals = history.Training;
        var train = intervals.Select(i => i.Record).ToList();
        var val = history.Evaluations;
        if (train.Count == 0) throw new VimException($"{logPath}: the log has no training records yet");
        Directory.CreateDirectory(outDir);

        var iterations = train.Select(r => (double)r.Iteration).ToArray();
        var epochMarks = WithPipelineSwitch(EpochMarks(history.EpochEnds), history.PipelineSwitch?.Iteration);
        var lossNames = LossTerms(FieldNames(train));
        var charts = new List<(string File, string Caption)>();

        ReportCharts.SaveLines(Path.Combine(outDir, "loss.png"), "Training loss", "iteration", "loss",
            lossNames.Select(n => (n, iterations, train.Select(r => r.Number(n)).ToArray())).ToList(), xMarks: epochMarks);
        charts.Add(("loss.png", "Loss terms (mean over each logging interval)"));
        var statistics = StatisticTerms(FieldNames(train));
        var counts = statistics.Where(n => StatisticKindOf(n) == StatisticKind.Count).ToList();
        var fractions = statistics.Where(n => StatisticKindOf(n) == StatisticKind.Fraction).ToList();
        var others = statistics.Except(counts).Except(fractions).ToList();
        // Counts (hundreds of anchors and RoIs) and fractions in [0, 1] on one axis would flatten the fractions; mmseg's
        // acc_seg is in percent, so it keeps a chart of its own too.
        foreach (var (file, chartTitle, yLabel, names, caption) in new[]
        {
            ("train_statistics.png", "Training statistics", "value", others, "Logged terms that are no losses (e.g. pixel accuracy of the training batches, %)"),
            ("train_counts.png", "Training sample counts", "per image", counts,
                "Sampled anchors and RoIs per image: rpn/num_pos_anchors, roi_head/num_fg_samples, … (detectron2's training statistics)"),
            ("train_accuracies.png", "Training accuracies", "fraction", fractions,
                "Classification and mask accuracies of the training batches: fast_rcnn/cls_accuracy, mask_rcnn/accuracy, … (detectron2's training statistics, 0–1)"),
        })
        {
            if (names.Count == 0) continue;
            ReportCharts.SaveLines(Path.Combine(outDir, file), chartTitle, "iteration", yLabel,
                names.Select(n => (n, iterations, train.Select(r => r.Number(n)).ToArray())).ToList(), legend: ScottPlot.Alignment.LowerRight, xMarks: epochMarks);
            charts.Add((file, caption));
        }
        ReportCharts.SaveLines(Path.Combine(outDir, "lr.png"), "Learning rate", "iteration", "lr",
            [("lr", iterations, train.Select(r => r.Number("lr")).ToArray())], xMarks: epochMarks);
        charts.Add(("lr.png", "Learning rate (as schedule.* set it per iteration)"));
        if (train.Any(r => r.Has("momentum")))
        {
            ReportCharts.SaveLines(Path.Combine(outDir, "momentum.png"), "Momentum", "iteration", "momentum",
                [("momentum", iterations, train.Select(r => r.Number("momentum")).ToArray())], xMarks: epochMarks);
            charts.Add(("momentum.png", "Momentum (SGD's momentum or AdamW's beta1, as the momentum schedulers in schedule.param_scheduler set it)"));
        }
        ReportCharts.SaveLines(Path.Combine(outDir, "time.png"), "Seconds per iteration", "iteration", "seconds",
            [("iteration", iterations, train.Select(r => r.Number("time")).ToArray()), ("data", iterations, train.Select(r => r.Number("data_time")).ToArray())], xMarks: epochMarks);
        charts.Add(("time.png", "Time per iteration and the part spent waiting for data (means over each logging interval)"));
        if (train.Any(r => r.Has("grad_norm")))
        {
            var clipped = train.Where(r => r.Has("grad_norm")).ToList();
            ReportCharts.SaveLines(Path.Combine(outDir, "grad_norm.png"), "Gradient norm", "iteration", "global L2 norm",
                [("grad_norm", clipped.Select(r => (double)r.Iteration).ToArray(), clipped.Select(r => r.Number("grad_norm")).ToArray())], logY: true, xMarks: epochMarks);
            charts.Add(("grad_norm.png", "Global gradient norm before clipping (mean over each logging interval; optimizer.grad_clip_norm)"));
        }
        if (train.Any(r => r.Has("loss_scale")))
        {
            // Powers of two from 2^16 down: its exponent reads better than the value.
            ReportCharts.SaveLines(Path.Combine(outDir, "loss_scale.png"), "fp16 loss scale", "iteration", "log2(loss scale)",
                [("loss scale", iterations, train.Select(r => Math.Log2(r.Number("loss_scale"))).ToArray())], markers: true, xMarks: epochMarks);
            charts.Add(("loss_scale.png", "fp16 loss scale at each logged iteration (halved at each overflow, whose step is skipped)"));
        }

        var metricNames = FieldNames(val).Where(n => !NonLossFields.Contains(n)).ToList();
        if (val.Count > 0)
        {
            var valIterations = val.Select(r => (double)r.Iteration).ToArray();
            ReportCharts.SaveLines(Path.Combine(outDir, "metrics.png"), "Validation metrics", "iteration", "value",
                metricNames.Select(n => (n, valIterations, val.Select(r => r.Number(n)).ToArray())).ToList(), markers: true,
                legend: ScottPlot.Alignment.UpperLeft, xMarks: epochMarks);
            charts.Add(("metrics.png", "Validation metrics at each evaluation"));
        }

        var md = new StringBuilder();
        md.AppendLine($"# {title ?? $"Training report: {Path.GetFileName(Path.GetFullPath(workDir))}"}").AppendLine();
        if (EpochSummary(history) is { } epochs) md.AppendLine(epochs).AppendLine();
        var last = train[^1];
        md.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"{train.Count} logged intervals up to iteration {last.Iteration}; last loss {last.Number("loss"):0.####}, " +
            $"resident memory {last.Number("memory_mb"):0} MB.")).AppendLine();
        md.AppendLine(Timing(intervals)).AppendLine();
        if (history.Restarts.Count > 0)
            md.AppendLine($"Resumed {history.Restarts.Count} time{(history.Restarts.Count == 1 ? "" : "s")}, at iteration " +
                $"{string.Join(", ", history.Restarts)}; what an abandoned launch logged after the iteration its successor resumed from is left out.").AppendLine();
        if (history.EarlyStop is { } earlyStop)
            md.AppendLine($"Stopped early at iteration {earlyStop.Iteration}{(history.Epochs is { } e ? $" (epoch {e.EpochAt(earlyStop.Iteration)})" : "")} (train.early_stopping): {earlyStop.Text("message") ?? "no reason logged"}.").AppendLine();
        if (history.PipelineSwitch is { } switched)
            md.AppendLine($"The training pipeline switched after iteration {switched.Iteration} (marked \"switch\" on the charts): {switched.Text("message") ?? "no description logged"}.").AppendLine();
        foreach (var reduction in val)
            foreach (var parameter in new[] { "lr", "momentum" })
                if (reduction.Text($"{parameter}_reduced") is { } entries)
                    md.AppendLine($"The {parameter} was reduced after the evaluation at iteration {reduction.Iteration}" +
                        $"{(history.Epochs is { } re ? $" (epoch {re.EpochAt(reduction.Iteration)})" : "")}: {entries}.").AppendLine();
        int skipped = train.Sum(r => r.Has("skipped") ? (int)r.Number("skipped") : 0);
        if (skipped > 0) md.AppendLine($"{skipped} iteration{(skipped == 1 ? " was" : "s were")} skipped for a non-finite loss (train.skip_non_finite_loss).").AppendLine();
        int overflows = train.Sum(r => r.Has("overflows") ? (int)r.Number("overflows") : 0);
        if (overflows > 0) md.AppendLine($"{overflows} optimiser step{(overflows == 1 ? " was" : "s were")} skipped for fp16 gradients that overflowed (each halves a dynamic loss scale).").AppendLine();
        if (history.DamagedLines.Count > 0)
            md.AppendLine($"Unreadable lines of {logPath} were skipped: {string.Join(", ", history.DamagedLines.Take(20))}" +
                $"{(history.DamagedLines.Count > 20 ? $" and {history.DamagedLines.Count - 20} more" : "")} (a line a killed process cut short, or damage).").AppendLine();
        if (val.Count > 0)
        {
            md.AppendLine("| iteration | " + string.Join(" | ", metricNames) + " |");
            md.AppendLine("|---|" + string.Concat(metricNames.Select(_ => "---|")));
            foreach (var r in val)
                md.AppendLine($"| {r.Iteration} | " + string.Join(" | ", metricNames.Select(n => Cell(r.Number(n)))) + " |");
            md.AppendLine();
        }
        foreach (var (file, caption) in charts) md.AppendLine($"![{caption}]({file})").AppendLine().AppendLine($"*{caption}*").AppendLine();

        // Charts of `vim test` (per-class IoU / AP bars, precision-recall curves) and of benchmarks run
        // into the work dir, so one report shows the whole run.
        foreach (var (folder, heading) in new[] { ("test", "Evaluation of the trained model"), ("bench", "Benchmark") })
        {
            var dir = Path.Combine(workDir, folder);
            if (!Directory.Exists(dir)) continue;
            // Charts in the folder and its subfolders (detection: bbox/ and segm/), not the per-image drawings (segmentation's
            // predictions/, detection's overlays/), nor the error analysis's per-category charts (its summary links them), nor a
            // chart a killed writer left as a hidden temporary file.
            var pngs = Directory.EnumerateFiles(dir, "*.png", SearchOption.AllDirectories)
                .Where(png => IsChart(Path.GetRelativePath(dir, png)))
                .Order(StringComparer.Ordinal).ToList();
            // The numbers behind the charts: `vim test`'s summaries (the COCO 12-line summary, the per-class table).
            var summaries = Directory.EnumerateFiles(dir, "summary.md", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
            if (pngs.Count == 0 && summaries.Count == 0) continue;
            md.AppendLine($"## {heading}").AppendLine();
            foreach (var summary in summaries)
                md.AppendLine($"- [{Path.GetRelativePath(dir, summary)}]({Path.GetRelativePath(outDir, summary)})");
            if (summaries.Count > 0) md.AppendLine();
            foreach (var png in pngs)
                md.AppendLine($"![{Path.ChangeExtension(Path.GetRelativePath(dir, png), null)}]({Path.GetRelativePath(outDir, png)})").AppendLine();
        }
        var path = Path.Combine(outDir, "report.md");
        AtomicFile.WriteText(path, md.ToString());
        return path;
    }

    /// <summary>The most epoch ends labelled on a chart, and the most drawn; beyond them every 2nd, 5th, 10th, … epoch.</summary>
    public const int MaxEpochLabels = 12, MaxEpochLines = 60;

    /// <summary>
    /// The charts' marks for an epoch-counted run's epoch ends (<see cref="TrainingLogHistory.EpochEnds"/>, epoch k's end
    /// at index k − 1): a line at each end, labelled "ep k"; with more than <see cref="MaxEpochLabels"/> epochs only every
    /// 2nd, 5th, 10th, 20th, … is labelled (the least step that keeps the labels within it), and with more than
    /// <see cref="MaxEpochLines"/> the lines are thinned the same way (labelled ends keep theirs).
    /// </summary>
    public static List<ChartMark> EpochMarks(IReadOnlyList<int> epochEnds)
    {
        int labelEvery = Thinning(epochEnds.Count, MaxEpochLabels), lineEvery = Thinning(epochEnds.Count, MaxEpochLines);
        return epochEnds.Select((end, i) => (End: end, Epoch: i + 1))
            .Where(e => e.Epoch % lineEvery == 0 || e.Epoch % labelEvery == 0)
            .Select(e => new ChartMark(e.End, e.Epoch % labelEvery == 0 ? $"ep {e.Epoch}" : null))
            .ToList();
    }

    /// <summary>
    /// <paramref name="marks"/> with data.pipeline_switch's iteration marked "switch" (null: unchanged); at an epoch end
    /// already marked (an epoch-counted switch always is) the two share the line: "ep k · switch".
    /// </summary>
    public static List<ChartMark> WithPipelineSwitch(List<ChartMark> marks, int? switchIteration)
    {
        if (switchIteration is not { } at) return marks;
        const string label = "switch";
        int shared = marks.FindIndex(m => m.X == at);
        if (shared < 0) return [.. marks, new ChartMark(at, label)];
        var result = new List<ChartMark>(marks);
        result[shared] = marks[shared] with { Label = marks[shared].Label is { } epoch ? $"{epoch} · {label}" : label };
        return result;
    }

    /// <summary>The least of 1, 2, 5, 10, 20, 50, … that leaves at most <paramref name="most"/> of <paramref name="count"/> items.</summary>
    private static int Thinning(int count, int most)
    {
        for (long decade = 1; ; decade *= 10)
            foreach (int m in (int[])[1, 2, 5])
                if (count <= most * decade * m) return (int)(decade * m);
    }

    /// <summary>What the report says of an epoch-counted run's epochs; null for an iteration-counted one.</summary>
    private static string? EpochSummary(TrainingLogHistory history)
    {
        var ends = history.EpochEnds;
        if (history.Epochs is not { } epochs)
            return history.Training.Any(t => t.Record.Has("epoch"))
                ? "The records carry epochs (schedule.max_epochs), but this log does not tell how many iterations an epoch has; the charts leave epoch ends unmarked."
                : null;
        var reached = ends.Count == 0 ? "no epoch has ended yet" : $"the log reaches the end of epoch {ends.Count} (iteration {ends[^1]})";
        var length = epochs.MaxEpochs is { } max
            ? $"{max} epochs of {epochs.IterationsPerEpoch} iterations ({(long)max * epochs.IterationsPerEpoch} iterations)"
            : $"epochs of {epochs.IterationsPerEpoch} iterations (worked out from the records' epochs)";
        int labelEvery = Thinning(ends.Count, MaxEpochLabels);
        int lineEvery = Thinning(ends.Count, MaxEpochLines);
        return $"Epoch-based schedule (schedule.max_epochs): {length}; {reached}. Dashed lines on the iteration axes mark the end of " +
            $"{(lineEvery == 1 ? "each epoch" : $"every {lineEvery} epochs")}, labelled ep k{(labelEvery > 1 ? $" every {labelEvery} epochs" : "")}.";
    }

    /// <summary>
    /// Mean seconds per iteration, weighted by the iterations each record averages, leaving out each launch's first
    /// interval (model building, the first batches' allocations) unless nothing else was logged, as mmdet's
    /// analyze_logs cal_train_time leaves out each epoch's first record; and the training time the log accounts for.
    /// </summary>
    public static string Timing(IReadOnlyList<TrainingInterval> intervals)
    {
        var steady = intervals.Where(i => !i.OpensLaunch).ToList();
        if (steady.Count == 0) steady = intervals.ToList();
        steady = steady.Where(i => i.Iterations > 0 && double.IsFinite(i.Record.Number("time"))).ToList();
        if (steady.Count == 0) return "No timed iterations were logged.";
        double iterations = steady.Sum(i => i.Iterations);
        double mean = steady.Sum(i => i.Record.Number("time") * i.Iterations) / iterations;
        double data = steady.Sum(i => i.Record.Number("data_time") * i.Iterations) / iterations;
        double median = MathNet.Numerics.Statistics.Statistics.Median(steady.Select(i => i.Record.Number("time")));
        double total = intervals.Where(i => double.IsFinite(i.Record.Number("time"))).Sum(i => i.Record.Number("time") * i.Iterations);
        var hours = TimeSpan.FromSeconds(total);
        return string.Create(CultureInfo.InvariantCulture,
            $"Time: {mean:0.###} s/iteration on average (median interval {median:0.###}), {100 * data / mean:0}% of it waiting for data, " +
            $"over {iterations:0} iterations after each launch's first logged interval (it holds the warm-up); the logged intervals " +
            $"account for {(int)hours.TotalHours}:{hours.Minutes:00}:{hours.Seconds:00} of training, evaluations not included.");
    }

    private static bool IsChart(string relativePath)
    {
        var parts = relativePath.Split(Path.DirectorySeparatorChar);
        return !parts[^1].StartsWith('.') && !parts[..^1].Any(folder => folder is "predictions" or "overlays" or CocoErrorReport.PerCategoryFolder);
    }

    /// <summary>Every field of the records, in the order they first appear (a resumed run may log keys the first records lack).</summary>
    internal static List<string> FieldNames(IEnumerable<LogRecord> records) =>
        records.SelectMany(r => r.Fields.EnumerateObject().Select(p => p.Name)).Distinct().ToList();

    /// <summary>A metric in the table; "nan" where it was undefined (mmseg's spelling).</summary>
    private static string Cell(double value) => double.IsNaN(value) ? "nan" : value.ToString("0.00", CultureInfo.InvariantCulture);
}
