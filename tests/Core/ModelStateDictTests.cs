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

    /// <summary>tests/data next to this source file (the test project copies no data), else the output folder.</summary>
    internal static string DataFile(string name, [CallerFilePath] string sourceFile = "")
    {
        var besideSource = Path.Combine(Path.GetDirectoryName(sourceFile)!, "..", "data", name);
        return File.Exists(besideSource) ? besideSource : Path.Combine(TestContext.CurrentContext.TestDirectory, "data", name);
    }
}
