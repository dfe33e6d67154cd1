using System.Globalization;
using System.Text;
using NUnit.Framework;

namespace Vim.Tests.Eval;

/// <summary>
/// Reads a confusion_matrix.csv back with a plain RFC 4180 parser of its own (quoted fields, doubled quotes, CRLF), so a
/// round trip checks the file as any CSV reader sees it, not as our writer thinks it wrote it.
/// </summary>
internal static class ConfusionCsv
{
    public static (string Corner, string[] Columns, string[] Rows, long[,] Counts) Read(string path)
    {
        var records = Parse(File.ReadAllText(path));
        Assert.That(records, Is.Not.Empty, path);
        var header = records[0];
        var columns = header.Skip(1).ToArray();
        var body = records.Skip(1).ToList();
        var counts = new long[body.Count, columns.Length];
        var rows = new string[body.Count];
        for (int r = 0; r < body.Count; r++)
        {
            Assert.That(body[r], Has.Count.EqualTo(columns.Length + 1), $"{path}: row {r + 1} has another number of fields than the header");
            rows[r] = body[r][0];
            for (int c = 0; c < columns.Length; c++) counts[r, c] = long.Parse(body[r][c + 1], NumberStyles.None, CultureInfo.InvariantCulture);
        }
        return (header[0], columns, rows, counts);
    }

    /// <summary>The records of any CSV text we write (lr.csv too), each a list of its fields.</summary>
    internal static List<List<string>> Parse(string text)
    {
        var records = new List<List<string>>();
        var record = new List<string>();
        var field = new StringBuilder();
        bool quoted = false;
        for (int i = 0; i < text.Length; i++)
        {
            char ch = text[i];
            if (quoted)
            {
                if (ch != '"') field.Append(ch);
                else if (i + 1 < text.Length && text[i + 1] == '"') { field.Append('"'); i++; }
                else quoted = false;
            }
            else if (ch == '"') quoted = true;
            else if (ch == ',') { record.Add(field.ToString()); field.Clear(); }
            else if (ch == '\r' && i + 1 < text.Length && text[i + 1] == '\n')
            {
                record.Add(field.ToString());
                field.Clear();
                records.Add(record);
                record = [];
                i++;
            }
            else field.Append(ch);
        }
        Assert.That(field.Length == 0 && record.Count == 0 && !quoted, "the CSV ends with a complete CRLF-terminated record");
        return records;
    }
}
