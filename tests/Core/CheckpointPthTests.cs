using System.Numerics;
using NUnit.Framework;
using Vim.Core;
using Vim.Core.Checkpoints;
using static TorchSharp.torch;

namespace Vim.Tests.Core;

/// <summary>Reading the torch.save-format fixtures written by make_fixtures.py.</summary>
public class CheckpointPthTests
{
    private static double[] Values(Tensor t)
    {
        using var scope = NewDisposeScope();
        return t.to_type(ScalarType.Float64).flatten().data<double>().ToArray();
    }

    [TestCase("vim_like.pth")]
    [TestCase("protocol4.pth")]
    public void EveryTensorMatchesTheFixtureScriptElementByElement(string file)
    {
        var expected = CheckpointTestData.Expected(file);
        using var checkpoint = CheckpointFile.Load(CheckpointTestData.PathOf(file));
        Assert.That(checkpoint.Format, Is.EqualTo(CheckpointFormat.TorchZip));
        Assert.That(checkpoint.Tensors.Select(t => t.Key), Is.EqualTo(expected.Select(e => e.Name)), "names in file order");
        foreach (var (e, (name, tensor)) in expected.Zip(checkpoint.Tensors))
        {
            Assert.That(CheckpointDTypes.TorchName(tensor.dtype), Is.EqualTo(e.DType), name);
            Assert.That(tensor.shape, Is.EqualTo(e.Shape), name);
            Assert.That(tensor.is_contiguous(), Is.True, name);
            Assert.That(Values(tensor), Is.EqualTo(e.Values), name);
        }
    }

    [Test]
    public void ViewWithOffsetAndTransposedStridesIsReadThroughItsStrides()
    {
        // Storage [100, 200, 10, 11, ..., 15], offset 2, stride (1, 3): element (i, j) = 10 + i + 3j.
        using var checkpoint = CheckpointFile.Load(CheckpointTestData.PathOf("vim_like.pth"));
        var head = checkpoint.StateDict("model")["head.weight"];
        Assert.That(head.shape, Is.EqualTo(new long[] { 3, 2 }));
        Assert.That(head.stride(), Is.EqualTo(new long[] { 2, 1 }), "materialised contiguous");
        Assert.That(Values(head), Is.EqualTo(new double[] { 10, 13, 11, 14, 12, 15 }));
    }

    [Test]
    public void TwoTensorsSharingOneStorageEachGetTheirOwnSlice()
    {
        // One storage [-1, -0.5, ..., 2.5]: norm.weight is elements 0..3, norm_f.weight elements 4..7.
        using var checkpoint = CheckpointFile.Load(CheckpointTestData.PathOf("vim_like.pth"));
        var model = checkpoint.StateDict("model");
        var first = model["layers.0.norm.weight"];
        var second = model["norm_f.weight"];
        Assert.That(Values(first), Is.EqualTo(new[] { -1.0, -0.5, 0.0, 0.5 }));
        Assert.That(Values(second), Is.EqualTo(new[] { 1.0, 1.5, 2.0, 2.5 }));
        first.add_(100);
        Assert.That(Values(second), Is.EqualTo(new[] { 1.0, 1.5, 2.0, 2.5 }), "slices are copies, not aliases of each other");
    }

    [Test]
    public void OrderedDictKeepsMetadataAsAnAttributeNotAKey()
    {
        using var checkpoint = CheckpointFile.Load(CheckpointTestData.PathOf("vim_like.pth"));
        var root = (PickleDict)checkpoint.Root!;
        Assert.That(root.IsOrderedDict, Is.False, "top level is a plain dict");
        Assert.That(root.Keys, Is.EqualTo(new object[] { "model", "optimizer", "epoch", "model_ema", "scaler", "args", "extra" }));
        var model = (PickleDict)root["model"]!;
        Assert.That(model.IsOrderedDict, Is.True);
        Assert.That(model.ContainsKey("_metadata"), Is.False);
        Assert.That(model.Count, Is.EqualTo(9));
        var metadata = (PickleDict)model.Attributes["_metadata"]!;
        Assert.That(metadata.Keys, Is.EqualTo(new object[] { "", "layers.0" }));
        Assert.That(((PickleDict)metadata["layers.0"]!)["version"], Is.EqualTo(2L));
    }

