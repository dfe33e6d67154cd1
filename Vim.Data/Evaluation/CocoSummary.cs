using System.Globalization;
using System.Text;

namespace Vim.Data.Evaluation;

/// <summary>The 12 COCO summary numbers in pycocotools' order, with per-category results and the tables.</summary>
public sealed class CocoSummary
{
    private CocoSummary(double[] stats, string[] statNames, IReadOnlyList<CocoCategoryResult> perCategory, CocoAccumulation accumulation, string[] lines)
    {
        Stats = stats;
        StatNames = statNames;
        PerCategory = perCategory;
        Accumulation = accumulation;
        Lines = lines;
    }

    /// <summary>AP, AP50, AP75, AP small/medium/large, AR@1, AR@10, AR@100, AR small/medium/large.</summary>
    public double[] Stats { get; }
    public IReadOnlyList<CocoCategoryResult> PerCategory { get; }
    public CocoAccumulation Accumulation { get; }
    /// <summary>The summary lines in pycocotools' wording.</summary>
    public IReadOnlyList<string> Lines { get; }

    /// <summary>
    /// The names of <see cref="Stats"/>: AP, AP50, AP75, APs, APm, APl, then AR@d for the three maxDets and ARs, ARm, ARl
    /// (mmdet's naming: AR@100, AR@300, AR@1000 when proposals are evaluated with those).
    /// </summary>
    public IReadOnlyList<string> StatNames { get; }

    /// <summary>The maxDets the per-category results and precision curves use: the largest, as mmdet and detectron2 take
    /// precision[..., -1] (100 with the default [1, 10, 100]).</summary>
    public int PerCategoryMaxDets => Accumulation.MaxDetections.Max();

    internal static CocoSummary From(CocoAccumulation acc)
    {
        var maxDets = acc.MaxDetections;
        // pycocotools: stats[0] always uses maxDets = 100; the others use maxDets[0..2] (sorted).
        int Det(int i) => i < maxDets.Count ? maxDets[i] : -1;
        var specs = new (bool Ap, double? Iou, string Area, int MaxDets)[]
        {
            (true, null, "all", 100),
            (true, 0.5, "all", Det(2)),
            (true, 0.75, "all", Det(2)),
            (true, null, "small", Det(2)),
            (true, null, "medium", Det(2)),
            (true, null, "large", Det(2)),
            (false, null, "all", Det(0)),
            (false, null, "all", Det(1)),
            (false, null, "all", Det(2)),
            (false, null, "small", Det(2)),
            (false, null, "medium", Det(2)),
            (false, null, "large", Det(2)),
        };
        var stats = new double[12];
        var lines = new string[12];
        var thr = acc.Params.IouThresholds;
        string allRange = $"{PythonFixed(thr[0], 2)}:{PythonFixed(thr[^1], 2)}";
        for (int i = 0; i < 12; i++)
        {
            var s = specs[i];
            stats[i] = s.MaxDets < 0 ? -1 : acc.Mean(s.Ap, s.Iou, s.Area, s.MaxDets);
            string title = s.Ap ? "Average Precision" : "Average Recall";
            string type = s.Ap ? "(AP)" : "(AR)";
            string iou = s.Iou is { } v ? PythonFixed(v, 2) : allRange;
            lines[i] = string.Format(CultureInfo.InvariantCulture, " {0,-18} {1} @[ IoU={2,-9} | area={3,6} | maxDets={4,3} ] = {5}",
                title, type, iou, s.Area, s.MaxDets, PythonFixed(stats[i], 3));
        }
        string[] names = ["AP", "AP50", "AP75", "APs", "APm", "APl", $"AR@{Det(0)}", $"AR@{Det(1)}", $"AR@{Det(2)}", "ARs", "ARm", "ARl"];
        int perCategoryDets = maxDets.Max();
        var perCategory = new CocoCategoryResult[acc.K];
        for (int k = 0; k < acc.K; k++)
        {
            perCategory[k] = new CocoCategoryResult(acc.CategoryIds[k], acc.CategoryNames[k],
                acc.Mean(true, null, "all", perCategoryDets, k),
                acc.Mean(true, 0.5, "all", perCategoryDets, k),
                acc.Mean(true, 0.75, "all", perCategoryDets, k),
                acc.Mean(false, null, "all", perCategoryDets, k));
        }
        return new CocoSummary(stats, names, perCategory, acc, lines);
    }

    /// <summary>
    /// Python's '{:0.Nf}': rounds the exact binary value, ties to even (0.0625 -> "0.062"), where .NET's
    /// fixed-point format would round ties away from zero. Summary lines then match pycocotools' text.
    /// </summary>
    public static string PythonFixed(double value, int decimals)
    {
        // 25 exact digits are enough: a double below 10 that is not an exact tie differs from one by at
        // least an ulp (~1e-16), which shows within them.
        string exact = value.ToString("F25", CultureInfo.InvariantCulture);
        int dot = exact.IndexOf('.');
        string kept = exact[..(dot + 1 + decimals)];
        string rest = exact[(dot + 1 + decimals)..];
        bool roundUp = rest[0] > '5' || (rest[0] == '5' && (rest.AsSpan(1).ContainsAnyExcept('0') || (kept[^1] - '0') % 2 == 1));
        decimal result = decimal.Parse(kept.TrimEnd('.'), CultureInfo.InvariantCulture);
        if (roundUp) result += (value < 0 ? -1m : 1m) * (decimal)Math.Pow(10, -decimals);
        return result.ToString("F" + decimals, CultureInfo.InvariantCulture);
    }

    public override string ToString()
    {
        var sb = new StringBuilder();
        foreach (var l in Lines) sb.AppendLine(l);
        return sb.ToString();
    }
}
