using NUnit.Framework;
using Vim.Core.Checkpoints;
using Vim.Core.Config;
using Vim.Core.Distributed;
using Vim.Core.Engine;
using static TorchSharp.torch;

namespace Vim.Tests.Engine;

/// <summary>
/// Training's evaluations with the EMA weights swapped in (MMEngine's EMAHook before_val_epoch / after_val_epoch), and the
/// begin rule (begin_iter / begin_epoch). The scalar task makes every number a hand computation: one weight w starting at 1,
/// loss w (gradient 1), plain SGD at lr 1/4, so the trained weight after step k is 1 − k/4; with decay 1/2 every average is a
/// dyadic fraction, exact in float32.
/// </summary>
public class EmaValidationTests
{
    private string _root = null!;

    [SetUp]
    public void SetUp() => _root = Directory.CreateTempSubdirectory("vimdense-emaval-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    private string Dir(string name) => Path.Combine(_root, name);

    private static ExperimentConfig ScalarConfig(int maxIters, bool emaValidate = true) => new()
    {
        Optimizer = new OptimizerConfig { Type = OptimizerKind.Sgd, Lr = 0.25, Momentum = 0, WeightDecay = 0 },
        Schedule = new ScheduleConfig { MaxIters = maxIters, Policy = LrPolicy.Constant, WarmupIters = 0 },
        Train = new TrainConfig { LogInterval = 1, CheckpointInterval = 100, EvalInterval = 1, KeepLast = 1, EmaMomentum = 0.5, EmaValidate = emaValidate },
        Runtime = new RuntimeConfig { Seed = 1 },
    };

    /// <summary>The weight each evaluation saw, in order.</summary>
    private static List<double> EvaluatedWeights(string workDir) =>
        JsonLinesLog.Read(Path.Combine(workDir, "log.jsonl")).Where(r => r.Has("w")).Select(r => r.Number("w")).ToList();

    [Test]
    public void EvaluationsSeeTheAverageWorkedByHand()
    {
        using var task = new ScalarWeightTask();
        var console = new StringWriter();
        new Trainer<int>(task, ScalarConfig(4), Dir("ema"), "cfg", console).Run(null);

        // e_k = e_{k−1}/2 + w_k/2 from e_0 = 1, with w_k = 1, 0.75, 0.5, 0.25, 0.
        Assert.That(EvaluatedWeights(Dir("ema")), Is.EqualTo(new[] { 0.875, 0.6875, 0.46875, 0.234375 }));
        Assert.That(task.Weight, Is.EqualTo(0f), "the trained weight is back in the model after the last evaluation");
        Assert.That(console.ToString(), Does.Contain("eval @ 4, EMA weights: w 0.2344"));

        using var trained = new ScalarWeightTask();
        new Trainer<int>(trained, ScalarConfig(4, emaValidate: false), Dir("trained"), "cfg", TextWriter.Null).Run(null);
        Assert.That(EvaluatedWeights(Dir("trained")), Is.EqualTo(new[] { 0.75, 0.5, 0.25, 0.0 }));
    }

    /// <summary>
    /// Score −|w − 1/2|: the trained weight reaches 1/2 at iteration 2, the average comes closest at iteration 3
    /// (0.46875), so best.safetensors moves with the weights judged.
    /// </summary>
    [TestCase(true, 3, -0.03125)]
    [TestCase(false, 2, 0.0)]
    public void TheBestCheckpointIsChosenOnTheJudgedWeights(bool emaValidate, int bestIteration, double bestScore)
    {
        using var task = new ScalarWeightTask();
        var result = new Trainer<int>(task, ScalarConfig(4, emaValidate), Dir("run"), "cfg", TextWriter.Null).Run(null);

        Assert.That(result.BestMetric, Is.EqualTo(bestScore));
        using var best = CheckpointFile.Load(Path.Combine(Dir("run"), "best.safetensors"));
        Assert.That(best.Metadata["iteration"], Is.EqualTo(bestIteration.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        Assert.That(best.Metadata[TrainingCheckpoint.EvaluatedWeightsKey], Is.EqualTo(emaValidate ? "ema" : "model"));
        // The layout is unchanged: model. holds the trained weight of that iteration, ema. the average.
        Assert.That(best.StateDict("model")["w"].item<float>(), Is.EqualTo(1 - 0.25f * bestIteration));
        Assert.That(best.StateDict("ema")["w"].item<float>(), Is.EqualTo(emaValidate ? 0.46875f : 0.6875f));
    }

    [Test]
    public void ReadingTheWeightsTheRunDidNotJudgeIsNoted()
    {
        using var task = new ScalarWeightTask();
        new Trainer<int>(task, ScalarConfig(2), Dir("run"), "cfg", TextWriter.Null).Run(null);
        var best = Path.Combine(Dir("run"), "best.safetensors");
        Assert.That(TrainingCheckpoint.EvaluatedWeightsNote(best, ema: true), Is.Null);
        Assert.That(TrainingCheckpoint.EvaluatedWeightsNote(best, ema: false),
            Is.EqualTo($"note: {best}'s run evaluated its EMA weights (train.ema_validate), which chose best.safetensors; these are its trained weights, --ema reads the EMA"));
    }

    /// <summary>Patience 1 on −|w − 1/2|: the average gets worse first at iteration 4, the trained weight at iteration 3.</summary>
    [TestCase(true, 4)]
    [TestCase(false, 3)]
    public void EarlyStoppingWatchesTheJudgedWeights(bool emaValidate, int stopsAt)
    {
        var config = ScalarConfig(8, emaValidate);
        config.Train.EarlyStopping = new EarlyStoppingConfig { Patience = 1 };
        using var task = new ScalarWeightTask();
        var result = new Trainer<int>(task, config, Dir("run"), "cfg", TextWriter.Null).Run(null);
        Assert.That(result.Iteration, Is.EqualTo(stopsAt));
        Assert.That(task.Weight, Is.EqualTo(1 - 0.25f * stopsAt), "the run stops holding its trained weight");
    }

    /// <summary>
    /// MMEngine's rule: iteration index i (from 0) updates once i + 1 ≥ begin_iter, and its first update copies the model;
    /// before, each iteration copies it. begin_iter 2: copies after iterations 1 and 2 (0.75, 0.5), then averages:
    /// 0.5/2 + 0.25/2 = 0.375, 0.375/2 + 0 = 0.1875. begin_iter 1 is MMEngine's default (a copy after the first step).
    /// With begin_epoch the run counts 2 epochs of 2 iterations and evaluates at each epoch's end (iterations 2 and 4):
    /// begin_epoch 1 is begin_iter 1; begin_epoch 2: epoch index 0 copies (0.5 at iteration 2), epoch 1's first update
    /// copies (0.25), then 0.25/2 + 0 = 0.125.
    /// </summary>
    [TestCase(1, 0, new[] { 0.75, 0.625, 0.4375, 0.21875 })]
    [TestCase(2, 0, new[] { 0.75, 0.5, 0.375, 0.1875 })]
    [TestCase(0, 1, new[] { 0.625, 0.21875 })]
    [TestCase(0, 2, new[] { 0.5, 0.125 })]
    public void TheAverageBeginsAsMmEnginesEmaHookBegins(int beginIter, int beginEpoch, double[] expected)
    {
        var config = ScalarConfig(4);
        config.Train.EmaBeginIter = beginIter;
        config.Train.EmaBeginEpoch = beginEpoch;
        if (beginEpoch > 0)
        {
            config.Schedule.MaxIters = null;
            config.Schedule.MaxEpochs = 2;
            config.Train.CheckpointInterval = 1;
        }
        using var task = new ScalarWeightTask();
        new Trainer<int>(task, config, Dir("run"), "cfg", TextWriter.Null).Run(null);
        Assert.That(EvaluatedWeights(Dir("run")), Is.EqualTo(expected));
    }

    /// <summary>
    /// ReduceOnPlateauLR reads the metrics of the weights judged, as MMEngine's ParamSchedulerHook reads the metrics of an
    /// evaluation EMAHook swapped the average into. Three epochs of 2 iterations, monitor w (rule less), an absolute
    /// threshold of 0.47, patience 0, factor 1/2. Trained weights: evaluated 0.5 then 0 (a drop of 0.5 &gt; 0.47, improved:
    /// no reduction, the last two steps at lr 1/4 end at −0.5). The average: 0.6875 then 0.234375 (a drop of 0.453125, not
    /// improved: the lr halves after iteration 4, so the last two steps at 1/8 end at −0.25).
    /// </summary>
    [TestCase(true, -0.25f)]
    [TestCase(false, -0.5f)]
    public void ReduceOnPlateauWatchesTheJudgedWeights(bool emaValidate, float finalWeight)
    {
        var config = ScalarConfig(6, emaValidate);
        config.Schedule = new ScheduleConfig
        {
            MaxEpochs = 3,
            ParamScheduler = (ConfigList)ConfigLoader.Parse(
                "[{type: ReduceOnPlateauLR, monitor: w, rule: less, threshold_rule: abs, threshold: 0.47, patience: 0, factor: 0.5}]", "test.yaml"),
        };
        config.Train.CheckpointInterval = 1;
        using var task = new ScalarWeightTask();
        var console = new StringWriter();
        new Trainer<int>(task, config, Dir("run"), "cfg", console).Run(null);

        var reductions = JsonLinesLog.Read(Path.Combine(Dir("run"), "log.jsonl")).Where(r => r.Has("lr_reduced")).ToList();
        Assert.That(reductions, Has.Count.EqualTo(emaValidate ? 1 : 0));
        Assert.That(console.ToString(), emaValidate ? Does.Contain("the lr is multiplied by 0.5 from iteration 4") : Does.Not.Contain("has not improved"));
        Assert.That(task.Weight, Is.EqualTo(finalWeight));
    }

    [Test]
    public void BeginIterOfAnEpochCountedRunIsHeldToItsIterations()
    {
        var config = ScalarConfig(4);
        config.Schedule.MaxIters = null;
        config.Schedule.MaxEpochs = 2;
        config.Train.CheckpointInterval = 1;
        config.Train.EmaBeginIter = 5;
        using var task = new ScalarWeightTask();
        var e = Assert.Throws<Vim.Core.VimException>(() => new Trainer<int>(task, config, Dir("run"), "cfg", TextWriter.Null).Run(null))!;
        Assert.That(e.Message, Is.EqualTo("train.ema_begin_iter must be at most the run's 4 iterations, got 5"));
    }

    /// <summary>
    /// The swap in and back is exact, and the optimiser steps the trained weights: a run evaluating the average every 8
    /// iterations ends with the trained weights and the average of a run that evaluates only at its end, bit for bit
    /// (AdamW, clipping and dropout, so any trace of the average left in the model would change the course).
    /// </summary>
    [Test]
    public void EmaEvaluationsLeaveTheTrainedWeightsAndTheAverageBitIdentical()
    {
        set_num_threads(1);
        using var quiet = new ToyRegressionTask();
        var once = TrainerTests.Config(24);
        once.Train.EvalInterval = 0;
        new Trainer<(Tensor, Tensor)>(quiet, once, Dir("once"), "cfg", TextWriter.Null).Run(null);

        using var evaluating = new ToyRegressionTask();
        var console = new StringWriter();
        new Trainer<(Tensor, Tensor)>(evaluating, TrainerTests.Config(24), Dir("every8"), "cfg", console).Run(null);

        Assert.That(console.ToString(), Does.Contain("eval @ 8, EMA weights"));
        Assert.That(evaluating.Weights(), Is.EqualTo(quiet.Weights()));
        using var a = CheckpointFile.Load(Path.Combine(Dir("once"), "iter_0000024.safetensors"));
        using var b = CheckpointFile.Load(Path.Combine(Dir("every8"), "iter_0000024.safetensors"));
        foreach (var (name, shadow) in a.StateDict("ema"))
            Assert.That(b.StateDict("ema")[name].data<float>().ToArray(), Is.EqualTo(shadow.data<float>().ToArray()), name);
        Assert.That(a.StateDict("ema")["fc1.weight"].data<float>().ToArray(), Is.Not.EqualTo(quiet.Weights()[..64]), "the average is not the trained weights");
    }

    /// <summary>Resumed from the checkpoint written right after the EMA evaluation at iteration 8: the same end, bit for bit.</summary>
    [Test]
    public void AResumeAcrossAnEmaEvaluationIsBitIdentical()
    {
        set_num_threads(1);
        using var straight = new ToyRegressionTask();
        var straightResult = new Trainer<(Tensor, Tensor)>(straight, TrainerTests.Config(24), Dir("straight"), "cfg", TextWriter.Null).Run(null);

        // Crash on the 11th forward: iteration 8's checkpoint, written after its evaluation, is the latest.
        using (var crashing = new ToyRegressionTask(failAtCall: 11))
            Assert.Throws<InvalidOperationException>(() =>
                new Trainer<(Tensor, Tensor)>(crashing, TrainerTests.Config(24), Dir("resumed"), "cfg", TextWriter.Null).Run(null));
        var latest = new CheckpointDirectory(Dir("resumed"), 2).Latest();
        Assert.That(Path.GetFileName(latest), Is.EqualTo("iter_0000008.safetensors"));

        using var resumed = new ToyRegressionTask();
        var result = new Trainer<(Tensor, Tensor)>(resumed, TrainerTests.Config(24), Dir("resumed"), "cfg", TextWriter.Null).Run(latest);

        Assert.That(resumed.Weights(), Is.EqualTo(straight.Weights()));
        Assert.That(result.BestMetric, Is.EqualTo(straightResult.BestMetric));
        using var a = CheckpointFile.Load(Path.Combine(Dir("straight"), "best.safetensors"));
        using var b = CheckpointFile.Load(Path.Combine(Dir("resumed"), "best.safetensors"));
        Assert.That(b.Metadata["sha256"], Is.EqualTo(a.Metadata["sha256"]), "the same best checkpoint's tensors: trained, average, optimiser state");
    }

    /// <summary>One weight w, loss w: each SGD step at lr 1/4 lowers it by exactly 1/4. Metrics: w and the score −|w − 1/2|.</summary>
    private sealed class ScalarWeightTask : ITrainingTask<int>
    {
        public nn.Module Model { get; } = new ScalarWeight();

        public float Weight => Model.parameters().Single().item<float>();

        public int NumBackboneLayers => 1;

        public string PrimaryMetric => "score";

        public IBatchSource<int> OpenTrainingData(int seed, DataPosition start, DataShard shard) => new Counter(start);

        public IReadOnlyDictionary<string, Tensor> Losses(int batch) => new Dictionary<string, Tensor> { ["loss"] = Model.parameters().Single().sum() };

        public IReadOnlyDictionary<string, double> Evaluate()
        {
            double w = Weight;
            return new Dictionary<string, double> { ["w"] = w, ["score"] = -Math.Abs(w - 0.5) };
        }

        public void Dispose() => Model.Dispose();

        private sealed class ScalarWeight : nn.Module
        {
            private readonly TorchSharp.Modules.Parameter w = nn.Parameter(ones(1, device: CPU));

            public ScalarWeight() : base("scalar") => RegisterComponents();
        }

        /// <summary>Two batches an epoch (for begin_epoch); the batch is its index.</summary>
        private sealed class Counter(DataPosition start) : IBatchSource<int>
        {
            private int _epoch = start.Epoch;
            private long _index = start.IndexInEpoch;

            public DataPosition Position => new(_epoch, _index);

            public int BatchSize => 1;

            public int BatchesPerEpoch => 2;

            public int Next()
            {
                if (_index == BatchesPerEpoch)
                {
                    _epoch++;
                    _index = 0;
                }
                return (int)_index++;
            }

            public void Dispose()
            {
            }
        }
    }
}

/// <summary>The swap on a model whose state dict names one tensor twice (a weight shared between two modules, tied).</summary>
public class EmaSwapSharedWeightTests
{
    [Test]
    public void ASharedWeightSwapsInAndBackExactly()
    {
        using var model = new TiedPair();
        using var ema = new ExponentialMovingAverage(model, 0.5);
        using (no_grad()) model.first.weight!.fill_(3f);
        ema.Update(model);
        // The average of 1 (the start) and 3 with decay 1/2 is 2.
        Assert.That(model.state_dict().Keys, Is.EquivalentTo(new[] { "first.weight", "second.weight" }), "TorchSharp names the shared tensor under both modules");

        ema.SwapWith(model);
        Assert.That(model.first.weight!.item<float>(), Is.EqualTo(2f), "the average is in");
        ema.SwapWith(model);
        Assert.That(model.first.weight!.item<float>(), Is.EqualTo(3f), "the trained weight is back");
        Assert.That(ema.Shadow.Values.Select(t => t.item<float>()), Is.EqualTo(new[] { 2f, 2f }), "the average is unchanged");
    }

    private sealed class TiedPair : nn.Module
    {
        public readonly TorchSharp.Modules.Linear first = nn.Linear(1, 1, hasBias: false);
        public readonly TorchSharp.Modules.Linear second = nn.Linear(1, 1, hasBias: false);

        public TiedPair() : base("tied")
        {
            using (no_grad()) first.weight!.fill_(1f);
            second.weight = first.weight;
            RegisterComponents();
        }
    }
}
