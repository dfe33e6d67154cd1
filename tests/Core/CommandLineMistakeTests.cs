using NUnit.Framework;
using Vim.Core;
using Vim.Core.Checkpoints;
using Vim.Core.Config;
using Vim.Tools;
using static TorchSharp.torch;

namespace Vim.Tests.Core;

/// <summary>
/// Mistakes a researcher new to the command line makes, found by walking through the README's commands: an output path
/// that lies under a file, a --set value that is not YAML, a file that is not a checkpoint. Each is refused by one line
/// naming the option or file and the cause, before any work, and the file in the way is left as it was.
/// </summary>
public class CommandLineMistakeTests
{
    private string _dir = "";
    private string _blocking = "";

    [SetUp]
    public void SetUp()
    {
        _dir = Directory.CreateTempSubdirectory("vim-cli-mistakes-").FullName;
        _blocking = Path.Combine(_dir, "a-file");
        File.WriteAllText(_blocking, "kept");
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private static string Refused(params string[] args)
    {
        // Some verbs print their own refusal to Console.Error; the others reach VimCli.Run's writer.
        var error = new StringWriter();
        var output = new StringWriter();
        var previousError = Console.Error;
        Console.SetError(error);
        try
        {
            Assert.That(CliProcess.WithConsole(output, () => VimCli.Run(args, error)), Is.Not.Zero, string.Join(" ", args));
        }
        finally
        {
            Console.SetError(previousError);
        }
        Assert.That(output.ToString(), Is.Empty, $"refused before any work: {string.Join(" ", args)}");
        return error.ToString();
    }

    private string UnderTheFile(string name) => Path.Combine(_blocking, name);

    private string SmallCheckpoint()
    {
        var path = Path.Combine(_dir, "small.safetensors");
        using (NewDisposeScope())
            SafeTensorsFormat.Write(path, [new KeyValuePair<string, Tensor>("w", ones(2, 3, device: CPU))]);
        return path;
    }

    [TestCase("--out", "report", "run_a", "run_b", "--out")]
    [TestCase("--out", "data", "demo", "--kind", "coco", "--images", "4", "--out")]
    [TestCase("--out", "bench", "scan", "--lengths", "16", "--repeats", "1", "--warmup", "0", "--backends", "reference", "--out")]
    [TestCase("--out", "bench", "backbone", "--models", "vim_tiny", "--sizes", "32", "--repeats", "1", "--warmup", "0", "--out")]
    [TestCase("--json-out", "model", "flops", "vim_tiny", "--size", "32", "--json-out")]
    public void AnOutputPathUnderAFileIsRefusedByOptionBeforeAnyWork(string option, params string[] argsBeforePath)
    {
        var target = UnderTheFile("out");
        var error = Refused([.. argsBeforePath, target]);

        Assert.That(error, Does.StartWith($"error: {option} {target}: {_blocking} is a file, so the "));
        Assert.That(error, Does.Not.Contain("Could not find a part of the path").And.Not.Contain("already exists"));
        Assert.That(File.ReadAllText(_blocking), Is.EqualTo("kept"));
    }

    [Test]
    public void EvaluationOutputsUnderAFileAreRefusedByOptionBeforeEvaluating()
    {
        string gt = Path.Combine(_dir, "gt.json"), results = Path.Combine(_dir, "results.json");
        File.WriteAllText(gt, Detection.DetectionConfusionTests.GroundTruthJson);
        File.WriteAllText(results, Detection.DetectionConfusionTests.ResultsJson);
        string json = UnderTheFile("metrics.json"), report = UnderTheFile("report");
        string[] coco = ["eval", "coco", "--gt", gt, "--results", results];
        string[] seg = ["eval", "seg", "--pred", Path.Combine(_dir, "pred"), "--gt", Path.Combine(_dir, "labels"), "--num-classes", "3"];

        foreach (var command in new[] { coco, seg })
        {
            Assert.That(Refused([.. command, "--json-out", json]), Does.StartWith($"error: --json-out {json}: {_blocking} is a file, so the file cannot be created there"));
            Assert.That(Refused([.. command, "--report-dir", report]),
                Does.StartWith($"error: --report-dir {report}: {_blocking} is a file, so the folder cannot be created there"));
        }
        Assert.That(File.ReadAllText(_blocking), Is.EqualTo("kept"));
    }

    [TestCase("convert")]
    [TestCase("publish")]
    public void ACheckpointWrittenUnderAFileOrOverAFolderIsRefusedNamingOut(string verb)
    {
        var input = SmallCheckpoint();
        var underFile = UnderTheFile("weights.safetensors");
        Assert.That(Refused("checkpoint", verb, input, underFile),
            Does.StartWith($"error: OUT {underFile}: {_blocking} is a file, so the file cannot be created there"));

        var folder = Directory.CreateDirectory(Path.Combine(_dir, "published")).FullName;
        Assert.That(Refused("checkpoint", verb, input, folder), Does.StartWith($"error: OUT {folder}: is a folder; expected a file path"));
        Assert.That(Directory.EnumerateFileSystemEntries(folder), Is.Empty);
        Assert.That(File.ReadAllText(_blocking), Is.EqualTo("kept"));
    }

    [Test]
    public void ANegativeOverlayCountIsRefusedBeforeTheCheckpointIsRead()
    {
        var config = Path.Combine(RepositoryPaths.Root, "configs", "seg", "upernet_vim_tiny_demo_ade.yaml");
        var absent = Path.Combine(_dir, "absent.safetensors");
        CliProcess.AssertRefusedBeforeCheckpoint(
            [(["test", config, "--checkpoint", absent, "--overlays", "-1"], ["--overlays must be 0 or more, got -1"])], absent);
    }

    [Test]
    public void ASetValueThatIsNotYamlIsNamedAsTypedWithoutALineNumber()
    {
        var config = Path.Combine(_dir, "c.yaml");
        File.WriteAllText(config, "optimizer:\n  lr: 0.001\n");
        const string typed = "optimizer.betas=[0.9,0.99";

        var error = Assert.Throws<VimException>(() => ExperimentConfig.Load(config, [typed]))!.Message;

        // The one-line value has no line to point at: "[0.9,0.99:2" would read as part of what was typed.
        Assert.That(error, Does.StartWith($"--set {typed}: invalid YAML: "));
    }

    [Test]
    public void AFileThatIsNoCheckpointIsDescribedByItsOwnSize()
    {
        var notes = Path.Combine(_dir, "notes.md");
        File.WriteAllText(notes, new string('#', 1000));

        var error = Refused("checkpoint", "inspect", notes);

        // 1000 bytes on disk, of which the format check reads only the first 14: the message gives the file's size.
        Assert.That(error, Does.Contain($"{notes}: not a checkpoint").And.Contain("a file of 1000 byte(s) starting with hex 232323"));
    }
}
