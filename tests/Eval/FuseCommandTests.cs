using System.Text.Json;
using NUnit.Framework;
using Vim.Data.Coco;
using Vim.Data.Evaluation;

namespace Vim.Tests.Eval;

/// <summary>`vim eval fuse` end to end on a tiny ground truth: the fused results file, the evaluation table and the refusals.</summary>
public class FuseCommandTests
{
    private string _dir = "";
    private string _gt = "";

    /// <summary>Two images, categories 1 and 3, four objects.</summary>
    private const string GroundTruth = """
        {"images": [{"id": 7, "width": 64, "height": 48, "file_name": "a.jpg"}, {"id": 9, "width": 32, "height": 32, "file_name": "b.jpg"}],
         "categories": [{"id": 1, "name": "cat"}, {"id": 3, "name": "dog"}],
         "annotations": [
           {"id": 1, "image_id": 7, "category_id": 1, "bbox": [2, 3, 10, 8], "area": 80, "iscrowd": 0},
           {"id": 2, "image_id": 7, "category_id": 1, "bbox": [20, 3, 8, 8], "area": 64, "iscrowd": 0},
           {"id": 3, "image_id": 7, "category_id": 3, "bbox": [40, 20, 12, 12], "area": 144, "iscrowd": 0},
           {"id": 4, "image_id": 9, "category_id": 3, "bbox": [1, 1, 20, 20], "area": 400, "iscrowd": 0}]}
        """;

    /// <summary>A results file of one cat on image 7, [0, 0, 10, 10] at 0.9.</summary>
    private const string OneCat = """[{"image_id": 7, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9}]""";

