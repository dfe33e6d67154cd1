namespace Vim.Core.Engine;

/// <summary>
/// A training log (work_dir/log.jsonl) read as the history of the run that its checkpoints continue. A resumed run
/// appends to the same log, starting from its checkpoint's iteration: records the abandoned launch wrote after that
/// point (curves, an evaluation whose weights no checkpoint kept) belong to no run and are dropped. The trainer marks
/// each resume with a "resume" record; a log without markers (or edited by hand) is cut where a training record's
/// iteration is not above the last one's.
/// </summary>
public sealed class TrainingLogHistory
{
    private TrainingLogHistory(List<TrainingInterval> training, List<LogRecord> evaluations, List<int> restarts, List<int> damagedLines, LogRecord? earlyStop,
        EpochLength? epochs, LogRecord? pipelineSwitch)
    {
        PipelineSwitch = pipelineSwitch;
        Epochs = epochs;
        EarlyStop = earlyStop;
        Training = training;
        Evaluations = evaluations;
        Restarts = restarts;
        DamagedLines = damagedLines;
    }

    /// <summary>Training records in iteration order, one per iteration, with the iterations each one averages over.</summary>
    public IReadOnlyList<TrainingInterval> Training { get; }

    /// <summary>Evaluation records ("mode": "val") in iteration order, one per iteration.</summary>
    public IReadOnlyList<LogRecord> Evaluations { get; }

    /// <summary>The iterations later launches continued from, in order.</summary>
    public IReadOnlyList<int> Restarts { get; }

    /// <summary>The record of train.early_stopping ending the run ("mode": "early_stop"), unless a later launch resumed past it.</summary>
    public LogRecord? EarlyStop { get; }

    /// <summary>
    /// The record of data.pipeline_switch switching the training pipeline ("mode": "pipeline_switch", before its iteration
    /// + 1), unless a later launch resumed from before it (that launch logs its own switch).
    /// </summary>
    public LogRecord? PipelineSwitch { get; }

    /// <summary>
    /// An epoch-counted run's epoch (schedule.max_epochs): from the "epoch_length" record each launch writes, else, in a log
    /// without one, worked out from the records' "epoch" fields; null for an iteration-counted run, or where the records
    /// leave the length open.
    /// </summary>
    public EpochLength? Epochs { get; }

    /// <summary>
    /// The iterations that end an epoch (e × iterations per epoch) up to the last iteration the log reaches, in order;
    /// empty for an iteration-counted run.
    /// </summary>
    public IReadOnlyList<int> EpochEnds
    {
        get
        {
            if (Epochs is not { } epochs) return [];
            int last = Training.Select(t => t.Record.Iteration).Concat(Evaluations.Select(e => e.Iteration)).DefaultIfEmpty(0).Max();
            return Enumerable.Range(1, last / epochs.IterationsPerEpoch).Select(e => e * epochs.IterationsPerEpoch).ToList();
        }
    }

    /// <summary>Lines that are not JSON objects (one a killed process cut short, or damage), which were skipped.</summary>
    public IReadOnlyList<int> DamagedLines { get; }

    public static TrainingLogHistory Read(string path)
    {
        var damaged = new List<int>();
        var kept = new List<(LogRecord Record, int Launch)>();
        var launchStarts = new List<int> { 0 };
        var restarts = new List<int>();
        int? lastTraining = null;
        int lastTrainingLine = 0;
        LogRecord? epochLength = null;

        void Restart(int from, int keepThrough)
        {
            // A launch that continued from an early stop's iteration (or from before it) trained on: that stop no longer ended the run.
            kept.RemoveAll(k => k.Record.Iteration > keepThrough || (k.Record.Mode == TrainingLogModes.EarlyStop && k.Record.Iteration >= from));
            // An epoch_length written before the previous launch's training records was that launch's; the new launch writes
            // its own (after its resume record, or before its first training record), unless it counts iterations.
            if (epochLength?.Line < lastTrainingLine) epochLength = null;
            restarts.Add(from);
            launchStarts.Add(from);
            lastTraining = from;
        }

        foreach (var record in JsonLinesLog.Read(path, damaged))
        {
            switch (record.Mode)
            {
                case TrainingLogModes.Resume:
                    Restart(record.Iteration, keepThrough: record.Iteration);
                    continue;
                case TrainingLogModes.EpochLength:
                    // Every launch writes the same (a resume with another epoch length is refused): the last stands.
                    epochLength = record;
                    continue;
                case null when lastTraining is { } last && record.Iteration <= last:
                    // No marker: the launch restarted somewhere before this record's interval; the newest record this
                    // one follows in the kept history is where its interval began.
                    int from = kept.Where(k => k.Record.Mode is null && k.Record.Iteration < record.Iteration)
                        .Select(k => k.Record.Iteration).DefaultIfEmpty(0).Max();
                    Restart(from, keepThrough: record.Iteration - 1);
                    break;
            }
            if (record.Mode is null) (lastTraining, lastTrainingLine) = (record.Iteration, record.Line);
            if (record.Mode is null or TrainingLogModes.Evaluation or TrainingLogModes.EarlyStop or TrainingLogModes.PipelineSwitch) kept.Add((record, launchStarts.Count - 1));
        }

        var training = new List<TrainingInterval>();
        int previousLaunch = -1, previousIteration = 0;
        foreach (var (record, launch) in kept.Where(k => k.Record.Mode is null))
        {
            bool opens = launch != previousLaunch;
            int from = opens ? launchStarts[launch] : previousIteration;
            training.Add(new TrainingInterval(record, from, opens));
            previousLaunch = launch;
            previousIteration = record.Iteration;
        }
        var evaluations = kept.Where(k => k.Record.IsEvaluation).Select(k => k.Record)
            .GroupBy(r => r.Iteration).Select(g => g.Last()).OrderBy(r => r.Iteration).ToList();
        var earlyStop = kept.Where(k => k.Record.Mode == TrainingLogModes.EarlyStop).Select(k => (LogRecord?)k.Record).LastOrDefault();
        var pipelineSwitch = kept.Where(k => k.Record.Mode == TrainingLogModes.PipelineSwitch).Select(k => (LogRecord?)k.Record).LastOrDefault();
        var epochs = epochLength is { } written
            ? new EpochLength(written.PositiveCount("iters_per_epoch") ?? throw new VimException($"{path} line {written.Line}: an epoch_length record needs 'iters_per_epoch'"),
                written.PositiveCount("max_epochs"))
            : InferEpochLength(path, training.Select(t => t.Record), evaluations);
        return new TrainingLogHistory(training, evaluations, restarts, damaged, earlyStop, epochs, pipelineSwitch);
    }

