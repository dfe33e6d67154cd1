namespace Vim.Core.Config;

/// <summary>
/// Finds the candidate nearest to a misspelt name, for "did you mean" hints: Levenshtein distance,
/// with a name that is a prefix of a candidate (warmup → warmup_iters) counted as a near miss.
/// </summary>
public static class ClosestMatch
{
    public static string? Find(string name, IEnumerable<string> candidates)
    {
        string? best = null;
        int bestDistance = int.MaxValue;
        foreach (var candidate in candidates)
        {
            int d = Distance(name, candidate);
            if (candidate.StartsWith(name, StringComparison.Ordinal) || name.StartsWith(candidate, StringComparison.Ordinal))
                d = Math.Min(d, 1);
            if (d < bestDistance)
            {
                bestDistance = d;
                best = candidate;
            }
        }
        return best;
    }

    public static int Distance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) previous[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
                current[j] = Math.Min(substitution, Math.Min(previous[j] + 1, current[j - 1] + 1));
            }
            (previous, current) = (current, previous);
        }
        return previous[b.Length];
    }
}
