using System.Text.Json;
using System.Text.Json.Serialization;
using Vim.Core;
using Vim.Core.IO;

namespace Vim.Data.Evaluation.Robustness;

/// <summary>
/// What a robustness grid was run with: the config and its overrides, the checkpoint (path, size, time written), EMA
/// weights or not, and the number of images. Finished cells of robustness.json are reused only under an equal setup.
/// </summary>
public sealed record RobustnessSetup(
    [property: JsonPropertyName("config")] string Config,
    [property: JsonPropertyName("overrides")] IReadOnlyList<string> Overrides,
    [property: JsonPropertyName("checkpoint")] string Checkpoint,
    [property: JsonPropertyName("checkpoint_bytes")] long CheckpointBytes,
    [property: JsonPropertyName("checkpoint_modified_utc")] DateTime CheckpointModifiedUtc,
    [property: JsonPropertyName("ema")] bool Ema,
    [property: JsonPropertyName("images")] int Images)
{
    /// <summary>The setup of a run of <paramref name="checkpoint"/> (read from disk: its full path, size and time written).</summary>
    public static RobustnessSetup Of(string config, IReadOnlyList<string> overrides, string checkpoint, bool ema, int images)
    {
        var file = new FileInfo(checkpoint);
        return new RobustnessSetup(Path.GetFullPath(config), overrides, file.FullName, file.Length, file.LastWriteTimeUtc, ema, images);
    }

    /// <summary>The first field in which <paramref name="other"/> differs, or null when the two describe the same run.</summary>
    public string? DifferenceFrom(RobustnessSetup other) =>
        Config != other.Config ? "config"
        : !Overrides.SequenceEqual(other.Overrides) ? "--set overrides"
        : Checkpoint != other.Checkpoint ? "checkpoint"
        : CheckpointBytes != other.CheckpointBytes || CheckpointModifiedUtc != other.CheckpointModifiedUtc ? "checkpoint file (size or time written)"
        : Ema != other.Ema ? "--ema"
        : Images != other.Images ? "image count"
        : null;
}

/// <summary>One metric's summary as robustness.json holds it.</summary>
public sealed record RobustnessSummaryJson(
    [property: JsonPropertyName("P")] double Clean,
    [property: JsonPropertyName("mPC")] double MeanUnderCorruption,
    [property: JsonPropertyName("rPC")] double Relative,
    [property: JsonPropertyName("mPC_without_frost")] double MeanWithoutFrost,
    [property: JsonPropertyName("corruptions")] IReadOnlyDictionary<string, RobustnessCorruptionJson> Corruptions);

/// <summary>One corruption's mPC_c and rPC_c as robustness.json holds them.</summary>
public sealed record RobustnessCorruptionJson(
    [property: JsonPropertyName("mPC")] double MeanUnderCorruption,
    [property: JsonPropertyName("rPC")] double Relative);

/// <summary>
/// The robustness grid's results (`vim test --corruptions`, robustness.json): every metric of the clean pass and of each
/// (corruption, severity) cell, written after each cell so that a crash loses only the cell it interrupted, and the
/// summary (P, mPC, rPC per summary metric) of the cells finished so far.
/// </summary>
public sealed class RobustnessResults
{
    public const string FormatName = "vimdense-robustness/1";

    [JsonPropertyName("format")] public string Format { get; init; } = FormatName;

    /// <summary>detection or segmentation.</summary>
    [JsonPropertyName("task")] public required string Task { get; init; }

    [JsonPropertyName("setup")] public required RobustnessSetup Setup { get; init; }

    /// <summary>The corruptions of the grid run last, in order (cells of others reused from earlier runs stay in <see cref="Results"/>).</summary>
    [JsonPropertyName("corruptions")] public IReadOnlyList<string> Corruptions { get; set; } = [];

    /// <summary>The severities above 0 of the grid run last.</summary>
    [JsonPropertyName("severities")] public IReadOnlyList<int> Severities { get; set; } = [];

    /// <summary>The metrics P, mPC and rPC are reported for (bbox_mAP, segm_mAP; mIoU).</summary>
    [JsonPropertyName("metrics")] public required IReadOnlyList<string> SummaryMetrics { get; init; }