    /// <summary>
    /// The epoch length of a log without an epoch_length record (written before the trainer wrote one), from what its
    /// records' "epoch" fields allow: a training record at iteration I in epoch e holds (e − 1)·n &lt; I ≤ e·n, and an
    /// evaluation, which an epoch-counted run takes at epoch ends only, I = e·n. Null where no record has an epoch or the
    /// records leave more than one n; records that allow none are refused, naming the first that contradicts the others.
    /// </summary>
    private static EpochLength? InferEpochLength(string path, IEnumerable<LogRecord> training, IEnumerable<LogRecord> evaluations)
    {
        long lowest = 1, highest = long.MaxValue;
        bool any = false;
        foreach (var (record, atEpochEnd) in training.Select(r => (r, false)).Concat(evaluations.Select(r => (r, true))))
        {
            if (record.PositiveCount("epoch") is not { } epoch || record.Iteration == 0) continue;
            any = true;
            long iteration = record.Iteration;
            lowest = Math.Max(lowest, (iteration + epoch - 1) / epoch);
            if (epoch > 1) highest = Math.Min(highest, (iteration - 1) / (epoch - 1));
            if (atEpochEnd) highest = Math.Min(highest, iteration / epoch);
            if (lowest > highest)
                throw new VimException($"{path} line {record.Line}: epoch {epoch} at iteration {iteration} contradicts the epochs of the records before it " +
                    "(no number of iterations per epoch fits them all); is the log of one run?");
        }
        return any && lowest == highest ? new EpochLength((int)lowest, null) : null;
    }
}

/// <summary>An epoch-counted run's epoch as its log tells it.</summary>
/// <param name="MaxEpochs">schedule.max_epochs, where the log records it (null in a log without an epoch_length record).</param>
public readonly record struct EpochLength(int IterationsPerEpoch, int? MaxEpochs)
{
    /// <summary>The (1-based) epoch iteration <paramref name="done"/> ends in, as <see cref="TrainingLength.EpochAfter"/> counts it.</summary>
    public int EpochAt(int done) => (done + IterationsPerEpoch - 1) / IterationsPerEpoch;
}

/// <summary>A training record and the iterations (From, Record.Iteration] whose means it holds.</summary>
/// <param name="OpensLaunch">The first record after the run (re)started: its time includes the warm-up.</param>
public readonly record struct TrainingInterval(LogRecord Record, int From, bool OpensLaunch)
{
    public int Iterations => Record.Iteration - From;
}

/// <summary>The "mode" values of log records other than training ones (which have none).</summary>
public static class TrainingLogModes
{
    public const string Evaluation = "val";
    public const string Resume = "resume";

    /// <summary>
    /// An epoch-counted run's epoch, written at each launch's start (fields iters_per_epoch and max_epochs), so `vim report`
    /// marks epoch ends from the log alone.
    /// </summary>
    public const string EpochLength = "epoch_length";

    /// <summary>train.early_stopping ended the run at the record's iteration (<see cref="EarlyStop.LogRecord"/>).</summary>
    public const string EarlyStop = "early_stop";

    /// <summary>data.pipeline_switch switched the training pipeline before the record's iteration + 1 (<see cref="Config.PipelineSwitch"/>).</summary>
    public const string PipelineSwitch = "pipeline_switch";
}
