using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using MathNet.Numerics.Statistics;
using Vim.Core;
using Vim.Data.Coco;
using Vim.Data.Evaluation;
using Vim.Data.Datasets;
using Vim.Data.Evaluation.Reports;
using Vim.Core.IO;
using Vim.Detection;
using Vim.Segmentation;

namespace Vim.Tools.Commands;

/// <summary>
/// `vim eval coco|coco-errors|seg|confusion|analyze|fuse|bench`: COCO mAP and its error analysis and semantic-segmentation mIoU
/// on files, confusion matrices of either, the best and worst images of either (<c>analyze</c>), COCO results of several
/// detectors fused by Weighted Boxes Fusion (<c>fuse</c>), and the evaluator benchmark.
/// </summary>
public static class EvalCommand
{
    public static Command Create()
    {
        var cmd = new Command("eval", "Evaluate results: COCO mAP (bbox/segm, pycocotools semantics) and its error analysis (mmdet's), semantic segmentation mIoU (mmseg semantics), " +
            "their confusion matrices, the images a model does best and worst on, or several detectors' results fused by Weighted Boxes Fusion.");
        cmd.Subcommands.Add(CreateCoco());
        cmd.Subcommands.Add(CreateCocoErrors());
        cmd.Subcommands.Add(CreateSeg());
        cmd.Subcommands.Add(CreateConfusion());
        cmd.Subcommands.Add(CreateAnalyze());
        cmd.Subcommands.Add(CreateFuse());
        cmd.Subcommands.Add(CreateBench());
        return cmd;
    }

    /// <summary>The COCO inputs `eval coco` and `eval confusion det` read: a ground-truth json and a results json.</summary>
    private sealed class CocoInputs
    {
        public readonly Option<string> GroundTruth = GroundTruthOption();
        public readonly Option<string> Results = new("--results") { Description = "COCO results json [{image_id, category_id, bbox|segmentation, score}]", Required = true };

        public IEnumerable<Option> Options => [GroundTruth, Results];

        /// <summary>--gt of the COCO commands (`eval fuse` reads several results files against it).</summary>
        public static Option<string> GroundTruthOption() => new("--gt") { Description = "COCO ground-truth json (images, annotations, categories)", Required = true };

        public (CocoDataset GroundTruth, List<CocoDetection> Detections) Load(ParseResult parse) =>
            (CocoDataset.Load(parse.GetValue(GroundTruth)!), CocoResults.Load(parse.GetValue(Results)!));

        /// <summary><see cref="Load"/>, refusing a results file without detections (there is no AP to compute).</summary>
        public (CocoDataset GroundTruth, List<CocoDetection> Detections) LoadForAp(ParseResult parse)
        {
            var (groundTruth, detections) = Load(parse);
            if (detections.Count == 0) throw new VimException($"--results {parse.GetValue(Results)}: the results file holds no detections.");
            return (groundTruth, detections);
        }

        /// <summary>Runs an evaluation of the two files, naming them in its refusals.</summary>
        public T NamingFiles<T>(ParseResult parse, Func<T> evaluate)
        {
            try
            {
                return evaluate();
            }
            catch (VimException e)
            {
                // The evaluator names the entry (results[i], a ground-truth annotation id); the files are named here.
                throw new VimException($"--results {parse.GetValue(Results)} against --gt {parse.GetValue(GroundTruth)}: {e.Message}", e);
            }
        }

        /// <summary>--iou-type of the AP commands (`eval coco`, `eval coco-errors`).</summary>
        public static Option<string> IouTypeOption() => new("--iou-type") { Description = "bbox or segm", DefaultValueFactory = _ => "bbox" };

        public static CocoIouType IouType(ParseResult parse, Option<string> option) => parse.GetValue(option) switch
        {
            "bbox" => CocoIouType.Bbox,
            "segm" => CocoIouType.Segm,
            var other => throw new VimException($"--iou-type: expected bbox or segm, got '{other}'."),
        };
    }

    /// <summary>The label-map inputs `eval seg` and `eval confusion seg` read: prediction and ground-truth PNG folders, and how labels are read.</summary>
    private sealed class LabelMapInputs
    {
        public readonly Option<string> Predictions = new("--pred-dir", "--pred") { Description = "folder of predicted label PNGs", Required = true };
        public readonly Option<string> GroundTruth = new("--gt-dir", "--gt") { Description = "folder of ground-truth label PNGs (matched by file stem)", Required = true };
        public readonly Option<int> NumClasses = new("--num-classes") { Description = "number of classes", Required = true };
        public readonly Option<int> IgnoreIndex = new("--ignore-index") { Description = "label value excluded from evaluation", DefaultValueFactory = _ => 255 };
        public readonly Option<bool> ReduceZeroLabel = new("--reduce-zero-label") { Description = "labels: 0 -> ignore, others shift down by one (ADE20k)" };

        public IEnumerable<Option> Options => [Predictions, GroundTruth, NumClasses, IgnoreIndex, ReduceZeroLabel];

