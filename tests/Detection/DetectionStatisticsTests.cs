using NUnit.Framework;
using TorchSharp;
using Vim.Core.Engine;
using Vim.Data.Evaluation.Reports;
using Vim.Data.Loading;
using Vim.Detection;
using Vim.Detection.Modeling;
using static TorchSharp.torch;

namespace Vim.Tests.Detection;

/// <summary>detectron2's training statistics on hand-built cases, and as a demo training run logs and reports them.</summary>
public class DetectionStatisticsTests
{
    private static double Value(Dictionary<string, Tensor> statistics, string name) => statistics[name].item<float>();

    [Test]
    public void AnchorCountsAreTheSampledPositivesAndNegativesPerImage()
    {
        using var scope = NewDisposeScope();
        // Image 1: two positives, three negatives, one ignored; image 2: one positive, two negatives.
        var labels = new[] { tensor(new long[] { 1, 1, 0, -1, 0, 0 }), tensor(new long[] { 0, -1, 1, 0 }) };
        var statistics = DetectionStatistics.Anchors(labels);
        Assert.That(Value(statistics, "rpn/num_pos_anchors"), Is.EqualTo(1.5));
        Assert.That(Value(statistics, "rpn/num_neg_anchors"), Is.EqualTo(2.5));
    }

    [Test]
    public void SampleCountsSplitForegroundFromBackgroundPerImageUnderTheStagesName()
    {
        using var scope = NewDisposeScope();
        // Three classes, background 3: image 1 has three foreground RoIs and two background, image 2 three background.
        var classes = new[] { tensor(new long[] { 0, 2, 3, 3, 1 }), tensor(new long[] { 3, 3, 3 }) };
        var first = DetectionStatistics.Samples(classes, numClasses: 3, stage: 0);
        Assert.That(first.Keys, Is.EquivalentTo(new[] { "roi_head/num_fg_samples", "roi_head/num_bg_samples" }));
        Assert.That(Value(first, "roi_head/num_fg_samples"), Is.EqualTo(1.5));
        Assert.That(Value(first, "roi_head/num_bg_samples"), Is.EqualTo(2.5));
        var third = DetectionStatistics.Samples(classes, numClasses: 3, stage: 2);
        Assert.That(Value(third, "stage2/roi_head/num_fg_samples"), Is.EqualTo(1.5));
        Assert.That(Value(third, "stage2/roi_head/num_bg_samples"), Is.EqualTo(2.5));
    }

    [Test]
    public void ClassificationStatisticsFollowTheArgMaxOfEachRoi()
    {
        using var scope = NewDisposeScope();
        // Two classes, background column 2. Targets 0, 1, bg, 0, 1; arg-maxes 0, bg, bg, 1, 1: right at rows 0, 2 and 4
        // (3 of 5); of the four foreground rows 0 and 4 are right (2 of 4) and row 1 was called background (1 of 4).
        var logits = tensor(new float[,] { { 3, 0, 1 }, { 0, 1, 2 }, { 0, 0, 5 }, { 1, 2, 0 }, { -1, 4, 0 } });
        var targets = tensor(new long[] { 0, 1, 2, 0, 1 });
        var statistics = DetectionStatistics.Classification(logits, targets, "stage1/");
        Assert.That(Value(statistics, "stage1/fast_rcnn/cls_accuracy"), Is.EqualTo(0.6).Within(1e-7));
        Assert.That(Value(statistics, "stage1/fast_rcnn/fg_cls_accuracy"), Is.EqualTo(0.5));
        Assert.That(Value(statistics, "stage1/fast_rcnn/false_negative"), Is.EqualTo(0.25));

        // Background alone: the accuracy is defined, the foreground shares are not (detectron2 records none of them).
        var background = DetectionStatistics.Classification(logits[..3], tensor(new long[] { 2, 2, 2 }), "");
        Assert.That(Value(background, "fast_rcnn/cls_accuracy"), Is.EqualTo(2.0 / 3).Within(1e-7));
        Assert.That(float.IsNaN(background["fast_rcnn/fg_cls_accuracy"].item<float>()), Is.True);
        Assert.That(float.IsNaN(background["fast_rcnn/false_negative"].item<float>()), Is.True);
        var none = DetectionStatistics.Classification(zeros(0, 3), zeros(0, ScalarType.Int64), "");
        Assert.That(none.Values.All(v => float.IsNaN(v.item<float>())), Is.True);
    }

