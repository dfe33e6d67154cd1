using System.CommandLine;
using System.Runtime.InteropServices;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Distributed;
using Vim.Core.Engine;
using Vim.Detection;
using Vim.Segmentation;
using static TorchSharp.torch;

namespace Vim.Tools.Commands;

/// <summary>`vim train CONFIG [--work-dir DIR] [--resume [CKPT]] [--set k=v ...]`.</summary>
public static class TrainCommand
{
    public static Command Create()
    {
        var configArg = new Argument<string>("config") { Description = "Experiment config (YAML)." };
        var workDir = new Option<string?>("--work-dir") { Description = "Where logs and checkpoints go (default: runtime.work_dir, else work_dirs/<config name>)." };
        var resume = new Option<string?>("--resume")
        {
            Description = "Continue a run: from CKPT, or (no value) from the work dir's latest checkpoint.",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var set = ConfigCommand.CreateSetOption();
        var command = new Command("train", "Train the model a config describes; Ctrl-C writes a checkpoint and exits.");
        command.Arguments.Add(configArg);
        command.Options.Add(workDir);
        command.Options.Add(resume);
        command.Options.Add(set);
        command.SetAction(parse =>
        {
            var (config, dir) = Prepare(parse.GetValue(configArg)!, parse.GetValue(workDir), parse.GetValue(set) ?? []);
            string? resumeFrom = null;
            if (parse.GetResult(resume) is not null)
            {
                resumeFrom = parse.GetValue(resume)
                    ?? new CheckpointDirectory(dir, config.Train.KeepLast).Latest()
                    ?? throw new VimException($"--resume: {dir} has no checkpoint yet");
            }
            var yaml = ConfigWriter.ToYaml(ConfigBinder.ToNode(config));
            // Under mpirun every rank runs this; rank 0 alone writes files.
            using var communicator = Communicators.FromEnvironment(config.Runtime);
            // The config of a resumed run is the one it was started with; a fresh run records its own.
            if (resumeFrom is null && communicator.Rank == 0)
            {
                WorkDirectory.Prepare(dir, bytesPerCheckpoint: 0, checkpointsKept: 0);
                ConfigWriter.Save(ConfigBinder.ToNode(config), Path.Combine(dir, "config.yaml"));
            }

            using var stop = new CancellationTokenSource();
            using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; stop.Cancel(); });
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; stop.Cancel(); });
            var result = RunTask(config, dir, yaml, resumeFrom, communicator, stop.Token);
            Console.WriteLine(result.Interrupted
                ? $"stopped at iteration {result.Iteration}; resume with: ./vim train {parse.GetValue(configArg)} --work-dir {dir} --resume"
                : $"finished {result.Iteration} iterations; best {result.BestMetric?.ToString("0.##") ?? "n/a"}; checkpoints in {dir}");
            return result.Interrupted ? 130 : 0;
        });
        return command;
    }

    /// <summary>Loads the config, applies threads, and resolves the work dir.</summary>
    public static (ExperimentConfig Config, string WorkDir) Prepare(string configPath, string? workDir, IEnumerable<string> overrides)
    {
        var (config, _) = ExperimentConfig.Load(configPath, overrides);
        if (config.Runtime.Threads > 0) set_num_threads(config.Runtime.Threads);
        var dir = workDir ?? config.Runtime.WorkDir ?? Path.Combine("work_dirs", Path.GetFileNameWithoutExtension(configPath));
        return (config, dir);
    }

    private static TrainingResult RunTask(ExperimentConfig config, string dir, string yaml, string? resumeFrom, ICommunicator communicator, CancellationToken stop)
    {
        switch (config.Task)
        {
            case TaskKind.Segmentation:
                using (var task = new SegmentationTask(config, communicator.Rank == 0 ? Console.Out : TextWriter.Null))
                    return new Trainer<Vim.Data.Loading.Batch>(task, config, dir, yaml, communicator.Rank == 0 ? Console.Out : TextWriter.Null, communicator)
                        .Run(resumeFrom, stop);
            case TaskKind.Detection:
                using (var task = new DetectionTask(config, communicator.Rank == 0 ? Console.Out : TextWriter.Null))
                    return new Trainer<Vim.Data.Loading.Batch>(task, config, dir, yaml, communicator.Rank == 0 ? Console.Out : TextWriter.Null, communicator)
                        .Run(resumeFrom, stop);
            default:
                throw new VimException($"task: {config.Task} is not supported");
        }
    }
}
