using NUnit.Framework;
using OpenCvSharp;
using Vim.Core;
using Vim.Data.Evaluation.Reports;

namespace Vim.Tests.Eval;

public class TrainingReportTests
{
    [Test]
    public void ReportTablesTheLastRecordPerIterationAndDrawsEveryChart()
    {
        var dir = Directory.CreateTempSubdirectory("vimdense-report-").FullName;
        try
        {
            // Iteration 20 appears twice (a run resumed from iteration 10 logs it again): the later record wins.
            File.WriteAllLines(Path.Combine(dir, "log.jsonl"),
            [
                """{"iter":10,"lr":0.001,"loss":2.0,"time":0.5,"data_time":0.1,"memory_mb":900,"decode.loss":1.5,"aux.loss":0.5}""",
                """{"iter":20,"lr":0.0009,"loss":1.8,"time":0.5,"data_time":0.1,"memory_mb":900,"decode.loss":1.3,"aux.loss":0.5}""",
                """{"iter":20,"mode":"val","mIoU":30.0,"mAcc":40.0,"aAcc":50.0}""",
                """{"iter":20,"lr":0.0009,"loss":1.7,"time":0.4,"data_time":0.1,"memory_mb":910,"decode.loss":1.25,"aux.loss":0.45}""",
                """{"iter":20,"mode":"val","mIoU":31.5,"mAcc":41.0,"aAcc":51.0}""",
                """{"iter":30,"lr":0.0008,"loss":1.5,"time":0.4,"data_time":0.1,"memory_mb":910,"decode.loss":1.1,"aux.loss":0.4}""",
                """{"iter":30,"mode":"val","mIoU":35.25,"mAcc":44.0,"aAcc":55.0}""",
                """{"iter":40,"lr":0.0007,"loss":1.4,"ti""", // a line cut off by a killed process
            ]);
            // An evaluation chart written by `vim test` into the work dir is linked from the report.
            Directory.CreateDirectory(Path.Combine(dir, "test"));
            ReportCharts.SaveBars(Path.Combine(dir, "test", "per_class_iou.png"), "IoU", "class", "IoU", ["a", "b"], [0.5, 0.25]);
            // Detection's charts sit in test/bbox and test/segm; segmentation's per-image predictions are no charts.
            Directory.CreateDirectory(Path.Combine(dir, "test", "bbox"));
            ReportCharts.SaveBars(Path.Combine(dir, "test", "bbox", "per_category_ap.png"), "AP", "category", "AP", ["a", "b"], [0.5, 0.25]);
            Directory.CreateDirectory(Path.Combine(dir, "test", "predictions", "color"));
            ReportCharts.SaveBars(Path.Combine(dir, "test", "predictions", "color", "img1.png"), "x", "x", "x", ["a"], [1]);
            // The error analysis: its overall charts belong to the report, its K × areas per-category ones only to its summary.
            ReportCharts.SaveBars(Path.Combine(dir, "test", "bbox", "errors", "overall_all.png"), "x", "x", "x", ["a"], [1]);
            ReportCharts.SaveBars(Path.Combine(dir, "test", "bbox", "errors", CocoErrorReport.PerCategoryFolder, "1_cat_all.png"), "x", "x", "x", ["a"], [1]);
            var path = TrainingReport.Write(dir, Path.Combine(dir, "report"));
            var markdown = File.ReadAllText(path);
            Assert.That(markdown, Does.Contain("| 20 | 31.50 | 41.00 | 51.00 |"));
            Assert.That(markdown, Does.Contain("| 30 | 35.25 | 44.00 | 55.00 |"));
            Assert.That(markdown, Does.Not.Contain("| 20 | 30.00"));
            Assert.That(markdown, Does.Contain("up to iteration 30; last loss 1.5"));
            Assert.That(markdown, Does.Contain("(../test/per_class_iou.png)"));
            Assert.That(markdown, Does.Contain("![bbox/per_category_ap](../test/bbox/per_category_ap.png)"));
            Assert.That(markdown, Does.Not.Contain("img1"));
            Assert.That(markdown, Does.Contain("(../test/bbox/errors/overall_all.png)").And.Not.Contain("1_cat_all"));
            Assert.That(markdown, Does.Not.Contain("loss_scale.png"), "a run without fp16 loss scaling has no scale chart");
            foreach (var chart in new[] { "loss.png", "lr.png", "time.png", "metrics.png" })
            {
                Assert.That(markdown, Does.Contain($"({chart})"));
                using var image = Cv2.ImRead(Path.Combine(dir, "report", chart));
                Assert.That((image.Cols, image.Rows), Is.EqualTo((ReportCharts.DefaultWidth, ReportCharts.DefaultHeight)), chart);
                Cv2.MeanStdDev(image, out _, out var spread);
                Assert.That(spread.Val0 + spread.Val1 + spread.Val2, Is.GreaterThan(5), $"{chart} is blank");
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void TheFp16LossScaleHasItsOwnChartAndIsNoLossTerm()
    {
        var dir = Directory.CreateTempSubdirectory("vimdense-report-").FullName;
        try
        {
            File.WriteAllLines(Path.Combine(dir, "log.jsonl"),
            [
                """{"iter":10,"lr":0.001,"loss":2.0,"time":0.5,"data_time":0.1,"memory_mb":900,"loss_mse":2.0,"loss_scale":65536}""",
                """{"iter":20,"lr":0.001,"loss":1.5,"time":0.5,"data_time":0.1,"memory_mb":900,"loss_mse":1.5,"loss_scale":16384}""",
            ]);
            var markdown = File.ReadAllText(TrainingReport.Write(dir, Path.Combine(dir, "report")));
            Assert.That(markdown, Does.Contain("(loss_scale.png)"));
            Assert.That(TrainingReport.LossTerms(["iter", "lr", "loss", "time", "data_time", "memory_mb", "loss_mse", "loss_scale"]),
                Is.EqualTo(new[] { "loss", "loss_mse" }));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>grad_norm (logged where gradients are clipped) gets its own chart and is neither a loss nor a training statistic.</summary>
    [Test]
    public void TheGradientNormHasItsOwnChart()
    {
        var dir = Directory.CreateTempSubdirectory("vimdense-report-").FullName;
        try
        {
            File.WriteAllLines(Path.Combine(dir, "log.jsonl"),
            [
                """{"iter":10,"lr":0.001,"loss":2.0,"time":0.5,"data_time":0.1,"memory_mb":900,"loss_mse":2.0,"grad_norm":12.5}""",
                """{"iter":20,"lr":0.001,"loss":1.5,"time":0.5,"data_time":0.1,"memory_mb":900,"loss_mse":1.5,"grad_norm":3.25}""",
            ]);
            var markdown = File.ReadAllText(TrainingReport.Write(dir, Path.Combine(dir, "report")));
            Assert.That(markdown, Does.Contain("(grad_norm.png)").And.Not.Contain("train_statistics.png"));
            Assert.That(File.Exists(Path.Combine(dir, "report", "grad_norm.png")));
            string[] fields = ["iter", "lr", "loss", "loss_mse", "grad_norm"];
            Assert.That(TrainingReport.LossTerms(fields), Is.EqualTo(new[] { "loss", "loss_mse" }));
            Assert.That(TrainingReport.StatisticTerms(fields), Is.Empty);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>
    /// A momentum scheduler's momentum (~0.9) has a chart of its own, not a line among the training statistics beside acc_seg's
    /// percent; ReduceOnPlateauLR's lr_reduced (the text naming the entry) is a sentence, not a validation metric column of NaN.
    /// </summary>
    [Test]
    public void MomentumHasItsOwnChartAndAnLrReductionIsASentenceNotAMetric()
    {
        var dir = Directory.CreateTempSubdirectory("vimdense-report-").FullName;
        try
        {
            File.WriteAllLines(Path.Combine(dir, "log.jsonl"),
            [
                """{"iter":10,"lr":0.001,"momentum":0.95,"loss":2.0,"time":0.5,"data_time":0.1,"memory_mb":900,"decode.loss_ce":2.0,"decode.acc_seg":60.0}""",
                """{"iter":10,"mode":"val","mIoU":30.0,"mAcc":40.0,"aAcc":50.0}""",
                """{"iter":20,"lr":0.001,"momentum":0.85,"loss":1.5,"time":0.5,"data_time":0.1,"memory_mb":900,"decode.loss_ce":1.5,"decode.acc_seg":70.0}""",
                """{"iter":20,"mode":"val","mIoU":29.0,"mAcc":39.0,"aAcc":49.0,"lr_reduced":"schedule.param_scheduler[1] (ReduceOnPlateauLR)"}""",
                """{"iter":30,"lr":0.0005,"momentum":0.9,"loss":1.25,"time":0.5,"data_time":0.1,"memory_mb":900,"decode.loss_ce":1.25,"decode.acc_seg":75.0}""",
            ]);
            var markdown = File.ReadAllText(TrainingReport.Write(dir, Path.Combine(dir, "report")));
            Assert.That(markdown, Does.Contain("(momentum.png)"));
            Assert.That(File.Exists(Path.Combine(dir, "report", "momentum.png")));
            string[] fields = ["iter", "lr", "momentum", "loss", "decode.loss_ce", "decode.acc_seg"];
            Assert.That(TrainingReport.StatisticTerms(fields), Is.EqualTo(new[] { "decode.acc_seg" }));
            Assert.That(TrainingReport.LossTerms(fields), Is.EqualTo(new[] { "loss", "decode.loss_ce" }));
            Assert.That(markdown, Does.Contain("| iteration | mIoU | mAcc | aAcc |\n").And.Contain("| 20 | 29.00 | 39.00 | 49.00 |\n"));
            Assert.That(markdown, Does.Not.Contain("nan"));
            Assert.That(markdown, Does.Contain("The lr was reduced after the evaluation at iteration 20: schedule.param_scheduler[1] (ReduceOnPlateauLR)."));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public void AWorkDirWithoutALogIsAClearError()
    {
        var dir = Directory.CreateTempSubdirectory("vimdense-report-").FullName;
        try
        {
            var e = Assert.Throws<VimException>(() => TrainingReport.Write(dir, Path.Combine(dir, "report")))!;
            Assert.That(e.Message, Does.Contain("log.jsonl").And.Contain("no training log"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
