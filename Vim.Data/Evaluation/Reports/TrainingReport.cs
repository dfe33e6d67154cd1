using System.Globalization;
using System.Text;
using Vim.Core;
using Vim.Core.Engine;
using Vim.Core.IO;

namespace Vim.Data.Evaluation.Reports;

/// <summary>
/// The report of a training run, from its JSON-lines log (work_dir/log.jsonl): loss terms, learning
/// rate and time per iteration over training, the validation metrics at each evaluation, and a
/// Markdown summary linking the charts.
/// </summary>
public static class TrainingReport
{
    private static readonly HashSet<string> NonLossFields = ["iter", "lr", "time", "data_time", "memory_mb", "mode", "loss_scale"];

    /// <summary>The fields of a training record that are loss terms (the total and each task's terms).</summary>
    public static List<string> LossTerms(IEnumerable<string> fields) => fields.Where(n => !NonLossFields.Contains(n)).ToList();

    /// <summary>Writes report.md and its charts into <paramref name="outDir"/>; returns the Markdown path.</summary>
    public static string Write(string workDir, string outDir, string? title = null)
    {
        var logPath = Path.Combine(workDir, "log.jsonl");
        if (!File.Exists(logPath)) throw new VimException($"{logPath}: no training log (is {workDir} a work dir of `vim train`?)");
        var records = JsonLinesLog.Read(logPath).ToList();
        var train = records.Where(r => r.Mode is null).ToList();
        var val = records.Where(r => r.IsEvaluation).ToList();
        if (train.Count == 0) throw new VimException($"{logPath}: the log has no training records yet");
        Directory.CreateDirectory(outDir);

        // A resumed run appends to the same log and may repeat iterations: keep the last record per iteration.
        train = train.GroupBy(r => r.Iteration).Select(g => g.Last()).OrderBy(r => r.Iteration).ToList();
        val = val.GroupBy(r => r.Iteration).Select(g => g.Last()).OrderBy(r => r.Iteration).ToList();

        var iterations = train.Select(r => (double)r.Iteration).ToArray();
        var lossNames = LossTerms(train[0].Fields.EnumerateObject().Select(p => p.Name));
        var charts = new List<(string File, string Caption)>();

        ReportCharts.SaveLines(Path.Combine(outDir, "loss.png"), "Training loss", "iteration", "loss",
            lossNames.Select(n => (n, iterations, train.Select(r => r.Number(n)).ToArray())).ToList());
        charts.Add(("loss.png", "Loss terms (mean over each logging interval)"));
        ReportCharts.SaveLines(Path.Combine(outDir, "lr.png"), "Learning rate", "iteration", "lr",
            [("lr", iterations, train.Select(r => r.Number("lr")).ToArray())]);
        charts.Add(("lr.png", "Learning rate (warmup, then the schedule's policy)"));
        ReportCharts.SaveLines(Path.Combine(outDir, "time.png"), "Seconds per iteration", "iteration", "seconds",
            [("iteration", iterations, train.Select(r => r.Number("time")).ToArray()), ("data", iterations, train.Select(r => r.Number("data_time")).ToArray())]);
        charts.Add(("time.png", "Time per iteration and the part spent waiting for data"));
        if (train.Any(r => r.Has("loss_scale")))
        {
            // Powers of two from 2^16 down: its exponent reads better than the value.
            ReportCharts.SaveLines(Path.Combine(outDir, "loss_scale.png"), "fp16 loss scale", "iteration", "log2(loss scale)",
                [("loss scale", iterations, train.Select(r => Math.Log2(r.Number("loss_scale"))).ToArray())], markers: true);
            charts.Add(("loss_scale.png", "fp16 loss scale at each logged iteration (halved at each overflow, whose step is skipped)"));
        }

        var metricNames = val.Count == 0 ? [] : val[0].Fields.EnumerateObject().Select(p => p.Name).Where(n => !NonLossFields.Contains(n)).ToList();
        if (val.Count > 0)
        {
            var valIterations = val.Select(r => (double)r.Iteration).ToArray();
            ReportCharts.SaveLines(Path.Combine(outDir, "metrics.png"), "Validation metrics", "iteration", "value",
                metricNames.Select(n => (n, valIterations, val.Select(r => r.Number(n)).ToArray())).ToList(), markers: true,
                legend: ScottPlot.Alignment.UpperLeft);
            charts.Add(("metrics.png", "Validation metrics at each evaluation"));
        }

        var md = new StringBuilder();
        md.AppendLine($"# {title ?? $"Training report: {Path.GetFileName(Path.GetFullPath(workDir))}"}").AppendLine();
        var last = train[^1];
        md.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"{train.Count} logged intervals up to iteration {last.Iteration}; last loss {last.Number("loss"):0.####}, " +
            $"{last.Number("time"):0.###} s/iteration, resident memory {last.Number("memory_mb"):0} MB.")).AppendLine();
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
            // Charts in the folder and its subfolders (detection: bbox/ and segm/), not the per-image predictions.
            var pngs = Directory.EnumerateFiles(dir, "*.png", SearchOption.AllDirectories)
                .Where(png => !Path.GetRelativePath(dir, png).StartsWith("predictions" + Path.DirectorySeparatorChar, StringComparison.Ordinal))
                .Order(StringComparer.Ordinal).ToList();
            if (pngs.Count == 0) continue;
            md.AppendLine($"## {heading}").AppendLine();
            foreach (var png in pngs)
                md.AppendLine($"![{Path.ChangeExtension(Path.GetRelativePath(dir, png), null)}]({Path.GetRelativePath(outDir, png)})").AppendLine();
        }
        var path = Path.Combine(outDir, "report.md");
        AtomicFile.WriteText(path, md.ToString());
        return path;
    }

    /// <summary>A metric in the table; "nan" where it was undefined (mmseg's spelling).</summary>
    private static string Cell(double value) => double.IsNaN(value) ? "nan" : value.ToString("0.00", CultureInfo.InvariantCulture);
}
