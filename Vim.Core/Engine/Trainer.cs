using System.Diagnostics;
using System.Globalization;
using TorchSharp;
using Vim.Core.Config;
using Vim.Core.Diagnostics;
using Vim.Core.Distributed;
using Vim.Core.IO;
using static TorchSharp.torch;

namespace Vim.Core.Engine;

/// <summary>
/// The iteration-based training loop shared by detection and segmentation, its length in iterations or in epochs of the
/// training data (schedule.max_epochs, resolved to iterations by <see cref="EpochSchedule"/>): optimiser groups from
/// the official rules, per-iteration lr schedule, gradient accumulation and clipping, EMA,
/// periodic evaluation with best-checkpoint selection and early stopping (train.early_stopping), JSON-lines logs (and TensorBoard events), a progress line, atomic
/// checksummed checkpoints, exact resume or a fresh start from load_from's weights, and fault handling (non-finite loss,
/// interruption).
/// Data-parallel over the ranks of <paramref name="communicator"/> (default: this process alone):
/// rank 0's weights are broadcast at start, each rank reads its shard, gradients are averaged before
/// clipping, every decision that changes control flow (stop, non-finite loss) is taken jointly, and
/// only rank 0 writes the log, checkpoints and console.
/// </summary>
public sealed class Trainer<TBatch>(ITrainingTask<TBatch> task, ExperimentConfig config, string workDir, string configYaml, TextWriter? console = null,
    ICommunicator? communicator = null)
{
    private readonly ICommunicator _world = communicator ?? SingleProcessCommunicator.Instance;
    private readonly TextWriter _console = communicator is { Rank: not 0 } ? TextWriter.Null : console ?? Console.Out;

    /// <summary>
    /// Called after each optimiser step with its iteration and the optimiser, whose <see cref="IOptimizer.GroupLrs"/> then hold
    /// the learning rates just applied (mmengine's after_train_iter hook; the tests hold `vim config lr` to them).
    /// </summary>
    public Action<int, IOptimizer>? AfterOptimizerStep { get; init; }

    /// <summary>
    /// Trains until schedule.max_iters, until train.early_stopping ends the run at an evaluation, or until <paramref name="stop"/>
    /// fires; either of the last two writes a final checkpoint.
    /// </summary>
    /// <param name="resumeFrom">A training checkpoint to continue from, or null to start fresh.</param>
    public TrainingResult Run(string? resumeFrom, CancellationToken stop = default)
    {
        TrainingSettings.Check(config);
        var train = config.Train;
        // A ReduceOnPlateauLR watching a metric the evaluation never returns would fail only at the first evaluation.
        foreach (var plateau in ParamSchedulerList.Read(config.Schedule)?.Where(e => e.IsPlateau) ?? [])
            if (task.MetricNames is { } metricNames && !metricNames.Contains(plateau.Monitor))
                throw new VimException($"{plateau.MonitorSource ?? plateau.Source}: {plateau.Name} monitor '{plateau.Monitor}' is not a metric " +
                    $"this task's evaluation returns; expected one of {string.Join(", ", metricNames)}");
        var model = task.Model;
        bool root = _world.Rank == 0;
        // Before anything keeps references to parameters: the optimiser's and EMA's state tensors are
        // created beside them, and the tasks move each batch to wherever the model lives.
        var device = DeviceSelection.Resolve(config.Runtime);
        DeviceSelection.MoveModel(model, device);
        // MMEngine's load_or_resume: a resumed checkpoint holds every weight and wins; a fresh run starts from load_from's
        // weights, loaded over model.backbone.pretrained (which the task loaded) and before the EMA copies the model. Every
        // rank loads them, and the broadcast below leaves every rank with rank 0's in any case.
        var loaded = resumeFrom is null ? LoadFromCheckpoint.LoadConfigured(model, config, _console) : null;
        if (resumeFrom is not null && LoadFromCheckpoint.Configured(config) is { } notLoaded)
            _console.WriteLine($"load_from {notLoaded} not loaded: the run resumes from {resumeFrom}, which holds every weight");
        ModelBroadcast.FromRoot(_world, model);
        // SyncBN layers (model.seg_head.norm: syncbn) normalise over this job's global batch.
        SyncBatchNorm.RequireReducibleBackward(SyncBatchNorm.Connect(model, _world), device.type, _world);
        var frozen = ParameterGroupRules.Freeze(model, config.Optimizer);
        if (frozen.Count > 0)
            _console.WriteLine($"optimizer.custom_keys: {frozen.Count} parameters frozen (lr_mult 0), e.g. {string.Join(", ", frozen.Take(3))}");
        var groups = ParameterGroupRules.Build(model, config.Optimizer, task.NumBackboneLayers);
        var parameters = groups.SelectMany(g => g.Parameters.Select(p => p.Parameter)).ToList();
        using var optimizer = OptimizerFactory.Create(config.Optimizer, groups);
        using var ema = train.EmaMomentum is { } decay ? new ExponentialMovingAverage(model, decay) : null;
        var lossScaler = TrainingSettings.ScalesTheLoss(config.Runtime) ? LossScaler.FromSetting(config.Runtime.LossScale) : null;

        long checkpointBytes = model.state_dict().Values.Concat(optimizer.StateTensors().Values)
            .Concat(ema?.Shadow.Values ?? []).Sum(t => t.NumberOfElements * t.ElementSize);
        if (root) WorkDirectory.Prepare(workDir, checkpointBytes, train.KeepLast);
        if (root && loaded is not null)
            AtomicFile.WriteText(Path.Combine(workDir, LoadFromCheckpoint.ReportFileName), LoadFromCheckpoint.Summary(loaded) + Environment.NewLine);
        // One process needs no reduction, nor a second copy of every gradient in bucket buffers.
        using var reducer = _world.WorldSize > 1 ? new GradientReducer(_world, model.named_parameters(), (long)(config.Runtime.BucketMb * (1 << 20))) : null;
        var checkpoints = new CheckpointDirectory(workDir, train.KeepLast);

        // runtime.diff_rank_seed: each rank draws from its own stream, seeded seed + rank, and checkpoints keep every rank's.
        int seedRank = config.Runtime.DiffRankSeed ? _world.Rank : 0;
        bool ownGenerators = config.Runtime.DiffRankSeed && _world.WorldSize > 1;
        TrainingState state;
        if (resumeFrom is not null)
        {
            state = TrainingCheckpoint.Load(resumeFrom, model, optimizer, ema, seedRank);
            // The checkpoint's run had fewer ranks, or ranks that shared one stream: the ranks beyond start streams of their own.
            if (seedRank >= state.GeneratorRanks) torch.manual_seed(config.Runtime.Seed + seedRank + state.Iteration);
            if (root && config.Runtime.DiffRankSeed && _world.WorldSize > state.GeneratorRanks)
                _console.WriteLine($"note: the checkpoint holds the torch generator state of {state.GeneratorRanks} rank(s); ranks " +
                    $"{state.GeneratorRanks}..{_world.WorldSize - 1} continue from runtime.seed + rank + iteration (runtime.diff_rank_seed)");
            // TorchSharp cannot read or restore CUDA generator state, so the checkpoint holds the CPU one only;
            // reseeding from (seed, iteration) makes a resumed GPU run's dropout and drop-path repeatable
            // (the same checkpoint continues the same way), though not the uninterrupted run's draws.
            if (device.type == DeviceType.CUDA) torch.cuda.manual_seed_all(config.Runtime.Seed + seedRank + state.Iteration);
            // A checkpoint of a bf16 or float32 run has none: the scaler starts from its initial scale, as GradScaler does.
            if (lossScaler is not null && state.LossScale is { } scaleState) lossScaler.Restore(scaleState);
            _console.WriteLine($"resumed from {resumeFrom} at iteration {state.Iteration}");
            // As MMEngine, the run continues with the settings it is given now; saying which changed keeps an
            // accidental change (a forgotten --set) from going unnoticed.
            if (!string.IsNullOrEmpty(state.ConfigYaml) && ConfigDifferences.Between(state.ConfigYaml, configYaml) is { Count: > 0 } changed)
                _console.WriteLine($"note: the config differs from the checkpoint's; the new values apply: {string.Join("; ", changed)}");
        }
        else
        {
            torch.manual_seed(config.Runtime.Seed + seedRank);
            state = new TrainingState(0, 0, DataPosition.Start, null, configYaml);
        }

        double baseLr = TrainingSettings.BaseLearningRate(config, _world.WorldSize, out var lrScaling);
        if (root && lrScaling is not null) _console.WriteLine(lrScaling);
        var shard = DataShard.Of(_world);
        using var data = task.OpenTrainingData(config.Runtime.Seed, state.Data, shard);
        // The one place an epoch-counted schedule becomes iterations: the loader's epoch as this run reads it.
        var length = EpochSchedule.Resolve(config, data.BatchesPerEpoch);
        train = length.Config.Train;
        var schedule = new LrSchedule(length.Config.Schedule);
        double initialMomentum = OptimizerFactory.InitialMomentum(config.Optimizer);
        // Its reductions so far: the lrs after them are replayed from these.
        if (resumeFrom is not null) schedule.Chained?.RestorePlateaus(state.Plateaus);
        int maxIters = length.MaxIters;
        // In iterations now: EpochSchedule.Resolve turned an ema_begin_epoch into its first iteration.
        if (ema is not null) ema.CopiesThrough = train.EmaBeginIter;
        // MMEngine's EMAHook swaps the average in for validation: metrics, best.safetensors and early stopping judge it.
        var validated = ema is not null && train.EmaValidate ? ema : null;
        if (length.IterationsPerEpoch is { } perEpoch)
        {
            if (resumeFrom is not null)
                EpochSchedule.CheckResume(length, state.Iteration, state.Data, shard.GlobalBatch(data.BatchSize), resumeFrom);
            _console.WriteLine($"schedule.max_epochs {length.MaxEpochs}: {perEpoch} iterations per epoch ({data.BatchSize} × {_world.WorldSize} process(es) " +
                $"per iteration), {maxIters} iterations; {ScheduleInIterations(schedule)}, " +
                $"{length.EvaluationPlan()}, checkpoints every {train.CheckpointInterval} iterations");
        }
        else if (schedule.Chained is { } chained) _console.WriteLine(chained.Describe());
        // Recorded only now that the run starts: a launch refused on the way (data, heads, pretrained file, a load_from
        // that does not load) leaves the work dir's config.yaml describing the checkpoints already there.
        if (root && resumeFrom is null) AtomicFile.WriteText(Path.Combine(workDir, WorkDirectory.ConfigFileName), configYaml);
        using var log = root ? new TrainingLogWriter(workDir, config.Runtime.VisBackends, configYaml, state.Iteration) : null;
        // What the abandoned launch logged after the checkpoint's iteration is no part of this run's history (TrainingLogHistory).
        if (resumeFrom is not null)
            log?.Write(new Dictionary<string, object?> { ["iter"] = state.Iteration, ["mode"] = TrainingLogModes.Resume, ["checkpoint"] = resumeFrom });
        if (length.IterationsPerEpoch is { } iterationsPerEpoch)
            log?.Write(new Dictionary<string, object?>
            {
                ["iter"] = state.Iteration, ["mode"] = TrainingLogModes.EpochLength, ["iters_per_epoch"] = iterationsPerEpoch, ["max_epochs"] = length.MaxEpochs,
            });
        var progress = new ProgressLine(maxIters, state.Iteration, _console);
        // data.pipeline_switch: the loader reads the switched settings from the batch of iteration switchAt on, at a batch boundary
        // with the same per-sample seeds, so a run resumed before the switch switches where the uninterrupted one did, and one
        // resumed after it reads the switched pipeline from its first batch.
        var pipelineSwitch = PipelineSwitch.Read(config);
        int? switchAt = pipelineSwitch?.Iteration(length);
        void SwitchPipeline(int iteration)
        {
            data.SwitchPipeline();
            var message = $"{PipelineSwitch.Key} {pipelineSwitch!.Place(iteration)}: {pipelineSwitch.Changes()}";
            var record = new Dictionary<string, object?> { ["iter"] = iteration, ["mode"] = TrainingLogModes.PipelineSwitch, ["message"] = message };
            if (pipelineSwitch.CountsEpochs) record["first_epoch"] = pipelineSwitch.At + 1;
            log?.Write(record);
            _console.WriteLine(message);
        }
        if (switchAt is { } switchIteration)
        {
            if (state.Iteration > switchIteration) data.SwitchPipeline();
            _console.WriteLine($"{PipelineSwitch.Key}: {(state.Iteration > switchIteration ? "switched" : "switches")} {pipelineSwitch!.Place(switchIteration)} " +
                $"of {maxIters}: {pipelineSwitch.Changes()}");
        }
        string? lastCheckpoint = resumeFrom;
        double? best = state.BestMetric;
        var earlyStopping = train.EarlyStopping is { } stoppingSettings
            ? EarlyStopping.Start(stoppingSettings, task.PrimaryMetric, state.EarlyStopping, _console)
            : null;
        long optimizerSteps = state.OptimizerSteps;
        int skipped = 0;
        var lossSums = new Dictionary<string, double>();
        // Per term, the iterations that defined it: a statistic is NaN where it is undefined (detectron2's fg_cls_accuracy
        // without a foreground RoI, which its EventStorage does not record), and is averaged over the others alone.
        var definedCounts = new Dictionary<string, double>();
        int lossCount = 0;
        // Times are means over every iteration since the last record, as the losses: one iteration's time alone would
        // be noise, and with accumulation the logged one would always be the costlier optimiser step.
        double secondsSum = 0, dataSecondsSum = 0;
        int timedIterations = 0, skippedInInterval = 0, overflowsInInterval = 0;
        // mmengine logs grad_norm where it clips: the total norm before clipping, here its mean over the interval's steps.
        double gradNormSum = 0;
        int gradNormSteps = 0;

        // Called on every rank (the generators are gathered from all); rank 0 writes.
        void WriteCheckpoint(string path, int iteration)
        {
            using var scope = NewDisposeScope();
            var generators = ownGenerators ? GatherGenerators() : null;
            if (root)
                TrainingCheckpoint.Save(path, model, optimizer, ema,
                    new TrainingState(iteration, optimizerSteps, data.Position, best, configYaml, lossScaler?.State, generators?.Count ?? 1,
                        earlyStopping?.State, schedule.Chained?.PlateauStates, validated is not null), generators);
        }

        string SaveCheckpoint(int iteration)
        {
            var path = checkpoints.PathFor(iteration);
            WriteCheckpoint(path, iteration);
            if (root) checkpoints.Commit(path);
            // Once any rank has moved on, the checkpoint it names exists.
            _world.Barrier();
            return path;
        }

        // The means over the iterations since the last record (a collective: every rank calls it at the same iterations).
        void LogInterval(int done, double lr)
        {
            if (lossCount == 0) return;
            // Sums and counts averaged over the ranks alike, so each mean is over every rank's defined values; a term no rank
            // defined in the interval is left out of the record. Every term of a loss is defined, its count lossCount.
            var counts = MeanOverRanks(definedCounts);
            var means = MeanOverRanks(lossSums).Where(kv => counts[kv.Key] > 0).ToDictionary(kv => kv.Key, kv => kv.Value / counts[kv.Key]);
            double meanTotal = means.Where(m => TrainingTerms.IsLoss(m.Key)).Sum(m => m.Value);
            double seconds = secondsSum / timedIterations, meanDataSeconds = dataSecondsSum / timedIterations;
            var record = new Dictionary<string, object?>
            {
                ["iter"] = done, ["lr"] = lr, ["loss"] = meanTotal, ["time"] = seconds, ["data_time"] = meanDataSeconds,
                ["memory_mb"] = ProcessMemory.ResidentBytes() / 1e6,
            };
            // MMEngine logs the momentum (betas[0] for AdamW) beside the lr once a scheduler moves it.
            double? momentum = schedule.MomentumAt(initialMomentum, done - 1);
            if (momentum is { } scheduledMomentum) record["momentum"] = scheduledMomentum;
            foreach (var (k, v) in means) record[k] = v;
            if (lossScaler is not null) record["loss_scale"] = lossScaler.Scale;
            if (gradNormSteps > 0) record["grad_norm"] = gradNormSum / gradNormSteps;
            if (skippedInInterval > 0) record["skipped"] = skippedInInterval;
            if (overflowsInInterval > 0) record["overflows"] = overflowsInInterval;
            if (length.EpochAfter(done) is { } epoch) record["epoch"] = epoch.Epoch;
            log?.Write(record);
            progress.Print(progress.Format(done, meanTotal, means.Where(m => TrainingTerms.OnProgressLine(m.Key)).ToDictionary(), lr, momentum, seconds,
                meanDataSeconds, data.BatchSize * _world.WorldSize, length));
            lossSums.Clear();
            definedCounts.Clear();
            lossCount = 0;
            secondsSum = dataSecondsSum = 0;
            timedIterations = skippedInInterval = overflowsInInterval = 0;
            gradNormSum = 0;
            gradNormSteps = 0;
        }

        for (int iteration = state.Iteration; iteration < maxIters; iteration++)
        {
            if (iteration % train.AccumulateSteps == 0 && AnyRank(stop.IsCancellationRequested))
            {
                lastCheckpoint = SaveCheckpoint(iteration);
                _console.WriteLine($"interrupted at iteration {iteration}; checkpoint {lastCheckpoint}");
                return new TrainingResult(iteration, true, best, lastCheckpoint, skipped, length);
            }

            if (iteration == switchAt) SwitchPipeline(iteration);

            var clock = Stopwatch.StartNew();
            double lr = schedule.LrAt(baseLr, iteration);
            double dataSeconds;
            using (StageProfiler.Measure(TrainingStages.Iteration))
            using (var scope = NewDisposeScope())
            {
                TBatch batch;
                using (StageProfiler.Measure(TrainingStages.Data))
                    batch = data.Next();
                dataSeconds = clock.Elapsed.TotalSeconds;
                model.train();
                IReadOnlyDictionary<string, Tensor> terms;
                using (StageProfiler.Measure(TrainingStages.Forward))
                using (config.Runtime.Amp ? OpenAutocast(device.type) : null)
                    terms = task.Losses(batch);
                var backwardStage = StageProfiler.Measure(TrainingStages.Backward);
                var lossTerms = terms.Where(t => TrainingTerms.IsLoss(t.Key)).Select(t => t.Value).ToList();
                if (lossTerms.Count == 0)
                    throw new VimException($"the task returned no loss term (names containing \"loss\"), only {string.Join(", ", terms.Keys)}");
                var total = lossTerms.Aggregate((a, b) => a + b);
                // The total and every term (a detector returns about thirty) read back in one transfer, not one host sync each.
                var entries = terms.ToList();
                var read = ReadScalars(entries.Select(t => t.Value).Prepend(total));
                double totalValue = read[0];
                var termValues = entries.Select((t, i) => (name: t.Key, value: read[i + 1])).ToList();
                if (AnyRank(!double.IsFinite(totalValue)))
                {
                    var termText = string.Join(", ", termValues.Select(t => $"{t.name}={t.value.ToString(CultureInfo.InvariantCulture)}"));
                    if (double.IsFinite(totalValue)) termText += $" on rank {_world.Rank}; non-finite on another rank";
                    if (!train.SkipNonFiniteLoss)
                        throw new VimException($"iteration {iteration}: the loss is {totalValue.ToString(CultureInfo.InvariantCulture)} ({termText}); " +
                            $"last good checkpoint: {lastCheckpoint ?? "none yet"}. Lower the lr, enable optimizer.grad_clip_norm, or set train.skip_non_finite_loss to skip such steps.");
                    skipped++;
                    skippedInInterval++;
                    optimizer.ZeroGrad();
                    _console.WriteLine($"iteration {iteration}: non-finite loss ({termText}), step skipped ({skipped} so far)");
                }
                else
                {
                    var objective = train.AccumulateSteps == 1 ? total : total / train.AccumulateSteps;
                    // `vim bench train --backward-breakdown` times autograd's pass by component; off, both calls do nothing.
                    BackwardProfiler.BeginPass();
                    try
                    {
                        (lossScaler is null ? objective : lossScaler.ScaleLoss(objective)).backward();
                    }
                    finally
                    {
                        BackwardProfiler.EndPass();
                    }
                    backwardStage.Dispose();
                    foreach (var (name, termValue) in termValues)
                    {
                        // Only statistics can be NaN here: a non-finite loss took the branch above.
                        bool defined = !float.IsNaN(termValue);
                        lossSums[name] = lossSums.GetValueOrDefault(name) + (defined ? termValue : 0);
                        definedCounts[name] = definedCounts.GetValueOrDefault(name) + (defined ? 1 : 0);
                    }
                    lossCount++;
                    if ((iteration + 1) % train.AccumulateSteps == 0)
                    {
                        using (StageProfiler.Measure(TrainingStages.GradSync))
                            reducer?.AverageGradients();
                        bool stepTaken = true;
                        if (lossScaler is not null)
                        {
                            // Unscaled before clipping, so grad_clip_norm means the same as without scaling. An overflow
                            // skips the step on every rank together.
                            stepTaken = !AnyRank(!lossScaler.UnscaleGradients(parameters.Select(p => p.grad).OfType<Tensor>()));
                            double scaleBefore = lossScaler.Scale;
                            lossScaler.Update(stepTaken);
                            if (!stepTaken)
                            {
                                overflowsInInterval++;
                                _console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                                    $"iteration {iteration}: fp16 gradients overflowed, step skipped; loss scale {scaleBefore:R} → {lossScaler.Scale:R}"));
                                if (lossScaler.GaveUp)
                                    throw new VimException($"iteration {iteration}: the fp16 gradients overflowed {lossScaler.OverflowsInARow} steps in a row " +
                                        $"(loss scale now {lossScaler.Scale.ToString("R", CultureInfo.InvariantCulture)}): they are inf or NaN at any scale. " +
                                        $"Last good checkpoint: {lastCheckpoint ?? "none yet"}. Lower the lr, enable optimizer.grad_clip_norm, or train with bf16.");
                            }
                        }
                        if (stepTaken)
                        {
                            if (config.Optimizer.GradClipNorm is { } maxNorm)
                            {
                                using var clipStage = StageProfiler.Measure(TrainingStages.GradClip);
                                gradNormSum += nn.utils.clip_grad_norm_(parameters, maxNorm);
                                gradNormSteps++;
                            }
                            using (StageProfiler.Measure(TrainingStages.Optimizer))
                                optimizer.Step(scale => schedule.GroupLrAt(baseLr, scale, iteration), schedule.MomentumAt(initialMomentum, iteration));
                            optimizerSteps++;
                            AfterOptimizerStep?.Invoke(iteration, optimizer);
                            using (StageProfiler.Measure(TrainingStages.Ema))
                                ema?.Step(model, iteration + 1);
                        }
                        optimizer.ZeroGrad();
                    }
                }
            }
            secondsSum += clock.Elapsed.TotalSeconds;
            dataSecondsSum += dataSeconds;
            timedIterations++;
            int done = iteration + 1;

            if (done % train.LogInterval == 0 || done == maxIters) LogInterval(done, lr);

            EarlyStop? earlyStop = null;
            if (length.EvaluatesAfter(done))
            {
                model.eval();
                IReadOnlyDictionary<string, double> metrics;
                // Swapped back before any checkpoint is written, so each holds the trained weights under model. as without it.
                validated?.SwapWith(model);
                try
                {
                    ModelBroadcast.BuffersFromRoot(_world, model);
                    using (StageProfiler.Suspend())
                    using (no_grad())
                        metrics = task.Evaluate();
                }
                finally
                {
                    validated?.SwapWith(model);
                }
                var record = new Dictionary<string, object?> { ["iter"] = done, ["mode"] = TrainingLogModes.Evaluation };
                var evaluatedEpoch = length.EpochAfter(done);
                if (evaluatedEpoch is { } e) record["epoch"] = e.Epoch;
                foreach (var (k, v) in metrics) record[k] = v;
                // Before any checkpoint of this iteration is written, so each holds the state this evaluation left.
                var reduced = schedule.Chained?.ObserveEvaluation(done, length.IterationsPerEpoch is { } epochIterations ? done / epochIterations : 0, metrics) ?? [];
                // lr_reduced or momentum_reduced: `vim report` says which value the entries lowered.
                foreach (var byParameter in reduced.GroupBy(p => p.Entry.ParameterName))
                    record[$"{byParameter.Key}_reduced"] = string.Join(", ", byParameter.Select(p => p.Entry.Name));
                log?.Write(record);
                foreach (var plateau in reduced)
                    _console.WriteLine($"{plateau.Entry.Name}: {plateau.Entry.Monitor} has not improved for {plateau.Entry.Patience + 1} evaluations; " +
                        $"the {plateau.Entry.ParameterName} is multiplied by {plateau.Entry.Factor.ToString("G6", CultureInfo.InvariantCulture)} from iteration {done}");
                _console.WriteLine($"eval @ {done}{(evaluatedEpoch is { } ee ? $" (epoch {ee.Epoch})" : "")}{(validated is null ? "" : ", EMA weights")}: " + string.Join(", ", metrics.Select(m => $"{m.Key} {m.Value.ToString("0.####", CultureInfo.InvariantCulture)}")));
                if (!metrics.TryGetValue(task.PrimaryMetric, out var primary))
                    throw new VimException($"the evaluator returned no '{task.PrimaryMetric}' (it returned {string.Join(", ", metrics.Keys)})");
                // Before any checkpoint of this iteration is written, so each holds the count this evaluation left.
                var stopHere = earlyStopping?.Observe(done, metrics);
                // The ranks' metrics are equal, so they decide alike; the joint flag makes sure no rank trains on alone. The
                // run's last evaluation ends it anyway.
                if (earlyStopping is not null && done < maxIters && AnyRank(stopHere is not null))
                    earlyStop = stopHere ?? earlyStopping.StopWithTheOtherRanks(done, metrics);
                // An undefined metric (NaN: e.g. a validation set with no labelled pixel) never becomes the best, nor
                // blocks a later defined one from becoming it.
                if (double.IsNaN(primary))
                    _console.WriteLine($"{task.PrimaryMetric} is undefined at this evaluation; the best checkpoint is unchanged");
                else if (best is not { } previous || double.IsNaN(previous) || primary > previous)
                {
                    best = primary;
                    // Every rank takes this branch: the metrics are the same on all.
                    WriteCheckpoint(checkpoints.BestPath, done);
                    _console.WriteLine($"new best {task.PrimaryMetric} {primary.ToString("0.####", CultureInfo.InvariantCulture)} → {checkpoints.BestPath}");
                }
            }

            bool periodic = done % train.CheckpointInterval == 0 || done == maxIters;
            if (periodic) lastCheckpoint = SaveCheckpoint(done);
            if (earlyStop is not null)
            {
                // As at the end of a run: the last interval's means and a checkpoint of this iteration.
                LogInterval(done, lr);
                if (!periodic) lastCheckpoint = SaveCheckpoint(done);
                log?.Write(earlyStop.LogRecord(lastCheckpoint!));
                _console.WriteLine($"early stopping at {length.Position(done)}: {earlyStop.Message}; checkpoint {lastCheckpoint}");
                return new TrainingResult(done, false, best, lastCheckpoint, skipped, length, earlyStop);
            }
        }
        return new TrainingResult(maxIters, false, best, lastCheckpoint, skipped, length);
    }

    /// <summary>Every rank's torch generator state on rank 0, indexed by rank (a collective; the other ranks get an empty list).</summary>
    private List<Tensor> GatherGenerators()
    {
        using var own = torch.random.get_rng_state();
        return _world.Gather(own.data<byte>().ToArray()).Select(state => tensor(state)).ToList();
    }

    /// <summary>Whether <paramref name="local"/> holds on any rank: decisions that change control flow must be the same everywhere, or the ranks' collectives stop matching.</summary>
    private bool AnyRank(bool local)
    {
        if (_world.WorldSize == 1) return local;
        using var flag = tensor(local ? 1f : 0f);
        _world.AllReduceSum(flag);
        return flag.item<float>() > 0;
    }

    /// <summary>Single-element tensors' values as float32, in one device-to-host transfer (the caller's dispose scope owns the copies).</summary>
    private static float[] ReadScalars(IEnumerable<Tensor> scalars)
    {
        var values = scalars.Select(v => v.detach().reshape(1).to_type(ScalarType.Float32)).ToList();
        var device = values[0].device;
        return cat(values.Select(v => v.to(device)).ToArray(), 0).cpu().data<float>().ToArray();
    }

    private Dictionary<string, double> MeanOverRanks(Dictionary<string, double> sums)
    {
        if (_world.WorldSize == 1) return sums;
        // Reduced in a sorted order, the same on every rank; handed back in the task's order, so the progress line and
        // log.jsonl list the terms as one process does.
        var keys = sums.Keys.Order(StringComparer.Ordinal).ToArray();
        using var values = tensor(keys.Select(k => (float)sums[k]).ToArray());
        _world.AllReduceAverage(values);
        var averaged = values.data<float>().ToArray();
        var byKey = keys.Select((k, i) => (k, (double)averaged[i])).ToDictionary(x => x.k, x => x.Item2);
        return sums.Keys.ToDictionary(k => k, k => byKey[k]);
    }

    private Autocast OpenAutocast(DeviceType device)
    {
        var dtype = config.Runtime.AmpDtype switch
        {
            "bf16" => ScalarType.BFloat16,
            "fp16" => ScalarType.Float16,
            _ => throw new VimException($"runtime.amp_dtype must be bf16 or fp16, got '{config.Runtime.AmpDtype}'"),
        };
        return new Autocast(device, dtype);
    }

    /// <summary>Where an epoch-counted schedule's lr changes, in iterations: its milestones, or each param_scheduler entry.</summary>
    private static string ScheduleInIterations(LrSchedule schedule) => schedule.Chained is { } chained
        ? chained.Describe()
        : $"milestones at iterations [{string.Join(", ", schedule.Config.Milestones)}]";
}
