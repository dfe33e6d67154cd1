using System.Text;
using NUnit.Framework;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Engine;
using Vim.Data.Evaluation.Reports;
using Vim.Tests.Engine;
using static TorchSharp.torch;

namespace Vim.Tests.Eval;

/// <summary>
/// A real training log (written by the trainer, resumed once), damaged at random (fixed seed): `vim report` must
/// write its report or refuse with a <see cref="VimException"/> naming the log; anything else reaches the user as a
/// stack trace.
/// </summary>
public class TrainingLogMutationTests
{
    private const int Mutations = 150;

    private static readonly byte[][] LogPlanted = [.. RandomDamage.JsonPlanted, .. new[] { "\n", "null", "\"val\"", "{}", "\"iter\":" }.Select(Encoding.ASCII.GetBytes)];

    private string _dir = null!;

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("vimdense-logmutation-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public void DamagedLogIsReportedOrRefused()
    {
        var work = Path.Combine(_dir, "work");
        var config = new ExperimentConfig
        {
            Optimizer = new OptimizerConfig { Lr = 0.01 },
            Schedule = new ScheduleConfig { MaxIters = 20, WarmupIters = 2 },
            Train = new TrainConfig { LogInterval = 2, CheckpointInterval = 6, EvalInterval = 4 },
        };
        // Stopped at iteration 9 and resumed from its checkpoint at 6: iterations 8 and 8's evaluation appear twice.
        using (var task = new ToyRegressionTask(failAtCall: 10, undefinedMetricAtEvaluation: 1))
            Assert.Throws<InvalidOperationException>(() => new Trainer<(Tensor, Tensor)>(task, config, work, "cfg", TextWriter.Null).Run(null));
        using (var task = new ToyRegressionTask())
            new Trainer<(Tensor, Tensor)>(task, config, work, "cfg", TextWriter.Null).Run(new CheckpointDirectory(work, 2).Latest());
        var logPath = Path.Combine(work, "log.jsonl");
        var good = File.ReadAllBytes(logPath);
        Assert.That(TrainingReport.Write(work, Path.Combine(_dir, "report")), Does.Exist, "the undamaged log is reported");

        var random = new Random(61);
        var escaped = new List<string>();
        for (var i = 0; i < Mutations; i++)
        {
            File.WriteAllBytes(logPath, RandomDamage.Mutate(good, random, RandomDamage.JsonMeaningful, LogPlanted));
            try
            {
                TrainingReport.Write(work, Path.Combine(_dir, "report"));
            }
            catch (VimException e) when (e.Message.Contains(logPath, StringComparison.Ordinal))
            {
            }
            catch (Exception e)
            {
                escaped.Add($"mutation {i}: {e.GetType().Name}: {e.Message.Split('\n')[0]}");
            }
        }
        RandomDamage.AssertNoneEscaped(escaped);
    }
}