        /// <summary>Every ground-truth map with its prediction, summed (<see cref="SegmentationLabelMaps.Evaluate"/>).</summary>
        public (SegmentationMetric Metric, int Images) Evaluate(ParseResult parse) =>
            SegmentationLabelMaps.Evaluate(parse.GetValue(Predictions)!, parse.GetValue(GroundTruth)!, ClassCount(parse), parse.GetValue(IgnoreIndex),
                parse.GetValue(ReduceZeroLabel));

        /// <summary>--num-classes, checked.</summary>
        public int ClassCount(ParseResult parse)
        {
            int k = parse.GetValue(NumClasses);
            // Label maps are at most 16-bit, and the confusion matrix holds k² counts.
            if (k is <= 0 or > 65535) throw new VimException($"--num-classes: expected a positive number up to 65535 (16-bit label maps), got {k}.");
            return k;
        }

        /// <summary>Class names where none are given: the indices.</summary>
        public static List<string> IndexNames(int k) => Enumerable.Range(0, k).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToList();
    }

    private static Command CreateCoco()
    {
        var inputs = new CocoInputs();
        var iouType = CocoInputs.IouTypeOption();
        var iouThrs = new Option<string?>("--iou-thrs") { Description = "comma-separated IoU thresholds, used exactly as given (default .50:.05:.95)" };
        var maxDets = new Option<string?>("--max-dets") { Description = "comma-separated maxDets (default 1,10,100)" };
        var jsonOut = new Option<string?>("--json-out") { Description = "write {\"stats\": [12 numbers], \"per_category\": {...}} here" };
        var reportDir = new Option<string?>("--report-dir") { Description = "write PR curves, per-category AP chart and a Markdown summary here" };
        var classAgnostic = new Option<bool>("--class-agnostic") { Description = "ignore categories (pycocotools useCats = 0), e.g. for proposal recall" };
        var cmd = new Command("coco", "COCO detection / instance segmentation mAP, identical to pycocotools COCOeval.");
        foreach (var o in inputs.Options.Concat([iouType, iouThrs, maxDets, jsonOut, reportDir, classAgnostic])) cmd.Options.Add(o);
        cmd.SetAction(parse => Guard(() =>
        {
            var type = CocoInputs.IouType(parse, iouType);
            if (parse.GetValue(jsonOut) is { } jsonTarget) OutputFolder.CheckFile(jsonTarget, "--json-out");
            if (parse.GetValue(reportDir) is { } reportTarget) OutputFolder.Check(reportTarget, "--report-dir");
            var defaults = new CocoEvalParams();
            var p = new CocoEvalParams
            {
                IouThresholds = ParseList(parse.GetValue(iouThrs), "--iou-thrs", s => double.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture)) ?? defaults.IouThresholds,
                MaxDetections = ParseList(parse.GetValue(maxDets), "--max-dets", s => int.Parse(s, NumberStyles.Integer, CultureInfo.InvariantCulture)) ?? defaults.MaxDetections,
                UseCategories = !parse.GetValue(classAgnostic),
            };
            var (dataset, detections) = inputs.LoadForAp(parse);
            var summary = inputs.NamingFiles(parse, () => new CocoEvaluator(dataset, detections, type, p).Run());
            Console.Write(summary.ToString());
            if (parse.GetValue(jsonOut) is { } jsonPath) WriteCocoJson(jsonPath, summary);
            if (parse.GetValue(reportDir) is { } dir)
            {
                foreach (var f in CocoReport.Write(summary, dir, $"COCO {parse.GetValue(iouType)}")) Console.WriteLine($"wrote {f}");
            }
        }));
        return cmd;
    }

    private static Command CreateCocoErrors()
    {
        var inputs = new CocoInputs();
        var iouType = CocoInputs.IouTypeOption();
        var areas = new Option<string>("--areas") { Description = "comma-separated area ranges to analyse, of all, small, medium, large (COCO's limits 32² and 96²)", DefaultValueFactory = _ => "all,small,medium,large" };
        var outDir = new Option<string>("--out") { Description = "folder for summary.md, errors.json, overall_AREA.png and per_category/ID_NAME_AREA.png (created if missing)", Required = true };
        var cmd = new Command("coco-errors", "COCO error analysis, as mmdet's tools/analysis_tools/coco_error_analysis.py: per category and overall, per area range, " +
            "precision-recall curves at maxDets 100 as errors are forgiven in turn: C75 (IoU .75), C50 (IoU .5), Loc (IoU .1), Sim (confusions within a " +
            "supercategory forgiven), Oth (all confusions forgiven), BG (false positives on background removed), FN (misses removed: precision 1). " +
            "Writes a stacked chart each, a Markdown table of the stages' AP (%) and errors.json. Two evaluations per category after one of all, " +
            "with a progress line per category and the time left; every mask is converted once for all of them. On a val2017-sized synthetic case " +
            "(5,000 images, 80 categories, 500,000 detections) about 4 s of CPU for boxes and 13 s for masks (`vim eval bench --error-analysis [--iou-type segm]`).");
        foreach (var o in inputs.Options.Concat([iouType, areas, outDir])) cmd.Options.Add(o);
        cmd.SetAction(parse => Guard(() =>
        {
            // Options first: a typo fails before the files are read.
            var type = CocoInputs.IouType(parse, iouType);
            var ranges = CocoErrorAnalysis.AreaRangesNamed(parse.GetValue(areas) ?? "", "--areas");
            var dir = parse.GetValue(outDir)!;
            OutputFolder.Check(dir, "--out");
            var (groundTruth, detections) = inputs.LoadForAp(parse);
            var analysis = inputs.NamingFiles(parse, () => CocoErrorAnalysis.Run(groundTruth, detections, type, ranges, Console.Out));
            var files = CocoErrorReport.Write(analysis, dir, Path.GetFileName(parse.GetValue(inputs.Results))!);
            Console.WriteLine($"wrote {files.Count} files into {dir}; the table: {files[^1]}");
        }));
        return cmd;
    }

    private static Command CreateSeg()
    {
        var inputs = new LabelMapInputs();
        var jsonOut = new Option<string?>("--json-out") { Description = "write {aAcc, mIoU, mAcc, mDice, mFscore, IoU: [...], Acc: [...]} (fractions; null = undefined)" };
        var reportDir = new Option<string?>("--report-dir") { Description = "write a per-class IoU chart and a Markdown summary here" };
        var cmd = new Command("seg", "Semantic segmentation mIoU over PNG label maps, identical to mmsegmentation's IoUMetric.");
        foreach (var o in inputs.Options.Concat([jsonOut, reportDir])) cmd.Options.Add(o);
        cmd.SetAction(parse => Guard(() =>
        {
            if (parse.GetValue(jsonOut) is { } jsonTarget) OutputFolder.CheckFile(jsonTarget, "--json-out");
            if (parse.GetValue(reportDir) is { } reportTarget) OutputFolder.Check(reportTarget, "--report-dir");
            var (metric, images) = inputs.Evaluate(parse);
            var r = metric.Compute();
            int k = metric.NumClasses;
            var names = LabelMapInputs.IndexNames(k);
            Console.WriteLine($"{images} images, {k} classes");
            Console.WriteLine("+-------+-------+-------+");
            Console.WriteLine("| Class |  IoU  |  Acc  |");
            Console.WriteLine("+-------+-------+-------+");
            for (int i = 0; i < k; i++) Console.WriteLine($"| {names[i],5} | {SegmentationReport.Pct(r.IoU[i]),5} | {SegmentationReport.Pct(r.Acc[i]),5} |");
            Console.WriteLine("+-------+-------+-------+");
            Console.WriteLine($"aAcc: {SegmentationReport.Pct(r.AAcc)}  mIoU: {SegmentationReport.Pct(r.MIoU)}  mAcc: {SegmentationReport.Pct(r.MAcc)}");
            if (parse.GetValue(jsonOut) is { } jsonPath) WriteSegJson(jsonPath, r);
            if (parse.GetValue(reportDir) is { } dir)
            {
                foreach (var f in SegmentationReport.Write(r, names, dir)) Console.WriteLine($"wrote {f}");
            }
        }));
        return cmd;
    }

    private static Command CreateConfusion()
    {
        var cmd = new Command("confusion", "Confusion matrix (confusion_matrix.csv of counts, confusion_matrix.png in percent of each ground-truth row), " +
            "as mmdet's and mmseg's tools/analysis_tools/confusion_matrix.py: `det` from COCO results, `seg` from label-map folders.");
        cmd.Subcommands.Add(CreateConfusionDetection());
        cmd.Subcommands.Add(CreateConfusionSegmentation());
        return cmd;
    }

    private static Option<string> ConfusionOut() =>
        new("--out") { Description = "folder for confusion_matrix.csv and confusion_matrix.png (created if missing)", Required = true };

    private static Command CreateConfusionDetection()
    {
        var inputs = new CocoInputs();
        var defaults = new DetectionConfusionSettings();
        var scoreThr = new Option<double>("--score-thr") { Description = "detections scoring below this are left out", DefaultValueFactory = _ => defaults.ScoreThreshold };
        var tpIouThr = new Option<double>("--tp-iou-thr") { Description = "box IoU from which a detection and a ground truth pair up", DefaultValueFactory = _ => defaults.TpIouThreshold };
        var nmsIouThr = new Option<double?>("--nms-iou-thr") { Description = "class-wise NMS over the detections first, at this IoU (default: none)" };
        var outDir = ConfusionOut();
        var cmd = new Command("det", "(C+1)×(C+1) box confusion matrix with a background row and column, mmdet's rule: of the detections scoring ≥ --score-thr, " +
            "every detection/ground-truth pair at box IoU ≥ --tp-iou-thr counts in [gt class, detected class]; a detection in no pair counts as background (last row); a ground " +
            "truth no detection of its class paired with counts as missed (last column); crowd annotations count as ground truth, as in mmdet 3.");
        foreach (var o in inputs.Options.Concat([scoreThr, tpIouThr, nmsIouThr, outDir])) cmd.Options.Add(o);
        cmd.SetAction(parse => Guard(() =>
        {
            var settings = new DetectionConfusionSettings
            {
                ScoreThreshold = parse.GetValue(scoreThr), TpIouThreshold = parse.GetValue(tpIouThr), NmsIouThreshold = parse.GetValue(nmsIouThr),
            };
            // Before the files are read: a threshold typo fails at once.
            settings.Validate();
            var dir = parse.GetValue(outDir)!;
            OutputFolder.Check(dir, "--out");
            var (groundTruth, detections) = inputs.Load(parse);
            var matrix = DetectionConfusion.Compute(groundTruth, detections, settings, parse.GetValue(inputs.GroundTruth)!, parse.GetValue(inputs.Results)!);
            var (csv, png) = ConfusionMatrixReport.Write(matrix, dir, $"{Path.GetFileName(parse.GetValue(inputs.Results))}: confusion matrix");
            Console.WriteLine(settings.Describe());
            Console.WriteLine($"wrote {csv}");
            Console.WriteLine($"wrote {png}");
        }));
        return cmd;
    }

    private static Command CreateConfusionSegmentation()
    {
        var inputs = new LabelMapInputs();
        var classNames = new Option<string?>("--class-names") { Description = "text file of class names, one a line in class order (as data.class_names); default: the indices" };
        var outDir = ConfusionOut();
        var cmd = new Command("seg", "C×C pixel confusion matrix, mmseg's: each labelled pixel counts in [label, prediction]; ignored pixels " +
            "(after --reduce-zero-label) are left out.");
        foreach (var o in inputs.Options.Concat([classNames, outDir])) cmd.Options.Add(o);
        cmd.SetAction(parse => Guard(() =>
        {
            var dir = parse.GetValue(outDir)!;
            OutputFolder.Check(dir, "--out");
            int k = inputs.ClassCount(parse);
            IReadOnlyList<string> names = LabelMapInputs.IndexNames(k);
            if (parse.GetValue(classNames) is { } namesFile)
            {
                names = SegmentationFolderDataset.ReadClassNames(namesFile);
                if (names.Count != k)
                    throw new VimException($"--class-names {namesFile}: {names.Count} names, but --num-classes is {k}; expected one name per class.");
            }
            var (metric, images) = inputs.Evaluate(parse);
            var (csv, png) = ConfusionMatrixReport.Write(metric.ToConfusionMatrix(names), dir,
                $"{Path.GetFileName(Path.TrimEndingDirectorySeparator(parse.GetValue(inputs.Predictions)!))}: confusion matrix");
            Console.WriteLine($"{images} images, {k} classes. " + ConfusionMatrixReport.SegmentationRule(parse.GetValue(inputs.IgnoreIndex), parse.GetValue(inputs.ReduceZeroLabel)));
            Console.WriteLine($"wrote {csv}");
            Console.WriteLine($"wrote {png}");
        }));
        return cmd;
    }

    private static Command CreateAnalyze()
    {
        var cmd = new Command("analyze", "The images a model does best and worst on, as mmdet's tools/analysis_tools/analyze_results.py: every image scored " +
            "(`det`: its COCO AP; `seg`: its mIoU), the top-k best drawn in OUT/good/ and the top-k worst in OUT/bad/ (RANK_STEM_SCORE.png, rank 1 the best " +
            "resp. worst; ground truth on the left, prediction on the right), and every image's score in OUT/scores.csv and OUT/scores.json.");
        cmd.Subcommands.Add(CreateAnalyzeDetection());
        cmd.Subcommands.Add(CreateAnalyzeSegmentation());
        return cmd;
    }

    /// <summary>The options both `eval analyze` subcommands share: how many images to draw and where.</summary>
    private sealed class AnalyzeOutputs
    {
        public readonly Option<int> TopK = new("--topk") { Description = "how many best and how many worst images to draw (at most half the ranked images, as mmdet)", DefaultValueFactory = _ => 20 };
        public readonly Option<string> Out = new("--out")
        {
            Description = "folder for good/, bad/, scores.csv and scores.json (created if missing; drawings an earlier run left in good/ and bad/ are replaced)", Required = true,
        };

        public IEnumerable<Option> Options => [TopK, Out];

        /// <summary>The options checked before any file is read: the top-k and the folder.</summary>
        public void Check(ParseResult parse)
        {
            if (parse.GetValue(TopK) < 1) throw new VimException($"--topk: expected at least 1, got {parse.GetValue(TopK)}.");
            OutputFolder.Check(parse.GetValue(Out)!, "--out");
        }

        public ImageRanking Rank(ParseResult parse, IReadOnlyList<ImageScore> scores) => ImageRanking.Rank(scores, parse.GetValue(TopK));

        /// <summary>Draws the ranking's lists with <paramref name="draw"/> into a cleared good/ and bad/, writes the table and reports.</summary>
        public void Finish(ParseResult parse, IReadOnlyList<ImageScore> scores, ImageRanking ranking, string scoreName, IReadOnlyList<string> detailNames,
            string undefinedReason, Func<string, IReadOnlyList<string>> draw)
        {
            var dir = parse.GetValue(Out)!;
            Directory.CreateDirectory(dir);
            int replaced = ImageRanking.DeleteEarlierDrawings(dir);
            var drawn = draw(dir);
            var (csv, json) = ranking.Write(dir, scoreName, detailNames);
            var ranked = ranking.Ranked;
            string mean = ranked.Count == 0 ? "-" : ranked.Average(i => i.Score).ToString("0.000", CultureInfo.InvariantCulture);
            Console.WriteLine($"{scores.Count} images: {ranked.Count} ranked by {scoreName} (mean {mean})" +
                (ranking.Undefined.Count > 0 ? $", {ranking.Undefined.Count} not ranked ({undefinedReason})" : ""));
            foreach (var (title, list) in new[] { ("best", ranking.Best), ("worst", ranking.Worst) })
                if (list.Count > 0)
                    Console.WriteLine($"{title}: " + string.Join(", ", list.Take(3).Select(i => $"{i.Image} {i.Score.ToString("0.000", CultureInfo.InvariantCulture)}")) +
                        (list.Count > 3 ? ", …" : ""));
            Console.WriteLine($"drew the {ranking.TopK} best in {Path.Combine(dir, ImageRanking.BestFolder)} and the {ranking.TopK} worst in " +
                $"{Path.Combine(dir, ImageRanking.WorstFolder)} ({drawn.Count} files{(replaced > 0 ? $", replacing {replaced} of an earlier run" : "")})");
            Console.WriteLine($"wrote {csv}");
            Console.WriteLine($"wrote {json}");
        }
    }

    private static Command CreateAnalyzeDetection()
    {
        var inputs = new CocoInputs();
        var iouType = CocoInputs.IouTypeOption();
        var images = new Option<string>("--images") { Description = "folder of the ground truth's images (its file_names are relative to it), e.g. val2017/", Required = true };
        var scoreThr = new Option<double>("--score-thr") { Description = "draw detections scoring at least this (the AP uses every detection)", DefaultValueFactory = _ => 0.3 };
        var outputs = new AnalyzeOutputs();
        var cmd = new Command("det", "Each image's COCO AP (IoU .50:.95, area all, maxDets 100: COCOeval's stats[0] restricted to the image, from one evaluation " +
            "of all images; bbox or segm), the best and worst drawn with the ground truth (left) beside the detections scoring ≥ --score-thr (right), masks " +
            "with --iou-type segm. An image without non-crowd ground truth has no AP and is not ranked (mmdet's tool scores it 0); the table keeps it.");
        foreach (var o in inputs.Options.Concat([images, iouType, scoreThr]).Concat(outputs.Options)) cmd.Options.Add(o);
        cmd.SetAction(parse => Guard(() =>
        {
            // Options first: a typo fails before the files are read.
            var type = CocoInputs.IouType(parse, iouType);
            double threshold = parse.GetValue(scoreThr);
            if (!(threshold is >= 0 and <= 1)) throw new VimException($"--score-thr: expected a number in [0, 1], got {threshold.ToString(CultureInfo.InvariantCulture)}.");
            outputs.Check(parse);
            string gtPath = parse.GetValue(inputs.GroundTruth)!, resultsPath = parse.GetValue(inputs.Results)!, imageDir = parse.GetValue(images)!;
            if (!Directory.Exists(imageDir)) throw new VimException($"--images {imageDir}: folder not found.");
            var (groundTruth, detections) = inputs.LoadForAp(parse);
            // Every image kept, in file order: the scores index them; masks read only where they are drawn.
            var dataset = new CocoInstanceDataset(groundTruth, gtPath, imageDir,
                new CocoInstanceOptions { SkipImagesWithoutAnnotations = false, WithMasks = type == CocoIouType.Segm, CheckImageFiles = false });
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var scores = DetectionResultAnalysis.Score(groundTruth, detections, type, threshold, gtPath, resultsPath);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"scored {scores.Count} images ({detections.Count} detections) in {clock.Elapsed.TotalSeconds:0.0} s"));
            var ranking = outputs.Rank(parse, scores);
            // Before the output folder is touched: an earlier run's drawings stay when these cannot be made.
            DetectionResultAnalysis.RequireImages(dataset, ranking);
            outputs.Finish(parse, scores, ranking, DetectionResultAnalysis.ScoreName(type), DetectionResultAnalysis.DetailNames, "no non-crowd ground truth: AP undefined",
                dir => DetectionResultAnalysis.Draw(dataset, detections, ranking, dir, threshold, type == CocoIouType.Segm, resultsPath, Console.Out));
        }));
        return cmd;
    }

    private static Command CreateAnalyzeSegmentation()
    {
        var root = new Option<string>("--root") { Description = "ADE20k-layout dataset root (images/SPLIT/*.jpg, annotations/SPLIT/*.png, reduce_zero_label)", Required = true };
        var split = new Option<string>("--split") { Description = "the split the predictions are of", DefaultValueFactory = _ => "validation" };
        var classes = new Option<string?>("--classes") { Description = "class list file (default: ROOT/class_names.txt if present, else the 150 ADE20k classes)" };
        var predictions = new Option<string>("--pred") { Description = "folder of class-index PNGs named as the images (vim test's OUT/predictions/pred/)", Required = true };
        var outputs = new AnalyzeOutputs();
        var cmd = new Command("seg", "Each image's mIoU (mmseg's IoU over that image alone: the classes in its ground truth or prediction, ignored pixels left " +
            "out), the best and worst drawn with the ground truth's colour overlay (left) beside the prediction's (right), as vim test's overlays.");
        foreach (var o in new Option[] { root, split, classes, predictions }.Concat(outputs.Options)) cmd.Options.Add(o);
        cmd.SetAction(parse => Guard(() =>
        {
            outputs.Check(parse);
            var dataset = DataCommand.OpenAde(parse.GetValue(root)!, parse.GetValue(split)!, parse.GetValue(classes));
            var predictionDir = parse.GetValue(predictions)!;
            Console.WriteLine($"scoring {dataset.Count} images of {dataset.Options.ImageDir} against {predictionDir}");
            var scores = SegmentationResultAnalysis.Score(dataset, predictionDir, Console.Out);
            var ranking = outputs.Rank(parse, scores);
            outputs.Finish(parse, scores, ranking, SegmentationResultAnalysis.ScoreName, SegmentationResultAnalysis.DetailNames, "every pixel ignored: mIoU undefined",
                dir => SegmentationResultAnalysis.Draw(dataset, predictionDir, ranking, dir, Console.Out));
        }));
        return cmd;
    }

    private static Command CreateFuse()
    {
        var groundTruth = CocoInputs.GroundTruthOption();
        var results = new Option<string[]>("--results")
        {
            Description = "COCO results files to fuse (vim test's results.json, or any detector's), one per model: --results a.json b.json; " +
                "one file alone fuses its own overlapping boxes",
            Required = true,
            Arity = ArgumentArity.OneOrMore,
            AllowMultipleArgumentsPerToken = true,
        };
        var defaults = new WeightedBoxesFusionSettings();
        var weights = new Option<string?>("--weights") { Description = "comma-separated weight per results file, in their order, e.g. 2,1 (default: 1 each)" };
        var iouThr = new Option<double>("--iou-thr") { Description = "a box joins the fused box of its category it overlaps most when that IoU is above this (strictly)", DefaultValueFactory = _ => defaults.IouThreshold };
        var skipBoxThr = new Option<double>("--skip-box-thr") { Description = "boxes scoring below this (before weighting) are left out", DefaultValueFactory = _ => defaults.SkipBoxThreshold };
        var confType = new Option<string>("--conf-type")
        {
            Description = "fused score from the cluster's weighted scores (score × its file's weight), mmdet's conf_type: avg (their mean × min(files, boxes) / " +
                "Σ weights), max (the largest / the largest weight), box_and_model_avg (their sum / the boxes' weights × the weights of the files present / " +
                "Σ weights), absent_model_aware_avg (their sum / (the boxes' weights + the weights of the files absent))",
            DefaultValueFactory = _ => WeightedBoxesFusionSettings.NameOf(defaults.Confidence),
        };
        var allowsOverflow = new Option<bool>("--allows-overflow") { Description = "with avg: rescale by the cluster's box count, not min(files, boxes), so a score may exceed 1 (mmdet's allows_overflow)" };
        var outDir = new Option<string>("--out") { Description = "folder for results.json (the fused results), summary.md and metrics.json (created if missing)", DefaultValueFactory = _ => Path.Combine("work_dirs", "fuse") };
        var cmd = new Command("fuse", "Fuse several detectors' COCO results with Weighted Boxes Fusion (Solovyev et al., 2021), as mmdet's " +
            "tools/analysis_tools/fuse_results.py: per image and category, every file's boxes, highest weighted score first, join the fused box they overlap " +
            "most at IoU above --iou-thr or start their own; a fused box is the score × weight average of its boxes. Writes the fused results.json (boxes " +
            "only: masks are not fused, so a file's masks are left out and only box AP is evaluated), then the box AP, AP50 and AP75 of every input " +
            "and of the fusion against --gt as summary.md and metrics.json (percent). mmdet passes COCO's [x, y, w, h] to the fusion as corners; " +
            "boxes here are fused as the boxes they are.");
        foreach (var o in new Option[] { groundTruth, results, weights, iouThr, skipBoxThr, confType, allowsOverflow, outDir }) cmd.Options.Add(o);
        cmd.SetAction(parse => Guard(() =>
        {
            // Options first: a typo fails before the files are read.
            var files = parse.GetValue(results) ?? [];
            var settings = new WeightedBoxesFusionSettings
            {
                Weights = ParseList(parse.GetValue(weights), "--weights", s => double.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture)),
                IouThreshold = parse.GetValue(iouThr),
                SkipBoxThreshold = parse.GetValue(skipBoxThr),
                Confidence = WeightedBoxesFusionSettings.ParseConfidence(parse.GetValue(confType)),
                AllowsOverflow = parse.GetValue(allowsOverflow),
            };
            settings.Validate(files.Length);
            var dir = parse.GetValue(outDir)!;
            OutputFolder.Check(dir, "--out");
            string gtPath = parse.GetValue(groundTruth)!;
            var fusedPath = Path.Combine(dir, DetectionTester.ResultsFile);
            foreach (var file in files)
                if (Path.GetFullPath(file) == Path.GetFullPath(fusedPath))
                    throw new VimException($"--results {file}: is the file the fusion writes (--out {dir}); give another --out.");

            var gt = CocoDataset.Load(gtPath);
            var inputs = new List<List<CocoDetection>>(files.Length);
            var notes = new List<string>();
            foreach (var file in files)
            {
                var detections = CocoResults.Load(file);
                WeightedBoxesFusion.RequireFusable(gt, detections, gtPath, file);
                int masks = WeightedBoxesFusion.MasksIn(detections);
                if (masks > 0) notes.Add($"{file}: {masks} of {detections.Count} detections carry a mask; fusion averages boxes, so the fused results hold none and box AP alone is compared.");
                inputs.Add(detections);
            }
            Console.WriteLine(settings.Describe(files.Length));
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var fused = WeightedBoxesFusion.FuseResults(gt, inputs, settings);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"fused {inputs.Sum(i => i.Count)} detections into {fused.Count} over {gt.Images.Count} images in {clock.Elapsed.TotalSeconds:0.0} s"));
            foreach (var note in notes) Console.WriteLine(note);
            Directory.CreateDirectory(dir);
            CocoResults.Save(fusedPath, fused);

            var weightOf = settings.WeightsFor(files.Length);
            var rows = files.Select((file, m) => new FusionReport.Row(file, weightOf[m], inputs[m].Count, FusionReport.EvaluateBoxes(gt, inputs[m], gtPath, file))).ToList();
            var fusedRow = new FusionReport.Row(fusedPath, null, fused.Count, FusionReport.EvaluateBoxes(gt, fused, gtPath, fusedPath));
            var (summary, metrics) = FusionReport.Write(dir, rows, fusedRow, settings, notes);
            Console.Write(FusionReport.Table(rows, fusedRow));
            Console.WriteLine($"wrote {fusedPath}");
            Console.WriteLine($"wrote {summary}");
            Console.WriteLine($"wrote {metrics}");
        }));
        return cmd;
    }

    private static Command CreateBench()
    {
        var images = new Option<int>("--images") { Description = "synthetic images", DefaultValueFactory = _ => 5000 };
        var categories = new Option<int>("--categories") { Description = "categories", DefaultValueFactory = _ => 80 };
        var seed = new Option<int>("--seed") { Description = "random seed", DefaultValueFactory = _ => 2017 };
        var repeat = new Option<int>("--repeat") { Description = "timed runs (the best is reported too)", DefaultValueFactory = _ => 3 };
        var errors = new Option<bool>("--error-analysis") { Description = "time `eval coco-errors`' analysis instead (4 area ranges, COCO's 12 supercategories), once" };
        var iouType = new Option<string>("--iou-type")
        {
            Description = "with --error-analysis: bbox, or segm (polygon outlines of 16 vertices as ground truth, RLE masks as detections)",
            DefaultValueFactory = _ => "bbox",
        };
        var withPlainAp = new Option<bool>("--with-plain-ap")
        {
            Description = "with --error-analysis: time the plain AP first, as `vim test --error-analysis` computes both, --repeat rounds of two runs, the plain " +
                "AP converting its own masks (as before they were shared) and sharing the analysis's mask cache (as `vim test` does); checks the numbers agree",
        };
        var cmd = new Command("bench", "Time bbox Evaluate+Accumulate+Summarize, or the error analysis of boxes or masks, on a val2017-sized synthetic case (fixed seed).");
        foreach (var o in new Option[] { images, categories, seed, repeat, errors, iouType, withPlainAp }) cmd.Options.Add(o);
        cmd.SetAction(parse => Guard(() =>
        {
            int n = Math.Max(1, parse.GetValue(repeat));
            foreach (var (option, value) in new[] { ("--images", parse.GetValue(images)), ("--categories", parse.GetValue(categories)) })
                if (value < 1) throw new VimException($"{option}: expected a positive number, got {value}.");
            var type = CocoInputs.IouType(parse, iouType);
            if (type == CocoIouType.Segm && !parse.GetValue(errors))
                throw new VimException("--iou-type segm: only the error analysis (--error-analysis) is timed on masks; the plain evaluation is timed on boxes.");
            if (parse.GetValue(withPlainAp) && !parse.GetValue(errors))
                throw new VimException("--with-plain-ap: times the plain AP before the error analysis, so it goes with --error-analysis.");
            if (parse.GetValue(errors))
            {
                string Stages(CocoSyntheticBenchmark.ErrorAnalysisTiming e) =>
                    string.Join(", ", CocoErrorAnalysis.Stages.Select((s, i) => string.Create(CultureInfo.InvariantCulture, $"{s} {100 * e.StageAps[i]:0.0}")));
                string Case(CocoSyntheticBenchmark.ErrorAnalysisTiming e) =>
                    $"{CocoErrorAnalysis.Describe(type)} of {parse.GetValue(images)} images, {parse.GetValue(categories)} categories, {e.GroundTruths} GT, {e.Detections} detections";
                if (!parse.GetValue(withPlainAp))
                {
                    var e = CocoSyntheticBenchmark.RunErrorAnalysis(parse.GetValue(images), parse.GetValue(categories), parse.GetValue(seed), Console.Out, type);
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"error analysis ({Case(e)}): {e.Seconds:0.0} s wall, {e.CpuSeconds:0.0} s CPU on {Environment.ProcessorCount} cores; overall AP (%) {Stages(e)}"));
                    return;
                }
                var (gt, dets) = CocoSyntheticBenchmark.ErrorAnalysisCase(parse.GetValue(images), parse.GetValue(categories), parse.GetValue(seed), type);
                var cpu = new Dictionary<bool, List<double>> { [false] = [], [true] = [] };
                CocoSyntheticBenchmark.ErrorAnalysisTiming? reference = null;
                for (int round = 0; round < n; round++)
                {
                    // Alternating which goes first, so that neither always runs on a warmer process.
                    foreach (bool share in round % 2 == 0 ? new[] { false, true } : [true, false])
                    {
                        var e = CocoSyntheticBenchmark.TimeErrorAnalysis(gt, dets, type, null, withPlainAp: true, shareMasks: share);
                        reference ??= e;
                        if (!e.PlainStats!.SequenceEqual(reference.PlainStats!) || !e.StageAps.SequenceEqual(reference.StageAps))
                            throw new VimException("--with-plain-ap: the runs with and without a shared mask cache gave different numbers; please report this.");
                        cpu[share].Add(e.PlainCpuSeconds + e.CpuSeconds);
                        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"round {round + 1}, plain AP {(share ? "sharing the analysis's masks" : "converting its own masks")}: plain AP {e.PlainSeconds:0.0} s wall, " +
                            $"{e.PlainCpuSeconds:0.0} s CPU; analysis {e.Seconds:0.0} s wall, {e.CpuSeconds:0.0} s CPU; total {e.PlainCpuSeconds + e.CpuSeconds:0.0} s CPU; " +
                            $"the analysis's cache holds {e.MaskConversions} masks"));
                    }
                }
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"plain AP + error analysis ({Case(reference!)}) on {Environment.ProcessorCount} cores, median CPU: {cpu[false].Median():0.0} s converting twice, " +
                    $"{cpu[true].Median():0.0} s sharing; AP {100 * reference!.PlainStats![0]:0.0} (both); overall AP (%) {Stages(reference)}"));
                return;
            }
            var best = double.MaxValue;
            for (int i = 0; i < n; i++)
            {
                var t = CocoSyntheticBenchmark.Run(parse.GetValue(images), parse.GetValue(categories), parse.GetValue(seed));
                if (i == 0) Console.WriteLine($"synthetic case: {t.Images} images, {t.Categories} categories, {t.GroundTruths} GT, {t.Detections} detections; {Environment.ProcessorCount} cores");
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"run {i + 1}: prepare {t.PrepareSeconds:0.000} s, evaluate {t.EvaluateSeconds:0.000} s, accumulate {t.AccumulateSeconds:0.000} s, summarize {t.SummarizeSeconds:0.000} s => eval {t.EvalSeconds:0.000} s wall, {t.EvalCpuSeconds:0.000} s CPU (with prepare {t.TotalSeconds:0.000} s); AP {t.Stats[0]:0.000}"));
                best = Math.Min(best, t.EvalSeconds);
            }
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"best Evaluate+Accumulate+Summarize: {best:0.000} s"));
        }));
        return cmd;
    }

    private static int Guard(Action body)
    {
        try
        {
            body();
            return 0;
        }
        catch (VimException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }

    private static T[]? ParseList<T>(string? text, string option, Func<string, T> parse)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        var parts = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var values = new T[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            try
            {
                values[i] = parse(parts[i]);
            }
            catch (Exception e) when (e is FormatException or OverflowException)
            {
                throw new VimException($"{option}: '{parts[i]}' is not a valid number{(e is OverflowException ? " (too large)" : "")} (expected a comma-separated list).");
            }
        }
        return values;
    }

    private static void WriteCocoJson(string path, CocoSummary summary)
    {
        AtomicFile.Write(path, s =>
        {
            using var w = new Utf8JsonWriter(s, new JsonWriterOptions { Indented = true });
            w.WriteStartObject();
            w.WriteStartArray("stats");
            foreach (var v in summary.Stats) w.WriteNumberValue(v);
            w.WriteEndArray();
            w.WriteStartObject("per_category");
            foreach (var c in summary.PerCategory)
            {
                w.WriteStartObject(c.CategoryId.ToString(CultureInfo.InvariantCulture));
                w.WriteString("name", c.Name);
                w.WriteNumber("AP", c.Ap);
                w.WriteNumber("AP50", c.Ap50);
                w.WriteNumber("AP75", c.Ap75);
                w.WriteNumber($"AR@{summary.PerCategoryMaxDets.ToString(CultureInfo.InvariantCulture)}", c.Ar);
                w.WriteEndObject();
            }
            w.WriteEndObject();
            w.WriteEndObject();
        });
    }

    private static void WriteSegJson(string path, SegmentationResult r) =>
        AtomicFile.WriteText(path, JsonSerializer.Serialize(new
        {
            aAcc = r.AAcc, mIoU = r.MIoU, mAcc = r.MAcc, mDice = r.MDice, mFscore = r.MFscore, IoU = r.IoU, Acc = r.Acc,
        }, MetricJson.Indented));
}