    [Test]
    public void ArgparseNamespaceBecomesAnInertObjectWithItsAttributes()
    {
        using var checkpoint = CheckpointFile.Load(CheckpointTestData.PathOf("vim_like.pth"));
        var args = (PickledObject)((PickleDict)checkpoint.Root!)["args"]!;
        Assert.That(args.QualifiedName, Is.EqualTo("argparse.Namespace"));
        Assert.That(args.Args, Is.Empty);
        Assert.That(args.TryGetAttribute("model", out var model) ? model : null, Is.EqualTo("vim_tiny_patch16_224"));
        Assert.That(args.TryGetAttribute("lr", out var lr) ? lr : null, Is.EqualTo(0.0005));
        Assert.That(args.TryGetAttribute("input_size", out var size) ? size : null, Is.EqualTo(224L));
        Assert.That(args.TryGetAttribute("if_amp", out var amp) ? amp : null, Is.EqualTo(false));
        Assert.That(args.TryGetAttribute("resume", out var resume), Is.True);
        Assert.That(resume, Is.Null);
        Assert.That(checkpoint.TryGetValue("args.betas.1", out var beta2) ? beta2 : null, Is.EqualTo(0.999));
    }

    [Test]
    public void NestedScalarsListsAndIntegerKeysAreNamedByTheirPath()
    {
        using var checkpoint = CheckpointFile.Load(CheckpointTestData.PathOf("vim_like.pth"));
        object? Get(string name) => checkpoint.TryGetValue(name, out var v) ? v : throw new AssertionException($"no entry {name}");
        Assert.That(Get("epoch"), Is.EqualTo(7L));
        Assert.That(Get("scaler"), Is.EqualTo("none"));
        Assert.That(Get("optimizer.state.0.step"), Is.EqualTo(5L));
        Assert.That(Get("optimizer.param_groups.0.lr"), Is.EqualTo(0.001));
        Assert.That(Get("optimizer.param_groups.0.amsgrad"), Is.EqualTo(false));
        Assert.That(Get("optimizer.param_groups.0.params.1"), Is.EqualTo(1L));
        var optimizer = (PickleDict)((PickleDict)checkpoint.Root!)["optimizer"]!;
        Assert.That(((PickleDict)optimizer["state"]!).ContainsKey(0L), Is.True, "integer dict keys stay integers");
    }

    [Test]
    public void ModelAndEmaStateDictsAreSelectedByKey()
    {
        using var checkpoint = CheckpointFile.Load(CheckpointTestData.PathOf("vim_like.pth"));
        var model = checkpoint.ModelStateDict();
        Assert.That(model.Keys, Is.EqualTo(new[]
        {
            "cls_token", "pos_embed", "layers.0.mixer.A_log", "layers.0.mixer.D", "layers.0.mixer.in_proj.weight",
            "head.weight", "layers.0.norm.weight", "norm_f.weight", "num_updates",
        }));
        var ema = checkpoint.ModelStateDict(ema: true);
        Assert.That(ema.Keys, Is.EqualTo(new[] { "cls_token", "head.weight" }));
        Assert.That(Values(ema["cls_token"]), Is.EqualTo(new[] { 1.0, 1.5, 2.0, 2.5 }));
        var error = Assert.Throws<VimException>(() => checkpoint.StateDict("teacher"))!;
        Assert.That(error.Message, Does.Contain("no entry 'teacher'").And.Contain("model, optimizer, epoch, model_ema"));
    }

