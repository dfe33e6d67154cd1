using System.CommandLine;
using Vim.Data.Evaluation.Reports;

namespace Vim.Tools.Commands;

/// <summary>`vim report WORK_DIR [--out DIR]`: charts and Markdown from a training run's log.</summary>
public static class ReportCommand
{
    public static Command Create()
    {
        var workDir = new Argument<string>("work-dir") { Description = "A work dir written by `vim train`." };
        var outDir = new Option<string?>("--out") { Description = "Where report.md and the charts go (default: WORK_DIR/report)." };
        var command = new Command("report", "Write a Markdown report with ScottPlot charts (losses, lr, time, validation metrics) from a training log.");
        command.Arguments.Add(workDir);
        command.Options.Add(outDir);
        command.SetAction(parse =>
        {
            var dir = parse.GetValue(workDir)!;
            var path = TrainingReport.Write(dir, parse.GetValue(outDir) ?? Path.Combine(dir, "report"));
            Console.WriteLine($"report: {path}");
            return 0;
        });
        return command;
    }
}