    /// <summary>Every metric of the clean pass (severity 0), once it has run.</summary>
    [JsonPropertyName("clean")] public Dictionary<string, double>? Clean { get; set; }

    /// <summary>Every metric per corruption and severity.</summary>
    [JsonPropertyName("results")] public Dictionary<string, Dictionary<int, Dictionary<string, double>>> Results { get; init; } = [];

    /// <summary>Whether every cell of the grid (<see cref="Corruptions"/> × <see cref="Severities"/> and the clean pass) has run.</summary>
    [JsonPropertyName("complete")] public bool Complete => Clean is not null && Corruptions.All(c => Severities.All(s => Has(c, s)));

    /// <summary>P, mPC and rPC of each summary metric over the finished cells of the grid (empty until the clean pass has run).</summary>
    [JsonPropertyName("summary")]
    public IReadOnlyDictionary<string, RobustnessSummaryJson> Summary => Summaries().ToDictionary(s => s.Metric, s =>
        new RobustnessSummaryJson(s.Clean, s.MeanUnderCorruption, s.Relative,
            Corruptions.Contains(Transforms.Corruptions.ImageCorruptions.ProceduralFrost)
                ? RobustnessSummary.MeanWithout(Cells(s.Metric), Transforms.Corruptions.ImageCorruptions.ProceduralFrost) : double.NaN,
            s.Corruptions.ToDictionary(c => c.Corruption, c => new RobustnessCorruptionJson(c.MeanUnderCorruption, c.Relative))));

    /// <summary>Whether the cell (<paramref name="corruption"/>, <paramref name="severity"/>) has run; severity 0 (or no corruption) is the clean pass.</summary>
    public bool Has(string? corruption, int severity) =>
        corruption is null || severity == 0 ? Clean is not null : Results.TryGetValue(corruption, out var bySeverity) && bySeverity.ContainsKey(severity);

    /// <summary>Records a finished cell's metrics.</summary>
    public void Set(string? corruption, int severity, IReadOnlyDictionary<string, double> metrics)
    {
        var copy = new Dictionary<string, double>(metrics);
        if (corruption is null || severity == 0)
        {
            Clean = copy;
            return;
        }
        if (!Results.TryGetValue(corruption, out var bySeverity)) Results[corruption] = bySeverity = [];
        bySeverity[severity] = copy;
    }

    /// <summary>The metric at each finished severity of each corruption of the grid, in grid order.</summary>
    public IReadOnlyList<(string Corruption, IReadOnlyList<double> BySeverity)> Cells(string metric) =>
        Corruptions.Select(c => (c, (IReadOnlyList<double>)Severities.Where(s => Has(c, s)).Select(s => Value(Results[c][s], metric)).ToList())).ToList();

    /// <summary><see cref="RobustnessSummary"/> of each summary metric (none before the clean pass).</summary>
    public IReadOnlyList<RobustnessSummary> Summaries() =>
        Clean is null ? [] : SummaryMetrics.Select(m => RobustnessSummary.Compute(m, Value(Clean, m), Cells(m))).ToList();

    /// <summary>The metric in a cell's metrics, NaN when the cell lacks it.</summary>
    internal static double Value(IReadOnlyDictionary<string, double> metrics, string metric) => metrics.TryGetValue(metric, out var v) ? v : double.NaN;

    /// <summary>Writes the results to <paramref name="path"/> atomically (a reader or a crash sees the old file or the new one).</summary>
    public void Save(string path) => AtomicFile.WriteText(path, JsonSerializer.Serialize(this, MetricJson.Indented));

    /// <summary>Reads robustness.json; a file that is not one is refused naming it.</summary>
    public static RobustnessResults Load(string path)
    {
        RobustnessResults? results;
        try
        {
            results = JsonSerializer.Deserialize<RobustnessResults>(File.ReadAllText(path), MetricJson.Indented);
        }
        catch (JsonException e)
        {
            throw new VimException($"{path}: not a robustness results file ({e.Message}); move it away or choose another --out to start afresh", e);
        }
        if (results is null || results.Format != FormatName)
            throw new VimException($"{path}: expected \"format\": \"{FormatName}\", got {(results is null ? "null" : $"\"{results.Format}\"")}; move it away or choose another --out to start afresh");
        return results;
    }
}
