using System.Diagnostics;
using NUnit.Framework;
using Vim.Core.Engine;
using Vim.Core.IO;

namespace Vim.Tests.Engine;

/// <summary>The periodic checkpoints a work dir keeps, and what killed writers leave there.</summary>
public class CheckpointDirectoryTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("vimdense-ckptdir-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private static string Save(CheckpointDirectory checkpoints, int iteration)
    {
        var path = checkpoints.PathFor(iteration);
        File.WriteAllText(path, $"{iteration}");
        checkpoints.Commit(path);
        return path;
    }

    [Test]
    public void TheLastKAreKeptByIterationAlsoPastTenMillion()
    {
        var checkpoints = new CheckpointDirectory(_dir, keepLast: 2);
        Save(checkpoints, 9_999_000);
        var tenMillion = Save(checkpoints, 10_000_000);
        var newest = Save(checkpoints, 10_001_000);

        // iter_10000000 sorts before iter_9999000 by name.
        Assert.That(checkpoints.Periodic(), Is.EqualTo(new[] { newest, tenMillion }));
        Assert.That(checkpoints.Latest(), Is.EqualTo(newest));
    }

    [Test]
    public void ACommitDeletesTemporaryFilesOfWritersThatAreGone()
    {
        int gone;
        using (var exited = Process.Start(new ProcessStartInfo("true") { UseShellExecute = false })!)
        {
            exited.WaitForExit();
            gone = exited.Id;
        }
        var abandoned = Path.Combine(_dir, $"iter_0000010.safetensors.tmp-{gone}-abcd1234");
        var ours = Path.Combine(_dir, $"best.safetensors.tmp-{Environment.ProcessId}-0123abcd");
        var unrelated = Path.Combine(_dir, "notes.tmp-1-draft");
        foreach (var file in new[] { abandoned, ours, unrelated })
            File.WriteAllText(file, "partial");

        Save(new CheckpointDirectory(_dir, keepLast: 2), 20);

        Assert.That(File.Exists(abandoned), Is.False, "its writer has exited");
        Assert.That(File.Exists(ours), Is.True, "this process may still be writing it");
        Assert.That(File.Exists(unrelated), Is.True, "not a name AtomicFile gives");
    }

    [Test]
    public void TheDirectoryOfARenamedFileIsSynced()
    {
        if (!OperatingSystem.IsLinux())
            Assert.Ignore("fsync on a directory is a POSIX call; only Linux is built for");
        Assert.That(AtomicFile.TrySyncDirectory(_dir), Is.True);
        Assert.That(AtomicFile.TrySyncDirectory(Path.Combine(_dir, "absent")), Is.False);
    }
}
