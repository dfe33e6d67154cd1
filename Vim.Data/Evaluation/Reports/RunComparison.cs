using System.Globalization;
using System.Text;
using Vim.Core;
using Vim.Core.Engine;
using Vim.Core.IO;

namespace Vim.Data.Evaluation.Reports;

/// <summary>
/// Several training runs on one chart per key, as mmdet's analyze_logs plot_curve compares json logs: a training key
/// (loss, a loss term, lr, time) over the logged iterations, an evaluation metric at each evaluation; each run's
/// history as <see cref="TrainingLogHistory"/> reads it (what abandoned launches logged left out).
/// </summary>
public static class RunComparison
{
    private static readonly HashSet<string> NotMetrics = ["iter", "epoch", "mode"];

    /// <summary>Writes compare.md and one chart per key into <paramref name="outDir"/>; returns the Markdown path.</summary>
    /// <param name="keys">Keys to compare; null: the total loss and every evaluation metric any run logged.</param>
    /// <param name="legends">One name per run; null: the work dirs' names.</param>
    public static string Write(IReadOnlyList<string> workDirs, string outDir, IReadOnlyList<string>? keys = null, IReadOnlyList<string>? legends = null)
    {
        if (workDirs.Count == 0) throw new VimException("nothing to compare: give the work dirs of the runs");
        if (legends is not null && legends.Count != workDirs.Count)
            throw new VimException($"--legend has {legends.Count} name(s) for {workDirs.Count} run(s); give one per work dir, in order");
        var names = legends ?? Names(workDirs);
        var runs = workDirs.Select(dir =>
        {
            var log = Path.Combine(dir, TrainingLogWriter.LocalFileName);
            if (!File.Exists(log)) throw new VimException($"{log}: no training log (is {dir} a work dir of `vim train`?)");
            return TrainingLogHistory.Read(log);
        }).ToList();

        var trainingKeys = TrainingReport.FieldNames(runs.SelectMany(r => r.Training).Select(i => i.Record)).ToHashSet();
        var evaluationKeys = TrainingReport.FieldNames(runs.SelectMany(r => r.Evaluations)).Where(n => !NotMetrics.Contains(n)).ToList();
        keys ??= [.. trainingKeys.Contains("loss") ? ["loss"] : Array.Empty<string>(), .. evaluationKeys];
        var unknown = keys.Where(k => !trainingKeys.Contains(k) && !evaluationKeys.Contains(k)).ToList();
        if (unknown.Count > 0)
            throw new VimException($"--keys: {string.Join(", ", unknown)} in no run's log; the logs have training keys " +
                $"{string.Join(", ", trainingKeys.Where(k => !NotMetrics.Contains(k)).Order(StringComparer.Ordinal))} and evaluation keys {string.Join(", ", evaluationKeys)}");

        Directory.CreateDirectory(outDir);
        var md = new StringBuilder();
        md.AppendLine($"# Comparison of {runs.Count} runs").AppendLine();
        md.AppendLine("| run | work dir | last iteration |").AppendLine("|---|---|---|");
        for (int r = 0; r < runs.Count; r++)
            md.AppendLine($"| {names[r]} | {workDirs[r]} | {runs[r].Training.Select(i => i.Record.Iteration).DefaultIfEmpty(0).Max()} |");
        md.AppendLine();

        foreach (var key in keys)
        {
            // A key both kinds of record carry (none today) is read where training logs it.
            bool training = trainingKeys.Contains(key);
            var series = runs.Select((run, r) =>
            {
                var records = training ? run.Training.Select(i => i.Record).ToList() : run.Evaluations.ToList();
                return (names[r], records.Select(x => (double)x.Iteration).ToArray(), records.Select(x => x.Number(key)).ToArray());
            }).ToList();
            var file = $"compare_{FileName(key)}.png";
            ReportCharts.SaveLines(Path.Combine(outDir, file), key, "iteration", key, series, markers: !training,
                legend: training ? ScottPlot.Alignment.UpperRight : ScottPlot.Alignment.LowerRight);
            md.AppendLine($"## {key}").AppendLine();
            md.AppendLine(training ? "| run | last |" : "| run | last | best (iteration) |").AppendLine(training ? "|---|---|" : "|---|---|---|");
            foreach (var (name, xs, ys) in series)
            {
                var defined = xs.Zip(ys).Where(p => double.IsFinite(p.Second)).ToList();
                string last = defined.Count == 0 ? "-" : Number(defined[^1].Second);
                if (training)
                {
                    md.AppendLine($"| {name} | {last} |");
                    continue;
                }
                // Higher is better for the metrics the trainer selects checkpoints by (mIoU, AP).
                string best = defined.Count == 0 ? "-" : defined.MaxBy(p => p.Second) is var b ? $"{Number(b.Second)} ({b.First:0})" : "-";
                md.AppendLine($"| {name} | {last} | {best} |");
            }
            md.AppendLine().AppendLine($"![{key}]({file})").AppendLine();
        }
        var path = Path.Combine(outDir, "compare.md");
        AtomicFile.WriteText(path, md.ToString());
        return path;
    }

    /// <summary>Each run's folder name; the whole path where two runs share one.</summary>
    private static IReadOnlyList<string> Names(IReadOnlyList<string> workDirs)
    {
        var leaf = workDirs.Select(d => Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(d)))).ToList();
        return leaf.Distinct().Count() == leaf.Count ? leaf : workDirs.ToList();
    }

    private static string FileName(string key) => string.Concat(key.Select(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' ? c : '_'));

    private static string Number(double v) => v.ToString("0.####", CultureInfo.InvariantCulture);
}
