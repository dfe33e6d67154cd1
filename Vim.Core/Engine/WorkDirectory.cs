namespace Vim.Core.Engine;

/// <summary>Checks done before training starts, so a bad work dir fails now rather than after an hour.</summary>
public static class WorkDirectory
{
    /// <summary>The merged config of the run whose checkpoints a work dir holds, written when a fresh run starts.</summary>
    public const string ConfigFileName = "config.yaml";

    /// <summary>Creates the folder, proves it writable, and checks free space for the checkpoints the run will keep.</summary>
    public static void Prepare(string workDir, long bytesPerCheckpoint, int checkpointsKept)
    {
        if (string.IsNullOrWhiteSpace(workDir))
            throw new VimException("the work dir is empty (--work-dir or runtime.work_dir); expected a folder for checkpoints and logs");
        try
        {
            Directory.CreateDirectory(workDir);
            var probe = Path.Combine(workDir, $".write-probe-{Environment.ProcessId}");
            File.WriteAllBytes(probe, new byte[4096]);
            File.Delete(probe);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new VimException($"work dir {workDir} is not writable: {e.Message}", e);
        }
        // Periodic + best + the one being written next to them.
        long needed = bytesPerCheckpoint * (checkpointsKept + 2);
        long free = new DriveInfo(Path.GetFullPath(workDir)).AvailableFreeSpace;
        if (free < needed)
            throw new VimException($"work dir {workDir}: {free / 1e6:0} MB free, but {checkpointsKept + 2} checkpoints of {bytesPerCheckpoint / 1e6:0} MB need {needed / 1e6:0} MB; free space or lower train.keep_last");
    }
}
