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

    /// <summary>Records <paramref name="path"/> as the newest checkpoint and deletes periodic ones beyond the last K.</summary>
    public void Commit(string path)
    {
        AtomicFile.WriteText(PointerPath, Path.GetFileName(path) + "\n");
        var periodic = Directory.EnumerateFiles(WorkDir, Prefix + "*" + Suffix)
            .Where(p => Path.GetFileName(p) != Path.GetFileName(path))
            .OrderByDescending(p => p, StringComparer.Ordinal)
            .Skip(Math.Max(0, keepLast - 1));
        foreach (var old in periodic) File.Delete(old);
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
        ? Directory.EnumerateFiles(WorkDir, Prefix + "*" + Suffix).OrderByDescending(p => p, StringComparer.Ordinal).ToList()
        : [];
}
