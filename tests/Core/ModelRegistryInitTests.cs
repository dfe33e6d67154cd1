using NUnit.Framework;
using Vim.Core.Models;
using static TorchSharp.torch;

namespace Vim.Tests.Core;

public class ModelRegistryInitTests
{
    /// <summary>
    /// A registered model's weights depend on its seed alone, not on what the global generator drew before: the
    /// segmentation necks keep TorchSharp's default initialisation, which draws from that generator, and two training
    /// runs of one config used to start from different necks.
    /// </summary>
    [TestCase("vimseg_tiny")]
    [TestCase("vimdet_tiny")]
    public void WeightsDependOnTheSeedAloneNotOnTheGlobalGenerator(string name)
    {
        manual_seed(1);
        using var first = ModelRegistry.Create(name, seed: 7);
        manual_seed(2);
        using (var _ = rand(1000)) { }
        using var second = ModelRegistry.Create(name, seed: 7);
        var a = first.state_dict();
        var b = second.state_dict();
        Assert.That(b.Keys, Is.EqualTo(a.Keys));
        foreach (var key in a.Keys)
            Assert.That(a[key].allclose(b[key], rtol: 0, atol: 0), Is.True, $"{key} differs between two builds with seed 7");
        using var other = ModelRegistry.Create(name, seed: 8);
        Assert.That(other.state_dict().Any(kv => kv.Value.is_floating_point() && !kv.Value.allclose(a[kv.Key], rtol: 0, atol: 0)), Is.True,
            "another seed gives other weights");
    }
}
