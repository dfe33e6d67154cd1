using System.Globalization;
using System.Text;
using Vim.Core.Config;
using Vim.Core.IO;

namespace Vim.Core.Engine;

/// <summary>
/// One row of an lr preview: an optimiser group (or, summarised, the groups sharing one lr scale) with its parameter
/// count, weight decay(s) and layer-decay scale.
/// </summary>
public sealed record LrPreviewGroup(string Name, long Parameters, IReadOnlyList<double> WeightDecays, double LrScale);

/// <summary>
/// The learning rate each optimiser group of a model gets at each iteration of a config's schedule, without training
/// (`vim config lr`, MMEngine's vis_scheduler.py). Every ingredient is the trainer's own: the groups as
/// <see cref="ParameterGroupRules"/> built them, the base lr from <see cref="TrainingSettings.BaseLearningRate"/> for the
/// given process count (auto_scale_lr), and each group's lr from <see cref="LrSchedule.GroupLrAt"/>, the formula the
/// trainer's optimiser steps take, so the preview cannot drift from what training sets.
/// </summary>
public sealed class LrPreview
{
    /// <param name="frozenParameters">How many parameters (elements) optimizer.custom_keys freezes: they are in no group.</param>
    /// <param name="iterationsPerEpoch">For a schedule.max_epochs config resolved to iterations (<see cref="EpochSchedule.Resolve"/>), its
    /// epoch's iterations, which the summary line states; null for an iteration-counted config.</param>
    public LrPreview(ExperimentConfig config, IReadOnlyList<ParameterGroup> groups, int processes, long frozenParameters = 0, int? iterationsPerEpoch = null)
    {
        IterationsPerEpoch = iterationsPerEpoch;
        FrozenParameters = frozenParameters;
        if (processes < 1) throw new ArgumentOutOfRangeException(nameof(processes), processes, "at least one process");
        if (groups.Count == 0) throw new VimException("the model has no trainable parameters, so no optimiser group has an lr to preview");
        // A setting vim train would refuse (a negative lr, milestones out of order) is refused here too, naming the key.
        TrainingSettings.Check(config);
        Schedule = new LrSchedule(config.Schedule);
        InitialMomentum = OptimizerFactory.InitialMomentum(config.Optimizer);
        MomentumName = config.Optimizer.Type == OptimizerKind.Sgd ? "momentum" : "momentum (betas[0])";
        BaseLr = TrainingSettings.BaseLearningRate(config, processes, out var explanation);
        BaseLrExplanation = explanation;
        Groups = groups.Select(g => new LrPreviewGroup(g.Name, g.Parameters.Sum(p => p.Parameter.numel()), [g.WeightDecay], g.LrScale)).ToList();
    }

    public LrSchedule Schedule { get; }

    /// <summary>The iterations of an epoch of an epoch-counted (schedule.max_epochs) config; null when it counts iterations.</summary>
    public int? IterationsPerEpoch { get; }

    /// <summary>Parameters (elements) no group holds because optimizer.custom_keys gives them lr_mult 0.</summary>
    public long FrozenParameters { get; }

    /// <summary>optimizer.lr, scaled by auto_scale_lr when it is enabled.</summary>
    public double BaseLr { get; }

    /// <summary>How auto_scale_lr reached <see cref="BaseLr"/>; null when it is off.</summary>
    public string? BaseLrExplanation { get; }

    /// <summary>The optimiser's groups, in its order.</summary>
    public IReadOnlyList<LrPreviewGroup> Groups { get; }

    private int MaxIters => Schedule.MaxIters;

    /// <summary>
    /// Why the lrs (or momenta) shown are not the run's where schedule.param_scheduler holds a ReduceOnPlateauLR (or
    /// ReduceOnPlateauMomentum), whose reductions depend on the validation metric: they are the values before any reduction,
    /// an upper bound. Null without one.
    /// </summary>
    public string? PlateauNote => Schedule.Chained?.Plateaus is { Count: > 0 } plateaus
        ? $"{string.Join(", ", plateaus.Select(p => $"{p.Entry.Name} reduces the {p.Entry.ParameterName}"))} when " +
          $"{string.Join(", ", plateaus.Select(p => p.Entry.Monitor).Distinct())} stops improving, which only training can tell: the " +
          $"{string.Join(" and ", plateaus.Select(p => p.Entry.Sets(ScheduledParameter.Lr) ? "lrs" : "momentum values").Distinct())} shown are those before any reduction (an upper bound), " +
          "not a preview of its reductions"
        : null;

    /// <summary>The ReduceOnPlateau entries that reduce <paramref name="parameter"/>, whose reductions no preview shows.</summary>
    public IReadOnlyList<ParamSchedulerEntry> UnpreviewedReductions(ScheduledParameter parameter) =>
        Schedule.Chained?.Plateaus.Select(p => p.Entry).Where(e => e.Sets(parameter)).ToList() ?? [];

