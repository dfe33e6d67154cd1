using System.Globalization;
using System.Text.Json;
using Vim.Core.IO;

namespace Vim.Core.Engine;

/// <summary>Appends one JSON object per line (training log read by `vim report`), flushed after every line.</summary>
public sealed class JsonLinesLog : IDisposable
{
    private readonly StreamWriter _writer;

    public JsonLinesLog(string path)
    {
        Path = path;
        var stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read);
        // A process killed in the middle of a line leaves it unterminated; a resumed run's first record must not be
        // glued onto it (both would be lost as one unreadable line).
        bool unterminated = false;
        if (stream.Length > 0)
        {
            stream.Seek(-1, SeekOrigin.End);
            unterminated = stream.ReadByte() != '\n';
        }
        stream.Seek(0, SeekOrigin.End);
        _writer = new StreamWriter(stream) { AutoFlush = true };
        if (unterminated) _writer.WriteLine();
    }

    public string Path { get; }

    /// <summary>Writes one record; non-finite numbers (an undefined metric) become null.</summary>
    public void Write(IReadOnlyDictionary<string, object?> record) => _writer.WriteLine(JsonSerializer.Serialize(record, MetricJson.Compact));

    public void Dispose() => _writer.Dispose();

    /// <summary>
    /// Reads the records back. A line that is not a JSON object (a line a killed process cut short, or damage) is
    /// skipped, and its number added to <paramref name="damagedLines"/>; a record's fields are checked where they are
    /// read (<see cref="LogRecord"/>).
    /// </summary>
    public static IEnumerable<LogRecord> Read(string path, List<int>? damagedLines = null)
    {
        int lineNumber = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonElement root;
            try
            {
                using var doc = JsonDocument.Parse(line);
                root = doc.RootElement.Clone();
            }
            catch (JsonException)
            {
                damagedLines?.Add(lineNumber);
                continue;
            }
            if (root.ValueKind == JsonValueKind.Object) yield return new LogRecord(path, lineNumber, root);
            else damagedLines?.Add(lineNumber);
        }
    }
}

/// <summary>One record of a <see cref="JsonLinesLog"/>, with where it stands in the file for error messages.</summary>
public readonly record struct LogRecord(string Path, int Line, JsonElement Fields)
{
    /// <summary>The iteration the record belongs to (every record has one).</summary>
    public int Iteration =>
        Fields.TryGetProperty("iter", out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var iteration) && iteration >= 0
            ? iteration
            : throw new VimException($"{Path} line {Line}: 'iter' must be a whole number of iterations (≥ 0), got {Describe("iter")}");

    /// <summary>"val" for evaluation records, null for training records.</summary>
    public string? Mode =>
        !Fields.TryGetProperty("mode", out var value) ? null
        : value.ValueKind == JsonValueKind.String ? value.GetString()
        : throw new VimException($"{Path} line {Line}: 'mode' must be a string such as \"val\", got {Describe("mode")}");

    public bool IsEvaluation => Mode == TrainingLogModes.Evaluation;

    /// <summary>A number field, NaN where it is null (undefined when written), absent or not a number.</summary>
    public double Number(string name) => MetricJson.NumberOrNaN(Fields, name);

    public bool Has(string name) => Fields.TryGetProperty(name, out _);

    /// <summary>A field holding a count (an epoch, iterations per epoch): null where it is absent, refused unless a whole number ≥ 1.</summary>
    public int? PositiveCount(string name) =>
        !Fields.TryGetProperty(name, out var value) ? null
        : value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var count) && count >= 1 ? count
        : throw new VimException($"{Path} line {Line}: '{name}' must be a whole number ≥ 1, got {Describe(name)}");

    /// <summary>A string field, or null where it is absent or not a string.</summary>
    public string? Text(string name) => Fields.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private string Describe(string name)
    {
        if (!Fields.TryGetProperty(name, out var value)) return "nothing";
        var text = value.GetRawText();
        return text.Length <= 40 ? text : $"a {value.ValueKind.ToString().ToLower(CultureInfo.InvariantCulture)} of {text.Length} characters";
    }
}
