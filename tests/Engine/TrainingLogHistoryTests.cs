using NUnit.Framework;
using Vim.Core.Engine;
using Vim.Data.Evaluation.Reports;

namespace Vim.Tests.Engine;

public class TrainingLogHistoryTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("vimdense-history-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private string Log(params string[] lines)
    {
        var path = Path.Combine(_dir, "log.jsonl");
        File.WriteAllLines(path, lines);
        return path;
    }

    private static string Train(int iteration, double time = 1) =>
        $$"""{"iter":{{iteration}},"lr":0.001,"loss":1.0,"time":{{time}},"data_time":0.1,"memory_mb":900,"loss_a":1.0}""";

    private static string Val(int iteration, double metric) => $$"""{"iter":{{iteration}},"mode":"val","mIoU":{{metric}}}""";

    [Test]
    public void AResumeMarkerDropsWhatTheAbandonedLaunchLoggedAfterItsIteration()
    {
        var history = TrainingLogHistory.Read(Log(Train(10), Train(20), Val(20, 30), Train(30), Train(40), Val(40, 35),
            """{"iter":20,"mode":"resume","checkpoint":"iter_0000020.safetensors"}""", Train(30), Train(35)));
        Assert.That(history.Training.Select(i => (i.Record.Iteration, i.From, i.OpensLaunch)),
            Is.EqualTo(new[] { (10, 0, true), (20, 10, false), (30, 20, true), (35, 30, false) }));
        Assert.That(history.Training[2].Record.Line, Is.EqualTo(8), "the resumed launch's record of 30, not the abandoned one's");
        Assert.That(history.Evaluations.Select(r => (r.Iteration, r.Number("mIoU"))), Is.EqualTo(new[] { (20, 30.0) }),
            "the evaluation at 20 came before the checkpoint the run resumed from; the one at 40 belongs to no run");
        Assert.That(history.Restarts, Is.EqualTo(new[] { 20 }));
    }

    [Test]
    public void WithoutAMarkerARecordThatGoesBackCutsTheHistory()
    {
        // A run resumed from 20 by an older VimDense: its first record (30) is the first sign of the restart.
        var history = TrainingLogHistory.Read(Log(Train(10), Train(20), Train(30), Train(40), Val(40, 35), Train(30)));
        Assert.That(history.Training.Select(i => (i.Record.Iteration, i.From, i.OpensLaunch)),
            Is.EqualTo(new[] { (10, 0, true), (20, 10, false), (30, 20, true) }));
        Assert.That(history.Training[^1].Record.Line, Is.EqualTo(6));
        Assert.That(history.Evaluations, Is.Empty);
        Assert.That(history.Restarts, Is.EqualTo(new[] { 20 }));
    }

    [Test]
    public void UnreadableLinesAreCountedNotHidden()
    {
        var history = TrainingLogHistory.Read(Log(Train(10), "garbage", "[1, 2]", Train(20), """{"iter":30,"lo"""));
        Assert.That(history.DamagedLines, Is.EqualTo(new[] { 2, 3, 5 }));
        Assert.That(history.Training.Select(i => i.Record.Iteration), Is.EqualTo(new[] { 10, 20 }));
    }

    [Test]
    public void TimingWeighsIntervalsByTheirIterationsAndLeavesOutEachLaunchsFirst()
    {
        // Launch 1: (0,10] at 5 s (warm-up, left out), (10,20] at 1 s; launch 2 from 20: (20,25] at 9 s (left out),
        // (25,45] at 2 s. Mean over the rest: (10·1 + 20·2) / 30 = 1.667 s; data 0.1 s of it: 6%.
        var history = TrainingLogHistory.Read(Log(Train(10, 5), Train(20, 1), """{"iter":20,"mode":"resume"}""", Train(25, 9), Train(45, 2)));
        var text = TrainingReport.Timing(history.Training);
        Assert.That(text, Does.StartWith("Time: 1.667 s/iteration on average (median interval 1.5), 6% of it waiting for data, over 30 iterations"));
        // Everything logged: 10·5 + 10·1 + 5·9 + 20·2 = 145 s.
        Assert.That(text, Does.Contain("account for 0:02:25 of training"));
    }

    [Test]
    public void TheReportSaysWhereTheRunResumedAndWhatItSkipped()
    {
        Log(Train(10), Train(20), Val(20, 30), Train(30), Val(40, 35), """{"iter":20,"mode":"resume"}""", "garbage", Train(30),
            """{"iter":40,"lr":0.001,"loss":1.0,"time":1,"data_time":0.1,"memory_mb":900,"loss_a":1.0,"skipped":2}""");
        var markdown = File.ReadAllText(TrainingReport.Write(_dir, Path.Combine(_dir, "report")));
        Assert.That(markdown, Does.Contain("up to iteration 40"));
        Assert.That(markdown, Does.Contain("| 20 | 30.00 |").And.Not.Contain("| 40 |"));
        Assert.That(markdown, Does.Contain("Resumed 1 time, at iteration 20;"));
        Assert.That(markdown, Does.Contain("2 iterations were skipped for a non-finite loss"));
        Assert.That(markdown, Does.Contain("were skipped: 7 (a line a killed process cut short, or damage)"));
    }
}