    /// <summary>The configured momentum (SGD's momentum, AdamW's betas[0]) a momentum scheduler starts from.</summary>
    public double InitialMomentum { get; }

    /// <summary>"momentum" for SGD, "momentum (betas[0])" for AdamW: the column and chart name.</summary>
    public string MomentumName { get; }

    /// <summary>The momentum the optimiser step of <paramref name="iteration"/> takes (every group's); null where nothing schedules it.</summary>
    public double? MomentumAt(int iteration) => Schedule.MomentumAt(InitialMomentum, iteration);

    /// <summary>The lr of a group at <paramref name="iteration"/>: what the optimiser step of that iteration applies.</summary>
    public double LrAt(LrPreviewGroup group, int iteration) => Schedule.GroupLrAt(BaseLr, group.LrScale, iteration);

    /// <summary>
    /// One row per distinct lr scale (the groups that share it have one lr curve): parameters summed, weight decays listed,
    /// named by their groups' names joined with "+", highest scale last as the optimiser orders layers.
    /// </summary>
    public IReadOnlyList<LrPreviewGroup> ByScale() =>
        Groups.GroupBy(g => g.LrScale)
            .Select(s => new LrPreviewGroup(string.Join("+", s.Select(g => g.Name)), s.Sum(g => g.Parameters),
                s.SelectMany(g => g.WeightDecays).Distinct().ToList(), s.Key))
            .OrderBy(g => g.LrScale)
            .ToList();

    /// <summary>
    /// The iterations where the schedule changes course, labelled: the first, the first at the full rate after warmup,
    /// each multistep milestone (the first iteration at the reduced rate) and the last (max_iters − 1, the last step); with
    /// schedule.param_scheduler, each scheduler's begin and end (the first iteration it no longer steps) and its milestones,
    /// in the order they fall.
    /// </summary>
    public IReadOnlyList<(string Label, int Iteration)> KeyIterations()
    {
        var keys = new List<(string Label, int Iteration)> { ("first", 0) };
        if (Schedule.Chained is { } chained)
        {
            var turns = new List<(string Label, int Iteration)>();
            foreach (var scheduler in chained.Schedulers)
            {
                string name = scheduler.Entry.Type.ToString();
                turns.Add(($"{name} begin", scheduler.BeginIteration));
                turns.Add(($"{name} end", scheduler.EndIteration));
                if (scheduler.Entry.Type == ParamSchedulerType.MultiStepLR)
                    turns.AddRange(scheduler.Milestones.Select(m => ($"{name} milestone", scheduler.BeginIteration + m * scheduler.StepEvery)));
            }
            // One label per iteration (the first scheduler's, in list order), the last one's being "last".
            keys.AddRange(turns.Where(t => t.Iteration > 0 && t.Iteration < MaxIters - 1).DistinctBy(t => t.Iteration).OrderBy(t => t.Iteration));
        }
        else
        {
            int warmup = Schedule.Config.WarmupIters;
            if (warmup > 0 && warmup < MaxIters) keys.Add(("warmup end", warmup));
            if (Schedule.Config.Policy == LrPolicy.Multistep)
                keys.AddRange(Schedule.Config.Milestones.Where(m => m < MaxIters).Select(m => ("milestone", m)));
        }
        if (MaxIters > 1) keys.Add(("last", MaxIters - 1));
        return keys;
    }

    /// <summary>
    /// The iterations a chart or CSV samples: every <paramref name="interval"/>-th, plus each key iteration and the one before
    /// it, so a step (warmup's end, a milestone) is drawn where it happens rather than between samples.
    /// </summary>
    public IReadOnlyList<int> SampledIterations(int interval)
    {
        if (interval < 1) throw new ArgumentOutOfRangeException(nameof(interval), interval, "at least 1");
        var iterations = new SortedSet<int>();
        for (int i = 0; i < MaxIters; i += interval) iterations.Add(i);
        foreach (var (_, iteration) in KeyIterations())
        {
            iterations.Add(iteration);
            if (iteration > 0) iterations.Add(iteration - 1);
        }
        return iterations.ToList();
    }

    /// <summary>The default sampling interval: every iteration up to 2000, else about 2000 rows (184k iterations would make
    /// a CSV of a hundred megabytes with no more to see).</summary>
    public int DefaultInterval => Math.Max(1, (int)Math.Ceiling(MaxIters / 2000.0));

    /// <summary>RFC 4180 CSV: a header "iteration" and one column per group, then one row per iteration, lrs round-trippable.</summary>
    public string ToCsv(IReadOnlyList<LrPreviewGroup> columns, IReadOnlyList<int> iterations)
    {
        var text = new StringBuilder("iteration");
        foreach (var group in columns) text.Append(',').Append(CsvText.Field(group.Name));
        if (Schedule.SchedulesMomentum) text.Append(',').Append(CsvText.Field(MomentumName));
        text.Append("\r\n");
        foreach (int iteration in iterations)
        {
            text.Append(iteration.ToString(CultureInfo.InvariantCulture));
            foreach (var group in columns) text.Append(',').Append(LrAt(group, iteration).ToString("R", CultureInfo.InvariantCulture));
            if (MomentumAt(iteration) is { } momentum) text.Append(',').Append(momentum.ToString("R", CultureInfo.InvariantCulture));
            text.Append("\r\n");
        }
        return text.ToString();
    }

