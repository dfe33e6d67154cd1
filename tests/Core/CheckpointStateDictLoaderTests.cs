using NUnit.Framework;
using TorchSharp;
using Vim.Core;
using Vim.Core.Checkpoints;
using static TorchSharp.torch;

namespace Vim.Tests.Core;

public class CheckpointStateDictLoaderTests
{
    /// <summary>Keys: fc.weight [4,3], fc.bias [4], head.weight [2,4], head.bias [2], counter [1] (buffer).</summary>
    private sealed class TinyNet : nn.Module<Tensor, Tensor>
    {
        private readonly nn.Module<Tensor, Tensor> fc = nn.Linear(3, 4);
        private readonly nn.Module<Tensor, Tensor> head = nn.Linear(4, 2);

        public TinyNet() : base(nameof(TinyNet))
        {
            register_buffer("counter", zeros(1));
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => head.forward(fc.forward(x));
    }

    private static Tensor Filled(long[] shape, float start) =>
        arange(start, start + shape.Aggregate(1L, (a, d) => a * d), 1f).reshape(shape);

    private static Dictionary<string, Tensor> Checkpoint(long headClasses = 2) => new()
    {
        ["fc.weight"] = Filled([4, 3], 0),
        ["fc.bias"] = Filled([4], 100),
        ["head.weight"] = Filled([headClasses, 4], 200),
        ["head.bias"] = Filled([headClasses], 300),
        ["counter"] = Filled([1], 7),
    };

    private static float[] Of(nn.Module module, string key) => module.state_dict()[key].detach().flatten().data<float>().ToArray();

    [Test]
    public void AnExpandedViewFromAPthIsCopiedElementByElement()
    {
        using var scope = NewDisposeScope();
        var net = new TinyNet();
        var state = Checkpoint();
        // What a .pth keeps of torch.full((4,), 0.5).expand(4, 3): one stored row, stride 0 along the first dimension.
        state["fc.weight"] = tensor(new[] { 0.5f, 1.5f, 2.5f }).as_strided([4, 3], [0, 1], 0);
        StateDictLoader.Load(net, state);
        Assert.That(Of(net, "fc.weight"), Is.EqualTo(new[] { 0.5f, 1.5f, 2.5f, 0.5f, 1.5f, 2.5f, 0.5f, 1.5f, 2.5f, 0.5f, 1.5f, 2.5f }));
    }

    [Test]
    public void CompleteStateDictIsCopiedIntoEveryParameterAndBuffer()
    {
        using var scope = NewDisposeScope();
        var net = new TinyNet();
        var report = StateDictLoader.Load(net, Checkpoint(), sourceName: "tiny.pth[model]");
        Assert.That(report.IsComplete, Is.True, report.ToString());
        Assert.That(report.Loaded, Is.EquivalentTo(new[] { "fc.weight", "fc.bias", "head.weight", "head.bias", "counter" }));
        Assert.That(Of(net, "fc.weight"), Is.EqualTo(Enumerable.Range(0, 12).Select(i => (float)i)));
        Assert.That(Of(net, "head.bias"), Is.EqualTo(new[] { 300f, 301f }));
        Assert.That(Of(net, "counter"), Is.EqualTo(new[] { 7f }));
        Assert.That(report.ToString(), Is.EqualTo("tiny.pth[model]: 5 tensor(s) matched, nothing missing, unexpected or mismatched"));
        // The forward pass uses the loaded weights: x = [1, 0, 0] picks column 0 of fc.weight (0, 3, 6, 9) + bias.
        var y = net.forward(tensor(new[] { 1f, 0f, 0f }).unsqueeze(0));
        var hidden = new[] { 100f, 104f, 108f, 112f };
        var expected0 = 300f + hidden.Select((h, j) => h * (200f + j)).Sum();
        Assert.That(y[0, 0].item<float>(), Is.EqualTo(expected0).Within(1e-2));
    }

