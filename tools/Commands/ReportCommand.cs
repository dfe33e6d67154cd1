using System.CommandLine;
using Vim.Core;
using Vim.Data.Evaluation.Reports;

namespace Vim.Tools.Commands;

/// <summary>
/// `vim report WORK_DIR [--out DIR]`: charts and Markdown from a training run's log;
/// `vim report DIR1 DIR2 … --out DIR [--keys k1,k2] [--legend a,b]`: the runs compared, one chart per key.
/// </summary>
public static class ReportCommand
{
    public static Command Create()
    {
        var workDirs = new Argument<string[]>("work-dirs") { Description = "Work dirs written by `vim train`: one for its report, several to compare them.", Arity = ArgumentArity.OneOrMore };
        var outDir = new Option<string?>("--out") { Description = "Where the report goes (one run: default WORK_DIR/report; several: required)." };
        var keys = new Option<string?>("--keys") { Description = "Comparing runs: the log keys to chart, comma-separated (default: loss and every evaluation metric)." };
        var legend = new Option<string?>("--legend") { Description = "Comparing runs: a name per run, comma-separated, in order (default: the work dirs' names)." };
        var command = new Command("report", "Write a Markdown report with ScottPlot charts (losses, training statistics, lr, time, validation metrics) from a training log, or compare several runs. " +
            "An epoch-counted run's (schedule.max_epochs) charts keep iterations on the x axis and mark each epoch's end (ep k; labels thinned " +
            "beyond 12 epochs) and a data.pipeline_switch (switch); comparisons of several runs are not marked, since their epochs may differ.");
        command.Arguments.Add(workDirs);
        command.Options.Add(outDir);
        command.Options.Add(keys);
        command.Options.Add(legend);
        command.SetAction(parse =>
        {
            var dirs = parse.GetValue(workDirs)!;
            if (parse.GetValue(outDir) is { } requested) OutputFolder.Check(requested, "--out");
            static string[]? List(string? text) => text?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (dirs.Length == 1 && parse.GetValue(keys) is null && parse.GetValue(legend) is null)
            {
                var path = TrainingReport.Write(dirs[0], parse.GetValue(outDir) ?? Path.Combine(dirs[0], "report"));
                Console.WriteLine($"report: {path}");
                return 0;
            }
            var output = parse.GetValue(outDir) ?? throw new VimException($"--out: comparing {dirs.Length} run(s) needs a folder for the charts");
            var comparison = RunComparison.Write(dirs, output, List(parse.GetValue(keys)), List(parse.GetValue(legend)));
            Console.WriteLine($"comparison: {comparison}");
            return 0;
        });
        return command;
    }
}
