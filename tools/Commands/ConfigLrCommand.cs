using System.CommandLine;
using System.Globalization;
using ScottPlot;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Engine;
using Vim.Core.IO;
using Vim.Data.Evaluation.Reports;
using Vim.Detection;
using Vim.Segmentation;
using static TorchSharp.torch;

namespace Vim.Tools.Commands;

/// <summary>
/// `vim config lr CONFIG [--set k=v] [--processes K] [--auto-scale-lr] [--out DIR] [--groups all|summary] [--interval N] [--log-y]`:
/// the learning rate each optimiser group gets over the schedule, before training (MMEngine's
/// tools/analysis_tools/vis_scheduler.py). The model is built as `vim train` builds it, without data or pretrained
/// weights (neither changes the groups), and <see cref="LrPreview"/> takes every lr from the trainer's own formula.
/// </summary>
public static class ConfigLrCommand
{
    public const string CsvName = "lr.csv", ChartName = "lr.png", MomentumChartName = "momentum.png";

    private const string Help =
        "Preview the learning rate of every optimiser group over the schedule without training (MMEngine's vis_scheduler.py): builds the " +
        "model the config describes (no data, no pretrained file read), splits it into the optimiser's groups (optimizer.no_decay, layer-wise " +
        "decay by optimizer.layer_decay_rate and layer_decay_scope) and computes each group's lr at each iteration as the trainer sets it " +
        "(warmup, poly/cosine/multistep, min_lr, or schedule.param_scheduler's chained schedulers; auto_scale_lr for --processes processes). Writes lr.png (lr against iteration, one line per " +
        "distinct lr scale) and lr.csv (a row per sampled iteration, a column per group) and prints a table: each group's name, parameters, " +
        "weight decay, lr scale and lr at the first iteration, the end of warmup, each milestone (with param_scheduler: each scheduler's begin, end " +
        "and milestones) and the last iteration. With schedule.max_epochs " +
        "the epochs are counted in iterations as vim train counts them, by the training loader on --processes processes (the training splits, " +
        "data.class_balanced_thr, data.train_repeat, data.batch_size, drop_last), so the training data must be readable under data.root.";

    /// <param name="Groups">"all": a table row and CSV column per optimiser group; "summary": one per distinct lr scale.</param>
    /// <param name="Interval">CSV and chart rows every this many iterations (null: <see cref="LrPreview.DefaultInterval"/>).</param>
    public sealed record Request(string Config, IReadOnlyList<string>? Overrides = null, int Processes = 1, string? Out = null,
        string Groups = "all", int? Interval = null, bool LogY = false);

    public static Command Create()
    {
        var configArg = new Argument<string>("config") { Description = "Experiment config (YAML)." };
        var processes = CreateProcessesOption();
        processes.Description += ": auto_scale_lr scales optimizer.lr by data.batch_size × K × train.accumulate_steps / auto_scale_lr.base_batch_size when enabled.";
        var autoScaleLr = new Option<bool>("--auto-scale-lr") { Description = "As `vim train --auto-scale-lr`: the same as --set auto_scale_lr.enable=true." };
        var outDir = new Option<string?>("--out") { Description = "Output folder (default: <work dir>/lr, the work dir as `vim train` resolves it)." };
        var groups = new Option<string>("--groups")
        {
            Description = "all: a table row and CSV column per optimiser group; summary: one per distinct lr scale (groups that differ only in weight decay merged).",
            DefaultValueFactory = _ => "all",
        };
        var interval = new Option<int?>("--interval")
        {
            Description = "Sample every N iterations for lr.csv and lr.png (default: every iteration up to 2000, else about 2000 rows); warmup's end, " +
                "milestones (param_scheduler: each scheduler's begin, end and milestones) and the last iteration are always included.",
        };
        var logY = new Option<bool>("--log-y") { Description = "Logarithmic lr axis in lr.png (layer decay spreads the groups over decades)." };
        var set = ConfigCommand.CreateSetOption();
        var command = new Command("lr", Help);
        command.Arguments.Add(configArg);
        foreach (var option in new Option[] { processes, autoScaleLr, outDir, groups, interval, logY, set }) command.Options.Add(option);
        command.SetAction(parse =>
        {
            string[] overrides = [.. parse.GetValue(set) ?? [], .. parse.GetValue(autoScaleLr) ? ["auto_scale_lr.enable=true"] : Array.Empty<string>()];
            Run(new Request(parse.GetValue(configArg)!, overrides, parse.GetValue(processes), parse.GetValue(outDir), parse.GetValue(groups)!,
                parse.GetValue(interval), parse.GetValue(logY)), Console.Out);
            return 0;
        });
        return command;
    }

    /// <summary>
    /// `--processes K`, the data-parallel processes a run would have, for the commands that count a schedule without training
    /// (`vim config lr`, `vim config show --resolved`): an epoch-counted schedule's epoch is the training loader's on K processes.
    /// </summary>
    public static Option<int> CreateProcessesOption() => new("--processes")
    {
        Description = "Data-parallel processes the run would have (mpirun -np K); with schedule.max_epochs an epoch is the training loader's " +
            "⌊samples / (data.batch_size × K)⌋ iterations",
        DefaultValueFactory = _ => 1,
    };

