using System.CommandLine;
using System.Globalization;
using Vim.Core;
using Vim.Core.Checkpoints;
using Vim.Core.Config;
using Vim.Core.Engine;
using Vim.Data.Evaluation.Reports;
using Vim.Detection;
using Vim.Segmentation;

namespace Vim.Tools.Commands;

/// <summary>`vim test CONFIG --checkpoint CKPT [--out DIR] [--ema]`: evaluate a trained model and write its predictions and report.</summary>
public static class TestCommand
{
    public static Command Create()
    {
        var configArg = new Argument<string>("config") { Description = "Experiment config (YAML)." };
        var checkpoint = new Option<string>("--checkpoint") { Description = "A training checkpoint (work_dirs/.../best.safetensors or iter_*.safetensors).", Required = true };
        var outDir = new Option<string?>("--out") { Description = "Folder for predictions, metrics.json, the report and confusion_matrix.csv/.png (default: <checkpoint folder>/test, which `vim report` picks up)." };
        var ema = new Option<bool>("--ema") { Description = "Evaluate the EMA weights stored in the checkpoint." };
        var overlays = new Option<int>("--overlays") { Description = "How many validation images are drawn with their prediction (segmentation: colour overlays; detection: boxes, masks and scores ≥ 0.3 of images holding an object).", DefaultValueFactory = _ => 8 };
        var errorAnalysis = new Option<bool>("--error-analysis") { Description = "Detection: also write mmdet's COCO error analysis (as `vim eval coco-errors`: stage APs C75, C50, Loc, Sim, Oth, BG, FN per category and area range, with charts) into bbox/errors/ and, with masks, segm/errors/, linked from each summary.md; 160 more evaluations on COCO's 80 categories." };
        var set = ConfigCommand.CreateSetOption();
        var command = new Command("test", "Evaluate a checkpoint on the validation split; write predictions, metrics, a report and the confusion matrix " +
            "(segmentation: pixels; detection: boxes with mmdet's defaults, score ≥ 0.3 and IoU ≥ 0.5; `vim eval confusion det` takes other thresholds on results.json); " +
            "detection with --error-analysis: also the COCO error analysis of boxes and masks.");
        command.Arguments.Add(configArg);
        command.Options.Add(checkpoint);
        command.Options.Add(outDir);
        command.Options.Add(ema);
        command.Options.Add(overlays);
        command.Options.Add(errorAnalysis);
        command.Options.Add(set);
        command.SetAction(parse =>
        {
            var (config, _) = TrainCommand.Prepare(parse.GetValue(configArg)!, null, parse.GetValue(set) ?? []);
            var checkpointPath = parse.GetValue(checkpoint)!;
            // Before the datasets are read: a wrong path fails at once.
            CheckpointFile.RequireFile(checkpointPath);
            var dir = parse.GetValue(outDir) ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(checkpointPath))!, "test");
            OutputFolder.Check(dir, "--out");
            if (parse.GetValue(errorAnalysis) && config.Task != TaskKind.Detection)
                throw new VimException($"--error-analysis: the COCO error analysis is for detection configs; {parse.GetValue(configArg)} is a {config.Task.ToString().ToLowerInvariant()} config.");
            if (config.Task == TaskKind.Detection)
            {
                // The checkpoint holds every weight (loaded strictly): model.backbone.pretrained is not read.
                using var detection = new DetectionTask(config, TextWriter.Null, weightsFromCheckpoint: true);
                var (box, mask) = DetectionTester.Run(detection, checkpointPath, dir, parse.GetValue(ema), parse.GetValue(overlays),
                    errorAnalysis: parse.GetValue(errorAnalysis), progress: Console.Out);
                Console.WriteLine(string.Join("\n", box.Lines));
                if (mask is not null) Console.WriteLine("segm:\n" + string.Join("\n", mask.Lines));
                Console.WriteLine($"results.json, metrics.json, reports{(parse.GetValue(errorAnalysis) ? ", the error analysis" : "")} and the confusion matrix in {dir}");
                return 0;
            }

            using var task = new SegmentationTask(config, TextWriter.Null, weightsFromCheckpoint: true);
            var result = SegmentationTester.Run(task, checkpointPath, dir, parse.GetValue(overlays), parse.GetValue(ema));
            Console.WriteLine(SegmentationReport.PerClassTable(result, task.ClassNames));
            foreach (var (name, value) in SegmentationTask.Metrics(result)) Console.WriteLine($"{name}: {value.ToString("0.00", CultureInfo.InvariantCulture)}");
            Console.WriteLine($"predictions, metrics.json, report and the confusion matrix in {dir}");
            return 0;
        });
        return command;
    }
}