    [Test]
    public void MaskStatisticsCompareEachPixelsLogitSignWithItsTarget()
    {
        using var scope = NewDisposeScope();
        // RoI 1 predicts [[1, 0], [1, 0]] against [[1, 1], [0, 0]]: one false negative, one false positive. RoI 2 predicts
        // nothing against one foreground pixel: one false negative. 8 pixels, 3 wrong, 3 foreground and 5 background.
        var logits = tensor(new float[,,] { { { 1, -1 }, { 2, -3 } }, { { -1, -1 }, { -1, -1 } } });
        var targets = tensor(new bool[,,] { { { true, true }, { false, false } }, { { false, false }, { false, true } } });
        var statistics = DetectionStatistics.Mask(logits, targets);
        Assert.That(Value(statistics, "mask_rcnn/accuracy"), Is.EqualTo(5.0 / 8).Within(1e-7));
        Assert.That(Value(statistics, "mask_rcnn/false_positive"), Is.EqualTo(1.0 / 5).Within(1e-7));
        Assert.That(Value(statistics, "mask_rcnn/false_negative"), Is.EqualTo(2.0 / 3).Within(1e-7));
        Assert.That(DetectionStatistics.Mask(zeros(0, 2, 2), zeros(new long[] { 0, 2, 2 }, ScalarType.Bool)).Values.All(v => float.IsNaN(v.item<float>())), Is.True);
    }

    [Test]
    public void StatisticsStayOnTheirInputsDeviceWithoutReadingAValueBack()
    {
        // A host read per count would sync the GPU about thirty times an iteration; the trainer reads every term in one
        // transfer. The meta device holds no values, so any read (item) there throws.
        var meta = new Device(DeviceType.META);
        var labels = new[] { zeros(new long[] { 6 }, ScalarType.Int64, meta), zeros(new long[] { 6 }, ScalarType.Int64, meta) };
        var statistics = new[]
        {
            DetectionStatistics.Anchors(labels),
            DetectionStatistics.Samples(labels, 3, 1),
            DetectionStatistics.Classification(zeros(new long[] { 6, 4 }, device: meta), labels[0], "stage1/"),
            DetectionStatistics.Mask(zeros(new long[] { 2, 4, 4 }, device: meta), zeros(new long[] { 2, 4, 4 }, ScalarType.Bool, meta)),
        }.SelectMany(s => s).ToList();
        Assert.That(statistics, Has.Count.EqualTo(2 + 2 + 3 + 3));
        foreach (var (name, value) in statistics)
            Assert.That((value.device_type, value.dtype, value.dim()), Is.EqualTo((DeviceType.META, ScalarType.Float32, 0L)), name);
    }

