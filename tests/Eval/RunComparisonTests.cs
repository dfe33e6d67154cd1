using NUnit.Framework;
using Vim.Core;
using Vim.Data.Evaluation.Reports;

namespace Vim.Tests.Eval;

public class RunComparisonTests
{
    private string _root = null!;

    [SetUp]
    public void SetUp() => _root = Directory.CreateTempSubdirectory("vimdense-compare-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    private string Run(string name, params string[] lines)
    {
        var dir = Path.Combine(_root, name);
        Directory.CreateDirectory(dir);
        File.WriteAllLines(Path.Combine(dir, "log.jsonl"), lines);
        return dir;
    }

    private static string Train(int iteration, double loss) =>
        $$"""{"iter":{{iteration}},"lr":0.001,"loss":{{loss}},"time":1,"data_time":0.1,"memory_mb":900}""";

    private static string Val(int iteration, double miou) => $$"""{"iter":{{iteration}},"mode":"val","mIoU":{{miou}}}""";

    [Test]
    public void RunsAreChartedTogetherWithTheirLastAndBestValues()
    {
        var vim = Run("vim", Train(10, 2.0), Val(10, 30), Train(20, 1.5), Val(20, 42.5), Train(30, 1.25), Val(30, 40));
        // A resumed run: the evaluation at 30 belongs to the abandoned launch and is no part of the comparison.
        var deit = Run("deit", Train(10, 2.5), Val(10, 20), Train(20, 2.0), Train(30, 1.8), Val(30, 50), """{"iter":20,"mode":"resume"}""",
            Train(30, 1.75));
        var outDir = Path.Combine(_root, "out");
        var markdown = File.ReadAllText(RunComparison.Write([vim, deit], outDir, legends: ["Vim-Ti", "DeiT-Ti"]));
        Assert.That(markdown, Does.Contain("| Vim-Ti | ").And.Contain("| DeiT-Ti | "));
        Assert.That(markdown, Does.Contain("## loss").And.Contain("| Vim-Ti | 1.25 |").And.Contain("| DeiT-Ti | 1.75 |"));
        Assert.That(markdown, Does.Contain("## mIoU").And.Contain("| Vim-Ti | 40 | 42.5 (20) |").And.Contain("| DeiT-Ti | 20 | 20 (10) |"));
        Assert.That(File.Exists(Path.Combine(outDir, "compare_loss.png")) && File.Exists(Path.Combine(outDir, "compare_mIoU.png")), Is.True);
    }

    [Test]
    public void AKeyNoRunLoggedIsRefusedWithTheKeysThereAre()
    {
        var a = Run("a", Train(10, 2.0), Val(10, 30));
        var b = Run("b", Train(10, 2.0));
        var e = Assert.Throws<VimException>(() => RunComparison.Write([a, b], Path.Combine(_root, "out"), keys: ["bbox_mAP"]))!;
        Assert.That(e.Message, Does.StartWith("--keys: bbox_mAP in no run's log").And.Contain("evaluation keys mIoU"));
        e = Assert.Throws<VimException>(() => RunComparison.Write([a, b], Path.Combine(_root, "out"), legends: ["only one"]))!;
        Assert.That(e.Message, Does.Contain("--legend has 1 name(s) for 2 run(s)"));
    }
}
