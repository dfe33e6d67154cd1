using System.Globalization;
using System.Text.Json;
using Vim.Core.Config;
using Vim.Core.Distributed;
using Vim.Core.Engine;
using Vim.Tests.Engine;
using static TorchSharp.torch;

namespace Vim.Tests.Distributed;

/// <summary>
/// Runs on every rank under mpirun, hosted by `vim dist-selftest host`: trains the toy task
/// data-parallel and has rank 0 write the final weights and the (distributed) evaluation as JSON.
/// Arguments: --work DIR --iters N --batch B --out FILE [--fail-at-call C] [--resume CHECKPOINT]
/// [--nan-on-rank R --nan-at-call C] (that rank alone sees a NaN loss) [--stop-on-rank R] (that rank
/// alone is asked to stop, from the start) [--dropout P] [--diff-rank-seed] (runtime.diff_rank_seed) [--load-from CHECKPOINT]
/// (load_from) [--every-rank] (each rank r also writes its own outcome to FILE.rank&lt;r&gt;) [--early-stop-patience P
/// --plateau-on-rank R] (train.early_stopping with patience P; neg_mse stays -1 on rank R and rises by 1 per evaluation elsewhere).
/// Rank 1 deliberately starts from other weights, so the run is only right if the start-up broadcast works.
/// </summary>
public static class DistributedToyWorker
{
    public sealed record Outcome(float[] Weights, double NegMse, string? LastCheckpoint, int Iteration = 0, string? EarlyStopReason = null);

    public static ExperimentConfig Config(int maxIters, bool diffRankSeed = false) => new()
    {
        Optimizer = new OptimizerConfig { Lr = 0.01, WeightDecay = 0.01, GradClipNorm = 0.5 },
        Schedule = new ScheduleConfig { MaxIters = maxIters, Policy = LrPolicy.Poly, WarmupIters = 3, WarmupRatio = 0.1 },
        Train = new TrainConfig { LogInterval = 4, CheckpointInterval = 4, EvalInterval = 8, KeepLast = 2, EmaMomentum = 0.9 },
        Runtime = new RuntimeConfig { Seed = 3, DiffRankSeed = diffRankSeed },
    };

    public static int Run(ICommunicator world, string[] args)
    {
        var options = new Dictionary<string, string>();
        args = args.SkipWhile(a => a == "--").ToArray();
        for (int i = 0; i < args.Length; i++)
            options[args[i]] = i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal) ? args[++i] : "";
        int Int(string key) => int.Parse(options[key], CultureInfo.InvariantCulture);
        bool OnThisRank(string key) => options.ContainsKey(key) && Int(key) == world.Rank;

        set_num_threads(1);
        bool failsHere = options.ContainsKey("--fail-at-call") && (!options.ContainsKey("--fail-on-rank") || OnThisRank("--fail-on-rank"));
        using var task = new ToyRegressionTask(failAtCall: failsHere ? Int("--fail-at-call") : null,
            nanAtCall: OnThisRank("--nan-on-rank") ? Int("--nan-at-call") : null,
            dropout: options.TryGetValue("--dropout", out var dropout) ? double.Parse(dropout, CultureInfo.InvariantCulture) : 0, batchSize: Int("--batch"), world: world)
        {
            // Metrics that differ between ranks (the real ones never do) test that one rank's stop stops them all.
            MetricsAtEvaluation = !options.ContainsKey("--plateau-on-rank") ? null
                : OnThisRank("--plateau-on-rank") ? _ => new Dictionary<string, double> { ["neg_mse"] = -1 }
                : n => new Dictionary<string, double> { ["neg_mse"] = n - 100 },
        };
        if (world.Rank == 1)
            using (no_grad())
                foreach (var p in task.Model.parameters()) p.add_(0.5f);
        using var stop = new CancellationTokenSource();
        if (OnThisRank("--stop-on-rank")) stop.Cancel();
        var config = Config(Int("--iters"), options.ContainsKey("--diff-rank-seed"));
        config.LoadFrom = options.GetValueOrDefault("--load-from");
        if (options.ContainsKey("--early-stop-patience")) config.Train.EarlyStopping = new EarlyStoppingConfig { Patience = Int("--early-stop-patience") };
        var result = new Trainer<(Tensor, Tensor)>(task, config, options["--work"], "cfg", Console.Out, world)
            .Run(options.GetValueOrDefault("--resume"), stop.Token);

        task.Model.eval();
        double negMse;
        using (no_grad())
            negMse = task.Evaluate()["neg_mse"];
        var outcome = JsonSerializer.SerializeToUtf8Bytes(new Outcome(task.Weights(), negMse, result.LastCheckpoint, result.Iteration, result.EarlyStop?.Reason.ToString()));
        void Write(string path)
        {
            File.WriteAllBytes(path + ".tmp", outcome);
            File.Move(path + ".tmp", path, overwrite: true);
        }
        if (world.Rank == 0) Write(options["--out"]);
        if (options.ContainsKey("--every-rank")) Write($"{options["--out"]}.rank{world.Rank}");
        return 0;
    }
}
