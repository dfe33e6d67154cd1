using System.Runtime.CompilerServices;
using NUnit.Framework;
using Vim.Core.Models;
using static TorchSharp.torch;

namespace Vim.Tests.Core;

public class ModelStateDictTests
{
    [Test]
    public void VimTinyStateDictMatchesOfficialKeysOrderAndShapes()
    {
        var expected = File.ReadAllLines(DataFile("vim-tiny-state-dict.tsv"))
            .Where(l => l.Length > 0).Select(l => l.Split('\t')).Select(p => (Key: p[0], Shape: p[1])).ToList();
        Assert.That(expected, Has.Count.EqualTo(415));
        using var model = new VisionMamba(new VimConfig());
        var actual = StateDictOrder.Entries(model).Select(e => (e.Key, Shape: "[" + string.Join(", ", e.Value.shape) + "]")).ToList();
        Assert.That(actual, Has.Count.EqualTo(expected.Count));
        for (int i = 0; i < expected.Count; i++)
            Assert.That(actual[i], Is.EqualTo(expected[i]), $"row {i + 1}");
        // TorchSharp's own state_dict must agree (no buffers here, so the orders coincide).
        Assert.That(model.state_dict().Keys.ToList(), Is.EqualTo(expected.Select(e => e.Key).ToList()));
    }

    [Test]
    public void ModelKeysCommandPrintsTheStateDictAsTsv()
    {
        var expected = File.ReadAllLines(DataFile("vim-tiny-state-dict.tsv")).Where(l => l.Length > 0).ToList();
        var original = Console.Out;
        var captured = new StringWriter();
        int exitCode;
        try
        {
            Console.SetOut(captured);
            exitCode = Vim.Tools.VimCli.Run(new[] { "model", "keys", "vim_tiny" });
        }
        finally
        {
            Console.SetOut(original);
        }
        Assert.That(exitCode, Is.EqualTo(0));
        var lines = captured.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r')).ToList();
        Assert.That(lines, Is.EqualTo(expected));
    }

    [Test]
    public void InconsistentConfigsAreRejectedNamingTheField()
    {
        var noClass = Assert.Throws<Vim.Core.VimException>(() => new VimConfig { ClassToken = ClassTokenPosition.None }.Validate());
        Assert.That(noClass!.Message, Does.Contain("Readout"));
        var badSize = Assert.Throws<Vim.Core.VimException>(() => new VimConfig { ImageSize = 230 }.Validate());
        Assert.That(badSize!.Message, Does.Contain("ImageSize 230"));
        var badTap = Assert.Throws<Vim.Core.VimException>(() => new VimConfig { TapBlocks = new[] { 24 } }.Validate());
        Assert.That(badTap!.Message, Does.Contain("TapBlocks"));
    }

    [TestCase("vim_tiny", 7_148_008L)]
    [TestCase("vim_small", 25_796_584L)]
    [TestCase("vim_base", 97_598_440L)]
    [TestCase("deit_tiny", 5_717_416L)]
    public void ParameterCountsMatchThePublishedModels(string name, long expected)
    {
        using var model = ModelRegistry.Create(name);
        Assert.That(StateDictOrder.ParameterCount(model), Is.EqualTo(expected));
    }

    [Test]
    public void Stride8VariantOnlyChangesThePositionEmbedding()
    {
        using var model = ModelRegistry.Create("vim_tiny_stride8");
        var entries = StateDictOrder.Entries(model).ToDictionary(e => e.Key, e => e.Value.shape);
        Assert.That(entries["pos_embed"], Is.EqualTo(new long[] { 1, 730, 192 }));
        Assert.That(entries, Has.Count.EqualTo(415));
        Assert.That(((VisionMamba)model).ClassIndexFor(224, 224), Is.EqualTo(364));
    }

    [Test]
    public void DeitStateDictUsesTimmNamesInOrder()
    {
        using var model = ModelRegistry.Create("deit_tiny");
        var keys = StateDictOrder.Entries(model).Select(e => e.Key).ToList();
        var expectedHead = new[]
        {
            "cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias",
            "blocks.0.norm1.weight", "blocks.0.norm1.bias", "blocks.0.attn.qkv.weight", "blocks.0.attn.qkv.bias",
            "blocks.0.attn.proj.weight", "blocks.0.attn.proj.bias", "blocks.0.norm2.weight", "blocks.0.norm2.bias",
            "blocks.0.mlp.fc1.weight", "blocks.0.mlp.fc1.bias", "blocks.0.mlp.fc2.weight", "blocks.0.mlp.fc2.bias",
        };
        Assert.That(keys.Take(expectedHead.Length), Is.EqualTo(expectedHead));
        Assert.That(keys.Skip(keys.Count - 4), Is.EqualTo(new[] { "norm.weight", "norm.bias", "head.weight", "head.bias" }));
        Assert.That(keys, Has.Count.EqualTo(4 + 12 * 12 + 4));
    }

    [Test]
    public void DetectionBackboneHasRopeBuffersAndNoClassificationParts()
    {
        using var model = ModelRegistry.Create("vimdet_tiny");
        var entries = StateDictOrder.Entries(model).ToDictionary(e => e.Key, e => e.Value.shape);
        Assert.That(entries["net.rope.freqs_cos"], Is.EqualTo(new long[] { 4096, 192 }));
        Assert.That(entries["net.pos_embed"], Is.EqualTo(new long[] { 1, 4096, 192 }));
        Assert.That(entries.Keys.Where(k => k.Contains("cls_token") || k.Contains("head.") || k.Contains("norm_f")), Is.Empty);
        // p2 input channels D/4 = 48, p3 D/2 = 96 (section c.1).
        Assert.That(entries["simfp_2.4.weight"], Is.EqualTo(new long[] { 256, 48, 1, 1 }));
        Assert.That(entries["simfp_3.1.weight"], Is.EqualTo(new long[] { 256, 96, 1, 1 }));
    }

    [Test]
    public void UnknownModelNameIsAUserError()
    {
        var error = Assert.Throws<Vim.Core.VimException>(() => ModelRegistry.Get("vim_huge"));
        Assert.That(error!.Message, Does.Contain("vim_huge").And.Contain("vim_tiny"));
    }

    /// <summary>tests/data next to this source file (the test project copies no data), else the output folder.</summary>
    internal static string DataFile(string name, [CallerFilePath] string sourceFile = "")
    {
        var besideSource = Path.Combine(Path.GetDirectoryName(sourceFile)!, "..", "data", name);
        return File.Exists(besideSource) ? besideSource : Path.Combine(TestContext.CurrentContext.TestDirectory, "data", name);
    }
}
