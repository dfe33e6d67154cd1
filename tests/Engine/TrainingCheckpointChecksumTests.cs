using System.Text;
using NUnit.Framework;
using TorchSharp;
using Vim.Core;
using Vim.Core.Checkpoints;
using Vim.Core.Engine;
using static TorchSharp.torch;

namespace Vim.Tests.Engine;

/// <summary>What a training checkpoint's checksums cover: tensor bytes, and (sha256_meta) the metadata and the shapes.</summary>
public class TrainingCheckpointChecksumTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("vimdense-ckptsum-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private static AdamWOptimizer Optimizer(nn.Module model) =>
        new([new ParameterGroup("all", model.named_parameters().ToList(), 0.0, 1.0)]);

    private string Save(int iteration)
    {
        var path = Path.Combine(_dir, "iter.safetensors");
        var model = nn.Linear(4, 4);
        TrainingCheckpoint.Save(path, model, Optimizer(model), null, new TrainingState(iteration, iteration, DataPosition.Start, null, "cfg"));
        return path;
    }

    private static TrainingState Load(string path)
    {
        var model = nn.Linear(4, 4);
        return TrainingCheckpoint.Load(path, model, Optimizer(model), null);
    }

    /// <summary>Replaces the first occurrence of <paramref name="from"/> in the file by text of the same length, as a flipped digit would.</summary>
    private static void Rewrite(string path, string from, string to)
    {
        Assert.That(to, Has.Length.EqualTo(from.Length));
        var bytes = File.ReadAllBytes(path);
        var at = bytes.AsSpan().IndexOf(Encoding.UTF8.GetBytes(from));
        Assert.That(at, Is.GreaterThanOrEqualTo(0), $"'{from}' in the header");
        Encoding.UTF8.GetBytes(to).CopyTo(bytes, at);
        File.WriteAllBytes(path, bytes);
    }

    [Test]
    public void AChangedIterationInTheHeaderIsACorruptCheckpoint()
    {
        using var scope = NewDisposeScope();
        var path = Save(iteration: 12);
        Assert.That(Load(path).Iteration, Is.EqualTo(12));

        Rewrite(path, "\"iteration\":\"12\"", "\"iteration\":\"92\"");

        Assert.That(Assert.Throws<VimException>(() => Load(path))!.Message,
            Does.StartWith($"{path}: checksum mismatch in the metadata or tensor shapes").And.Contain("use an earlier checkpoint"));
    }

    [Test]
    public void AChangedShapeOfTheSameSizeIsACorruptCheckpoint()
    {
        using var scope = NewDisposeScope();
        var path = Save(iteration: 3);

        // model.weight [4, 4] read as [2, 8]: the same bytes, so only the shape checksum sees it.
        Rewrite(path, "\"shape\":[4,4]", "\"shape\":[2,8]");

        Assert.That(Assert.Throws<VimException>(() => Load(path))!.Message, Does.StartWith($"{path}: checksum mismatch in the metadata or tensor shapes"));
    }

    [Test]
    public void ACheckpointWrittenBeforeTheMetadataChecksumStillLoads()
    {
        using var scope = NewDisposeScope();
        var path = Save(iteration: 7);
        var old = Path.Combine(_dir, "old.safetensors");
        using (var file = CheckpointFile.Load(path))
            SafeTensorsFormat.Write(old, file.Tensors, file.Metadata.Where(kv => kv.Key != "sha256_meta").ToDictionary());

        Assert.That(Load(old).Iteration, Is.EqualTo(7));
    }
}
