using TorchSharp;
using TorchSharp.Modules;
using Vim.Core.Distributed;
using Vim.Core.Engine;
using static TorchSharp.torch;

namespace Vim.Tests.Engine;

/// <summary>
/// A small regression task for exercising the trainer: y = sin(x·w*) from a fixed dataset of 32
/// samples, a two-layer MLP with dropout (so the torch RNG matters for exact resume; 0 for the
/// multi-process equivalence tests), batches in a per-epoch shuffled order derived from (seed, epoch),
/// sharded by rank as <see cref="DataShard"/> describes. With a communicator, evaluation is split by
/// rank and merged. With <c>layered</c> its parameters are named as a backbone's (patch_embed, layers.0, head), so
/// layer-wise lr decay gives them three scales.
/// </summary>
public sealed class ToyRegressionTask : ITrainingTask<(Tensor X, Tensor Y)>
{
    private const int Samples = 32, Features = 4;
    private readonly float[] _x, _y;
    private readonly int _batchSize;
    private readonly ICommunicator? _world;
    private int _calls;
    private int _evaluations;
    private readonly float _lossWeight;
    private readonly Func<int, TimeSpan>? _delayAtCall;

    public ToyRegressionTask(int? failAtCall = null, int? nanAtCall = null, double dropout = 0.2, int batchSize = 4, ICommunicator? world = null,
        int? undefinedMetricAtEvaluation = null, float lossWeight = 1, Func<int, TimeSpan>? delayAtCall = null, bool layered = false)
    {
        _delayAtCall = delayAtCall;
        _lossWeight = lossWeight;
        UndefinedMetricAtEvaluation = undefinedMetricAtEvaluation;
        _batchSize = batchSize;
        _world = world;
        FailAtCall = failAtCall;
        NanAtCall = nanAtCall;
        var rng = new Random(1234);
        _x = Enumerable.Range(0, Samples * Features).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        _y = new float[Samples];
        for (int i = 0; i < Samples; i++)
        {
            double dot = 0;
            for (int f = 0; f < Features; f++) dot += _x[i * Features + f] * (f + 1) * 0.5;
            _y[i] = (float)Math.Sin(dot);
        }
        torch.manual_seed(7);
        Model = layered ? new ToyLayeredMlp(dropout) : new ToyMlp(dropout);
    }

    /// <summary>Throw from Losses on this call (simulates a crash after some checkpoints).</summary>
    public int? FailAtCall { get; }

    public int? NanAtCall { get; }

    /// <summary>Also return a term that is no loss (the batch's largest error), to be logged but not minimised.</summary>
    public bool LogsMaxError { get; init; }

    /// <summary>Given the call's number (1-based), the value of a logged statistic "toy/statistic" (NaN: undefined at that call).</summary>
    public Func<int, float>? StatisticAtCall { get; init; }

    /// <summary>This evaluation (1-based) reports its metric as NaN, as mIoU is on a split with no labelled pixel.</summary>
    public int? UndefinedMetricAtEvaluation { get; }

    /// <summary>
    /// Replaces the evaluation's metrics: given the evaluation's number in the run (1-based, counting
    /// <see cref="EvaluationsBefore"/>), the metrics to return, so a test can lay out a metric's course (a plateau) in advance.
    /// </summary>
    public Func<int, IReadOnlyDictionary<string, double>>? MetricsAtEvaluation { get; init; }

    /// <summary>Evaluations the run made before this task's launch (a resumed run's), for <see cref="MetricsAtEvaluation"/>.</summary>
    public int EvaluationsBefore { get; init; }

    public nn.Module Model { get; }

    /// <summary>Tensors alive on this thread at the start of each Losses call (for leak tests).</summary>
    public List<long> LiveTensorCounts { get; } = [];

    public int NumBackboneLayers => 1;

    public string PrimaryMetric => "neg_mse";

    public IReadOnlyList<string>? MetricNames => MetricsAtEvaluation is null ? ["neg_mse"] : null;

    public IBatchSource<(Tensor X, Tensor Y)> OpenTrainingData(int seed, DataPosition start, DataShard shard) => new Source(this, seed, start, shard);

    public IReadOnlyDictionary<string, Tensor> Losses((Tensor X, Tensor Y) batch)
    {
        _calls++;
        LiveTensorCounts.Add(DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount);
        if (_calls == FailAtCall) throw new InvalidOperationException("simulated crash");
        if (_delayAtCall?.Invoke(_calls) is { } delay && delay > TimeSpan.Zero) Thread.Sleep(delay);
        var prediction = ((nn.Module<Tensor, Tensor>)Model).forward(batch.X);
        var mse = nn.functional.mse_loss(prediction, batch.Y);
        if (_calls == NanAtCall) mse = mse * float.NaN;
        var terms = new Dictionary<string, Tensor>
        {
            ["loss_mse"] = _lossWeight == 1 ? mse : _lossWeight * mse,
            ["loss_l1"] = 0.1f * _lossWeight * (prediction - batch.Y).abs().mean(),
        };
        // Not detached: were it minimised, its gradient would change the weights.
        if (LogsMaxError) terms["max_error"] = (prediction - batch.Y).abs().max();
        if (StatisticAtCall is not null) terms["toy/statistic"] = torch.tensor(StatisticAtCall(_calls));
        return terms;
    }

