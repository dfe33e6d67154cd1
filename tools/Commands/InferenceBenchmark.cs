using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using MathNet.Numerics.Statistics;
using Vim.Core.Diagnostics;
using Vim.Core.IO;
using Vim.Data.Evaluation.Reports;
using static TorchSharp.torch;

namespace Vim.Tools.Commands;

/// <summary>
/// End-to-end inference speed of detectors and segmentors (`vim bench infer`; mmdet's and mmseg's benchmark.py): every
/// round runs each subject in turn, <see cref="Settings.Warmup"/> untimed predictions then
/// <see cref="Settings.Images"/> timed ones, each timed on its own with its stages (<see cref="StageProfiler"/>). Speed
/// ratios pair the subjects' times within a round (<see cref="PairedRounds"/>).
/// </summary>
public static class InferenceBenchmark
{
    /// <param name="Images">Timed predictions per pass (cycling through the images in memory when there are fewer).</param>
    /// <param name="Warmup">Untimed predictions before each pass.</param>
    /// <param name="Rounds">Passes of every subject, alternating.</param>
    public sealed record Settings(int Images, int Warmup, int Rounds);

    /// <summary>One timed prediction: its wall time (the freeing of its tensors included), its stages, and its detections (detection only).</summary>
    public sealed record ImageTiming(double TotalMs, IReadOnlyList<StageProfiler.StageTotal> Stages, long? Detections);

    /// <summary>One subject's pass in one round: the median and mean time per image and the throughput (images / total time).</summary>
    public sealed record RoundResult(int Round, double MedianMs, double MeanMs, double ImagesPerSecond);

    /// <summary>A stage's time per image over every timed prediction, and its share of the mean prediction.</summary>
    public sealed record StageResult(string Stage, double MedianMs, double MeanMs, double Share);

    /// <summary>
    /// One subject over all rounds. MedianMs: the median of the rounds' medians; MeanMs: the mean over every timed image;
    /// ImagesPerSecond: 1000 / MeanMs (images over their total time, as mmdet's fps); SpeedRatio: the first subject's time
    /// over this one's, the median of the rounds' ratios of medians (1 for the first; above 1 is faster). Stages end with
    /// <see cref="OtherStage"/>, the time no stage covered.
    /// </summary>
    public sealed record SubjectResult(string Name, string Config, string Task, string? Checkpoint, string Device, int DistinctImages,
        double MedianMs, double MeanMs, double ImagesPerSecond, double SpeedRatio, double? MeanDetections,
        IReadOnlyList<StageResult> Stages, IReadOnlyList<RoundResult> Rounds);

    /// <summary>What infer.json holds: the settings, each subject's result and the notes printed with them.</summary>
    public sealed record Report(int Images, int Warmup, int Rounds, int Threads, IReadOnlyList<SubjectResult> Results, IReadOnlyList<string> Notes);

    /// <summary>The prediction time no named stage covered (loop and bookkeeping, the freeing of tensors).</summary>
    public const string OtherStage = "other";

    /// <summary>Runs the rounds and returns the report; <paramref name="progress"/> gets a line per pass and every tenth image.</summary>
    public static Report Run(IReadOnlyList<IInferenceSubject> subjects, Settings settings, TextWriter progress)
    {
        if (subjects.Count == 0) throw new ArgumentException("no subjects to time", nameof(subjects));
        var timings = subjects.Select(_ => new List<(int Round, IReadOnlyList<ImageTiming> Images)>()).ToList();
        for (int round = 1; round <= settings.Rounds; round++)
        {
            for (int s = 0; s < subjects.Count; s++)
            {
                var subject = subjects[s];
                var pass = Pass(subject, settings, image => progress.WriteLine(
                    $"  {subject.Name}: round {round}/{settings.Rounds}, {image}/{settings.Images} images timed"));
                timings[s].Add((round, pass));
                var summary = Summarise(round, pass);
                progress.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{subject.Name}: round {round}/{settings.Rounds}: median {summary.MedianMs:F1} ms, mean {summary.MeanMs:F1} ms, {summary.ImagesPerSecond:F2} images/s"));
            }
        }
        var results = new List<SubjectResult>();
        for (int s = 0; s < subjects.Count; s++)
            results.Add(Combine(subjects[s], timings[s], timings[0]));
        return new Report(settings.Images, settings.Warmup, settings.Rounds, get_num_threads(), results, Notes(subjects, settings));
    }

