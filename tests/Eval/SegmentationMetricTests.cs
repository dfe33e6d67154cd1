using System.Text.Json;
using NUnit.Framework;
using Vim.Data.Evaluation;

namespace Vim.Tests.Eval;

public class SegmentationMetricTests
{
    public static readonly string[] Cases = ["miou_hf_evaluate_ignore255.json", "miou_mmeval_4class.json", "miou_mmeval_docstring.json"];

    private static int[] Flatten(JsonElement map) =>
        map.EnumerateArray().SelectMany(row => row.EnumerateArray().Select(v => v.GetInt32())).ToArray();

    [TestCaseSource(nameof(Cases))]
    public void ReferenceCaseMatchesTheSource(string caseFile)
    {
        using var doc = MetricCaseFiles.Open(caseFile);
        var root = doc.RootElement;
        var metric = new SegmentationMetric(root.GetProperty("num_classes").GetInt32(), root.GetProperty("ignore_index").GetInt32());
        var preds = root.GetProperty("pred").EnumerateArray().ToList();
        var labels = root.GetProperty("label").EnumerateArray().ToList();
        for (int i = 0; i < preds.Count; i++) metric.Update(Flatten(preds[i]), Flatten(labels[i]));
        var r = metric.Compute();
        var scalars = new Dictionary<string, double>
        {
            ["mIoU"] = r.MIoU, ["mAcc"] = r.MAcc, ["aAcc"] = r.AAcc, ["mDice"] = r.MDice, ["mPrecision"] = r.MPrecision,
            ["mRecall"] = r.MRecall, ["mFscore"] = r.MFscore, ["kappa"] = r.Kappa,
        };
        var arrays = new Dictionary<string, double[]> { ["IoU"] = r.IoU, ["Acc"] = r.Acc };
        var tol = root.GetProperty("tolerance");
        int checkedValues = 0;
        foreach (var prop in root.GetProperty("expected").EnumerateObject())
        {
            if (prop.Value.ValueKind == JsonValueKind.Array)
            {
                var expected = prop.Value.EnumerateArray().Select(v => v.GetDouble()).ToArray();
                var actual = arrays[prop.Name];
                Assert.That(actual, Has.Length.EqualTo(expected.Length));
                for (int k = 0; k < expected.Length; k++)
                {
                    Assert.That(actual[k], Is.EqualTo(expected[k]).Within(Tolerance(tol, prop.Name, expected[k])), $"{prop.Name}[{k}]");
                    checkedValues++;
                }
            }
            else
            {
                double expected = prop.Value.GetDouble();
                Assert.That(scalars[prop.Name], Is.EqualTo(expected).Within(Tolerance(tol, prop.Name, expected)), prop.Name);
                checkedValues++;
            }
        }
        Assert.That(checkedValues, Is.GreaterThan(2));
    }

    private static double Tolerance(JsonElement tol, string key, double expected)
    {
        if (tol.TryGetProperty(key, out var perKey)) return perKey.GetDouble();
        if (tol.TryGetProperty("relative", out var rel)) return rel.GetDouble() * Math.Abs(expected);
        return tol.GetProperty("absolute").GetDouble();
    }

    [Test]
    public void AbsentClassesAreNaNAndLeftOutOfTheMeans()
    {
        // 3 classes; class 2 appears in neither map. pred [0,0,1,1], label [0,1,1,1]:
        // class 0: I=1, P=2, L=1 -> IoU 1/2, Acc 1; class 1: I=2, P=2, L=3 -> IoU 2/3, Acc 2/3.
        // mIoU = (1/2 + 2/3)/2 = 7/12; mAcc = (1 + 2/3)/2 = 5/6; aAcc = 3/4.
        var m = new SegmentationMetric(3);
        m.Update(new[] { 0, 0, 1, 1 }, new[] { 0, 1, 1, 1 });
        var r = m.Compute();
        Assert.That(double.IsNaN(r.IoU[2]) && double.IsNaN(r.Acc[2]));
        Assert.That(r.MIoU, Is.EqualTo(7.0 / 12).Within(1e-15));
        Assert.That(r.MAcc, Is.EqualTo(5.0 / 6).Within(1e-15));
        Assert.That(r.AAcc, Is.EqualTo(0.75));
    }

    [Test]
    public void OutOfRangePredictionsCountOnlyInTheLabelHistogram()
    {
        // mmseg bins with torch.histc over [0, K-1]: a prediction of 7 with K = 2 drops out of the pred
        // histogram but its pixel still counts in the label's. pred [0,7], label [0,0]:
        // class 0: I=1, P=1, L=2 -> IoU 1/2, Acc 1/2; class 1 absent -> NaN. aAcc = 1/2.
        var m = new SegmentationMetric(2);
        m.Update(new[] { 0, 7 }, new[] { 0, 0 });
        var r = m.Compute();
        Assert.That(r.IoU[0], Is.EqualTo(0.5));
        Assert.That(r.Acc[0], Is.EqualTo(0.5));
        Assert.That(double.IsNaN(r.IoU[1]));
        Assert.That(r.AAcc, Is.EqualTo(0.5));
    }

    [Test]
    public void ReduceZeroLabelShiftsClassesAndIgnoresBackground()
    {
        // mmseg: 0 -> 255 (ignored), k -> k-1, and 255 stays 255.
        var ints = new[] { 0, 1, 2, 255, 151 };
        SegmentationLabelMaps.ReduceZeroLabel(ints, 255);
        Assert.That(ints, Is.EqualTo(new[] { 255, 0, 1, 255, 150 }));
        // Another ignore index (16-bit labels): background joins it, 255 is an ordinary class (256 before the shift).
        var wide = new[] { 0, 1, 256, 255, 65535 };
        SegmentationLabelMaps.ReduceZeroLabel(wide, 65535);
        Assert.That(wide, Is.EqualTo(new[] { 65535, 0, 255, 254, 65535 }));
    }

    [Test]
    public void MergingPerWorkerMetricsEqualsOneMetricOverEverything()
    {
        var rng = new Random(3);
        var whole = new SegmentationMetric(5);
        var a = new SegmentationMetric(5);
        var b = new SegmentationMetric(5);
        for (int img = 0; img < 6; img++)
        {
            var pred = Enumerable.Range(0, 40).Select(_ => rng.Next(6)).ToArray();
            var label = Enumerable.Range(0, 40).Select(_ => rng.Next(7) == 0 ? 255 : rng.Next(5)).ToArray();
            whole.Update(pred, label);
            (img % 2 == 0 ? a : b).Update(pred, label);
        }
        a.Add(b);
        var r1 = whole.Compute();
        var r2 = a.Compute();
        Assert.That(r2.IoU, Is.EqualTo(r1.IoU));
        Assert.That(r2.AAcc, Is.EqualTo(r1.AAcc));
        for (int l = 0; l < 5; l++) for (int p = 0; p < 5; p++) Assert.That(a.Confusion(l, p), Is.EqualTo(whole.Confusion(l, p)));
    }
}