    [Test]
    public void Protocol4PickleWithParameterBigIntegersBytesAndSets()
    {
        using var checkpoint = CheckpointFile.Load(CheckpointTestData.PathOf("protocol4.pth"));
        var root = (PickleDict)checkpoint.Root!;
        Assert.That(root["big_int"], Is.EqualTo(BigInteger.Pow(2, 70)));
        Assert.That(root["neg_int"], Is.EqualTo(-3L));
        Assert.That(root["ints"], Is.EqualTo(new object[] { 1L, 300L, 70000L, -5L, 1L << 40 }));
        Assert.That(root["blob"], Is.EqualTo(new byte[] { 0, 1, 0xfe }));
        Assert.That(root["ratio"], Is.EqualTo(1.5));
        Assert.That(root["name"], Is.EqualTo(new string('x', 300)));
        var tags = (PickledObject)root["tags"]!;
        Assert.That(tags.QualifiedName, Is.EqualTo("builtins.set"));
        Assert.That(tags.ListItems, Is.EquivalentTo(new object[] { "a", "b" }));
        var weight = checkpoint.StateDict("state_dict")["weight"];
        Assert.That(Values(weight), Is.EqualTo(new[] { 0.5, -1.5, 2.0, 4.0 }), "a Parameter loads as its data");
    }

    [TestCase("bad_short_storage.pth", "bad_short_storage.pth: storage 'vim_like/data/1' holds 40 bytes, tensor 'model.pos_embed' needs 48 (offset 0, shape [1,3,4]", "float32")]
    [TestCase("bad_missing_storage.pth", "bad_missing_storage.pth: entry 'vim_like/data/2' is missing; tensor 'model.layers.0.mixer.A_log' needs it", "shape [3,2]")]
    [TestCase("bad_truncated_pickle.pth", "bad_truncated_pickle.pth: entry 'vim_like/data.pkl': pickle offset", "truncated")]
    [TestCase("bad_opcode.pth", "bad_opcode.pth: entry 'vim_like/data.pkl': pickle offset 16: unknown pickle opcode 0xff", "")]
    [TestCase("bad_truncated_file.pth", "bad_truncated_file.pth: starts like a torch.save zip archive but the zip structure is unreadable", "truncated")]
    [TestCase("bad_no_pickle.pth", "bad_no_pickle.pth: zip archive has no '<archive>/data.pkl' entry", "archive/version")]
    public void MalformedFilesNameTheFileTheEntryAndWhatWasExpected(string file, string fragment, string detail)
    {
        var error = Assert.Throws<VimException>(() => CheckpointFile.Load(CheckpointTestData.PathOf(file)))!;
        Assert.That(error.Message, Does.Contain(fragment).And.Contain(detail));
    }

    [Test]
    public void NonCheckpointFilesAreRejectedByTheirMagicBytes()
    {
        var dir = CheckpointTestData.NewTempDirectory();
        try
        {
            var text = Path.Combine(dir, "notes.pth");
            File.WriteAllText(text, "hello world, not a checkpoint");
            Assert.That(Assert.Throws<VimException>(() => CheckpointFile.Load(text))!.Message,
                Does.Contain("notes.pth: not a checkpoint"));
            // torch.save's magic number 0x1950a86a20f9469cfc6c as a protocol-2 pickle, then the protocol version 1001.
            var legacy = Path.Combine(dir, "legacy.pth");
            File.WriteAllBytes(legacy, [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e, 0x80, 0x02, 0x4d, 0xe9, 0x03, 0x2e]);
            Assert.That(Assert.Throws<VimException>(() => CheckpointFile.Load(legacy))!.Message,
                Does.Contain("legacy (pre-1.6) torch.save format"));
            // pickle.dumps({'model': {}}, 2), as a detectron2 model-zoo .pkl starts.
            var plain = Path.Combine(dir, "model_final.pkl");
            File.WriteAllBytes(plain, Convert.FromHexString("80027D710058050000006D6F64656C71017D7102732E"));
            var error = Assert.Throws<VimException>(() => CheckpointFile.Load(plain))!;
            Assert.That(error.Message, Does.StartWith($"{plain}: a plain Python pickle (protocol 2), not a torch checkpoint").And.Not.Contain("legacy"));
            Assert.That(Assert.Throws<VimException>(() => CheckpointFile.Load(Path.Combine(dir, "absent.pth")))!.Message,
                Does.Contain("absent.pth: checkpoint file not found"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
