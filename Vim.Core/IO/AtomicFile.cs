using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace Vim.Core.IO;

/// <summary>Writes a file via a temporary sibling and a rename, so readers never see a half-written file.</summary>
public static partial class AtomicFile
{
    /// <summary>What a temporary sibling's name adds to the final name: ".tmp-PID-xxxxxxxx", the writer's process id and 8 hex digits.</summary>
    [GeneratedRegex(@"\.tmp-(?<pid>[0-9]+)-[0-9a-f]{8}$")]
    private static partial Regex TemporarySuffix();

    public static void Write(string path, Action<Stream> write) => WriteThenName(path, write, _ => path);

    /// <summary>
    /// <see cref="Write"/>, with the final name chosen once the bytes are on disk: <paramref name="finalPath"/> gets the
    /// complete temporary file (a sibling of <paramref name="path"/>) and returns where it goes, e.g. a name holding its
    /// hash, as mmdet's publish_model names a checkpoint. Returns that path.
    /// </summary>
    public static string WriteThenName(string path, Action<Stream> write, Func<string, string> finalPath)
    {
        var provisional = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(provisional);
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        var tmp = provisional + ".tmp-" + Environment.ProcessId + "-" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            var full = Path.GetFullPath(finalPath(tmp));
            if (Path.GetDirectoryName(full) != dir)
                throw new ArgumentException($"{full}: a renamed file must stay in the folder of {provisional}, where its temporary file was written", nameof(finalPath));
            File.Move(tmp, full, overwrite: true);
            // The rename is an entry in the directory: until the directory is flushed too, a power cut can undo it.
            if (!string.IsNullOrEmpty(dir)) TrySyncDirectory(dir);
            return full;
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    public static void WriteText(string path, string text) =>
        Write(path, s => { using var w = new StreamWriter(s, new System.Text.UTF8Encoding(false), leaveOpen: true); w.Write(text); });

    /// <summary>
    /// Deletes the temporary files in <paramref name="directory"/> whose writer is no longer running: a process killed
    /// mid-write (SIGKILL, the OOM killer) never reaches its cleanup, and a checkpoint's temporary file is as large as
    /// the checkpoint. Files of live processes (this one included) are kept: they may be being written.
    /// </summary>
    /// <returns>The files deleted.</returns>
    public static IReadOnlyList<string> DeleteAbandonedTemporaries(string directory)
    {
        var deleted = new List<string>();
        foreach (var file in Directory.EnumerateFiles(directory, "*.tmp-*"))
        {
            var match = TemporarySuffix().Match(Path.GetFileName(file));
            if (!match.Success || !int.TryParse(match.Groups["pid"].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || IsRunning(pid))
                continue;
            try
            {
                File.Delete(file);
                deleted.Add(file);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Someone else's file, or gone already: it is not ours to insist on.
            }
        }
        return deleted;
    }

    private static bool IsRunning(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>
    /// Flushes a directory's entries (renames, new files) to disk: fsync on the directory, which .NET has no API for, on
    /// Linux with glibc. Best effort: some file systems refuse to sync a directory, and the file data is on disk anyway.
    /// </summary>
    /// <returns>Whether the directory was synced.</returns>
    public static bool TrySyncDirectory(string directory)
    {
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            const int readOnlyCloseOnExec = 0x80000; // O_RDONLY (0) | O_CLOEXEC, the same on Linux x64 and arm64
            var fd = Open(directory, readOnlyCloseOnExec);
            if (fd < 0) return false;
            var synced = Fsync(fd) == 0;
            Close(fd);
            return synced;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    [LibraryImport("libc.so.6", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc.so.6", EntryPoint = "fsync")]
    private static partial int Fsync(int fd);

    [LibraryImport("libc.so.6", EntryPoint = "close")]
    private static partial int Close(int fd);
}