    public IReadOnlyDictionary<string, double> Evaluate()
    {
        using var scope = NewDisposeScope();
        if (++_evaluations == UndefinedMetricAtEvaluation) return new Dictionary<string, double> { ["neg_mse"] = double.NaN };
        if (MetricsAtEvaluation is { } scripted) return scripted(EvaluationsBefore + _evaluations);
        var x = tensor(_x).reshape(Samples, Features);
        var y = tensor(_y).reshape(Samples, 1);
        if (_world is null)
        {
            var mse = nn.functional.mse_loss(((nn.Module<Tensor, Tensor>)Model).forward(x), y).item<float>();
            return new Dictionary<string, double> { ["neg_mse"] = -mse };
        }
        // Rank r evaluates samples r, r+K, …; the squared-error sums and counts are merged.
        var mine = arange(_world.Rank, Samples, _world.WorldSize, dtype: ScalarType.Int64);
        var error = ((nn.Module<Tensor, Tensor>)Model).forward(x.index_select(0, mine)) - y.index_select(0, mine);
        var parts = _world.AllGatherJson(new[] { error.square().sum().to_type(ScalarType.Float64).item<double>(), mine.NumberOfElements });
        return new Dictionary<string, double> { ["neg_mse"] = -parts.Sum(p => p[0]) / parts.Sum(p => p[1]) };
    }

    public void Dispose() => Model.Dispose();

    public float[] Weights() => Model.parameters().SelectMany(p => p.data<float>().ToArray()).ToArray();

    private sealed class ToyMlp : nn.Module<Tensor, Tensor>
    {
        private readonly Linear fc1 = nn.Linear(Features, 16);
        private readonly Linear fc2 = nn.Linear(16, 1);
        private readonly Dropout drop;

        public ToyMlp(double dropout) : base("toy")
        {
            drop = nn.Dropout(dropout);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => fc2.forward(nn.functional.relu(drop.forward(fc1.forward(x))));
    }

    /// <summary>The same network with a backbone's parameter names: layer ids 0 (patch_embed), 1 (layers.0) and 2 (head).</summary>
    private sealed class ToyLayeredMlp : nn.Module<Tensor, Tensor>
    {
        private readonly Linear patch_embed = nn.Linear(Features, 16);
        private readonly ModuleList<Linear> layers = nn.ModuleList(nn.Linear(16, 16));
        private readonly Linear head = nn.Linear(16, 1);
        private readonly Dropout drop;

        public ToyLayeredMlp(double dropout) : base("toy_layered")
        {
            drop = nn.Dropout(dropout);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) =>
            head.forward(nn.functional.relu(layers[0].forward(nn.functional.relu(drop.forward(patch_embed.forward(x))))));
    }

    /// <summary>The position counts samples of the epoch consumed by all ranks together; an epoch ends when the next global batch would not fit.</summary>
    private sealed class Source(ToyRegressionTask owner, int seed, DataPosition start, DataShard shard) : IBatchSource<(Tensor X, Tensor Y)>
    {
        private int _epoch = start.Epoch;
        private long _index = start.IndexInEpoch;

        public DataPosition Position => new(_epoch, _index);

        public int BatchSize => owner._batchSize;

        public int BatchesPerEpoch => (int)(Samples / shard.GlobalBatch(BatchSize));

        public (Tensor X, Tensor Y) Next()
        {
            long global = shard.GlobalBatch(BatchSize);
            if (global > Samples) throw new InvalidOperationException($"a global batch of {global} exceeds the {Samples} samples");
            if (_index + global > Samples)
            {
                _epoch++;
                _index = 0;
            }
            var order = Enumerable.Range(0, Samples).ToArray();
            new Random(seed * 7919 + _epoch).Shuffle(order);
            long first = shard.FirstSample(_index, BatchSize);
            var x = new float[BatchSize * Features];
            var y = new float[BatchSize];
            for (int b = 0; b < BatchSize; b++)
            {
                int sample = order[first + b];
                Array.Copy(owner._x, sample * Features, x, b * Features, Features);
                y[b] = owner._y[sample];
            }
            _index += global;
            return (tensor(x).reshape(BatchSize, Features), tensor(y).reshape(BatchSize, 1));
        }

        public void Dispose()
        {
        }
    }
}