    public static void CheckProcesses(int processes)
    {
        if (processes < 1)
            throw new VimException($"--processes must be at least 1 (the processes of the run, as mpirun -np K), got {processes}");
    }

    /// <summary>Writes lr.csv and lr.png into the output folder and prints the table; returns the preview.</summary>
    public static LrPreview Run(Request request, TextWriter output)
    {
        CheckProcesses(request.Processes);
        if (request.Groups is not ("all" or "summary"))
            throw new VimException($"--groups must be all or summary, got '{request.Groups}'");
        if (request.Interval is < 1)
            throw new VimException($"--interval must be at least 1 (iterations between rows), got {request.Interval}");
        var (config, _) = ExperimentConfig.Load(request.Config, request.Overrides ?? []);
        var dir = request.Out ?? Path.Combine(TrainCommand.WorkDir(request.Config, config), "lr");
        OutputFolder.Check(dir, "--out");

        var preview = Preview(config, request.Processes);
        if (!config.AutoScaleLr.Enable && request.Processes > 1)
            output.WriteLine($"note: auto_scale_lr.enable is false, so {request.Processes} processes train with optimizer.lr as one does " +
                "(--auto-scale-lr or --set auto_scale_lr.enable=true scales it)");
        var rows = request.Groups == "summary" ? preview.ByScale() : preview.Groups;
        var iterations = preview.SampledIterations(request.Interval ?? preview.DefaultInterval);

        var csv = Path.Combine(dir, CsvName);
        AtomicFile.WriteText(csv, preview.ToCsv(rows, iterations));
        var xs = iterations.Select(i => (double)i).ToArray();
        var series = preview.ByScale()
            .Select(g => (string.Create(CultureInfo.InvariantCulture, $"×{g.LrScale:G4} {g.Name}"), xs, iterations.Select(i => preview.LrAt(g, i)).ToArray()))
            .ToList();
        var chart = Path.Combine(dir, ChartName);
        ReportCharts.SaveLines(chart, $"Learning rate per parameter group: {Path.GetFileNameWithoutExtension(request.Config)}" +
            BeforeReductions(preview, ScheduledParameter.Lr), "iteration", "lr",
            series, legend: Alignment.UpperRight, logY: request.LogY);

        string? momentumChart = null;
        if (preview.Schedule.SchedulesMomentum)
        {
            momentumChart = Path.Combine(dir, MomentumChartName);
            ReportCharts.SaveLines(momentumChart, $"{preview.MomentumName} (every group): {Path.GetFileNameWithoutExtension(request.Config)}" +
                BeforeReductions(preview, ScheduledParameter.Momentum), "iteration",
                preview.MomentumName, [("momentum", xs, iterations.Select(i => preview.MomentumAt(i)!.Value).ToArray())], legend: Alignment.UpperRight);
        }

        output.Write(preview.Table(rows));
        output.WriteLine($"wrote {csv} ({iterations.Count} iterations) and {chart}{(momentumChart is null ? "" : $" and {momentumChart}")}");
        return preview;
    }

    /// <summary>" (before any ReduceOnPlateauLR reduction)" for a chart whose values a ReduceOnPlateau entry may still reduce, else "".</summary>
    private static string BeforeReductions(LrPreview preview, ScheduledParameter parameter) =>
        preview.UnpreviewedReductions(parameter) is { Count: > 0 } entries
            ? $" (before any {string.Join(" or ", entries.Select(e => e.Type).Distinct())} reduction)"
            : "";

    /// <summary>The preview of a loaded config: its model's optimiser groups, as the trainer builds them, for <paramref name="processes"/> processes.</summary>
    public static LrPreview Preview(ExperimentConfig config, int processes)
    {
        // A setting that cannot train costs no model build to refuse.
        TrainingSettings.Check(config);
        // An epoch-counted schedule in the iterations vim train would run on these processes.
        var length = TrainingEpochs.Resolve(config, processes);
        config = length.Config;
        using var scope = NewDisposeScope();
        using nn.Module model = config.Task switch
        {
            TaskKind.Detection => DetectionTask.FromConfig(config),
            TaskKind.Segmentation => EncoderDecoder.FromConfig(config, config.Runtime.Seed),
            _ => throw new VimException($"task: {config.Task} is not supported"),
        };
        // As the tasks count it for the trainer: the backbone's depth from its parameter names.
        int layers = ParameterGroupRules.CountBlocks(model.named_parameters().Select(p => p.name));
        long frozen = model.named_parameters()
            .Where(p => ParameterGroupRules.IsFrozen(p.name, config.Optimizer))
            .Sum(p => p.parameter.numel());
        return new LrPreview(config, ParameterGroupRules.Build(model, config.Optimizer, layers), processes, frozen, length.IterationsPerEpoch);
    }
}
