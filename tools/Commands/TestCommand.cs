using System.CommandLine;
using System.Globalization;
using Vim.Core;
using Vim.Core.Checkpoints;
using Vim.Core.Config;
using Vim.Core.Distributed;
using Vim.Core.Engine;
using Vim.Data.Evaluation;
using Vim.Data.Evaluation.Reports;
using Vim.Data.Evaluation.Robustness;
using Vim.Data.Transforms.Corruptions;
using Vim.Detection;
using Vim.Segmentation;

namespace Vim.Tools.Commands;

/// <summary>`vim test CONFIG --checkpoint CKPT [--out DIR] [--ema] [--tta] [--proposals] [--format-only [--split S]] [--corruptions C [--severities S]]`: evaluate a trained model and write its predictions and report, or (--format-only) predict an unlabelled split for a test server, or (--corruptions) run the robustness benchmark; under mpirun the processes share the images and rank 0 writes.</summary>
public static class TestCommand
{
    public static Command Create()
    {
        var configArg = new Argument<string>("config") { Description = "Experiment config (YAML)." };
        var checkpoint = new Option<string>("--checkpoint") { Description = "A training checkpoint (work_dirs/.../best.safetensors or iter_*.safetensors).", Required = true };
        var outDir = new Option<string?>("--out") { Description = "Folder for predictions, metrics.json, the report and confusion_matrix.csv/.png (default: <checkpoint folder>/test, which `vim report` picks up; with --format-only the submission files, default <checkpoint folder>/submit_<split>; with --corruptions its robustness/ folder alone)." };
        var ema = new Option<bool>("--ema") { Description = "Evaluate the EMA weights stored in the checkpoint." };
        var overlays = new Option<int>("--overlays") { Description = "How many validation images are drawn with their prediction (segmentation: colour overlays; detection: boxes, masks and scores ≥ --score-thr of images holding an object; with --format-only the split's first images).", DefaultValueFactory = _ => 8 };
        var scoreThr = new Option<double>("--score-thr") { Description = "Detection: the score from which detections are drawn in the overlays (mmdet's --show-score-thr) and, with --corruptions, in the samples; evaluation takes every detection.", DefaultValueFactory = _ => 0.3 };
        var errorAnalysis = new Option<bool>("--error-analysis") { Description = "Detection: also write mmdet's COCO error analysis (as `vim eval coco-errors`: stage APs C75, C50, Loc, Sim, Oth, BG, FN per category and area range, with charts) into bbox/errors/ and, with masks, segm/errors/, linked from each summary.md; 160 more evaluations on COCO's 80 categories, reading the masks mask AP has converted." };
        var formatOnly = new Option<bool>("--format-only") { Description = "Predict a split without labels and write what the test server takes, evaluating nothing (mmdet/mmseg's format_only): " +
            "detection: the images of annotations/image_info_<split>.json (images and categories, which must be the training file's) in the image folder (data.img_dir, default <split>/) of the split without \"-dev\", " +
            "written as results.json (COCO results, as vim test writes it) and zipped as detections_<split>_vimdense_results.zip; segmentation: every image of the split's image folder (data.img_dir, default images/<split>/), " +
            "one 8-bit PNG each in submission/ (class index + 1 with data.reduce_zero_label, so 0 is ADE20k's \"other\"), zipped as submission.zip. " +
            "--overlays draws the first images' predictions; --error-analysis needs ground truth and is refused." };
        var tta = new Option<bool>("--tta") { Description = "Test-time augmentation (mmdet's and mmseg's --tta): also predict on the horizontally flipped image " +
            "(the override model.det_test.flip=true or model.seg_test.flip=true, applied after --set, so it wins over a --set of the same key); the config's scales (model.det_test.scales, model.seg_test.scales) add passes. " +
            "Detection merges every pass's boxes by class-wise NMS (model.det_test.nms_iou, max_per_img; Soft-NMS with --set model.det_test.nms_type=soft_nms and " +
            "model.det_test.soft_nms_method, soft_nms_sigma, soft_nms_min_score, whose decayed scores are the detections') and averages the masks at the merged boxes; " +
            "segmentation averages the softmax." };
        var proposals = new Option<bool>("--proposals") { Description = "Detection: also evaluate the RPN alone, as mmdet's CocoMetric(metric='proposal'): its test-time " +
            "proposals from the same forward as the detections (after its NMS and post-NMS top-k, i.e. what the box heads receive), mapped to the original image and scored by " +
            "objectness, written as class-agnostic COCO results (proposals.json, every proposal with the category of class 0, as mmdet writes an RPN's) and evaluated with " +
            "COCOeval useCats = 0 and maxDets 100, 300, 1000: AR@100, AR@300, AR@1000, AR_s@1000, AR_m@1000, AR_l@1000 in percent, in metrics.json as proposal_AR@100, … " +
            "and in bbox/summary.md. The RPN keeps at most model.det_head.rpn_post_nms_topk_test proposals per image (1000 in the recipes, 200 in the demo configs), " +
            "so AR@1000 sees no more than that. Not with --format-only (no ground truth) or --tta (each pass proposes its own boxes)." };
        var corruptions = new Option<string[]>("--corruptions")
        {
            Description = "The robustness benchmark (mmdet's test_robustness.py, COCO-C / ADE20K-C): evaluate the validation split clean and with every image " +
                "corrupted, after decoding and before the test resize, by each of these corruptions at each --severities, seeded by the image's index. " +
                $"Groups: {string.Join(", ", ImageCorruptions.Groups.Keys)} (benchmark: the 15 of noise, blur, weather and digital; holdout: the 4 others); " +
                $"or names: {string.Join(", ", ImageCorruptions.All)}; comma- or space-separated. Writes <out>/robustness/: robustness.json (every metric of " +
                "every cell, saved after each cell; a rerun with the same setup skips the finished ones), robustness.md (P, mPC, rPC per corruption and " +
                "overall for bbox_mAP and segm_mAP, or mIoU), charts of the metric against severity, and samples/ (one image's prediction under each " +
                "corruption and severity); a plain test's other outputs are not written. frost uses our procedural frost texture, not the package's " +
                "photographs: its numbers are not comparable with published ones. Not with --format-only, --proposals or --error-analysis.",
            Arity = ArgumentArity.OneOrMore,
            AllowMultipleArgumentsPerToken = true,
        };
        var severities = new Option<string?>("--severities") { Description = "With --corruptions: the severities to run, comma-separated, from 1 to 5 (default 1,2,3,4,5); " +
            "0 is the clean pass, which always runs once (P)." };
        var split = new Option<string?>("--split") { Description = $"With --format-only: the split to predict (default: detection {DefaultDetectionSplit}, segmentation {DefaultSegmentationSplit})." };
        var set = ConfigCommand.CreateSetOption();
        var command = new Command("test", "Evaluate a checkpoint on the validation split; write predictions, metrics, a report and the confusion matrix " +
            "(segmentation: pixels; detection: boxes with mmdet's defaults, score ≥ 0.3 and IoU ≥ 0.5; `vim eval confusion det` takes other thresholds on results.json); " +
            "detection with --error-analysis: also the COCO error analysis of boxes and masks; with --proposals: also the RPN's proposal recall (AR@100, 300, 1000); " +
            "detection's final per-class NMS is model.det_head's (hard, or Soft-NMS with --set model.det_head.test_nms_type=soft_nms). With --format-only: predictions of a split without labels in the " +
            "test server's format (COCO test-dev results json, ADE20k test PNGs), no evaluation. With --corruptions: the robustness benchmark (clean and corrupted " +
            "evaluations, P, mPC and rPC) into <out>/robustness/. " +
            "Under mpirun -np K (mmdet's dist_test.sh) the K processes share the images (i mod K = rank) with every option; rank 0 alone prints and writes, " +
            "the outputs and metrics of one process (--corruptions: rank 0's robustness.json decides which cells every process still runs).");
        command.Arguments.Add(configArg);
        command.Options.Add(checkpoint);
        command.Options.Add(outDir);
        command.Options.Add(ema);
        command.Options.Add(overlays);
        command.Options.Add(scoreThr);
        command.Options.Add(errorAnalysis);
        command.Options.Add(formatOnly);
        command.Options.Add(tta);
        command.Options.Add(split);
        command.Options.Add(proposals);
        command.Options.Add(corruptions);
        command.Options.Add(severities);
        command.Options.Add(set);
        command.SetAction(parse =>
        {
            bool submit = parse.GetValue(formatOnly);
            var robustness = RobustnessGrid(parse.GetValue(corruptions), parse.GetValue(severities), submit, parse.GetValue(proposals), parse.GetValue(errorAnalysis));
            if (submit && parse.GetValue(errorAnalysis))
                throw new VimException("--error-analysis: the COCO error analysis compares detections with ground truth, and --format-only predicts a split without any; " +
                    "run the error analysis with plain `vim test` on the validation split.");
            bool withProposals = parse.GetValue(proposals);
            if (withProposals && submit)
                throw new VimException("--proposals: proposal recall compares the RPN's proposals with ground truth, and --format-only predicts a split without any; " +
                    "run --proposals with plain `vim test` on the validation split.");
            if (withProposals && parse.GetValue(tta))
                throw new VimException("--proposals: proposal recall evaluates the RPN's proposals of one plain test pass, and --tta adds passes (the flip, model.det_test.scales) " +
                    "that each propose their own boxes; run --proposals without --tta.");
            if (!submit && parse.GetValue(split) is { } named)
                throw new VimException($"--split {named}: only --format-only predicts another split; `vim test` evaluates data.val_split (--set data.val_split={named} to evaluate that split).");
            double overlayThreshold = parse.GetValue(scoreThr);
            if (overlayThreshold is < 0 or > 1) throw new VimException($"--score-thr must be within [0, 1], got {overlayThreshold.ToString(CultureInfo.InvariantCulture)}");
            BenchCommand.NonNegative(parse.GetValue(overlays), "--overlays");
            if (parse.GetValue(split) is { } empty && string.IsNullOrWhiteSpace(empty))
                throw new VimException("--split: expected a split name (e.g. test-dev2017, testing), got an empty value.");
            var configPath = parse.GetValue(configArg)!;
            var (config, _) = TrainCommand.Prepare(configPath, null, Overrides(configPath, parse.GetValue(set) ?? [], parse.GetValue(tta)));
            if (withProposals && config.Task != TaskKind.Detection)
                throw new VimException($"--proposals: proposal recall evaluates a detector's RPN; {configPath} is a {config.Task.ToString().ToLowerInvariant()} config.");
            if (withProposals) DetectionTask.RequirePlainTestPass(config.Model.DetTest);
            var checkpointPath = parse.GetValue(checkpoint)!;
            // Before the datasets are read: a wrong path fails at once.
            CheckpointFile.RequireFile(checkpointPath);
            var splitName = parse.GetValue(split) ?? (config.Task == TaskKind.Detection ? DefaultDetectionSplit : DefaultSegmentationSplit);
            var dir = parse.GetValue(outDir) ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(checkpointPath))!, submit ? $"submit_{splitName}" : "test");
            OutputFolder.Check(dir, "--out");
            if (parse.GetValue(errorAnalysis) && config.Task != TaskKind.Detection)
                throw new VimException($"--error-analysis: the COCO error analysis is for detection configs; {parse.GetValue(configArg)} is a {config.Task.ToString().ToLowerInvariant()} config.");
            // Under mpirun every rank runs this and predicts its share of the images (i mod K = rank); rank 0 alone prints and
            // writes, and its outputs are those of one process.
            using var communicator = Communicators.FromEnvironment(config.Runtime);
            var console = communicator.IsRoot() ? Console.Out : TextWriter.Null;
            if (TrainingCheckpoint.EvaluatedWeightsNote(checkpointPath, parse.GetValue(ema)) is { } weightsNote) console.WriteLine(weightsNote);
            if (communicator.WorldSize > 1)
                console.WriteLine($"vim test: {communicator.WorldSize} processes, each predicting the images i with i mod {communicator.WorldSize} = its rank; rank 0 writes every output");
            return communicator.AbortJobOnError(() =>
            {
                if (submit) return FormatOnly(config, communicator, console, checkpointPath, splitName, dir, parse.GetValue(ema), parse.GetValue(overlays), overlayThreshold);
                if (robustness is { } grid)
                    return Robustness(config, communicator, console, configPath, Overrides(configPath, parse.GetValue(set) ?? [], parse.GetValue(tta)), checkpointPath, dir,
                        parse.GetValue(ema), overlayThreshold, grid.Corruptions, grid.Severities);
                if (config.Task == TaskKind.Detection)
                {
                    // The checkpoint holds every weight (loaded strictly): model.backbone.pretrained is not read.
                    using var detection = new DetectionTask(config, TextWriter.Null, weightsFromCheckpoint: true) { Communicator = communicator };
                    var tested = DetectionTester.Run(detection, checkpointPath, dir, parse.GetValue(ema), parse.GetValue(overlays), overlayThreshold,
                        errorAnalysis: parse.GetValue(errorAnalysis), progress: console, proposals: withProposals);
                    // Null on the ranks other than 0: they predicted their share, rank 0 reports.
                    if (tested is not { } outcome) return 0;
                    var (box, mask, recall) = outcome;
                    console.WriteLine(string.Join("\n", box.Lines));
                    if (mask is not null) console.WriteLine("segm:\n" + string.Join("\n", mask.Lines));
                    if (recall is not null) PrintProposalRecall(console, recall, detection.ProposalsPerImage);
                    console.WriteLine($"results.json, {(recall is null ? "" : $"{DetectionTester.ProposalsFile}, ")}metrics.json, reports" +
                        $"{(parse.GetValue(errorAnalysis) ? ", the error analysis" : "")} and the confusion matrix in {dir}");
                    return 0;
                }

                using var task = new SegmentationTask(config, TextWriter.Null, weightsFromCheckpoint: true) { Communicator = communicator };
                var result = SegmentationTester.Run(task, checkpointPath, dir, parse.GetValue(overlays), parse.GetValue(ema));
                console.WriteLine(SegmentationReport.PerClassTable(result, task.ClassNames));
                foreach (var (name, value) in SegmentationTask.Metrics(result)) console.WriteLine($"{name}: {value.ToString("0.00", CultureInfo.InvariantCulture)}");
                console.WriteLine($"predictions, metrics.json, report and the confusion matrix in {dir}");
                return 0;
            });
        });
        return command;
    }

    /// <summary>
    /// `--corruptions` and `--severities` read and checked before anything else is: the corruptions (groups expanded) and
    /// severities 1–5 of the grid, or null without --corruptions. Combinations that evaluate something else are refused.
    /// </summary>
    internal static (IReadOnlyList<string> Corruptions, IReadOnlyList<int> Severities)? RobustnessGrid(string[]? corruptions, string? severities,
        bool formatOnly, bool proposals, bool errorAnalysis)
    {
        if (corruptions is null || corruptions.Length == 0)
        {
            if (severities is not null) throw new VimException("--severities: only the robustness benchmark runs severities; add --corruptions (e.g. --corruptions benchmark).");
            return null;
        }
        if (formatOnly)
            throw new VimException("--corruptions: the robustness benchmark compares predictions with ground truth, and --format-only predicts a split without any; " +
                "run --corruptions without --format-only.");
        if (proposals)
            throw new VimException("--corruptions: the robustness benchmark reports box and mask AP; --proposals (the RPN's recall) is not part of it; run them separately.");
        if (errorAnalysis)
            throw new VimException("--corruptions: the robustness benchmark reports box and mask AP per corruption; --error-analysis is not part of it; " +
                "run the error analysis with plain `vim test`.");
        var names = ImageCorruptions.Resolve(corruptions.SelectMany(c => c.Split(',')), "--corruptions");
        var levels = new List<int>();
        foreach (var part in (severities ?? "1,2,3,4,5").Split(',', StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out int level) || level is < 0 or > ImageCorruptions.MaxSeverity)
                throw new VimException($"--severities: expected integers from 0 to {ImageCorruptions.MaxSeverity} (0 is the clean image), comma-separated, got '{part}' in '{severities}'.");
            if (level > 0 && !levels.Contains(level)) levels.Add(level);
        }
        if (levels.Count == 0)
            throw new VimException($"--severities: '{severities}' holds no severity from 1 to {ImageCorruptions.MaxSeverity}; the clean pass (0) runs anyway, and the corruptions need at least one.");
        return (names, levels.Order().ToList());
    }

    /// <summary>`vim test --corruptions`: the robustness grid into &lt;dir&gt;/robustness/ and its summary on <paramref name="console"/>.</summary>
    private static int Robustness(ExperimentConfig config, ICommunicator communicator, TextWriter console, string configPath, IReadOnlyList<string> overrides,
        string checkpointPath, string dir, bool ema, double scoreThreshold, IReadOnlyList<string> corruptions, IReadOnlyList<int> severities)
    {
        RobustnessResults results;
        if (config.Task == TaskKind.Detection)
        {
            using var detection = new DetectionTask(config, TextWriter.Null, weightsFromCheckpoint: true) { Communicator = communicator };
            results = RunGrid(new DetectionRobustness(detection, scoreThreshold), detection.Model);
        }
        else
        {
            using var segmentation = new SegmentationTask(config, TextWriter.Null, weightsFromCheckpoint: true) { Communicator = communicator };
            results = RunGrid(new SegmentationRobustness(segmentation), segmentation.Model);
        }
        foreach (var summary in results.Summaries())
            console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{summary.Metric}: P {summary.Clean:0.00}, mPC {summary.MeanUnderCorruption:0.00}, rPC {100 * summary.Relative:0.0} %"));
        console.WriteLine($"robustness.json, robustness.md, charts and samples in {Path.Combine(dir, RobustnessBenchmark.Folder)}");
        return 0;

        RobustnessResults RunGrid(IRobustnessSubject subject, TorchSharp.torch.nn.Module model)
        {
            // Loaded first: a checkpoint that does not fit leaves no output folder behind.
            TrainingCheckpoint.LoadWeights(model, checkpointPath, ema);
            if (communicator.IsRoot()) Directory.CreateDirectory(dir);
            var setup = RobustnessSetup.Of(configPath, overrides, checkpointPath, ema, subject.ImageCount);
            return RobustnessBenchmark.Run(subject, corruptions, severities, setup, dir, console, communicator);
        }
    }

    /// <summary>`--proposals`: mmdet's items as metrics.json holds them, and what bounds AR at the largest maxDets.</summary>
    private static void PrintProposalRecall(TextWriter console, CocoSummary recall, long proposalsPerImage)
    {
        console.WriteLine("proposals (class-agnostic, %):");
        foreach (var (name, value) in ProposalRecall.Metrics(recall))
            console.WriteLine($"{name}: {(value < 0 ? "-" : value.ToString("0.00", CultureInfo.InvariantCulture))}");
        int largest = ProposalRecall.ProposalNums[^1];
        if (proposalsPerImage < largest)
            console.WriteLine($"note: the RPN keeps at most {proposalsPerImage} proposals per image (model.det_head.rpn_post_nms_topk_test), so AR@{largest} sees no more than those");
    }

    /// <summary>
    /// The overrides `vim test` loads <paramref name="configPath"/> with: <paramref name="settings"/> (--set), then with
    /// <paramref name="tta"/> the flip pass of the config's task on (model.det_test.flip or model.seg_test.flip; mmdet's
    /// --tta runs its tta_pipeline, whose flip is the one switch we add) as an override like any other, so everything that
    /// reads the config sees it. It comes last and so wins over a --set of the same key, as vim train's --load-from wins
    /// over --set load_from.
    /// </summary>
    public static IReadOnlyList<string> Overrides(string configPath, IReadOnlyList<string> settings, bool tta)
    {
        if (!tta) return settings;
        // The key is the task's (the other task's section is refused), and the task is the config's, --set included.
        var task = ExperimentConfig.Load(configPath, settings).Config.Task;
        return [.. settings, ConfigWriter.Override(task == TaskKind.Detection ? "model.det_test.flip" : "model.seg_test.flip", true)];
    }

    /// <summary>COCO's unlabelled split (annotations/image_info_test-dev2017.json, images in test2017/).</summary>
    public const string DefaultDetectionSplit = "test-dev2017";

    /// <summary>ADE20k's test images (release_test's testing/ placed as images/testing/).</summary>
    public const string DefaultSegmentationSplit = "testing";

    /// <summary>`vim test --format-only`: the split's predictions in the test server's format, and what to upload (on <paramref name="console"/>).</summary>
    private static int FormatOnly(ExperimentConfig config, ICommunicator communicator, TextWriter console, string checkpointPath, string split, string dir, bool ema,
        int overlays, double overlayThreshold)
    {
        if (config.Task == TaskKind.Detection)
        {
            using var detection = new DetectionTask(config, TextWriter.Null, weightsFromCheckpoint: true, data: DetectionData.ForUnlabelledSplit(config, split))
            {
                Communicator = communicator,
            };
            var (images, detections, archive) = DetectionTester.FormatOnly(detection, checkpointPath, split, dir, ema, overlays, overlayThreshold, console);
            console.WriteLine($"{detections} detections of {images} images in {Path.Combine(dir, DetectionTester.ResultsFile)} (COCO results: boxes and RLE masks), " +
                $"nothing evaluated{(overlays > 0 ? $"; drawings in {Path.Combine(dir, "overlays")}" : "")}");
            console.WriteLine($"upload {archive} to the COCO evaluation server ({split}), once for bbox and once for segm: it holds both, as detectron2's results file");
            return 0;
        }
        using var task = new SegmentationTask(config, TextWriter.Null, weightsFromCheckpoint: true, data: SegmentationData.ForUnlabelledSplit(config, split))
        {
            Communicator = communicator,
        };
        int count = SegmentationTester.FormatOnly(task, checkpointPath, split, dir, overlays, ema, console);
        console.WriteLine($"{count} PNGs in {Path.Combine(dir, SegmentationTester.SubmissionFolder)} (8-bit class indices" +
            $"{(config.Data.ReduceZeroLabel ? " + 1: 0 is \"other\", as ADE20k's labels" : "")}), nothing evaluated" +
            $"{(overlays > 0 ? $"; colour overlays in {Path.Combine(dir, "overlays")}" : "")}");
        console.WriteLine($"upload {Path.Combine(dir, SegmentationTester.SubmissionArchive)} (the PNGs at the zip's top level) to the ADE20k scene parsing server");
        return 0;
    }
}
