using Vim.Core;

namespace Vim.Tools.Commands;

/// <summary>
/// The --out folder of a verb that writes results: checked before any work, created only when the first result is
/// written, so a run refused on the way (an image, a checkpoint that does not fit) leaves no empty folder behind.
/// </summary>
public static class OutputFolder
{
    /// <summary>Refuses a path that is an existing file or lies under one (the folder could never be created).</summary>
    /// <param name="option">How the user gave the path, e.g. "--out".</param>
    public static void Check(string dir, string option)
    {
        if (string.IsNullOrWhiteSpace(dir)) throw new VimException($"{option}: the path is empty; expected a folder (created if missing)");
        var full = Path.GetFullPath(dir);
        if (File.Exists(full)) throw new VimException($"{option} {dir}: is a file; expected a folder (created if missing)");
        RequireCreatable(dir, Path.GetDirectoryName(full), option, "the folder", "a folder path");
    }

    /// <summary>
    /// Refuses an output file path that is a folder or whose folder could never be created (a file on the way), before
    /// any work: the writers would otherwise fail after it with the runtime's message, which names neither the option nor the cause.
    /// </summary>
    /// <param name="option">How the user gave the path, e.g. "--json-out" or "OUT".</param>
    public static void CheckFile(string file, string option)
    {
        if (string.IsNullOrWhiteSpace(file)) throw new VimException($"{option}: the path is empty; expected a file path");
        var full = Path.GetFullPath(file);
        if (Directory.Exists(full)) throw new VimException($"{option} {file}: is a folder; expected a file path");
        RequireCreatable(file, Path.GetDirectoryName(full), option, "the file", "a file path");
    }

    private static void RequireCreatable(string given, string? parent, string option, string what, string expected)
    {
        for (var path = parent; path is not null; path = Path.GetDirectoryName(path))
        {
            if (Directory.Exists(path)) return;
            if (File.Exists(path))
                throw new VimException($"{option} {given}: {path} is a file, so {what} cannot be created there; expected {expected}");
        }
    }
}
