using System.Text.Json;
using NUnit.Framework;
using OpenCvSharp;
using Vim.Data.Evaluation;
using Vim.Data.Evaluation.Reports;

namespace Vim.Tests.Eval;

public class EvalCliAndReportTests
{
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("vim-eval-cli-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    /// <summary>A chart must decode to the requested size and not be a single flat colour.</summary>
    internal static void AssertChart(string path, int? width = null, int? height = null)
    {
        Assert.That(File.Exists(path), path);
        using var img = Cv2.ImRead(path, ImreadModes.Color);
        Assert.That(img.Empty(), Is.False, path);
        if (width is not null) Assert.That(img.Cols, Is.EqualTo(width.Value));
        if (height is not null) Assert.That(img.Rows, Is.EqualTo(height.Value));
        Cv2.MeanStdDev(img, out _, out var std);
        Assert.That(std.Val0 + std.Val1 + std.Val2, Is.GreaterThan(1.0), $"{path} looks blank");
    }

    internal static (int Code, string Out) RunCli(params string[] args)
    {
        var previous = Console.Out;
        using var writer = new StringWriter();
        Console.SetOut(writer);
        try
        {
            int code = Vim.Tools.VimCli.Run(args);
            return (code, writer.ToString());
        }
        finally
        {
            Console.SetOut(previous);
        }
    }

    /// <summary>Runs a command that must fail; returns what it printed as its error.</summary>
    internal static string Refused(params string[] args)
    {
        var error = new StringWriter();
        var previous = Console.Error;
        Console.SetError(error);
        try
        {
            Assert.That(Vim.Tools.VimCli.Run(args, error), Is.Not.Zero, string.Join(" ", args));
        }
        finally
        {
            Console.SetError(previous);
        }
        return error.ToString();
    }

    [Test]
    public void CocoCommandPrintsSummaryWritesJsonAndReport()
    {
        using var doc = MetricCaseFiles.Open("coco_segm_detectron2_small.json");
        var root = doc.RootElement;
        string gt = Path.Combine(_dir, "gt.json"), res = Path.Combine(_dir, "res.json"), json = Path.Combine(_dir, "out", "metrics.json");
        File.WriteAllText(gt, root.GetProperty("gt").GetRawText());
        File.WriteAllText(res, root.GetProperty("dt").GetRawText());
        string report = Path.Combine(_dir, "report");
        var (code, output) = RunCli("eval", "coco", "--gt", gt, "--results", res, "--iou-type", "segm", "--json-out", json, "--report-dir", report);
        Assert.That(code, Is.EqualTo(0), output);
        Assert.That(output, Does.Contain(" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.725"));
        using var metrics = JsonDocument.Parse(File.ReadAllText(json));
        var stats = metrics.RootElement.GetProperty("stats").EnumerateArray().Select(v => v.GetDouble()).ToArray();
        var expected = root.GetProperty("expected_stats").EnumerateArray().Select(v => v.GetDouble()).ToArray();
        Assert.That(stats, Is.EqualTo(expected).Within(1e-9));
        Assert.That(metrics.RootElement.GetProperty("per_category").EnumerateObject().Count(), Is.EqualTo(root.GetProperty("gt").GetProperty("categories").GetArrayLength()));
        AssertChart(Path.Combine(report, "pr_curves.png"), ReportCharts.DefaultWidth, ReportCharts.DefaultHeight);
        AssertChart(Path.Combine(report, "per_category_ap.png"));
        Assert.That(File.ReadAllText(Path.Combine(report, "summary.md")), Does.Contain($"| AP | {(100 * expected[0]).ToString("0.00", System.Globalization.CultureInfo.InvariantCulture)} |"),
            "percent, as metrics.json holds AP");
    }

    /// <summary>
    /// A results file of another split (an image id the ground truth lacks) is refused by `eval coco` naming both files
    /// and the entry, as `eval coco-errors` names them, where it used to say only "results[1]: image_id 99 …".
    /// </summary>
    [Test]
    public void CocoCommandNamesBothFilesForAResultOfAnImageTheGroundTruthLacks()
    {
        string gt = Path.Combine(_dir, "gt.json"), res = Path.Combine(_dir, "res.json");
        File.WriteAllText(gt, """
            {"images": [{"id": 1, "width": 10, "height": 10, "file_name": "a.jpg"}],
             "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 4], "area": 16, "iscrowd": 0}],
             "categories": [{"id": 1, "name": "thing"}]}
            """);
        File.WriteAllText(res, """
            [{"image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 4], "score": 0.9},
             {"image_id": 99, "category_id": 1, "bbox": [1, 1, 4, 4], "score": 0.8}]
            """);
        var expected = $"--results {res} against --gt {gt}: results[1]: image_id 99 is not an image of the ground truth";
        Assert.That(Refused("eval", "coco", "--gt", gt, "--results", res), Does.Contain(expected));
        Assert.That(Refused("eval", "coco-errors", "--gt", gt, "--results", res, "--out", Path.Combine(_dir, "errors")), Does.Contain(expected));
    }

    [Test]
    public void CocoCommandRejectsBadOptionsWithAClearMessage()
    {
        var previous = Console.Error;
        using var err = new StringWriter();
        Console.SetError(err);
        try
        {
            var (code, _) = RunCli("eval", "coco", "--gt", Path.Combine(_dir, "missing.json"), "--results", "x.json");
            Assert.That(code, Is.EqualTo(1));
            Assert.That(err.ToString(), Does.Contain("missing.json").And.Contain("not found"));
            (code, _) = RunCli("eval", "coco", "--gt", "a", "--results", "b", "--iou-thrs", "0.5,abc");
            Assert.That(code, Is.EqualTo(1));
            Assert.That(err.ToString(), Does.Contain("--iou-thrs"));
        }
        finally
        {
            Console.SetError(previous);
        }
    }

    [Test]
    public void SegCommandEvaluatesPngFoldersLikeTheReferenceCase()
    {
        // The HF evaluate case (3 maps, ignore 255) written as 8-bit PNGs; the CLI must give the same numbers.
        using var doc = MetricCaseFiles.Open("miou_hf_evaluate_ignore255.json");
        var root = doc.RootElement;
        string predDir = Path.Combine(_dir, "pred"), gtDir = Path.Combine(_dir, "gt");
        Directory.CreateDirectory(predDir);
        Directory.CreateDirectory(gtDir);
        var preds = root.GetProperty("pred").EnumerateArray().ToList();
        var labels = root.GetProperty("label").EnumerateArray().ToList();
        for (int i = 0; i < preds.Count; i++)
        {
            WritePng(Path.Combine(predDir, $"img{i}.png"), preds[i]);
            WritePng(Path.Combine(gtDir, $"img{i}.png"), labels[i]);
        }
        string json = Path.Combine(_dir, "seg.json"), report = Path.Combine(_dir, "seg-report");
        var (code, output) = RunCli("eval", "seg", "--pred-dir", predDir, "--gt-dir", gtDir, "--num-classes", "10", "--json-out", json, "--report-dir", report);
        Assert.That(code, Is.EqualTo(0), output);
        using var result = JsonDocument.Parse(File.ReadAllText(json));
        var expected = root.GetProperty("expected");
        Assert.That(result.RootElement.GetProperty("mIoU").GetDouble(), Is.EqualTo(expected.GetProperty("mIoU").GetDouble()).Within(1e-12));
        Assert.That(result.RootElement.GetProperty("aAcc").GetDouble(), Is.EqualTo(expected.GetProperty("aAcc").GetDouble()).Within(1e-12));
        var iou = result.RootElement.GetProperty("IoU").EnumerateArray().Select(v => v.GetDouble()).ToArray();
        Assert.That(iou, Is.EqualTo(expected.GetProperty("IoU").EnumerateArray().Select(v => v.GetDouble()).ToArray()).Within(5e-9));
        Assert.That(output, Does.Contain("mIoU: 47.75"));
        AssertChart(Path.Combine(report, "per_class_iou.png"));
    }

    private static void WritePng(string path, JsonElement map)
    {
        var rows = map.EnumerateArray().Select(r => r.EnumerateArray().Select(v => (byte)v.GetInt32()).ToArray()).ToArray();
        using var mat = new Mat(rows.Length, rows[0].Length, MatType.CV_8UC1);
        for (int y = 0; y < rows.Length; y++) for (int x = 0; x < rows[y].Length; x++) mat.Set(y, x, rows[y][x]);
        Assert.That(Cv2.ImWrite(path, mat));
    }

    /// <summary>
    /// Two label maps with ignore pixels (255) and reduce_zero_label (0 becomes ignored, v becomes v − 1), counted by hand:
    /// image a, labels [0 1 2 3 / 255 1 1 2] → [ign 0 1 2 / ign 0 0 1] against predictions [2 0 1 2 / 0 0 2 1]: pairs
    /// (0,0) (1,1) (2,2) (0,0) (0,2) (1,1); image b, labels [3 3 0 2] → [2 2 ign 1] against [2 1 0 0]: (2,2) (2,1) (1,0).
    /// </summary>
    [Test]
    public void ConfusionSegCommandCountsLabelledPixelsByHand()
    {
        string predDir = Path.Combine(_dir, "pred"), gtDir = Path.Combine(_dir, "gt"), outDir = Path.Combine(_dir, "cm");
        Directory.CreateDirectory(predDir);
        Directory.CreateDirectory(gtDir);
        using (var maps = JsonDocument.Parse("""
            {"a": {"label": [[0, 1, 2, 3], [255, 1, 1, 2]], "pred": [[2, 0, 1, 2], [0, 0, 2, 1]]},
             "b": {"label": [[3, 3, 0, 2]], "pred": [[2, 1, 0, 0]]}}
            """))
        {
            foreach (var image in maps.RootElement.EnumerateObject())
            {
                WritePng(Path.Combine(gtDir, $"{image.Name}.png"), image.Value.GetProperty("label"));
                WritePng(Path.Combine(predDir, $"{image.Name}.png"), image.Value.GetProperty("pred"));
            }
        }
        var names = Path.Combine(_dir, "classes.txt");
        File.WriteAllLines(names, ["wall", "sky", "floor, tiled"]);
        var (code, output) = RunCli("eval", "confusion", "seg", "--pred-dir", predDir, "--gt-dir", gtDir, "--num-classes", "3",
            "--reduce-zero-label", "--class-names", names, "--out", outDir);
        Assert.That(code, Is.EqualTo(0), output);
        var (_, columns, rows, counts) = ConfusionCsv.Read(Path.Combine(outDir, "confusion_matrix.csv"));
        Assert.That(columns, Is.EqualTo(new[] { "wall", "sky", "floor, tiled" }));
        Assert.That(rows, Is.EqualTo(columns));
        Assert.That(counts, Is.EqualTo(new long[,] { { 2, 0, 1 }, { 1, 2, 0 }, { 0, 1, 2 } }));
        AssertChart(Path.Combine(outDir, "confusion_matrix.png"));
    }

    /// <summary>The detection matrix through the CLI: classes from the ground truth's categories, mmdet's defaults, and --nms-iou-thr reaching the rule.</summary>
    [Test]
    public void ConfusionDetCommandWritesCountsAndChart()
    {
        string gt = Path.Combine(_dir, "gt.json"), results = Path.Combine(_dir, "results.json");
        File.WriteAllText(gt, Detection.DetectionConfusionTests.GroundTruthJson);
        File.WriteAllText(results, Detection.DetectionConfusionTests.ResultsJson);
        var (code, output) = RunCli("eval", "confusion", "det", "--gt", gt, "--results", results, "--out", Path.Combine(_dir, "plain"));
        Assert.That(code, Is.EqualTo(0), output);
        var (_, columns, rows, counts) = ConfusionCsv.Read(Path.Combine(_dir, "plain", "confusion_matrix.csv"));
        Assert.That(columns, Is.EqualTo(new[] { "cat", "dog", "bird", "background" }));
        Assert.That(rows, Is.EqualTo(columns));
        // The cells DetectionConfusionTests works out one by one.
        Assert.That(counts, Is.EqualTo(new long[,] { { 2, 0, 0, 1 }, { 1, 1, 0, 1 }, { 0, 0, 1, 1 }, { 0, 1, 0, 0 } }));
        AssertChart(Path.Combine(_dir, "plain", "confusion_matrix.png"));
        (code, output) = RunCli("eval", "confusion", "det", "--gt", gt, "--results", results, "--out", Path.Combine(_dir, "nms"),
            "--nms-iou-thr", "0.5", "--score-thr", "0.3", "--tp-iou-thr", "0.5");
        Assert.That(code, Is.EqualTo(0), output);
        Assert.That(ConfusionCsv.Read(Path.Combine(_dir, "nms", "confusion_matrix.csv")).Counts,
            Is.EqualTo(new long[,] { { 1, 0, 0, 1 }, { 1, 1, 0, 1 }, { 0, 0, 0, 2 }, { 0, 1, 0, 0 } }));
    }

    [Test]
    public void ConfusionCommandsRejectBadInputsNamingTheOption()
    {
        string gt = Path.Combine(_dir, "gt.json"), results = Path.Combine(_dir, "results.json"), file = Path.Combine(_dir, "a-file");
        File.WriteAllText(gt, Detection.DetectionConfusionTests.GroundTruthJson);
        File.WriteAllText(results, Detection.DetectionConfusionTests.ResultsJson);
        File.WriteAllText(file, "kept");
        string[] det = ["eval", "confusion", "det", "--gt", gt, "--results", results, "--out", Path.Combine(_dir, "out")];
        Assert.That(Refused([.. det, "--score-thr", "1.5"]), Does.Contain("--score-thr").And.Contain("[0, 1]"));
        Assert.That(Refused([.. det, "--score-thr", "abc"]), Does.Contain("--score-thr"));
        Assert.That(Refused([.. det, "--tp-iou-thr", "0"]), Does.Contain("--tp-iou-thr"));
        Assert.That(Refused([.. det, "--nms-iou-thr", "0"]), Does.Contain("--nms-iou-thr").And.Contain("leave the option out"));
        Assert.That(Refused("eval", "confusion", "det", "--gt", Path.Combine(_dir, "missing.json"), "--results", results, "--out", Path.Combine(_dir, "out")),
            Does.Contain("missing.json").And.Contain("not found"));
        Assert.That(Refused("eval", "confusion", "det", "--gt", gt, "--results", results, "--out", file), Does.Contain("--out").And.Contain("is a file"));
        Assert.That(Refused("eval", "confusion", "det", "--gt", gt, "--results", results), Does.Contain("--out"));
        Assert.That(Directory.Exists(Path.Combine(_dir, "out")), Is.False, "nothing written for a refused command");

        string predDir = Path.Combine(_dir, "p"), gtDir = Path.Combine(_dir, "g");
        Directory.CreateDirectory(predDir);
        Directory.CreateDirectory(gtDir);
        using (var map = JsonDocument.Parse("[[0, 1]]"))
        {
            WritePng(Path.Combine(predDir, "x.png"), map.RootElement);
            WritePng(Path.Combine(gtDir, "x.png"), map.RootElement);
        }
        var names = Path.Combine(_dir, "names.txt");
        File.WriteAllLines(names, ["only one"]);
        string[] seg = ["eval", "confusion", "seg", "--pred-dir", predDir, "--gt-dir", gtDir, "--out", Path.Combine(_dir, "seg-out")];
        Assert.That(Refused([.. seg, "--num-classes", "0"]), Does.Contain("--num-classes"));
        Assert.That(Refused([.. seg, "--num-classes", "2", "--class-names", names]), Does.Contain("--class-names").And.Contain("1 names").And.Contain("--num-classes is 2"));
        Assert.That(Refused([.. seg, "--num-classes", "2", "--class-names", Path.Combine(_dir, "absent.txt")]), Does.Contain("absent.txt").And.Contain("not found"));
        Assert.That(Refused("eval", "confusion", "seg", "--pred-dir", Path.Combine(_dir, "nope"), "--gt-dir", gtDir, "--num-classes", "2", "--out", Path.Combine(_dir, "seg-out")),
            Does.Contain("--pred-dir").And.Contain("not found"));
        Assert.That(Directory.Exists(Path.Combine(_dir, "seg-out")), Is.False, "nothing written for a refused command");
    }

    /// <summary>
    /// `eval coco-errors` on the confused-classes case (its stage APs reasoned out in <see cref="CocoErrorAnalysisTests"/>):
    /// the table's rows, errors.json's numbers, and one chart per category and area range that holds objects.
    /// </summary>
    [Test]
    public void CocoErrorsCommandWritesTheTableJsonAndCharts()
    {
        string gt = Path.Combine(_dir, "gt.json"), results = Path.Combine(_dir, "results.json"), outDir = Path.Combine(_dir, "errors");
        File.WriteAllText(gt, CocoErrorAnalysisTests.ConfusedClassesJson);
        File.WriteAllText(results, CocoErrorAnalysisTests.ConfusedClassesResultsJson);
        var (code, output) = RunCli("eval", "coco-errors", "--gt", gt, "--results", results, "--areas", "all,medium", "--out", outDir);
        Assert.That(code, Is.EqualTo(0), output);
        Assert.That(output, Does.Contain("[3/3] car").And.Contain("left"), "progress per category");
        string[] names = ["cat", "dog", "car"];
        var expected = CocoErrorAnalysisTests.ConfusedClassesAps;
        string Row(string name, IEnumerable<double> aps) =>
            $"| {name} | " + string.Join(" | ", aps.Select(v => v.ToString("0.00", System.Globalization.CultureInfo.InvariantCulture))) + " |";
        var summary = File.ReadAllText(Path.Combine(outDir, "summary.md"));
        Assert.That(summary, Does.Contain("| category | C75 | C50 | Loc | Sim | Oth | BG | FN | chart |"));
        Assert.That(summary, Does.Contain(Row("**overall**", Enumerable.Range(0, 7).Select(s => expected.Average(c => c[s])))));
        for (int k = 0; k < 3; k++) Assert.That(summary, Does.Contain(Row(names[k], expected[k])), names[k]);
        // Every object is 20×20 = 400 px², small: the medium table has no number, only "-".
        var medium = summary[summary.IndexOf("## Area medium", StringComparison.Ordinal)..];
        Assert.That(medium, Does.Contain("| cat | - | - | - | - | - | - | - |  |"));

        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "errors.json")));
        var root = json.RootElement;
        Assert.That(root.GetProperty("stages").EnumerateArray().Select(s => s.GetString()), Is.EqualTo(new[] { "C75", "C50", "Loc", "Sim", "Oth", "BG", "FN" }));
        Assert.That(root.GetProperty("recall_thresholds").GetArrayLength(), Is.EqualTo(101));
        var categories = root.GetProperty("categories").EnumerateArray().ToList();
        Assert.That(categories.Select(c => c.GetProperty("supercategory").GetString()), Is.EqualTo(new[] { "animal", "animal", "vehicle" }));
        for (int k = 0; k < 3; k++)
        {
            var all = categories[k].GetProperty("areas").GetProperty("all");
            var aps = new[] { "C75", "C50", "Loc", "Sim", "Oth", "BG", "FN" }.Select(s => all.GetProperty("ap").GetProperty(s).GetDouble());
            Assert.That(aps, Is.EqualTo(expected[k]).Within(1e-9), names[k]);
            Assert.That(all.GetProperty("precision").GetProperty("Sim").EnumerateArray().Select(v => v.GetDouble()),
                Is.All.EqualTo(expected[k][3] / 100).Within(1e-12), "each curve is flat here (pycocotools' tp / (tp + fp + eps))");
            var mediumEntry = categories[k].GetProperty("areas").GetProperty("medium");
            Assert.That(mediumEntry.GetProperty("ap").GetProperty("FN").ValueKind, Is.EqualTo(JsonValueKind.Null));
            Assert.That(mediumEntry.GetProperty("precision").GetProperty("FN").ValueKind, Is.EqualTo(JsonValueKind.Null));
        }
        AssertChart(Path.Combine(outDir, "overall_all.png"), ReportCharts.DefaultWidth, ReportCharts.DefaultHeight);
        Assert.That(Directory.EnumerateFiles(outDir, "*.png").Select(Path.GetFileName), Is.EquivalentTo(new[] { "overall_all.png" }), "no medium object");
        var perCategory = Directory.EnumerateFiles(Path.Combine(outDir, "per_category")).Select(Path.GetFileName).ToList();
        Assert.That(perCategory, Is.EquivalentTo(new[] { "1_cat_all.png", "2_dog_all.png", "3_car_all.png" }));
        foreach (var png in perCategory) AssertChart(Path.Combine(outDir, "per_category", png!));
        Assert.That(summary, Does.Contain("(per_category/3_car_all.png)"));
    }

    [Test]
    public void CocoErrorsCommandRejectsBadInputsNamingTheOptionOrFile()
    {
        string gt = Path.Combine(_dir, "gt.json"), results = Path.Combine(_dir, "results.json"), file = Path.Combine(_dir, "a-file"), outDir = Path.Combine(_dir, "out");
        File.WriteAllText(gt, CocoErrorAnalysisTests.ConfusedClassesJson);
        File.WriteAllText(results, CocoErrorAnalysisTests.ConfusedClassesResultsJson);
        File.WriteAllText(file, "kept");
        string[] command = ["eval", "coco-errors", "--gt", gt, "--results", results, "--out", outDir];
        Assert.That(Refused([.. command, "--iou-type", "box"]), Does.Contain("--iou-type").And.Contain("bbox or segm"));
        Assert.That(Refused([.. command, "--areas", "all,huge"]), Does.Contain("--areas").And.Contain("'huge'"));
        Assert.That(Refused("eval", "coco-errors", "--gt", Path.Combine(_dir, "missing.json"), "--results", results, "--out", outDir),
            Does.Contain("missing.json").And.Contain("not found"));
        Assert.That(Refused("eval", "coco-errors", "--gt", gt, "--results", results, "--out", file), Does.Contain("--out").And.Contain("is a file"));
        Assert.That(Refused("eval", "coco-errors", "--gt", gt, "--results", results), Does.Contain("--out"));
        var empty = Path.Combine(_dir, "empty.json");
        File.WriteAllText(empty, "[]");
        Assert.That(Refused("eval", "coco-errors", "--gt", gt, "--results", empty, "--out", outDir), Does.Contain(empty).And.Contain("no detections"));
        var stray = Path.Combine(_dir, "stray.json");
        File.WriteAllText(stray, """[{"image_id": 9, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.5}]""");
        Assert.That(Refused("eval", "coco-errors", "--gt", gt, "--results", stray, "--out", outDir),
            Does.Contain($"--results {stray}").And.Contain($"--gt {gt}").And.Contain("results[0]: image_id 9"));
        // Boxes only: a segm analysis needs the masks the ground truth lacks, and names the annotation.
        Assert.That(Refused([.. command, "--iou-type", "segm"]), Does.Contain("annotation id 1").And.Contain("segmentation"));
        Assert.That(Directory.Exists(outDir), Is.False, "nothing written for a refused command");
        // vim test --error-analysis is for detection configs; refused before the checkpoint is read.
        var segmentationConfig = Path.Combine(RepositoryPaths.Root, "configs", "seg", "upernet_vim_tiny_demo_ade.yaml");
        Assert.That(Refused("test", segmentationConfig, "--checkpoint", file, "--out", outDir, "--error-analysis"),
            Does.Contain("--error-analysis").And.Contain("segmentation config"));
        Assert.That(Directory.Exists(outDir), Is.False);
    }

    [Test]
    public void SegmentationJsonUsesNullForAbsentClasses()
    {
        var m = new SegmentationMetric(3);
        m.Update(new[] { 0, 1 }, new[] { 0, 1 });
        string predDir = Path.Combine(_dir, "p"), gtDir = Path.Combine(_dir, "g");
        Directory.CreateDirectory(predDir);
        Directory.CreateDirectory(gtDir);
        using var doc = JsonDocument.Parse("[[0, 1]]");
        WritePng(Path.Combine(predDir, "a.png"), doc.RootElement);
        WritePng(Path.Combine(gtDir, "a.png"), doc.RootElement);
        string json = Path.Combine(_dir, "s.json");
        var (code, output) = RunCli("eval", "seg", "--pred", predDir, "--gt", gtDir, "--num-classes", "3", "--json-out", json);
        Assert.That(code, Is.EqualTo(0), output);
        using var result = JsonDocument.Parse(File.ReadAllText(json));
        var iou = result.RootElement.GetProperty("IoU");
        Assert.That(iou[0].GetDouble(), Is.EqualTo(1));
        Assert.That(iou[2].ValueKind, Is.EqualTo(JsonValueKind.Null));
        Assert.That(result.RootElement.GetProperty("mIoU").GetDouble(), Is.EqualTo(m.Compute().MIoU));
    }
}
