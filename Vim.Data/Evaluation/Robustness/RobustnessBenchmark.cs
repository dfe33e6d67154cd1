using System.Diagnostics;
using Vim.Core.Distributed;
using Vim.Data.Datasets;
using Vim.Data.Evaluation.Reports;
using Vim.Data.Transforms.Corruptions;

namespace Vim.Data.Evaluation.Robustness;

/// <summary>
/// A trained model the robustness grid evaluates: the task's own evaluation (detection: box and mask AP; segmentation:
/// mIoU) with its validation images read through a wrapper (<see cref="CorruptedImages"/>) before the test pipeline.
/// </summary>
public interface IRobustnessSubject
{
    /// <summary>detection or segmentation.</summary>
    string Task { get; }

    /// <summary>The validation images each cell evaluates.</summary>
    int ImageCount { get; }

    /// <summary>The metrics P, mPC and rPC are reported for.</summary>
    IReadOnlyList<string> SummaryMetrics { get; }

    /// <summary>
    /// Evaluates the validation split with every image read through <paramref name="images"/> (the split's images, by
    /// index, corrupted or not), calling <paramref name="onImage"/> after each; draws the prediction of the sample image
    /// on its image as read into <paramref name="samplePath"/> (PNG). Returns every metric of the evaluation. In a job of several
    /// ranks every rank calls it for the same cells: each predicts its share of the images (<paramref name="onImage"/> counts
    /// those), rank 0 alone draws, and every rank returns the same metrics.
    /// </summary>
    IReadOnlyDictionary<string, double> Evaluate(Func<ISampleSource, ISampleSource> images, string samplePath, Action onImage);
}

/// <summary>
/// `vim test --corruptions` (mmdet's tools/analysis_tools/test_robustness.py): the normal evaluation once on the clean
/// images and once per (corruption, severity), into &lt;out&gt;/robustness/: robustness.json after every cell (finished
/// cells of an earlier run with the same setup are skipped, so a crash loses only the cell it interrupted), the sample
/// drawings in samples/, and at the end robustness.md with the charts (<see cref="RobustnessReport"/>).
/// </summary>
public static class RobustnessBenchmark
{
    public const string Folder = "robustness";

    public const string ResultsFile = "robustness.json";

    public const string SamplesFolder = "samples";

    /// <summary>The sample drawing of a cell: clean.png, or CORRUPTION_SEVERITY.png.</summary>
    public static string SampleName(string? corruption, int severity) => corruption is null ? "clean.png" : $"{corruption}_{severity}.png";

