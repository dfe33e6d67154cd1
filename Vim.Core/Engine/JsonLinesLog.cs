using System.Text.Json;

namespace Vim.Core.Engine;

/// <summary>Appends one JSON object per line (training log read by `vim report`), flushed after every line.</summary>
public sealed class JsonLinesLog : IDisposable
{
    private readonly StreamWriter _writer;

    public JsonLinesLog(string path)
    {
        Path = path;
        _writer = new StreamWriter(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read)) { AutoFlush = true };
    }

    public string Path { get; }

    public void Write(IReadOnlyDictionary<string, object?> record) => _writer.WriteLine(JsonSerializer.Serialize(record));

    public void Dispose() => _writer.Dispose();

    /// <summary>Reads the records back (a truncated last line, from a killed process, is skipped).</summary>
    public static IEnumerable<JsonElement> Read(string path)
    {
        foreach (var line in File.ReadLines(path))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonDocument doc;
            try
            {
                doc = JsonDocument.Parse(line);
            }
            catch (JsonException)
            {
                continue;
            }
            yield return doc.RootElement.Clone();
            doc.Dispose();
        }
    }
}