    [Test]
    public void StrictLoadRefusesAnIncompleteMatchAndLeavesTheModuleUntouched()
    {
        using var scope = NewDisposeScope();
        var net = new TinyNet();
        var before = Of(net, "fc.weight");
        var source = Checkpoint(headClasses: 5);
        source.Remove("counter");
        source["extra.weight"] = ones(3);
        var error = Assert.Throws<VimException>(() => StateDictLoader.Load(net, source, sourceName: "x.pth[model]"))!;
        Assert.That(error.Message, Is.EqualTo(
            """
            strict state-dict load failed, nothing was copied:
            x.pth[model]: 2 tensor(s) matched
              missing in checkpoint (module keeps its values): 1
                counter
              unexpected in checkpoint (not in module): 1
                extra.weight
              shape mismatch (not loaded): 2
                head.weight: module [2, 4], checkpoint [5, 4]
                head.bias: module [2], checkpoint [5]
            """.ReplaceLineEndings("\n")));
        Assert.That(Of(net, "fc.weight"), Is.EqualTo(before));
    }

    [Test]
    public void NonStrictLoadCopiesWhatMatchesAndReportsTheRest()
    {
        using var scope = NewDisposeScope();
        var net = new TinyNet();
        var headBefore = Of(net, "head.weight");
        var source = Checkpoint(headClasses: 5);
        source.Remove("counter");
        source["extra.weight"] = ones(3);
        var report = StateDictLoader.Load(net, source, new StateDictLoadOptions { Strict = false });
        Assert.That(report.Loaded, Is.EqualTo(new[] { "fc.weight", "fc.bias" }));
        Assert.That(report.Missing, Is.EqualTo(new[] { "counter" }));
        Assert.That(report.Unexpected, Is.EqualTo(new[] { "extra.weight" }));
        Assert.That(report.Mismatched.Select(m => (m.Key, m.ModuleShape[0], m.CheckpointShape[0])),
            Is.EqualTo(new[] { ("head.weight", 2L, 5L), ("head.bias", 2L, 5L) }));
        Assert.That(Of(net, "fc.bias"), Is.EqualTo(new[] { 100f, 101f, 102f, 103f }));
        Assert.That(Of(net, "head.weight"), Is.EqualTo(headBefore));
    }

    [Test]
    public void IgnoredHeadAllowsAStrictLoadWithADifferentClassCount()
    {
        using var scope = NewDisposeScope();
        var net = new TinyNet();
        var headBefore = Of(net, "head.bias");
        var report = StateDictLoader.Load(net, Checkpoint(headClasses: 1000),
            new StateDictLoadOptions { IgnoreKey = StateDictLoadOptions.IgnorePrefixes("head.") });
        Assert.That(report.IsComplete, Is.True);
        Assert.That(report.Ignored, Is.EqualTo(new[] { "head.weight", "head.bias" }));
        Assert.That(Of(net, "head.bias"), Is.EqualTo(headBefore));
        Assert.That(Of(net, "fc.bias"), Is.EqualTo(new[] { 100f, 101f, 102f, 103f }));
    }

    [Test]
    public void RenamedKeysAndOtherDTypesAreConverted()
    {
        using var scope = NewDisposeScope();
        var net = new TinyNet();
        var source = Checkpoint().ToDictionary(kv => "module." + kv.Key, kv => kv.Value.to_type(ScalarType.Float16));
        var report = StateDictLoader.Load(net, source, new StateDictLoadOptions { RenameKey = k => k.StartsWith("module.") ? k[7..] : k });
        Assert.That(report.IsComplete, Is.True);
        Assert.That(net.state_dict()["fc.bias"].dtype, Is.EqualTo(ScalarType.Float32));
        Assert.That(Of(net, "fc.bias"), Is.EqualTo(new[] { 100f, 101f, 102f, 103f }));
    }

    [Test]
    public void FixtureModelDictLoadsIntoAModuleOfTheSameShapes()
    {
        using var scope = NewDisposeScope();
        using var checkpoint = CheckpointFile.Load(CheckpointTestData.PathOf("vim_like.pth"));
        var net = new TinyNet();
        // Only head.weight [3,2] exists in both, with a different shape: the report must say so.
        var report = StateDictLoader.Load(net, checkpoint.ModelStateDict(), new StateDictLoadOptions { Strict = false }, "vim_like.pth[model]");
        Assert.That(report.Mismatched.Single().ToString(), Is.EqualTo("head.weight: module [2, 4], checkpoint [3, 2]"));
        Assert.That(report.Unexpected, Has.Count.EqualTo(8));
        Assert.That(report.Missing, Is.EqualTo(new[] { "fc.weight", "fc.bias", "head.bias", "counter" }));
    }
}
