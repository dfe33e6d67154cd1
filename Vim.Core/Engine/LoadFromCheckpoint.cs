using TorchSharp;
using Vim.Core.Checkpoints;
using Vim.Core.Config;
using static TorchSharp.torch;

namespace Vim.Core.Engine;

/// <summary>
/// MMEngine's load_from (the config's <see cref="ExperimentConfig.LoadFrom"/>, `vim train --load-from`): a fresh run starts
/// from the whole-model weights of a checkpoint, e.g. a COCO-trained detector fine-tuned on other data. Weights only,
/// unlike a resume: the iteration, optimiser, schedule, EMA and generator start afresh. Loaded non-strictly as MMEngine's
/// load_checkpoint(strict=False): keys the checkpoint lacks keep their values (model.backbone.pretrained's or the
/// initialisation), keys the model lacks are left over, and a tensor of another shape (a head trained for another class
/// count) is skipped and reported, not refused. A checkpoint of which nothing fits is refused: it is no weights of this
/// model (a backbone-only classifier belongs in model.backbone.pretrained).
/// </summary>
public static class LoadFromCheckpoint
{
    /// <summary>Where in the work dir the trainer saves what was loaded (as pretrained_load.txt for model.backbone.pretrained).</summary>
    public const string ReportFileName = "load_from.txt";

    /// <summary>The checkpoint load_from names, or null when it names none (null or empty, as model.backbone.pretrained).</summary>
    public static string? Configured(ExperimentConfig config) => config.LoadFrom is { Length: > 0 } path ? path : null;

    /// <summary>
    /// Refuses a load_from that is no file, or no .pth or safetensors file, naming the option: cheap, so `vim train` runs it
    /// before the work dir, the data or the model.
    /// </summary>
    public static void RequireCheckpointFile(string path, bool ema = false) => Named(ema, () =>
    {
        CheckpointFile.RequireFile(path);
        CheckpointFile.DetectFormat(path);
    });

    /// <summary>
    /// Copies the checkpoint's weights into <paramref name="model"/>: a `vim train` checkpoint's "model" (or, with
    /// <paramref name="ema"/>, "ema"), after its checksums are verified; other files' "model" (or "model_ema"), else
    /// "state_dict", else the whole file, as <see cref="CheckpointFile.ModelStateDict"/> picks. Every error names load_from and the file.
    /// </summary>
    public static StateDictLoadReport Load(nn.Module model, string path, bool ema) => Named(ema, () =>
    {
        using var scope = NewDisposeScope();
        using var file = CheckpointFile.Load(path);
        string entry;
        if (TrainingCheckpoint.IsTrainingCheckpoint(file))
        {
            TrainingCheckpoint.RequireIntact(file);
            entry = TrainingCheckpoint.WeightsEntry(file, ema, "load_from_ema: false");
        }
        else
        {
            entry = file.ModelEntry(ema);
        }
        var weights = file.StateDict(entry);
        var report = StateDictLoader.Load(model, weights, new StateDictLoadOptions { Strict = false },
            $"{path}[{(entry.Length == 0 ? "state dict" : entry)}]");
        // Nothing was copied: the model is as it was.
        if (report.Loaded.Count == 0) throw NothingFits(report, model, weights.Count);
        return report;
    });

    /// <summary>
    /// Loads the configured checkpoint, if any, and prints what was loaded; null when load_from names none.
    /// </summary>
    public static StateDictLoadReport? LoadConfigured(nn.Module model, ExperimentConfig config, TextWriter log)
    {
        if (Configured(config) is not { } path) return null;
        var report = Load(model, path, config.LoadFromEma);
        log.WriteLine(Summary(report));
        return report;
    }

    /// <summary>The report as printed and saved: the load report, and a note on what was skipped for its shape.</summary>
    public static string Summary(StateDictLoadReport report)
    {
        var text = $"load_from: {report}";
        if (report.Mismatched.Count > 0)
            text += $"{Environment.NewLine}note: load_from skipped {report.Mismatched.Count} tensor(s) of another shape than the model's " +
                    "(e.g. a head trained for another class count, a detector's box deltas, class-agnostic against class-specific, or its RPN head for " +
                    "another count of anchors per location); they keep their initial values and train from there";
        return text;
    }

    private static VimException NothingFits(StateDictLoadReport report, nn.Module model, int tensors)
    {
        static string Examples(IEnumerable<string> keys) => string.Join(", ", keys.Take(3));
        var parts = new List<string>();
        if (report.Unexpected.Count > 0) parts.Add($"{report.Unexpected.Count} not in the model (e.g. {Examples(report.Unexpected)})");
        if (report.Mismatched.Count > 0) parts.Add($"{report.Mismatched.Count} of another shape (e.g. {Examples(report.Mismatched.Select(m => m.ToString()))})");
        if (report.Ignored.Count > 0) parts.Add($"{report.Ignored.Count} ignored");
        return new VimException($"{report.Source}: none of its {tensors} tensor(s) fits the model" +
            (parts.Count > 0 ? $" ({string.Join("; ", parts)})" : "") +
            $", whose keys read e.g. {Examples(model.state_dict().Keys)}. load_from takes a whole model's weights with the model's key names " +
            "(a checkpoint `vim train` wrote, or a state dict of this model); a backbone-only checkpoint such as an ImageNet classifier goes in model.backbone.pretrained");
    }

    /// <summary>Runs <paramref name="work"/>, prefixing its refusals with the options that named the file.</summary>
    private static T Named<T>(bool ema, Func<T> work)
    {
        try
        {
            return work();
        }
        catch (VimException e)
        {
            throw new VimException($"load_from{(ema ? " (load_from_ema: true)" : "")}: {e.Message}", e);
        }
    }

    private static void Named(bool ema, Action work) => Named(ema, () =>
    {
        work();
        return 0;
    });
}