    /// <summary>
    /// One pass: <see cref="Settings.Warmup"/> predictions, then <see cref="Settings.Images"/> timed ones; image i is the
    /// subject's image i mod its count. On a GPU every timed interval ends with a synchronisation.
    /// </summary>
    public static IReadOnlyList<ImageTiming> Pass(IInferenceSubject subject, Settings settings, Action<int>? everyTenthImage = null)
    {
        Action? synchronize = subject.Device.type == TorchSharp.DeviceType.CUDA ? () => cuda.synchronize(subject.Device) : null;
        for (int w = 0; w < settings.Warmup; w++)
            using (NewDisposeScope())
                subject.Predict(w % subject.ImageCount);
        synchronize?.Invoke();
        var images = new List<ImageTiming>(settings.Images);
        for (int i = 0; i < settings.Images; i++)
        {
            long? detections;
            double totalMs;
            IReadOnlyList<StageProfiler.StageTotal> stages;
            StageProfiler.Start(subject.Stages, synchronize);
            try
            {
                long started = Stopwatch.GetTimestamp();
                // The prediction's tensors are freed inside the timed interval, as PyTorch frees them during the forward.
                using (NewDisposeScope())
                {
                    detections = subject.Predict(i % subject.ImageCount);
                    synchronize?.Invoke();
                }
                totalMs = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            }
            finally
            {
                stages = StageProfiler.Stop();
            }
            images.Add(new ImageTiming(totalMs, stages, detections));
            if ((i + 1) % 10 == 0 && i + 1 < settings.Images) everyTenthImage?.Invoke(i + 1);
        }
        return images;
    }

    /// <summary>A pass's median and mean time per image, and its images over its total time.</summary>
    public static RoundResult Summarise(int round, IReadOnlyList<ImageTiming> pass)
    {
        var totals = pass.Select(t => t.TotalMs).ToList();
        return new RoundResult(round, totals.Median(), totals.Mean(), 1000.0 * totals.Count / totals.Sum());
    }

    /// <summary>
    /// Per stage (in the subject's order, then <see cref="OtherStage"/>): the median and mean over all timed images of its
    /// time in each image (0 where it did not run), and its mean's share of the mean image time.
    /// </summary>
    public static IReadOnlyList<StageResult> StageBreakdown(IReadOnlyList<string> stages, IReadOnlyList<ImageTiming> images)
    {
        double meanTotal = images.Average(t => t.TotalMs);
        StageResult Of(string stage, Func<ImageTiming, double> perImage)
        {
            var values = images.Select(perImage).ToList();
            return new StageResult(stage, values.Median(), values.Mean(), values.Mean() / meanTotal);
        }
        static double Named(ImageTiming image, string stage) => image.Stages.Where(s => s.Stage == stage).Sum(s => s.Milliseconds);
        return
        [
            .. stages.Select(stage => Of(stage, image => Named(image, stage))),
            Of(OtherStage, image => image.TotalMs - stages.Sum(stage => Named(image, stage))),
        ];
    }

    private static SubjectResult Combine(IInferenceSubject subject, IReadOnlyList<(int Round, IReadOnlyList<ImageTiming> Images)> passes,
        IReadOnlyList<(int Round, IReadOnlyList<ImageTiming> Images)> baseline)
    {
        var rounds = passes.Select(p => Summarise(p.Round, p.Images)).ToList();
        var all = passes.SelectMany(p => p.Images).ToList();
        double meanMs = all.Average(t => t.TotalMs);
        var detections = all.Where(t => t.Detections is not null).Select(t => (double)t.Detections!.Value).ToList();
        return new SubjectResult(subject.Name, subject.Config, subject.Task, subject.Checkpoint, subject.Device.ToString(), subject.ImageCount,
            rounds.Select(r => r.MedianMs).Median(), meanMs, 1000.0 / meanMs, SpeedRatio(baseline.Select(p => Summarise(p.Round, p.Images)).ToList(), rounds),
            detections.Count == 0 ? null : detections.Average(), StageBreakdown(subject.Stages, all), rounds);
    }

    /// <summary>The baseline's median time over the candidate's, paired by round, the median over rounds.</summary>
    public static double SpeedRatio(IReadOnlyList<RoundResult> baseline, IReadOnlyList<RoundResult> candidate) =>
        PairedRounds.MedianRatio(baseline.ToDictionary(r => r.Round, r => r.MedianMs), candidate.ToDictionary(r => r.Round, r => r.MedianMs));

    /// <summary>What a reader of the numbers must know: initial weights, and validation splits smaller than a pass.</summary>
    private static List<string> Notes(IReadOnlyList<IInferenceSubject> subjects, Settings settings)
    {
        var notes = new List<string>();
        foreach (var subject in subjects)
        {
            if (subject.Checkpoint is null)
                notes.Add(subject.Task == "detection"
                    ? $"{subject.Name}: no --checkpoint, so the weights are the initial ones: an untrained detector keeps other proposals and detections than a trained one (see mean_detections), so its box_inference, mask_head and paste times are not representative"
                    : $"{subject.Name}: no --checkpoint, so the weights are the initial ones (segmentation does the same work whatever the weights)");
            if (subject.ImageCount < settings.Images)
                notes.Add($"{subject.Name}: {subject.ImageCount} validation image(s) in memory, so the {settings.Images} timed per pass cycle through them");
        }
        return notes;
    }

