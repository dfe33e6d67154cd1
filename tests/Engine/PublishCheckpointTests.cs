using System.Security.Cryptography;
using NUnit.Framework;
using TorchSharp;
using Vim.Core;
using Vim.Core.Checkpoints;
using Vim.Core.Engine;
using Vim.Tools;
using static TorchSharp.torch;

namespace Vim.Tests.Engine;

/// <summary>`vim checkpoint publish` (mmdet's publish_model.py): a training checkpoint's weights alone, named by the file's hash.</summary>
public class PublishCheckpointTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("vimdense-publish-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    /// <summary>Linear + BatchNorm: parameters and buffers (running statistics, the batch count).</summary>
    private static nn.Module Model()
    {
        manual_seed(7);
        return nn.Sequential(("fc", nn.Linear(3, 4)), ("bn", nn.BatchNorm1d(4)));
    }

    /// <summary>A checkpoint after two AdamW steps with EMA, so the optimiser state, the trained and the EMA weights all differ.</summary>
    private string TrainedCheckpoint(bool withEma)
    {
        var model = Model();
        var optimizer = new AdamWOptimizer([new ParameterGroup("all", model.named_parameters().ToList(), 0.0, 1.0)]);
        using var ema = withEma ? new ExponentialMovingAverage(model, 0.5) : null;
        for (int step = 0; step < 2; step++)
        {
            using var scope = NewDisposeScope();
            optimizer.ZeroGrad();
            ((nn.Module<Tensor, Tensor>)model).call(randn(5, 3)).square().mean().backward();
            optimizer.Step(_ => 0.1);
            ema?.Update(model);
        }
        var path = Path.Combine(_dir, "work", "iter_2.safetensors");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        TrainingCheckpoint.Save(path, model, optimizer, ema, new TrainingState(2, 2, DataPosition.Start, null, "task: segmentation\n"));
        optimizer.Dispose();
        return path;
    }

    private static Dictionary<string, byte[]> Bytes(IReadOnlyDictionary<string, Tensor> tensors) =>
        tensors.ToDictionary(t => t.Key, t => t.Value.contiguous().bytes.ToArray());

    [TestCase(false)]
    [TestCase(true)]
    public void ThePublishedFileHoldsTheChosenWeightsAloneAndIsNamedByItsHash(bool ema)
    {
        var source = TrainedCheckpoint(withEma: true);
        var published = TrainingCheckpoint.Publish(source, Path.Combine(_dir, "release", "toy.safetensors"), ema);

        var hash = Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(published))).ToLowerInvariant();
        Assert.That(Path.GetFileName(published), Is.EqualTo($"toy-{hash[..8]}.safetensors"));
        Assert.That(Directory.GetFiles(Path.Combine(_dir, "release")), Is.EqualTo(new[] { published }), "no temporary or provisional file is left");

        using var sourceFile = CheckpointFile.Load(source);
        using var publishedFile = CheckpointFile.Load(published);
        var expected = Bytes(sourceFile.StateDict(ema ? "ema" : "model"));
        var other = Bytes(sourceFile.StateDict(ema ? "model" : "ema"));
        Assert.That(publishedFile.Tensors.Select(t => t.Key), Is.EquivalentTo(expected.Keys.Select(k => "model." + k)), "no optimiser, generator or EMA tensors");
        Assert.That(Bytes(publishedFile.StateDict("model")), Is.EqualTo(expected));
        Assert.That(expected["fc.weight"], Is.Not.EqualTo(other["fc.weight"]), "trained and EMA weights differ: the choice is visible");
        Assert.That(publishedFile.Metadata["config"], Is.EqualTo("task: segmentation\n"));
        Assert.That(publishedFile.Metadata["weights"], Is.EqualTo(ema ? "ema" : "model"));
        Assert.That(new FileInfo(published).Length, Is.LessThan(new FileInfo(source).Length / 2), "AdamW's two moments and the EMA copy are gone");

        // Test and inference read it as trained weights; a resume refuses it.
        using var fresh = Model();
        TrainingCheckpoint.LoadWeights(fresh, published, ema: false);
        Assert.That(Bytes(fresh.state_dict()), Is.EqualTo(expected));
        var resume = Assert.Throws<VimException>(() =>
            TrainingCheckpoint.Load(published, fresh, new AdamWOptimizer([new ParameterGroup("all", fresh.named_parameters().ToList(), 0.0, 1.0)]), null))!;
        Assert.That(resume.Message, Does.StartWith($"{published}: a published checkpoint").And.Contain(TrainingCheckpoint.PublishedFormatTag)
            .And.Contain("--load-from").And.Contain("--resume and `vim checkpoint publish` need"));
        // Publishing it again is refused the same way, not as a foreign file.
        var again = Assert.Throws<VimException>(() => TrainingCheckpoint.Publish(published, Path.Combine(_dir, "again", "toy.safetensors"), ema: false))!;
        Assert.That(again.Message, Does.StartWith($"{published}: a published checkpoint").And.Not.Contain("not a VimDense training checkpoint"));
        var emaRefusal = Assert.Throws<VimException>(() => TrainingCheckpoint.LoadWeights(fresh, published, ema: true))!.Message;
        // Its run kept EMA weights, so the refusal must say where they went rather than blame train.ema_momentum.
        Assert.That(emaRefusal, Does.Not.Contain("train.ema_momentum"));
        Assert.That(emaRefusal, ema
            ? Does.StartWith($"{published}: a published checkpoint holds one set of weights, here its run's EMA weights (published with --ema); read them without --ema")
            : Does.StartWith($"{published}: holds no EMA weights (a published checkpoint keeps one set of weights, here its run's trained ones; publish the training checkpoint with --ema"));
    }

    [Test]
    public void ACorruptOrForeignCheckpointIsRefusedAndNothingIsWritten()
    {
        var release = Path.Combine(_dir, "release");
        var noEma = TrainedCheckpoint(withEma: false);
        var error = Assert.Throws<VimException>(() => TrainingCheckpoint.Publish(noEma, Path.Combine(release, "toy.safetensors"), ema: true))!;
        Assert.That(error.Message, Does.StartWith(noEma).And.Contain("no EMA weights"));

        // The last byte is tensor data (the generator state): its checksum no longer matches.
        var bytes = File.ReadAllBytes(noEma);
        bytes[^1] ^= 0x5A;
        File.WriteAllBytes(noEma, bytes);
        error = Assert.Throws<VimException>(() => TrainingCheckpoint.Publish(noEma, Path.Combine(release, "toy.safetensors"), ema: false))!;
        Assert.That(error.Message, Does.StartWith($"{noEma}: checksum mismatch"));

        var bare = Path.Combine(_dir, "bare.safetensors");
        using (var model = Model())
            SafeTensorsFormat.Write(bare, model.state_dict());
        error = Assert.Throws<VimException>(() => TrainingCheckpoint.Publish(bare, Path.Combine(release, "toy.safetensors"), ema: false))!;
        Assert.That(error.Message, Does.StartWith(bare).And.Contain("not a VimDense training checkpoint"));
        Assert.That(Directory.Exists(release), Is.False);
    }

    [Test]
    public void TheCommandPublishesAndNamesTheFile()
    {
        var source = TrainedCheckpoint(withEma: false);
        var console = new StringWriter();
        var original = Console.Out;
        Console.SetOut(console);
        int exit;
        try
        {
            exit = VimCli.Run(["checkpoint", "publish", source, Path.Combine(_dir, "release", "toy.safetensors")]);
        }
        finally
        {
            Console.SetOut(original);
        }
        Assert.That(exit, Is.EqualTo(0));
        var published = Directory.GetFiles(Path.Combine(_dir, "release")).Single();
        Assert.That(console.ToString(), Does.StartWith($"published {published} ("));
        var errors = new StringWriter();
        var originalError = Console.Error;
        Console.SetError(errors);
        try
        {
            Assert.That(VimCli.Run(["checkpoint", "publish", Path.Combine(_dir, "absent.safetensors"), Path.Combine(_dir, "x.safetensors")], errors), Is.EqualTo(1));
        }
        finally
        {
            Console.SetError(originalError);
        }
        Assert.That(errors.ToString(), Does.Contain("absent.safetensors").And.Contain("not found"));
    }
}
