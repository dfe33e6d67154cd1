using System.CommandLine;
using System.Globalization;
using Vim.Core;
using Vim.Core.Checkpoints;
using Vim.Core.Config;
using Vim.Core.Engine;
using Vim.Detection;
using Vim.Segmentation;

namespace Vim.Tools.Commands;

/// <summary>
/// `vim bench infer CONFIG [CONFIG2 ...] [--checkpoint C] [--images 50] [--warmup 5] [--rounds 1] [--out DIR] [--set k=v]`:
/// end-to-end inference speed of each config's model on its validation images, as `vim test` runs it, with a stage
/// breakdown (<see cref="InferenceBenchmark"/>).
/// </summary>
public static class BenchInferCommand
{
    public static Command Create()
    {
        var configs = new Argument<string[]>("configs") { Description = "Experiment configs (YAML); with several, each is compared with the first.", Arity = ArgumentArity.OneOrMore };
        var checkpoints = new Option<string[]>("--checkpoint")
        {
            Description = "Training checkpoint(s): one for every config, or one per config in order. Without one the weights are the initial ones " +
                "(speed only; an untrained detector's detections, and so its post-processing time, differ from a trained one's).",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var images = new Option<int>("--images") { Description = "Timed predictions per pass, over the first validation images (cycling when the split holds fewer).", DefaultValueFactory = _ => 50 };
        var warmup = new Option<int>("--warmup") { Description = "Untimed predictions before each pass.", DefaultValueFactory = _ => 5 };
        var rounds = new Option<int>("--rounds")
        {
            Description = "Passes of each config, alternating (A, B, A, B, ...): latency is the median of the passes' medians and each speed ratio the median of the per-round ratios, steadier on a shared machine.",
            DefaultValueFactory = _ => 1,
        };
        var output = new Option<string>("--out") { Description = "Output folder for infer.json, infer.csv, stages.csv and stages.png (stacked stage times per config).", DefaultValueFactory = _ => Path.Combine("artifacts", "bench", "infer") };
        var set = ConfigCommand.CreateSetOption();
        var command = new Command("infer", "End-to-end inference speed on validation images, as `vim test` predicts (images pre-loaded): median and mean " +
            "latency, images/s and a per-stage breakdown per config; with several configs, the speed of each against the first.");
        command.Arguments.Add(configs);
        foreach (var option in new Option[] { checkpoints, images, warmup, rounds, output, set }) command.Options.Add(option);
        command.SetAction(parse =>
        {
            var settings = new InferenceBenchmark.Settings(
                BenchCommand.Positive(parse.GetValue(images), "--images"),
                BenchCommand.NonNegative(parse.GetValue(warmup), "--warmup"),
                BenchCommand.Positive(parse.GetValue(rounds), "--rounds"));
            var dir = parse.GetValue(output)!;
            OutputFolder.Check(dir, "--out");
            var subjects = Load(parse.GetValue(configs) ?? [], parse.GetValue(checkpoints) ?? [], parse.GetValue(set) ?? [], settings, Console.Out);
            try
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"timing {subjects.Count} config(s): {settings.Warmup} warm-up and {settings.Images} timed predictions per pass, {settings.Rounds} round(s), {TorchSharp.torch.get_num_threads()} torch threads"));
                var report = InferenceBenchmark.Run(subjects, settings, Console.Out);
                var written = InferenceBenchmark.Write(report, dir);
                InferenceBenchmark.Print(report, Console.Out);
                Console.WriteLine($"wrote {string.Join(", ", written)} in {dir}");
            }
            finally
            {
                foreach (var subject in subjects) subject.Dispose();
            }
            return 0;
        });
        return command;
    }

    /// <summary>
    /// Each config's task built as `vim test` builds it (model.backbone.pretrained not read), its checkpoint loaded, and
    /// up to <see cref="InferenceBenchmark.Settings.Images"/> validation images in memory. Every file is checked before
    /// any model is built.
    /// </summary>
    public static IReadOnlyList<IInferenceSubject> Load(IReadOnlyList<string> configPaths, IReadOnlyList<string> checkpointPaths,
        IReadOnlyList<string> overrides, InferenceBenchmark.Settings settings, TextWriter log)
    {
        if (configPaths.Count == 0) throw new VimException("bench infer: no config given");
        if (checkpointPaths.Count > 1 && checkpointPaths.Count != configPaths.Count)
            throw new VimException($"--checkpoint: {checkpointPaths.Count} checkpoints for {configPaths.Count} configs; give one for every config, or one per config in order");
        foreach (var path in checkpointPaths) CheckpointFile.RequireFile(path);
        var configs = configPaths.Select(path => TrainCommand.Prepare(path, null, overrides).Config).ToList();
        // One thread count for all: TrainCommand.Prepare applies each config's runtime.threads to the whole process.
        var threads = configs.Select(c => c.Runtime.Threads).Distinct().ToList();
        if (threads.Count > 1)
            throw new VimException($"runtime.threads differs between the configs ({string.Join(", ", configPaths.Select((p, i) => $"{p}: {configs[i].Runtime.Threads}"))}); " +
                "speeds compare on the same threads: add --set runtime.threads=N");

        var subjects = new List<IInferenceSubject>();
        try
        {
            for (int i = 0; i < configs.Count; i++)
            {
                var checkpoint = checkpointPaths.Count == 0 ? null : checkpointPaths[checkpointPaths.Count == 1 ? 0 : i];
                var name = Name(configPaths, i);
                log.WriteLine($"{name}: building {configs[i].Task.ToString().ToLowerInvariant()} model from {configPaths[i]}, " +
                    (checkpoint is null ? "initial weights (no --checkpoint)" : $"weights from {checkpoint}"));
                var subject = Build(name, configPaths[i], configs[i], checkpoint, settings.Images);
                subjects.Add(subject);
                log.WriteLine($"{name}: {subject.ImageCount} validation image(s) in memory on {subject.Device}");
            }
            return subjects;
        }
        catch
        {
            foreach (var subject in subjects) subject.Dispose();
            throw;
        }
    }

    private static IInferenceSubject Build(string name, string configPath, ExperimentConfig config, string? checkpoint, int images)
    {
        // The checkpoint holds every weight, and without one the initial weights serve for timing: model.backbone.pretrained is not read.
        if (config.Task == TaskKind.Detection)
        {
            var detection = new DetectionTask(config, TextWriter.Null, weightsFromCheckpoint: true);
            LoadCheckpoint(detection, detection.Model, checkpoint, configPath);
            return InferenceSubject.ForDetection(name, configPath, checkpoint, detection, images);
        }
        var segmentation = new SegmentationTask(config, TextWriter.Null, weightsFromCheckpoint: true);
        LoadCheckpoint(segmentation, segmentation.Model, checkpoint, configPath);
        return InferenceSubject.ForSegmentation(name, configPath, checkpoint, segmentation, config.Model.SegTest, images);
    }

    /// <summary>Loads <paramref name="checkpoint"/> (if any) into the task's model; disposes the task when that fails.</summary>
    private static void LoadCheckpoint(IDisposable task, TorchSharp.torch.nn.Module model, string? checkpoint, string configPath)
    {
        try
        {
            if (checkpoint is not null) TrainingCheckpoint.LoadWeights(model, checkpoint, ema: false);
        }
        catch (Exception e)
        {
            task.Dispose();
            if (e is VimException) throw new VimException($"--checkpoint {e.Message} (config {configPath})", e);
            throw;
        }
    }

    /// <summary>The config's file name; a name given before gets " (2)", " (3)", ... so that every result row is its own.</summary>
    private static string Name(IReadOnlyList<string> configPaths, int index)
    {
        var name = Path.GetFileNameWithoutExtension(configPaths[index]);
        int earlier = configPaths.Take(index).Count(p => Path.GetFileNameWithoutExtension(p) == name);
        return earlier == 0 ? name : $"{name} ({earlier + 1})";
    }
}
