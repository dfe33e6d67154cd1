using NUnit.Framework;
using Vim.Core.Config;
using Vim.Core.Engine;

namespace Vim.Tests.Engine;

/// <summary>The schedules the param_scheduler tests query: a YAML list read as a config file would hold it, resolved for an
/// iteration-counted or an epoch-counted run as the trainer resolves it.</summary>
internal static class ParamSchedulerTestKit
{
    public static ConfigList List(string yaml) => (ConfigList)ConfigLoader.Parse(yaml, "test.yaml");

    public static LrSchedule IterationRun(int maxIters, string yaml) =>
        new(new ScheduleConfig { MaxIters = maxIters, ParamScheduler = List(yaml) });

    /// <summary>The chain of an iteration-counted run, which ReduceOnPlateau entries are fed evaluations through.</summary>
    public static ChainedParamSchedule IterationChain(int maxIters, string yaml) => IterationRun(maxIters, yaml).Chained!;

    /// <summary>An epoch-counted run resolved against an epoch of <paramref name="iterationsPerEpoch"/> iterations, as the trainer resolves it.</summary>
    public static LrSchedule EpochRun(int maxEpochs, int iterationsPerEpoch, string yaml)
    {
        var config = new ExperimentConfig
        {
            Schedule = new ScheduleConfig { MaxEpochs = maxEpochs, ParamScheduler = List(yaml) },
            Train = new TrainConfig { EvalInterval = 1, CheckpointInterval = 1 },
        };
        return new LrSchedule(EpochSchedule.Resolve(config, iterationsPerEpoch).Config.Schedule);
    }

    /// <summary>
    /// The toy trainer's config (6 epochs, an evaluation every <paramref name="evalInterval"/>) with <paramref name="schedulers"/>
    /// and <paramref name="optimizer"/>, by default AdamW at lr 0.01.
    /// </summary>
    public static ExperimentConfig ToyConfig(string schedulers, OptimizerConfig? optimizer = null, int evalInterval = 1) => new()
    {
        Optimizer = optimizer ?? new OptimizerConfig { Lr = 0.01, WeightDecay = 0.01 },
        Schedule = new ScheduleConfig { MaxEpochs = 6, ParamScheduler = List(schedulers) },
        Train = new TrainConfig { LogInterval = 4, EvalInterval = evalInterval, CheckpointInterval = 1, KeepLast = 10 },
        Runtime = new RuntimeConfig { Seed = 3 },
    };

    /// <summary>Equal up to double rounding of the closed forms.</summary>
    public static void Near(double actual, double expected, string because = "") =>
        Assert.That(actual, Is.EqualTo(expected).Within(Math.Abs(expected) * 1e-12 + 1e-18), because);
}