    [SetUp]
    public void SetUp()
    {
        _dir = Directory.CreateTempSubdirectory("vim-eval-fuse-").FullName;
        _gt = Write("gt.json", GroundTruth);
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    /// <summary>
    /// A file fused with itself at weights 1, 1 and conf_type avg gives its own detections back when no two boxes of one image
    /// and category overlap above --iou-thr: each box meets only its own copy, the fused box is (s·b + s·b) / 2s = b, and the
    /// score (s + s) / 2 · min(2, 2) / 2 = s (exact in floating point: doubling and halving are). The boxes here overlap
    /// at most at IoU 0 within a category. A mask in the input is left out of the fused file, and said so.
    /// Fused AP therefore equals the input's, which the evaluator gives independently of the fusion.
    /// </summary>
    [Test]
    public void AFileFusedWithItselfGivesItsDetectionsBack()
    {
        var results = Write("results.json", """
            [{"image_id": 7, "category_id": 1, "bbox": [2.1, 3.3, 9.7, 8.2], "score": 0.93},
             {"image_id": 7, "category_id": 1, "bbox": [19.6, 2.9, 8.3, 7.9], "score": 0.71,
              "segmentation": {"size": [48, 64], "counts": [3072]}},
             {"image_id": 7, "category_id": 3, "bbox": [2.1, 3.3, 9.7, 8.2], "score": 0.62},
             {"image_id": 7, "category_id": 3, "bbox": [39.5, 20.25, 12.5, 11.75], "score": 0.55},
             {"image_id": 9, "category_id": 3, "bbox": [0.1, 0.2, 20.3, 19.7], "score": 0.41},
             {"image_id": 9, "category_id": 1, "bbox": [5, 5, 4, 4], "score": 0.05}]
            """);
        var outDir = Path.Combine(_dir, "out");
        var (code, output) = EvalCliAndReportTests.RunCli("eval", "fuse", "--gt", _gt, "--results", results, results, "--out", outDir);
        Assert.That(code, Is.Zero, output);
        Assert.That(output, Does.Contain($"{results}: 1 of 6 detections carry a mask"));

        var input = CocoResults.Load(results);
        var fused = CocoResults.Load(Path.Combine(outDir, "results.json"));
        Assert.That(fused, Has.Count.EqualTo(input.Count));
        Assert.That(fused.Select(d => d.Segmentation), Is.All.Null, "boxes only");
        static string Key(CocoDetection d) => $"{d.ImageId}/{d.CategoryId}/{d.Score}";
        var expected = input.ToDictionary(Key);
        foreach (var d in fused)
        {
            Assert.That(expected.TryGetValue(Key(d), out var original), Is.True, $"fused {Key(d)} is no input detection (score exact)");
            Assert.That(d.Bbox, Is.EqualTo(original!.Bbox).Within(1e-12), Key(d));
        }
        // The gt's images in file order, each image's boxes highest score first (mmdet's output order).
        Assert.That(fused.Select(d => d.ImageId), Is.EqualTo(new long[] { 7, 7, 7, 7, 9, 9 }));
        Assert.That(fused.Take(4).Select(d => d.Score), Is.Ordered.Descending);

        double inputAp = 100 * new CocoEvaluator(CocoDataset.Load(_gt), input, CocoIouType.Bbox).Run().Stats[0];
        using var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "metrics.json")));
        var root = metrics.RootElement;
        Assert.That(root.GetProperty("inputs").GetArrayLength(), Is.EqualTo(2));
        foreach (var entry in root.GetProperty("inputs").EnumerateArray().Append(root.GetProperty("fused")))
            Assert.That(entry.GetProperty("bbox_mAP").GetDouble(), Is.EqualTo(inputAp).Within(1e-9));
        Assert.That(inputAp, Is.GreaterThan(0).And.LessThan(100), "a case whose AP is neither trivial extreme");
        Assert.That(root.GetProperty("settings").GetProperty("weights").EnumerateArray().Select(w => w.GetDouble()), Is.EqualTo(new[] { 1.0, 1.0 }));
        var summary = File.ReadAllText(Path.Combine(outDir, "summary.md"));
        Assert.That(summary, Does.Contain($"| {Path.Combine(outDir, "results.json")} | fused | 6 | {inputAp.ToString("0.00", System.Globalization.CultureInfo.InvariantCulture)} |"));
    }

    /// <summary>
    /// Two files, --weights 2,1 --conf-type max: a.json's [0, 0, 10, 10] at 0.9 and b.json's [1, 1, 10, 10] at 0.6 (IoU
    /// 81 / 119) fuse to [0.25, 0.25, 10, 10] ((1.8·0 + 0.6·1) / 2.4) scoring max(1.8, 0.6) / 2 = 0.9; b.json's dog on
    /// image 9 stands alone at 0.6·1 / 2 = 0.3. The settings reach metrics.json.
    /// </summary>
    [Test]
    public void TwoFilesFuseWithTheirWeightsAsComputedByHand()
    {
        var a = Write("a.json", OneCat);
        var b = Write("b.json", """
            [{"image_id": 7, "category_id": 1, "bbox": [1, 1, 10, 10], "score": 0.6},
             {"image_id": 9, "category_id": 3, "bbox": [1, 1, 20, 20], "score": 0.6}]
            """);
        var outDir = Path.Combine(_dir, "fused");
        var (code, output) = EvalCliAndReportTests.RunCli("eval", "fuse", "--gt", _gt, "--results", a, b, "--weights", "2,1", "--conf-type", "max", "--out", outDir);
        Assert.That(code, Is.Zero, output);
        var fused = CocoResults.Load(Path.Combine(outDir, "results.json"));
        Assert.That(fused, Has.Count.EqualTo(2));
        Assert.That((fused[0].ImageId, fused[0].CategoryId, fused[0].Score), Is.EqualTo((7L, 1L, 0.9)));
        Assert.That(fused[0].Bbox, Is.EqualTo(new[] { 0.25, 0.25, 10, 10 }).Within(1e-12));
        Assert.That((fused[1].ImageId, fused[1].CategoryId, fused[1].Score), Is.EqualTo((9L, 3L, 0.3)));
        Assert.That(fused[1].Bbox, Is.EqualTo(new double[] { 1, 1, 20, 20 }));
        using var metrics = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "metrics.json")));
        var settings = metrics.RootElement.GetProperty("settings");
        Assert.That(settings.GetProperty("weights").EnumerateArray().Select(w => w.GetDouble()), Is.EqualTo(new[] { 2.0, 1.0 }));
        Assert.That(settings.GetProperty("conf_type").GetString(), Is.EqualTo("max"));
        Assert.That(metrics.RootElement.GetProperty("fused").GetProperty("detections").GetInt32(), Is.EqualTo(2));
    }

    /// <summary>Every refusal names the option or the file and entry, and none leaves an output folder behind.</summary>
    [Test]
    public void BadInputIsRefusedByNameBeforeAnythingIsWritten()
    {
        var good = Write("good.json", OneCat);
        var strayImage = Write("stray_image.json", """
            [{"image_id": 7, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},
             {"image_id": 99, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9}]
            """);
        var strayCategory = Write("stray_category.json", """[{"image_id": 9, "category_id": 2, "bbox": [0, 0, 10, 10], "score": 0.9}]""");
        var maskOnly = Write("mask_only.json", """[{"image_id": 9, "category_id": 3, "segmentation": {"size": [32, 32], "counts": [1024]}, "score": 0.9}]""");
        var empty = Write("empty.json", "[]");
        var outDir = Path.Combine(_dir, "never");
        string[] Fuse(params string[] extra) => ["eval", "fuse", "--gt", _gt, "--out", outDir, .. extra];

        Assert.That(EvalCliAndReportTests.Refused(Fuse("--results", good, good, "--weights", "1,2,3")), Does.Contain("--weights: 3 weight(s) for 2 --results file(s)"));
        Assert.That(EvalCliAndReportTests.Refused(Fuse("--results", good, good, "--weights", "1,x")), Does.Contain("--weights: 'x' is not a valid number"));
        Assert.That(EvalCliAndReportTests.Refused(Fuse("--results", good, good, "--weights", "1,0")), Does.Contain("--weights: weight 2 is 0; expected a positive number"));
        Assert.That(EvalCliAndReportTests.Refused(Fuse("--results", good, good, "--iou-thr", "-0.2")), Does.Contain("--iou-thr: expected an IoU in [0, 1], got -0.2"));
        Assert.That(EvalCliAndReportTests.Refused(Fuse("--results", good, good, "--skip-box-thr", "2")), Does.Contain("--skip-box-thr: expected a score in [0, 1], got 2"));
        Assert.That(EvalCliAndReportTests.Refused(Fuse("--results", good, good, "--conf-type", "mean")), Does.Contain("--conf-type: expected one of avg, max"));
        Assert.That(EvalCliAndReportTests.Refused(Fuse("--results", good, strayImage)),
            Does.Contain($"{strayImage}: [1]: image_id 99 is not an image of the ground truth {_gt}"));
        Assert.That(EvalCliAndReportTests.Refused(Fuse("--results", good, strayCategory)),
            Does.Contain($"{strayCategory}: [0]: category_id 2 is not a category of the ground truth {_gt} (its ids: 1, 3)"));
        Assert.That(EvalCliAndReportTests.Refused(Fuse("--results", good, maskOnly)), Does.Contain($"{maskOnly}: [0]: no \"bbox\"; Weighted Boxes Fusion fuses boxes"));
        Assert.That(EvalCliAndReportTests.Refused(Fuse("--results", good, empty)), Does.Contain($"{empty}: the results file holds no detections"));
        Assert.That(Directory.Exists(outDir), Is.False, "no output folder after a refusal");

        // The fusion's own output may not overwrite one of its inputs.
        var inOut = Path.Combine(_dir, "inout");
        Directory.CreateDirectory(inOut);
        var overwritten = Path.Combine(inOut, "results.json");
        File.Copy(good, overwritten);
        Assert.That(EvalCliAndReportTests.Refused("eval", "fuse", "--gt", _gt, "--results", good, overwritten, "--out", inOut),
            Does.Contain($"--results {overwritten}: is the file the fusion writes"));
    }
}
