using System.Text.Json;
using NUnit.Framework;
using Vim.Data.Coco;
using Vim.Data.Evaluation;

namespace Vim.Tests.Eval;

/// <summary>Locates and reads the reference metric cases copied into tests/data/metric-cases.</summary>
internal static class MetricCaseFiles
{
    public static string Directory
    {
        get
        {
            var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory);
            while (dir is not null)
            {
                var candidate = Path.Combine(dir.FullName, "tests", "data", "metric-cases");
                if (System.IO.Directory.Exists(candidate)) return candidate;
                dir = dir.Parent;
            }
            throw new DirectoryNotFoundException("tests/data/metric-cases not found above the test directory.");
        }
    }

    public static JsonDocument Open(string caseFile) => JsonDocument.Parse(File.ReadAllText(Path.Combine(Directory, caseFile)));

    /// <summary>pycocotools Params overrides from a case's "params" object.</summary>
    public static CocoEvalParams ReadParams(JsonElement p, long[]? categoryIds = null)
    {
        var defaults = new CocoEvalParams();
        double[] Doubles(string name, double[] fallback) =>
            p.TryGetProperty(name, out var v) ? v.EnumerateArray().Select(e => e.GetDouble()).ToArray() : fallback;
        var iou = Doubles("iouThrs", defaults.IouThresholds);
        var rec = Doubles("recThrs", defaults.RecallThresholds);
        var maxDets = p.TryGetProperty("maxDets", out var md) ? md.EnumerateArray().Select(e => e.GetInt32()).ToArray() : defaults.MaxDetections;
        var ranges = defaults.AreaRanges;
        if (p.TryGetProperty("areaRng", out var ar))
        {
            var labels = p.GetProperty("areaRngLbl").EnumerateArray().Select(e => e.GetString()!).ToArray();
            ranges = ar.EnumerateArray().Select((e, i) => new AreaRange(labels[i], e[0].GetDouble(), e[1].GetDouble())).ToArray();
        }
        return new CocoEvalParams
        {
            IouThresholds = iou, RecallThresholds = rec, MaxDetections = maxDets, AreaRanges = ranges, CategoryIds = categoryIds,
        };
    }

    public static CocoEvaluator Evaluator(JsonElement root, CocoEvalParams p)
    {
        var gt = CocoDataset.Parse(root.GetProperty("gt"), "gt");
        var dt = CocoResults.Parse(root.GetProperty("dt"), "dt");
        var type = root.GetProperty("iouType").GetString() == "segm" ? CocoIouType.Segm : CocoIouType.Bbox;
        return new CocoEvaluator(gt, dt, type, p);
    }
}