    /// <param name="severities">Severities 1–5 to run for every corruption (0, the clean pass, runs once whatever is asked).</param>
    /// <param name="communicator">The job whose ranks share each cell's images (the subject's task evaluates over it): rank 0
    /// alone reads and writes robustness.json, the samples and the report, and decides which cells are left to run, which
    /// every rank then evaluates in turn. Default: one process.</param>
    /// <returns>The grid's results; on ranks other than 0 only the cells this run evaluated (rank 0 alone read the file).</returns>
    public static RobustnessResults Run(IRobustnessSubject subject, IReadOnlyList<string> corruptions, IReadOnlyList<int> severities,
        RobustnessSetup setup, string outDir, TextWriter progress, ICommunicator? communicator = null)
    {
        communicator ??= SingleProcessCommunicator.Instance;
        bool root = communicator.IsRoot();
        var dir = Path.Combine(outDir, Folder);
        var jsonPath = Path.Combine(dir, ResultsFile);
        var results = (root ? Reuse(jsonPath, subject, setup, progress) : null)
            ?? new RobustnessResults { Task = subject.Task, Setup = setup, SummaryMetrics = subject.SummaryMetrics };
        results.Corruptions = corruptions;
        results.Severities = severities.Where(s => s > 0).Distinct().Order().ToList();
        var grid = new List<(string? Corruption, int Severity)> { (null, 0) };
        grid.AddRange(corruptions.SelectMany(c => results.Severities.Select(s => ((string?)c, s))));
        var pending = grid.Where(cell => !results.Has(cell.Corruption, cell.Severity)).ToList();
        if (communicator.WorldSize > 1)
        {
            // Every rank must evaluate the same cells, or their collectives would not match: rank 0's file decides.
            var agreed = communicator.BroadcastJson(root ? pending.Select(cell => new Cell(cell.Corruption, cell.Severity)).ToArray() : null);
            pending = agreed.Select(cell => (cell.Corruption, cell.Severity)).ToList();
        }
        if (pending.Count < grid.Count)
            progress.WriteLine($"robustness: {grid.Count - pending.Count} of {grid.Count} cells already in {jsonPath}, {pending.Count} to run");
        if (root) Directory.CreateDirectory(Path.Combine(dir, SamplesFolder));
        // Progress counts the images this rank predicts: over K ranks rank 0's share, the largest.
        int share = (subject.ImageCount + communicator.WorldSize - 1) / communicator.WorldSize;
        if (communicator.WorldSize > 1 && pending.Count > 0)
            progress.WriteLine($"robustness: each cell's {subject.ImageCount} images are shared by {communicator.WorldSize} processes; progress counts rank 0's {share}");
        long totalImages = (long)pending.Count * share, doneImages = 0;
        // About ten lines a cell on a large split; none inside a cell of fewer than 20 images, whose own line follows at once.
        long reportEvery = Math.Max(10, share / 10);
        var clock = Stopwatch.StartNew();
        string Eta()
        {
            if (doneImages == 0) return "ETA -";
            var left = TimeSpan.FromSeconds(clock.Elapsed.TotalSeconds / doneImages * (totalImages - doneImages));
            return $"ETA {(int)left.TotalHours}:{left.Minutes:00}:{left.Seconds:00}";
        }
        for (int k = 0; k < pending.Count; k++)
        {
            var (corruption, severity) = pending[k];
            string name = corruption is null ? "clean" : $"{corruption} severity {severity}";
            string cellTitle = $"robustness: cell {k + 1}/{pending.Count} ({name})";
            progress.WriteLine($"{cellTitle}: {subject.ImageCount} images");
            int inCell = 0;
            var metrics = subject.Evaluate(
                source => corruption is null ? source : new CorruptedImages(source, corruption, severity),
                Path.Combine(dir, SamplesFolder, SampleName(corruption, severity)),
                () =>
                {
                    inCell++;
                    doneImages++;
                    if (inCell % reportEvery == 0 && inCell < share)
                        progress.WriteLine($"{cellTitle}: {inCell}/{share} images | grid {doneImages}/{totalImages} images | {Eta()}");
                });
            results.Set(corruption, severity, metrics);
            if (root) results.Save(jsonPath);
            var shown = string.Join(", ", subject.SummaryMetrics.Select(m => $"{m} {RobustnessSummary.Format(RobustnessResults.Value(metrics, m))}"));
            progress.WriteLine($"{cellTitle}: {shown} | grid {doneImages}/{totalImages} images | {Eta()}");
        }
        if (root)
        {
            results.Save(jsonPath);
            RobustnessReport.Write(results, dir);
        }
        return results;
    }

    /// <summary>A cell of the grid as rank 0 sends it to the others (corruption null: the clean pass).</summary>
    private sealed record Cell(string? Corruption, int Severity);

    /// <summary>
    /// The results of an earlier run in the same folder when its setup is this one's (their finished cells are kept), or
    /// null to start afresh, saying why an existing file is set aside.
    /// </summary>
    private static RobustnessResults? Reuse(string jsonPath, IRobustnessSubject subject, RobustnessSetup setup, TextWriter progress)
    {
        if (!File.Exists(jsonPath)) return null;
        var earlier = RobustnessResults.Load(jsonPath);
        string? difference = earlier.Task != subject.Task ? "task" : earlier.Setup.DifferenceFrom(setup);
        if (difference is null) return earlier;
        progress.WriteLine($"robustness: {jsonPath} was written for another run (its {difference} differs): starting afresh, the file is replaced");
        return null;
    }
}