    [Test]
    public void DemoTrainingLogsEveryStatisticInRangeAndTheReportChartsThem()
    {
        var root = DetectionTaskTests.CreateDemoRoot("vimdense-detstats-");
        try
        {
            var config = DetectionTaskTests.ConfigAt(root);
            config.Schedule.MaxIters = 2;
            config.Train.LogInterval = 1;
            config.Train.EvalInterval = 0;
            var workDir = Path.Combine(root, "work");
            var console = new StringWriter();
            using (var task = new DetectionTask(config, TextWriter.Null, DetectionTaskTests.TinyDetector))
                new Trainer<Batch>(task, config, workDir, "cfg", console).Run(null);
            var records = JsonLinesLog.Read(Path.Combine(workDir, TrainingLogWriter.LocalFileName)).Where(r => r.Mode is null).ToList();
            Assert.That(records, Has.Count.EqualTo(2));
            // The tiny detector's samplers: 32 anchors and 16 RoIs per image; its three cascade stages and mask head.
            var counts = new Dictionary<string, double>
            {
                ["rpn/num_pos_anchors"] = 32, ["rpn/num_neg_anchors"] = 32, ["roi_head/num_fg_samples"] = 16, ["roi_head/num_bg_samples"] = 16,
            };
            for (int k = 1; k < 3; k++)
            {
                // A later stage relabels the previous stage's refined boxes (the 16 sampled, less any emptied), no resampling.
                counts[$"stage{k}/roi_head/num_fg_samples"] = 16;
                counts[$"stage{k}/roi_head/num_bg_samples"] = 16;
            }
            var fractions = Enumerable.Range(0, 3).SelectMany(k => new[] { "cls_accuracy", "fg_cls_accuracy", "false_negative" }.Select(n => $"stage{k}/fast_rcnn/{n}"))
                .Concat(["mask_rcnn/accuracy", "mask_rcnn/false_positive", "mask_rcnn/false_negative"]).ToList();
            foreach (var record in records)
            {
                foreach (var (name, most) in counts) Assert.That(record.Number(name), Is.InRange(0.0, most), $"{name} at {record.Iteration}");
                Assert.That(record.Number("rpn/num_pos_anchors") + record.Number("rpn/num_neg_anchors"), Is.EqualTo(32).Within(1e-9),
                    "the RPN samples its full 32 anchors per image (demo images hold many negatives)");
                Assert.That(record.Number("roi_head/num_fg_samples"), Is.GreaterThan(0), "the appended ground truth is foreground");
                // Stage 0's cls_accuracy needs some RoI, which every sample has; the foreground shares need a foreground RoI, which
                // the appended ground truth gives stage 0.
                foreach (var name in fractions.Where(n => n.StartsWith("stage0/", StringComparison.Ordinal) || n.StartsWith("mask_rcnn/", StringComparison.Ordinal)))
                    Assert.That(record.Number(name), Is.InRange(0.0, 1.0), $"{name} at {record.Iteration}");
                foreach (var name in fractions.Where(record.Has))
                    Assert.That(record.Number(name), Is.InRange(0.0, 1.0), $"{name} at {record.Iteration}");
                Assert.That(record.Number("loss"), Is.EqualTo(TrainingReport.LossTerms(FieldNames(record)).Where(n => n != "loss").Sum(record.Number)).Within(1e-6),
                    "the total is the losses' alone");
            }
            Assert.That(console.ToString(), Does.Contain("loss_rpn_cls").And.Not.Contain("rpn/num_pos_anchors"));

            var report = TrainingReport.Write(workDir, Path.Combine(workDir, "report"));
            var markdown = File.ReadAllText(report);
            Assert.That(markdown, Does.Contain("(train_counts.png)").And.Contain("(train_accuracies.png)").And.Not.Contain("(train_statistics.png)"),
                "detectron2's counts and fractions get their own charts, and no other statistic was logged");
            foreach (var chart in new[] { "train_counts.png", "train_accuracies.png" })
                Assert.That(new FileInfo(Path.Combine(workDir, "report", chart)).Length, Is.GreaterThan(1000), chart);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Test]
    public void TheReportTellsCountsFromFractionsAndLeavesOtherStatisticsAlone()
    {
        Assert.That(TrainingReport.StatisticKindOf("rpn/num_pos_anchors"), Is.EqualTo(TrainingReport.StatisticKind.Count));
        Assert.That(TrainingReport.StatisticKindOf("stage2/roi_head/num_bg_samples"), Is.EqualTo(TrainingReport.StatisticKind.Count));
        Assert.That(TrainingReport.StatisticKindOf("stage0/fast_rcnn/fg_cls_accuracy"), Is.EqualTo(TrainingReport.StatisticKind.Fraction));
        Assert.That(TrainingReport.StatisticKindOf("mask_rcnn/false_negative"), Is.EqualTo(TrainingReport.StatisticKind.Fraction));
        Assert.That(TrainingReport.StatisticKindOf("decode.acc_seg"), Is.EqualTo(TrainingReport.StatisticKind.Other));
    }

    private static IEnumerable<string> FieldNames(LogRecord record) => record.Fields.EnumerateObject().Select(p => p.Name);
}
