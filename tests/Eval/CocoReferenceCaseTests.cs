using System.Text.Json;
using NUnit.Framework;
using Vim.Data.Evaluation;

namespace Vim.Tests.Eval;

/// <summary>
/// Every public reference case in tests/data/metric-cases (pycocotools / faster_coco_eval /
/// torchmetrics numbers as their sources state them) must be reproduced to the stated tolerance.
/// </summary>
public class CocoReferenceCaseTests
{
    public static readonly string[] Cases =
    [
        "coco_bbox_cocoapi_fake100.json",
        "coco_bbox_crowd_region.json",
        "coco_bbox_custom_iouthr_hit.json",
        "coco_bbox_custom_iouthr_miss.json",
        "coco_bbox_detectron2_small.json",
        "coco_bbox_mmdet_dummy.json",
        "coco_bbox_torchmetrics_2023.json",
        "coco_bbox_torchmetrics_doc_single.json",
        "coco_bbox_torchmetrics_v06.json",
        "coco_segm_cocoapi_fake100.json",
        "coco_segm_detectron2_small.json",
        "coco_segm_mmdet_dummy.json",
        "coco_segm_shapes_polygon_to_rle.json",
        "coco_segm_torchmetrics_2023.json",
        "coco_segm_torchmetrics_doc_float32_thresholds.json",
    ];

    [TestCaseSource(nameof(Cases))]
    public void TwelveStatsMatchTheSource(string caseFile)
    {
        using var doc = MetricCaseFiles.Open(caseFile);
        var root = doc.RootElement;
        var summary = MetricCaseFiles.Evaluator(root, MetricCaseFiles.ReadParams(root.GetProperty("params"))).Run();
        double tol = root.GetProperty("tolerance").GetDouble();
        var expected = root.GetProperty("expected_stats");
        int checkedCount = 0;
        for (int i = 0; i < 12; i++)
        {
            if (expected[i].ValueKind == JsonValueKind.Null) continue;
            Assert.That(summary.Stats[i], Is.EqualTo(expected[i].GetDouble()).Within(tol), $"{caseFile}: stats[{i}] ({summary.StatNames[i]})");
            checkedCount++;
        }
        Assert.That(checkedCount, Is.GreaterThan(0));
    }

    /// <summary>
    /// The full-precision cases whose stated numbers the case README reports pycocotools reproduces
    /// bit for bit: our arithmetic (IoU formula, cumulative sums, numpy's blocked pairwise mean) is
    /// the same operation for operation, so the doubles must be identical, not merely close.
    /// </summary>
    [TestCase("coco_bbox_cocoapi_fake100.json")]
    [TestCase("coco_segm_cocoapi_fake100.json")]
    [TestCase("coco_bbox_crowd_region.json")]
    [TestCase("coco_segm_shapes_polygon_to_rle.json")]
    public void FullPrecisionCasesAreBitIdentical(string caseFile)
    {
        using var doc = MetricCaseFiles.Open(caseFile);
        var root = doc.RootElement;
        var summary = MetricCaseFiles.Evaluator(root, MetricCaseFiles.ReadParams(root.GetProperty("params"))).Run();
        var expected = root.GetProperty("expected_stats").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Assert.That(summary.Stats, Is.EqualTo(expected));
    }

    public static readonly string[] CasesWithAdditionalChecks =
    [
        "coco_bbox_cocoapi_fake100.json",
        "coco_segm_cocoapi_fake100.json",
        "coco_bbox_crowd_region.json",
        "coco_bbox_custom_iouthr_hit.json",
        "coco_bbox_custom_iouthr_miss.json",
        "coco_bbox_torchmetrics_2023.json",
        "coco_bbox_torchmetrics_v06.json",
        "coco_segm_torchmetrics_2023.json",
        "coco_segm_shapes_polygon_to_rle.json",
    ];

    [TestCaseSource(nameof(CasesWithAdditionalChecks))]
    public void AdditionalChecksMatchTheSource(string caseFile)
    {
        using var doc = MetricCaseFiles.Open(caseFile);
        var root = doc.RootElement;
        Assert.That(root.TryGetProperty("additional_checks", out var checks), Is.True, $"{caseFile} has no additional_checks");
        foreach (var check in checks.EnumerateArray())
        {
            string name = check.GetProperty("name").GetString()!;
            switch (name)
            {
                case "custom_area_ranges":
                    CheckCustomAreaRanges(root, check);
                    break;
                case "AR_50_AR_75":
                    CheckAr50Ar75(root, check);
                    break;
                case "iou_matrix":
                    CheckIouMatrix(root, check);
                    break;
                case "iou":
                    CheckSingleIou(root, check);
                    break;
                case "per_class":
                    CheckPerClass(root, check);
                    break;
                default:
                    Assert.Fail($"{caseFile}: unknown additional check '{name}'");
                    break;
            }
        }
    }

