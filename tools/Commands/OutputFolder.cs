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
        for (var path = full; path is not null; path = Path.GetDirectoryName(path))
        {
            if (Directory.Exists(path)) return;
            if (File.Exists(path))
                throw new VimException(path == full
                    ? $"{option} {dir}: is a file; expected a folder (created if missing)"
                    : $"{option} {dir}: {path} is a file, so the folder cannot be created there; expected a folder path");
        }
    }
}
