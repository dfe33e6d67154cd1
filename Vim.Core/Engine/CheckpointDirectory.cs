using System.Globalization;
using Vim.Core.IO;

namespace Vim.Core.Engine;

/// <summary>
/// The checkpoints of one work dir: iter_NNNNNNN.safetensors (the last K kept), best.safetensors, and
/// a `last_checkpoint` file naming the newest, replaced atomically after each save.
/// </summary>
public sealed class CheckpointDirectory(string workDir, int keepLast)
{
    private const string Prefix = "iter_";
    private const string Suffix = ".safetensors";

    public string WorkDir { get; } = workDir;

    public string BestPath => Path.Combine(WorkDir, "best" + Suffix);

    private string PointerPath => Path.Combine(WorkDir, "last_checkpoint");

    public string PathFor(int iteration) =>
        Path.Combine(WorkDir, $"{Prefix}{iteration.ToString("D7", CultureInfo.InvariantCulture)}{Suffix}");

    /// <summary>
    /// Records <paramref name="path"/> as the newest checkpoint, deletes periodic ones beyond the last K, and deletes
    /// temporary files that writers killed mid-write left behind (each as large as a checkpoint).
    /// </summary>
    public void Commit(string path)
    {
        AtomicFile.WriteText(PointerPath, Path.GetFileName(path) + "\n");
        var periodic = NewestFirst(Directory.EnumerateFiles(WorkDir, Prefix + "*" + Suffix))
            .Where(p => Path.GetFileName(p) != Path.GetFileName(path))
            .Skip(Math.Max(0, keepLast - 1));
        foreach (var old in periodic) File.Delete(old);
        AtomicFile.DeleteAbandonedTemporaries(WorkDir);
    }

    /// <summary>The newest checkpoint recorded, or null when the work dir has none.</summary>
    public string? Latest()
    {
        if (!File.Exists(PointerPath)) return null;
        var name = File.ReadAllText(PointerPath).Trim();
        var path = Path.Combine(WorkDir, name);
        return File.Exists(path)
            ? path
            : throw new VimException($"{PointerPath} names {name}, which does not exist; pass a checkpoint explicitly with --resume PATH");
    }

    /// <summary>Periodic checkpoints present, newest first (to suggest a fallback when the newest is refused).</summary>
    public IReadOnlyList<string> Periodic() => Directory.Exists(WorkDir)
        ? NewestFirst(Directory.EnumerateFiles(WorkDir, Prefix + "*" + Suffix)).ToList()
        : [];

    /// <summary>
    /// The periodic checkpoints among <paramref name="files"/>, by iteration, newest first: the names are padded to 7
    /// digits, so from iteration 10 000 000 on their order is no longer the iterations'. Files whose name carries no
    /// iteration are no periodic checkpoints, and left alone.
    /// </summary>
    private static IEnumerable<string> NewestFirst(IEnumerable<string> files) =>
        files.Select(p => (Path: p, Iteration: IterationOf(Path.GetFileName(p))))
            .Where(p => p.Iteration is not null)
            .OrderByDescending(p => p.Iteration)
            .ThenByDescending(p => p.Path, StringComparer.Ordinal)
            .Select(p => p.Path);

    private static long? IterationOf(string name)
    {
        var digits = name[Prefix.Length..^Suffix.Length];
        return digits.Length > 0 && digits.All(char.IsAsciiDigit)
               && long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var iteration)
            ? iteration
            : null;
    }
}