    /// <summary>Writes infer.json, infer.csv, stages.csv and stages.png into <paramref name="dir"/> (each atomically); returns their names.</summary>
    public static IReadOnlyList<string> Write(Report report, string dir)
    {
        Directory.CreateDirectory(dir);
        AtomicFile.WriteText(Path.Combine(dir, "infer.json"), JsonSerializer.Serialize(report, MetricJson.Indented));
        AtomicFile.WriteText(Path.Combine(dir, "infer.csv"), SummaryCsv(report.Results));
        AtomicFile.WriteText(Path.Combine(dir, "stages.csv"), StagesCsv(report.Results));
        var results = report.Results;
        // Every stage any subject has, in first-seen order, so each keeps one colour across the bars; "other" last, on top.
        var stageNames = results.SelectMany(r => r.Stages.Select(s => s.Stage)).Where(s => s != OtherStage).Distinct().Append(OtherStage).ToList();
        var segments = stageNames.Select(stage => (stage, (IReadOnlyList<double>)results
            .Select(r => r.Stages.FirstOrDefault(s => s.Stage == stage)?.MeanMs ?? 0).ToList())).ToList();
        ReportCharts.SaveStackedBars(Path.Combine(dir, "stages.png"),
            $"Inference time per image by stage (mean of {report.Images} images × {report.Rounds} round(s))", "config", "ms per image",
            results.Select(r => r.Name).ToList(), segments);
        return ["infer.json", "infer.csv", "stages.csv", "stages.png"];
    }

    private static string SummaryCsv(IReadOnlyList<SubjectResult> results)
    {
        var text = new StringBuilder("name,config,task,checkpoint,device,distinct_images,median_ms,mean_ms,images_per_s,speed_ratio,mean_detections,rounds\r\n");
        foreach (var r in results)
            text.Append(string.Create(CultureInfo.InvariantCulture,
                $"{CsvText.Field(r.Name)},{CsvText.Field(r.Config)},{r.Task},{CsvText.Field(r.Checkpoint ?? "")},{r.Device},{r.DistinctImages},{r.MedianMs:F3},{r.MeanMs:F3},{r.ImagesPerSecond:F3},{r.SpeedRatio:F4},{(r.MeanDetections is { } d ? d.ToString("F2", CultureInfo.InvariantCulture) : "")},{r.Rounds.Count}\r\n"));
        return text.ToString();
    }

    private static string StagesCsv(IReadOnlyList<SubjectResult> results)
    {
        var text = new StringBuilder("name,stage,median_ms,mean_ms,share\r\n");
        foreach (var r in results)
            foreach (var s in r.Stages)
                text.Append(string.Create(CultureInfo.InvariantCulture, $"{CsvText.Field(r.Name)},{s.Stage},{s.MedianMs:F3},{s.MeanMs:F3},{s.Share:F4}\r\n"));
        return text.ToString();
    }

    /// <summary>The results as a table, the speed of each subject against the first, each subject's stages, then the notes.</summary>
    public static void Print(Report report, TextWriter output)
    {
        var results = report.Results;
        int width = Math.Max(12, results.Max(r => r.Name.Length));
        output.WriteLine($"{"config".PadRight(width)}  {"task",-12} {"median ms",10} {"mean ms",10} {"images/s",9} {"speed",8}");
        foreach (var r in results)
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{r.Name.PadRight(width)}  {r.Task,-12} {r.MedianMs,10:F1} {r.MeanMs,10:F1} {r.ImagesPerSecond,9:F2} {r.SpeedRatio,7:F2}×"));
        output.WriteLine(report.Rounds > 1
            ? $"speed: {results[0].Name}'s median time over each config's, per round, the median of {report.Rounds} rounds (above 1: faster)"
            : $"speed: {results[0].Name}'s median time over each config's (above 1: faster); --rounds N alternates the configs N times for steadier ratios");
        foreach (var r in results)
        {
            output.WriteLine($"{r.Name} stages (mean ms per image, share of the mean){(r.MeanDetections is { } d ? string.Create(CultureInfo.InvariantCulture, $"; {d:F1} detections per image") : "")}:");
            foreach (var s in r.Stages)
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {s.Stage,-14} {s.MeanMs,10:F2} {100 * s.Share,6:F1}%   (median {s.MedianMs:F2})"));
        }
        foreach (var note in report.Notes) output.WriteLine($"note: {note}");
    }
}