    /// <summary>
    /// A Markdown table: each row's name, parameter count, weight decay, lr scale and its lr at the
    /// <see cref="KeyIterations"/>, then the base lr and how it was reached.
    /// </summary>
    public string Table(IReadOnlyList<LrPreviewGroup> rows)
    {
        var keys = KeyIterations();
        var header = new List<string> { "group", "params", "weight decay", "lr scale" };
        header.AddRange(keys.Select(k => $"lr {k.Label} (it {k.Iteration})"));
        var cells = rows.Select(r =>
        {
            var row = new List<string>
            {
                r.Name, r.Parameters.ToString("N0", CultureInfo.InvariantCulture),
                string.Join(", ", r.WeightDecays.Select(Number)), Number(r.LrScale),
            };
            row.AddRange(keys.Select(k => LrAt(r, k.Iteration).ToString("0.####e+0", CultureInfo.InvariantCulture)));
            return row;
        }).ToList();
        var widths = header.Select((h, c) => Math.Max(h.Length, cells.Select(r => r[c].Length).DefaultIfEmpty(0).Max())).ToList();
        // The name column reads left to right; numbers line up on the right.
        string Line(IReadOnlyList<string> row) =>
            "| " + string.Join(" | ", row.Select((cell, c) => c == 0 ? cell.PadRight(widths[c]) : cell.PadLeft(widths[c]))) + " |";
        var text = new StringBuilder();
        text.AppendLine(Line(header));
        text.AppendLine("|" + string.Join("|", widths.Select((w, c) => c == 0 ? ":" + new string('-', w + 1) : new string('-', w + 1) + ":")) + "|");
        foreach (var row in cells) text.AppendLine(Line(row));
        if (Schedule.SchedulesMomentum)
            text.AppendLine(Line(new List<string> { MomentumName + ", every group", "", "", "" }
                .Concat(keys.Select(k => MomentumAt(k.Iteration)!.Value.ToString("0.####", CultureInfo.InvariantCulture))).ToList()));
        text.AppendLine();
        text.AppendLine(string.Create(CultureInfo.InvariantCulture, $"base lr {Setting(BaseLr)}; schedule: {DescribeSchedule(Schedule)}"));
        if (IterationsPerEpoch is { } perEpoch)
            text.AppendLine($"schedule.max_epochs {MaxIters / perEpoch} × {perEpoch} iterations per epoch (the training loader's): epoch e (from 0) starts at iteration e × {perEpoch}");
        text.AppendLine(BaseLrExplanation ?? "auto_scale_lr is off: optimizer.lr is the base lr");
        if (PlateauNote is { } plateauNote) text.AppendLine("note: " + plateauNote);
        if (FrozenParameters > 0)
            text.AppendLine(string.Create(CultureInfo.InvariantCulture, $"frozen by optimizer.custom_keys (lr_mult 0), in no group: {FrozenParameters:N0} parameters"));
        return text.ToString();
    }

    private static string DescribeSchedule(LrSchedule lrSchedule)
    {
        var schedule = lrSchedule.Config;
        if (lrSchedule.Chained is { } chained)
            return $"{lrSchedule.MaxIters} iterations, {chained.Describe()} (chained in list order)";
        var policy = schedule.Policy switch
        {
            LrPolicy.Poly => string.Create(CultureInfo.InvariantCulture, $"poly (power {Setting(schedule.Power)}, min_lr {Setting(schedule.MinLr)})"),
            LrPolicy.Cosine => string.Create(CultureInfo.InvariantCulture, $"cosine (min_lr {Setting(schedule.MinLr)})"),
            LrPolicy.Multistep => string.Create(CultureInfo.InvariantCulture, $"multistep (×{Setting(schedule.Gamma)} at [{string.Join(", ", schedule.Milestones)}])"),
            _ => "constant",
        };
        var warmup = schedule.WarmupIters > 0
            ? string.Create(CultureInfo.InvariantCulture, $"linear warmup over {schedule.WarmupIters} iterations from {Setting(schedule.WarmupRatio)} × lr")
            : "no warmup";
        return $"{policy} over {schedule.IterationCount()} iterations, {warmup}";
    }

    private static string Number(double value) => value.ToString("G4", CultureInfo.InvariantCulture);

    /// <summary>Settings in the summary line: plain up to six digits, small ones as 1e-06 (not G's 1E-06).</summary>
    private static string Setting(double value) =>
        value != 0 && Math.Abs(value) < 1e-4 ? value.ToString("0.#####e-00", CultureInfo.InvariantCulture) : value.ToString("G6", CultureInfo.InvariantCulture);
}