    private static void CheckCustomAreaRanges(JsonElement root, JsonElement check)
    {
        var p = MetricCaseFiles.ReadParams(check.GetProperty("params"));
        var acc = RunToAccumulation(root, p);
        // faster_coco_eval's 16-number summary: AP all/.50/.75, AP per custom range, AR@1/10/100, AR per range.
        var actual = new List<double>
        {
            acc.Mean(true, null, "all", 100), acc.Mean(true, 0.5, "all", 100), acc.Mean(true, 0.75, "all", 100),
        };
        foreach (var r in p.AreaRanges.Skip(1)) actual.Add(acc.Mean(true, null, r.Label, 100));
        actual.Add(acc.Mean(false, null, "all", 1));
        actual.Add(acc.Mean(false, null, "all", 10));
        actual.Add(acc.Mean(false, null, "all", 100));
        foreach (var r in p.AreaRanges.Skip(1)) actual.Add(acc.Mean(false, null, r.Label, 100));
        var expected = check.GetProperty("expected").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        double tol = check.GetProperty("tolerance").GetDouble();
        Assert.That(actual, Has.Count.EqualTo(expected.Length));
        for (int i = 0; i < expected.Length; i++)
            Assert.That(actual[i], Is.EqualTo(expected[i]).Within(tol), $"custom area ranges [{i}] {check.GetProperty("labels")[i]}");
    }

    private static void CheckAr50Ar75(JsonElement root, JsonElement check)
    {
        var acc = RunToAccumulation(root, MetricCaseFiles.ReadParams(root.GetProperty("params")));
        double tol = check.GetProperty("tolerance").GetDouble();
        Assert.That(acc.Mean(false, 0.5, "all", 100), Is.EqualTo(check.GetProperty("AR_50").GetDouble()).Within(tol), "AR_50");
        Assert.That(acc.Mean(false, 0.75, "all", 100), Is.EqualTo(check.GetProperty("AR_75").GetDouble()).Within(tol), "AR_75");
    }

    private static void CheckIouMatrix(JsonElement root, JsonElement check)
    {
        var evaluator = MetricCaseFiles.Evaluator(root, MetricCaseFiles.ReadParams(root.GetProperty("params")));
        long imageId = root.GetProperty("gt").GetProperty("images")[0].GetProperty("id").GetInt64();
        long catId = root.GetProperty("gt").GetProperty("annotations")[0].GetProperty("category_id").GetInt64();
        var ious = evaluator.ComputeIou(imageId, catId);
        var expected = check.GetProperty("ious");
        Assert.That(ious.GetLength(0), Is.EqualTo(expected.GetArrayLength()));
        double tol = check.TryGetProperty("tolerance", out var t) ? t.GetDouble() : 1e-12;
        for (int i = 0; i < ious.GetLength(0); i++)
        {
            var row = expected[i];
            Assert.That(ious.GetLength(1), Is.EqualTo(row.GetArrayLength()));
            for (int j = 0; j < ious.GetLength(1); j++)
                Assert.That(ious[i, j], Is.EqualTo(row[j].GetDouble()).Within(tol), $"iou[{i},{j}]");
        }
    }

    private static void CheckSingleIou(JsonElement root, JsonElement check)
    {
        var evaluator = MetricCaseFiles.Evaluator(root, MetricCaseFiles.ReadParams(root.GetProperty("params")));
        var ious = evaluator.ComputeIou(0, 0);
        Assert.That(ious[0, 0], Is.EqualTo(check.GetProperty("expected_rounded_3dp").GetDouble()).Within(check.GetProperty("tolerance").GetDouble()));
    }

    private static void CheckPerClass(JsonElement root, JsonElement check)
    {
        double tol = check.GetProperty("tolerance").GetDouble();
        var classes = check.GetProperty("classes").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        var map = check.GetProperty("map_per_class").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        var mar = check.GetProperty("mar_100_per_class").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        // Both ways pycocotools users get per-class numbers: params.catIds = [c], and slicing the full table.
        var full = MetricCaseFiles.Evaluator(root, MetricCaseFiles.ReadParams(root.GetProperty("params"))).Run();
        for (int i = 0; i < classes.Length; i++)
        {
            var single = MetricCaseFiles.Evaluator(root, MetricCaseFiles.ReadParams(root.GetProperty("params"), [classes[i]])).Run();
            Assert.That(single.Stats[0], Is.EqualTo(map[i]).Within(tol), $"class {classes[i]} AP");
            Assert.That(single.Stats[8], Is.EqualTo(mar[i]).Within(tol), $"class {classes[i]} AR@100");
            var row = full.PerCategory.Single(c => c.CategoryId == classes[i]);
            Assert.That(row.Ap, Is.EqualTo(map[i]).Within(tol), $"class {classes[i]} AP (per-category table)");
            Assert.That(row.Ar, Is.EqualTo(mar[i]).Within(tol), $"class {classes[i]} AR@100 (per-category table)");
        }
    }

    private static CocoAccumulation RunToAccumulation(JsonElement root, CocoEvalParams p)
    {
        var evaluator = MetricCaseFiles.Evaluator(root, p);
        evaluator.Evaluate();
        return evaluator.Accumulate();
    }
}
