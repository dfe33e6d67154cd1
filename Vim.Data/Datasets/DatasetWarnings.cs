using System.Text;

namespace Vim.Data.Datasets;

/// <summary>
/// Counts skipped records by reason (keeping the first example of each) so a dataset with thousands
/// of degenerate boxes prints one summary line per reason instead of thousands of lines.
/// </summary>
public sealed class DatasetWarnings
{
    private readonly Dictionary<string, (int Count, string FirstExample)> _byReason = new(StringComparer.Ordinal);
    private readonly List<string> _order = [];

    private readonly Lock _lock = new();

    public void Add(string reason, string example)
    {
        lock (_lock) AddLocked(reason, example);
    }

    private void AddLocked(string reason, string example)
    {
        if (_byReason.TryGetValue(reason, out var entry)) _byReason[reason] = (entry.Count + 1, entry.FirstExample);
        else
        {
            _byReason[reason] = (1, example);
            _order.Add(reason);
        }
    }

    public int Count(string reason)
    {
        lock (_lock) return _byReason.TryGetValue(reason, out var e) ? e.Count : 0;
    }

    public int Total
    {
        get { lock (_lock) return _byReason.Values.Sum(v => v.Count); }
    }

    public IReadOnlyList<string> Reasons
    {
        get { lock (_lock) return _order.ToArray(); }
    }

    /// <summary>One line per reason: "N × reason (first: example)"; empty when nothing was skipped.</summary>
    public string Summary()
    {
        var sb = new StringBuilder();
        lock (_lock)
        foreach (var reason in _order)
        {
            var (count, first) = _byReason[reason];
            sb.Append("warning: skipped ").Append(count).Append(" × ").Append(reason).Append(" (first: ").Append(first).AppendLine(")");
        }
        return sb.ToString();
    }
}
