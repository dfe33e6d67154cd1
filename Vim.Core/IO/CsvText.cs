namespace Vim.Core.IO;

/// <summary>CSV as RFC 4180 writes it, for the CSV files we write (confusion matrices, benchmark tables).</summary>
public static class CsvText
{
    /// <summary>A field as is, or quoted (inner quotes doubled) when it holds a comma, quote or line break, or edge spaces.</summary>
    public static string Field(string text) =>
        text.AsSpan().IndexOfAny(",\"\r\n") < 0 && text.Trim() == text ? text : $"\"{text.Replace("\"", "\"\"", StringComparison.Ordinal)}\"";
}
