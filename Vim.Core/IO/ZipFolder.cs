using System.IO.Compression;

namespace Vim.Core.IO;

/// <summary>Zip archives of written files, for uploads (test-server submissions), written atomically like every output.</summary>
public static class ZipFolder
{
    /// <summary>
    /// Writes <paramref name="zipPath"/> holding <paramref name="files"/>, each under its entry name ('/'-separated path
    /// inside the archive), in the given order.
    /// </summary>
    public static void Write(string zipPath, IEnumerable<(string EntryName, string File)> files) =>
        AtomicFile.Write(zipPath, stream =>
        {
            using var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true);
            foreach (var (entryName, file) in files) zip.CreateEntryFromFile(file, entryName, CompressionLevel.Optimal);
        });
}
