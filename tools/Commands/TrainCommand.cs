using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Diagnostics;
using Vim.Core.Distributed;
using Vim.Core.Engine;
using Vim.Data.Loading;
using Vim.Detection;
using Vim.Segmentation;
using static TorchSharp.torch;

namespace Vim.Tools.Commands;

/// <summary>`vim train CONFIG [--work-dir DIR] [--resume [CKPT]] [--load-from CKPT] [--auto-scale-lr] [--amp] [--profile] [--set k=v ...]`.</summary>
public static class TrainCommand
{
    public static Command Create()
    {
        var configArg = new Argument<string>("config") { Description = "Experiment config (YAML)." };
        var workDir = new Option<string?>("--work-dir") { Description = "Where logs and checkpoints go (default: runtime.work_dir, else work_dirs/<config name>)." };
        var resume = new Option<string?>("--resume")
        {
            Description = "Continue a run: from CKPT, or (no value) from the work dir's latest checkpoint (none yet: a run with load_from starts from it, as mmdet's --resume).",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var autoScaleLr = new Option<bool>("--auto-scale-lr")
        {
            Description = "Scale optimizer.lr by the run's images per optimiser step / auto_scale_lr.base_batch_size (mmdet's flag: the same as --set auto_scale_lr.enable=true).",
        };
        var amp = new Option<bool>("--amp")
        {
            Description = "Mixed-precision training (mmdet's flag: the same as --set runtime.amp=true; runtime.amp_dtype picks bf16 or fp16).",
        };
        var loadFrom = new Option<string?>("--load-from")
        {
            Description = "Start a fresh run (iteration 0, new optimiser and schedule) from the whole-model weights of CKPT: a `vim train` checkpoint "
                + "or a .pth/.safetensors state dict (mmdet's load_from: the same as --set load_from=CKPT; --set load_from_ema=true takes its EMA weights). "
                + "Tensors of another shape (a head for another class count) are skipped; load_from.txt in the work dir says what loaded. "
                + "--resume wins when there is a checkpoint to resume.",
        };
        var profile = new Option<bool>("--profile")
        {
            Description = "Time each part of the training iteration (data, forward with the model's own stages, backward, grad_sync, "
                + "grad_clip, optimizer, ema) and print, when the run ends, each part's CPU and wall milliseconds per iteration and its share "
                + "of the iteration's CPU time. Use a short run (--set schedule.max_iters=N); the first iteration's warm-up is included.",
        };
        var set = ConfigCommand.CreateSetOption();
        var command = new Command("train", "Train the model a config describes; Ctrl-C, SIGTERM or SIGUSR1 (kill -USR1 <mpirun pid> under mpirun) writes a checkpoint and exits. " +
            "The log goes to WORK_DIR/log.jsonl; --set runtime.vis_backends=[local,tensorboard] also writes it as TensorBoard events in WORK_DIR/tensorboard/ " +
            "(tags train/loss, train/lr, …, val/mIoU, val/bbox_mAP, …; the merged config as the text summary config). " +
            "--set train.early_stopping.patience=N (MMEngine's EarlyStoppingHook; also monitor, rule, min_delta, stopping_threshold, check_finite) " +
            "stops the run, with a checkpoint, once the validation metric has not improved for N evaluations. " +
            "schedule.max_epochs (MMEngine's EpochBasedTrainLoop; set schedule.max_iters=null) counts the run in epochs of the training loader, " +
            "with schedule.milestones, train.eval_interval, train.checkpoint_interval and train.val_begin in epochs too (warmup and logging stay in iterations). " +
            "--set train.val_begin=N (MMEngine's val_begin, default 1) evaluates only from epoch (iteration) N on: every train.eval_interval and at the end. " +
            "data.pipeline_switch: {at: E, train_pipeline: [...], mosaic: null, mixup: null} (mmdet's PipelineSwitchHook / YOLOXModeSwitchHook) trains " +
            "after E epochs (iterations without schedule.max_epochs) with the pipeline and mixing settings it names, resumed runs too.");
        command.Arguments.Add(configArg);
        command.Options.Add(workDir);
        command.Options.Add(resume);
        command.Options.Add(loadFrom);
        command.Options.Add(autoScaleLr);
        command.Options.Add(amp);
        command.Options.Add(profile);
        command.Options.Add(set);
        command.SetAction(parse =>
        {
            // mmdet's flags as overrides, so config.yaml records them and the resume line repeats them.
            var flags = new[] { (autoScaleLr, "auto_scale_lr.enable=true"), (amp, "runtime.amp=true") };
            string[] overrides = [.. parse.GetValue(set) ?? [], .. flags.Where(f => parse.GetValue(f.Item1)).Select(f => f.Item2),
                .. parse.GetValue(loadFrom) is { } checkpoint ? [ConfigWriter.Override("load_from", checkpoint)] : Array.Empty<string>()];
            var (config, dir) = Prepare(parse.GetValue(configArg)!, parse.GetValue(workDir), overrides);
            // Under mpirun every rank runs this; rank 0 alone writes files.
            using var communicator = Communicators.FromEnvironment(config.Runtime);
            var resumeFrom = parse.GetResult(resume) is null
                ? null
                : ResumeFrom(parse.GetValue(resume), dir, config, communicator.Rank == 0 ? Console.Out : TextWriter.Null);
            using var stop = new CancellationTokenSource();
            using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
            // mpirun does not forward SIGINT/SIGTERM: it kills its ranks about a second later, before a checkpoint is written.
            // It forwards SIGUSR1 (as Slurm's --signal=USR1@120 sends it), which therefore stops a data-parallel run cleanly.
            using var sigusr1 = PosixSignalRegistration.Create(StopSignalForMpirun, c => { c.Cancel = true; stop.Cancel(); });
            // Rank 0 alone prints the table, so it alone profiles: the other ranks run without the profiler's overhead.
            var result = Profiled(parse.GetValue(profile) && communicator.Rank == 0,
                () => communicator.AbortJobOnError(() => Train(config, dir, resumeFrom, communicator, stop.Token)), Console.Out);
            if (communicator.Rank == 0) Console.WriteLine(Outcome(result, dir, ResumeCommand(parse.GetValue(configArg)!, dir, overrides)));
            return result.Interrupted ? 130 : 0;
        });
        return command;
    }

    /// <summary>
    /// `--profile`: runs <paramref name="train"/> under <see cref="StageProfiler"/> and prints its table to
    /// <paramref name="output"/> when it returns; a run that throws prints nothing and leaves the profiler off too.
    /// </summary>
    public static T Profiled<T>(bool profile, Func<T> train, TextWriter output)
    {
        if (!profile) return train();
        StageProfiler.Start();
        T result;
        try
        {
            result = train();
        }
        catch
        {
            StageProfiler.Stop();
            throw;
        }
        PrintProfile(StageProfiler.Stop(), output);
        return result;
    }

    /// <summary>
    /// `--profile`'s table: per stage its calls, and its wall and CPU milliseconds per iteration with its share of the
    /// iteration's CPU; each stage indented under the timed stage it ran inside (a model stage without one under forward).
    /// </summary>
    public static void PrintProfile(IReadOnlyList<StageProfiler.StageTotal> stages, TextWriter output)
    {
        var iteration = stages.FirstOrDefault(s => s.Stage == TrainingStages.Iteration);
        if (iteration is null || iteration.Calls == 0)
        {
            output.WriteLine("profile: no iteration ran");
            return;
        }
        double iterations = iteration.Calls;
        output.WriteLine(FormattableString.Invariant($"profile over {iteration.Calls} iterations (ms per iteration; cpu = all threads of the process):"));
        output.WriteLine($"{"stage",-24} {"calls",7} {"wall",10} {"cpu",10} {"cpu %",7}");
        // Each stage under the timed stage it ran inside (the trainer's parts at the top: the iteration is the table's
        // whole); a stage without one that is not the trainer's own is the model's, a part of forward.
        string? ParentOf(StageProfiler.StageTotal stage) =>
            (stage.Parent ?? (TrainingStages.OfTrainer.Contains(stage.Stage) ? null : TrainingStages.Forward)) is var parent
            && parent != TrainingStages.Iteration && stages.Any(s => s.Stage == parent) ? parent : null;
        int Rank(StageProfiler.StageTotal stage) =>
            TrainingStages.OfTrainer.Contains(stage.Stage) ? TrainingStages.OfTrainer.ToList().IndexOf(stage.Stage) : TrainingStages.OfTrainer.Count;
        void Print(string? parent, int depth)
        {
            // OrderBy is stable: the model's stages keep the order they first finished in.
            foreach (var stage in stages.Where(s => s.Stage != parent && ParentOf(s) == parent).OrderBy(Rank))
            {
                string name = new string(' ', 2 * depth) + stage.Stage;
                output.WriteLine(FormattableString.Invariant(
                    $"{name,-24} {stage.Calls,7} {stage.Milliseconds / iterations,10:F1} {stage.CpuMilliseconds / iterations,10:F1} {100 * stage.CpuMilliseconds / iteration.CpuMilliseconds,7:F1}"));
                if (stage.Stage != TrainingStages.Iteration) Print(stage.Stage, depth + 1);
            }
        }
        Print(null, 0);
    }

    /// <summary>The line `vim train` ends with: how the run ended, in the run's own unit (epochs where it counts them).</summary>
    public static string Outcome(TrainingResult result, string dir, string resumeCommand)
    {
        // As the evaluation lines print the metric: two decimals said "best 0" of a bbox_mAP of 0.0024 (a fraction, as mmdet's).
        var outcome = $"best {result.BestMetric?.ToString("0.####", CultureInfo.InvariantCulture) ?? "n/a"}; checkpoints in {dir}";
        return result switch
        {
            { Interrupted: true } => $"stopped at iteration {result.Iteration}; resume with: {resumeCommand}",
            { EarlyStop: { } early } => $"stopped early at {result.Length.Position(result.Iteration)} (train.early_stopping: {early.Message}); {outcome}",
            _ => $"finished {result.Iteration} iterations; {outcome}",
        };
    }

    /// <summary>SIGUSR1 (10 on Linux), which PosixSignal does not name; raw signal numbers are accepted as PosixSignal values.</summary>
    public const PosixSignal StopSignalForMpirun = (PosixSignal)10;

    /// <summary>
    /// The command line that continues a stopped run: the same config and overrides (a resume rebuilds the config from
    /// them; without the run's --set data.root=... it would read other data), quoted for a POSIX shell.
    /// </summary>
    public static string ResumeCommand(string configPath, string dir, IReadOnlyList<string> overrides)
    {
        static string Quoted(string word) => word.Length > 0 && word.All(c => char.IsAsciiLetterOrDigit(c) || "/._-=,:+@%".Contains(c))
            ? word
            : "'" + word.Replace("'", "'\\''") + "'";
        var words = new List<string> { "./vim", "train", Quoted(configPath), "--work-dir", Quoted(dir) };
        foreach (var setting in overrides) words.AddRange(["--set", Quoted(setting)]);
        words.Add("--resume");
        return string.Join(' ', words);
    }

    /// <summary>
    /// The checkpoint `--resume` continues from: <paramref name="checkpoint"/> when given, else the work dir's latest. With
    /// none there yet, a run that names load_from starts afresh from it (MMEngine's resume falls back to load_from the same
    /// way), so one command line serves a job's first launch and its restarts; without load_from there is nothing to resume.
    /// </summary>
    public static string? ResumeFrom(string? checkpoint, string dir, ExperimentConfig config, TextWriter log)
    {
        if (checkpoint is not null) return checkpoint;
        if (new CheckpointDirectory(dir, config.Train.KeepLast).Latest() is { } latest) return latest;
        if (LoadFromCheckpoint.Configured(config) is not { } loadFrom)
            throw new VimException($"--resume: {dir} has no checkpoint yet");
        log.WriteLine($"--resume: {dir} has no checkpoint yet; starting a fresh run from load_from {loadFrom}");
        return null;
    }

    /// <summary>Loads the config, applies threads, and resolves the work dir.</summary>
    public static (ExperimentConfig Config, string WorkDir) Prepare(string configPath, string? workDir, IEnumerable<string> overrides)
    {
        var config = RuntimeSetup.LoadConfig(configPath, overrides);
        return (config, WorkDir(configPath, config, workDir));
    }

    /// <summary>A run's work dir: <paramref name="workDir"/> (--work-dir) if given, else runtime.work_dir, else work_dirs/&lt;config name&gt;.</summary>
    public static string WorkDir(string configPath, ExperimentConfig config, string? workDir = null)
    {
        var dir = workDir ?? config.Runtime.WorkDir ?? Path.Combine("work_dirs", Path.GetFileNameWithoutExtension(configPath));
        if (string.IsNullOrWhiteSpace(dir))
            throw new VimException($"the work dir is empty ({(workDir is not null ? "--work-dir" : "runtime.work_dir")}); expected a folder for checkpoints and logs");
        return dir;
    }

    /// <summary>
    /// Trains the task a config names in <paramref name="dir"/>: a fresh run records its merged config
    /// there (a resumed run keeps the one it started with); rank 0 alone writes and prints.
    /// </summary>
    /// <param name="afterOptimizerStep">Called after every optimiser step (<see cref="Trainer{TBatch}.AfterOptimizerStep"/>):
    /// `vim bench train` times the steps and switches the optimiser's path there.</param>
    public static TrainingResult Train(ExperimentConfig config, string dir, string? resumeFrom, ICommunicator communicator, CancellationToken stop,
        Action<int, IOptimizer>? afterOptimizerStep = null)
    {
        // Before the work dir, the data and the model: a setting that cannot train costs nothing to refuse.
        TrainingSettings.Check(config);
        // A resume does not read load_from (the file may have moved since); a fresh run refuses a missing one here, not
        // after the data and the model are built.
        if (resumeFrom is null && LoadFromCheckpoint.Configured(config) is { } loadFrom)
            LoadFromCheckpoint.RequireCheckpointFile(loadFrom, config.LoadFromEma);
        var yaml = ConfigWriter.ToYaml(ConfigBinder.ToNode(config));
        if (resumeFrom is null && communicator.Rank == 0)
            WorkDirectory.Prepare(dir, bytesPerCheckpoint: 0, checkpointsKept: 0);
        var log = communicator.Rank == 0 ? Console.Out : TextWriter.Null;
        // A resumed run's checkpoint holds every weight: the pretrained file is not read (it may have moved since).
        using var task = OpenTask(config, log, communicator, weightsFromCheckpoint: resumeFrom is not null);
        // config.yaml is recorded by the trainer once the run can start (WorkDirectory.ConfigFileName).
        if (resumeFrom is null && communicator.Rank == 0 && task is Vim.Core.Models.IPretrainedInitialised { PretrainedReport: { } pretrained })
            Vim.Core.IO.AtomicFile.WriteText(Path.Combine(dir, "pretrained_load.txt"), pretrained + Environment.NewLine);
        return new Trainer<Batch>(task, config, dir, yaml, log, communicator) { AfterOptimizerStep = afterOptimizerStep }.Run(resumeFrom, stop);
    }

    private static ITrainingTask<Batch> OpenTask(ExperimentConfig config, TextWriter log, ICommunicator communicator, bool weightsFromCheckpoint) => config.Task switch
    {
        // Built to train on this process's shard: a training split too small for its batches is refused before the model
        // is built or the pretrained file read.
        TaskKind.Segmentation => new SegmentationTask(config, log, weightsFromCheckpoint: weightsFromCheckpoint, training: DataShard.Of(communicator)) { Communicator = communicator },
        TaskKind.Detection => new DetectionTask(config, log, weightsFromCheckpoint: weightsFromCheckpoint, training: DataShard.Of(communicator)) { Communicator = communicator },
        _ => throw new VimException($"task: {config.Task} is not supported"),
    };
}
