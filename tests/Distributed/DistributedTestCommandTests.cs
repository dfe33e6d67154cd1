using System.IO.Compression;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using NUnit.Framework;
using Vim.Data.Coco;
using Vim.Data.Demo;
using Vim.Tests.Engine;
using Vim.Tools;

namespace Vim.Tests.Distributed;

/// <summary>
/// `mpirun -np 2 ./vim test …` (mmdet's dist_test.sh) on tiny untrained demo checkpoints, against the same command in one
/// process: rank 0 alone writes, and writes exactly what one process writes (every file, byte for byte once the output
/// folder's own path is set aside), with and without --format-only; the robustness grid's ranks agree on the cells to skip;
/// `vim infer` is refused.
/// Skipped only where Open MPI's mpirun is not installed.
/// </summary>
[NonParallelizable]
public class DistributedTestCommandTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(120);
    private static readonly string DetectionConfig = Path.Combine(RepositoryPaths.Root, "configs", "det", "cascade_mask_rcnn_vim_tiny_demo_coco.yaml");
    private static readonly string SegmentationConfig = Path.Combine(RepositoryPaths.Root, "configs", "seg", "upernet_vim_tiny_demo_ade.yaml");
    private const string ShardingLine = "vim test: 2 processes, each predicting the images i with i mod 2 = its rank; rank 0 writes every output";
    private string _root = null!;

    [SetUp]
    public void SetUp()
    {
        if (CliProcess.Mpirun is null)
            Assert.Ignore("mpirun (Open MPI) is not installed: apt-get install openmpi-bin libopenmpi-dev (scripts/setup.sh does)");
        _root = Directory.CreateTempSubdirectory("vimdense-disttest-").FullName;
    }

    [TearDown]
    public void TearDown()
    {
        if (_root is not null && Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    /// <summary>
    /// 3 validation images (rank 0 predicts two, rank 1 one) with the ground truth moved onto the untrained detector's top
    /// detections, so that AP is above 0; --proposals, --error-analysis and --overlays all come from the gathered detections.
    /// </summary>
    [Test]
    public void DetectionOnTwoProcessesWritesWhatOneProcessWrites()
    {
        DemoDatasetGenerator.Generate(new DemoOptions { Kind = DemoKind.Coco, OutputDir = Path.Combine(_root, "coco"), TrainImages = 2, ValImages = 3, Width = 96, Height = 96, Seed = 3 });
        string[] sets = Sets($"data.root={Path.Combine(_root, "coco")}", "data.crop_size=[96,96]", "model.backbone.img_size=96", "data.num_workers=0",
            "model.backbone.pretrained=null", "runtime.threads=1");
        var checkpoint = RobustnessTests.UntrainedCheckpoint(DetectionConfig, OverridesOf(sets), Path.Combine(_root, "work"));
        var untrained = Path.Combine(_root, "untrained");
        InOneProcess(["test", DetectionConfig, "--checkpoint", checkpoint, "--out", untrained, "--overlays", "0", .. sets]);
        var found = CocoResults.Load(Path.Combine(untrained, "results.json"));
        MultiProcessTests.GroundTruthFromTopDetections(Path.Combine(_root, "coco", "annotations", "instances_val.json"),
            found.Select(d => (d.ImageId, d.CategoryId, d.Score, d.Bbox!)));

        string[] test = ["test", DetectionConfig, "--checkpoint", checkpoint, "--overlays", "2", "--error-analysis", "--proposals", .. sets];
        // One process under mpirun, for the numerics of a job: every rank runs with MKL_CBWR=AUTO,STRICT, which moves the
        // RPN's float32 objectness in its last bits against this process's MKL (the detections and metrics stay equal).
        var single = Path.Combine(_root, "single");
        var one = CliProcess.RunUnderMpirun(1, Limit, [.. test, "--out", single]);
        Assert.That(one.ExitCode, Is.EqualTo(0), one.Output);
        Assert.That(one.Output, Does.Not.Contain("vim test: 1 processes"), "one process predicts every image");
        var dist = Path.Combine(_root, "dist");
        var run = CliProcess.RunUnderMpirun(2, Limit, [.. test, "--out", dist]);
        Assert.That(run.ExitCode, Is.EqualTo(0), run.Output);

        var metrics = Metrics(single);
        Assert.That(metrics["bbox_mAP_50"], Is.GreaterThan(0), "metrics an empty or partial detection list would not give");
        Assert.That(metrics.Keys, Does.Contain("proposal_AR@100").And.Contain("segm_mAP"));
        Assert.That(Metrics(dist), Is.EqualTo(metrics), "the same COCO metrics");
        AssertSameFiles(single, dist);
        Assert.That(Directory.GetFiles(Path.Combine(dist, "overlays")), Has.Length.EqualTo(2));
        Assert.That(File.Exists(Path.Combine(dist, "bbox", "errors", "errors.json")));
        Assert.That(Occurrences(run.Output, "results.json, proposals.json, metrics.json, reports, the error analysis and the confusion matrix in"), Is.EqualTo(1),
            "rank 0 alone prints");
        Assert.That(Occurrences(run.Output, ShardingLine), Is.EqualTo(1), run.Output);

        // --format-only on the validation images as test-dev2017 (no annotations; images in test2017/): the submission of
        // two processes is one process's, results.json byte for byte and the zip's entries.
        FormatOnlyTests.WriteImageInfoSplit(Path.Combine(_root, "coco"), "test-dev2017", "test2017");
        string[] submit = ["test", DetectionConfig, "--checkpoint", checkpoint, "--format-only", "--overlays", "2", .. sets];
        var (singleSubmission, distSubmission) = SubmitOnOneAndTwoProcesses(submit, args =>
        {
            var oneSubmit = CliProcess.RunUnderMpirun(1, Limit, args);
            Assert.That(oneSubmit.ExitCode, Is.EqualTo(0), oneSubmit.Output);
        }, atLeast: 3);
        Assert.That(CocoResults.Load(Path.Combine(singleSubmission, "results.json")).Select(d => d.ImageId).Distinct().Count(), Is.EqualTo(3),
            "every image's detections, rank 1's too");
        Assert.That(File.Exists(Path.Combine(distSubmission, "detections_test-dev2017_vimdense_results.zip")));
    }

    /// <summary>
    /// With --tta (flip: two passes per image) and overlays of the first two images, one of them rank 1's: every prediction
    /// PNG comes to rank 0, and the summed confusion counts give the one-process mIoU, mAcc and aAcc to the bit.
    /// </summary>
    [Test]
    public void SegmentationOnTwoProcessesWritesWhatOneProcessWrites()
    {
        var sets = SegmentationData();
        var checkpoint = RobustnessTests.UntrainedCheckpoint(SegmentationConfig, OverridesOf(sets), Path.Combine(_root, "work"));
        string[] test = ["test", SegmentationConfig, "--checkpoint", checkpoint, "--tta", "--overlays", "2", .. sets];
        var single = Path.Combine(_root, "single");
        InOneProcess([.. test, "--out", single]);
        var dist = Path.Combine(_root, "dist");
        var run = CliProcess.RunUnderMpirun(2, Limit, [.. test, "--out", dist]);
        Assert.That(run.ExitCode, Is.EqualTo(0), run.Output);

        var metrics = Metrics(single);
        Assert.That(metrics["aAcc"], Is.GreaterThan(0).And.LessThan(100), "a non-trivial confusion matrix");
        Assert.That(Metrics(dist), Is.EqualTo(metrics));
        AssertSameFiles(single, dist);
        Assert.That(Directory.GetFiles(Path.Combine(dist, "predictions", "pred")), Has.Length.EqualTo(3), "rank 1's image too");
        Assert.That(Directory.GetFiles(Path.Combine(dist, "predictions", "overlay")), Has.Length.EqualTo(2), "image 1 is rank 1's");
        Assert.That(Occurrences(run.Output, "predictions, metrics.json, report and the confusion matrix in"), Is.EqualTo(1), run.Output);
        Assert.That(Occurrences(run.Output, ShardingLine), Is.EqualTo(1), run.Output);

        // --format-only on the validation images as ADE20k's testing split (images/testing/, no labels): every submission
        // PNG, the zip's entries and the overlays of two processes are one process's.
        var testing = Path.Combine(_root, "ade", "images", "testing");
        Directory.CreateDirectory(testing);
        foreach (var image in Directory.GetFiles(Path.Combine(_root, "ade", "images", "validation")))
            File.Copy(image, Path.Combine(testing, Path.GetFileName(image)));
        string[] submit = ["test", SegmentationConfig, "--checkpoint", checkpoint, "--format-only", "--tta", "--overlays", "2", .. sets];
        var (singleSubmission, _) = SubmitOnOneAndTwoProcesses(submit, InOneProcess, atLeast: 5);
        Assert.That(Directory.GetFiles(Path.Combine(singleSubmission, "submission")), Has.Length.EqualTo(3));
    }

    /// <summary>
    /// A grid one process began (clean, gaussian_noise 1) finished over two processes with severity 2 added: rank 0's
    /// robustness.json decides that both ranks run only the new cell (had rank 1 run all three, its collectives would pair
    /// with rank 0's wrongly and the job hang past runtime.collective_timeout_s), whose metrics are one process's.
    /// </summary>
    [Test]
    public void ARobustnessGridOnTwoProcessesSkipsTheCellsRankZeroHasAlready()
    {
        var sets = SegmentationData();
        var checkpoint = RobustnessTests.UntrainedCheckpoint(SegmentationConfig, OverridesOf(sets), Path.Combine(_root, "work"));
        // The same --set on every run: a grid is resumed only with the setup it was written with.
        string[] test = ["test", SegmentationConfig, "--checkpoint", checkpoint, "--corruptions", "gaussian_noise", .. sets, "--set", "runtime.collective_timeout_s=30"];
        var resumed = Path.Combine(_root, "resumed");
        InOneProcess([.. test, "--severities", "1", "--out", resumed]);
        var run = CliProcess.RunUnderMpirun(2, Limit, [.. test, "--severities", "1,2", "--out", resumed]);
        Assert.That(run.ExitCode, Is.EqualTo(0), run.Output);
        Assert.That(Occurrences(run.Output, "robustness: 2 of 3 cells already in"), Is.EqualTo(1), run.Output);
        Assert.That(run.Output, Does.Contain("robustness: cell 1/1 (gaussian_noise severity 2)").And.Not.Contain("(clean)"));

        var reference = Path.Combine(_root, "reference");
        InOneProcess([.. test, "--severities", "2", "--out", reference]);
        var cell = Robustness(resumed)["results"]!["gaussian_noise"]!["2"]!.AsObject();
        var expected = Robustness(reference)["results"]!["gaussian_noise"]!["2"]!.AsObject();
        Assert.That(cell.Select(p => (p.Key, p.Value!.GetValue<double>())), Is.EqualTo(expected.Select(p => (p.Key, p.Value!.GetValue<double>()))),
            "the cell's summed counts are one process's");
        Assert.That(Robustness(resumed)["complete"]!.GetValue<bool>(), Is.True);
        Assert.That(Directory.GetFiles(Path.Combine(resumed, "robustness", "samples")).Select(Path.GetFileName),
            Is.EquivalentTo(new[] { "clean.png", "gaussian_noise_1.png", "gaussian_noise_2.png" }));
        Assert.That(Directory.GetFiles(resumed, "*", SearchOption.AllDirectories).Where(f => f.Contains(".tmp-", StringComparison.Ordinal)), Is.Empty);
    }

    [Test]
    public void InferUnderMpirunIsRefusedNamingTheCommand()
    {
        var run = CliProcess.RunUnderMpirun(2, Limit, "infer", SegmentationConfig, "--checkpoint", Path.Combine(_root, "absent.safetensors"), Path.Combine(_root, "absent.jpg"));
        Assert.That(run.ExitCode, Is.Not.EqualTo(0), run.Output);
        Assert.That(run.Output, Does.Contain("error: vim infer runs in one process, and mpirun started 2").And.Contain("mpirun -np K ./vim test"), run.Output);
        Assert.That(run.Output, Does.Not.Contain("absent"), "refused before its arguments are looked at");
    }

    /// <summary>The demo ADE data, 3 validation images of 64² (rank 0 gets two, rank 1 one), and the small demo segmentor's --set options.</summary>
    private string[] SegmentationData()
    {
        DemoDatasetGenerator.Generate(new DemoOptions { Kind = DemoKind.Ade, OutputDir = Path.Combine(_root, "ade"), TrainImages = 4, ValImages = 3, Width = 64, Height = 64, Seed = 3 });
        return Sets($"data.root={Path.Combine(_root, "ade")}", "data.crop_size=[64,64]", "data.scale=[64,64]", "model.backbone.img_size=64", "data.num_workers=0",
            "model.seg_head.channels=16", "model.seg_head.auxiliary_channels=16", "runtime.threads=1");
    }

    private static string[] Sets(params string[] overrides) => overrides.SelectMany(o => new[] { "--set", o }).ToArray();

    private static string[] OverridesOf(string[] sets) => sets.Where((_, i) => i % 2 == 1).ToArray();

    private static void InOneProcess(string[] args)
    {
        var errors = new StringWriter();
        Assert.That(CliProcess.WithConsole(TextWriter.Null, () => VimCli.Run(args, errors)), Is.EqualTo(0), errors.ToString());
    }

    private static Dictionary<string, double> Metrics(string dir) =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "metrics.json")))!.AsObject().ToDictionary(p => p.Key, p => p.Value!.GetValue<double>());

    private static JsonNode Robustness(string dir) => JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "robustness", "robustness.json")))!;

    private static List<(string Name, byte[] Bytes)> ZipEntries(byte[] zip)
    {
        using var archive = new ZipArchive(new MemoryStream(zip), ZipArchiveMode.Read);
        return archive.Entries.Select(entry =>
        {
            using var stream = entry.Open();
            using var bytes = new MemoryStream();
            stream.CopyTo(bytes);
            return (entry.FullName, bytes.ToArray());
        }).ToList();
    }

    /// <summary>
    /// `vim test --format-only` (<paramref name="submit"/>) run once by <paramref name="runSingle"/> (given the arguments with
    /// --out) and once under `mpirun -np 2`: the two submissions hold the same files (at least <paramref name="atLeast"/>),
    /// and rank 0 alone prints the upload line and the sharding line once. Returns the two output folders.
    /// </summary>
    private (string Single, string Dist) SubmitOnOneAndTwoProcesses(string[] submit, Action<string[]> runSingle, int atLeast)
    {
        var single = Path.Combine(_root, "single-submission");
        runSingle([.. submit, "--out", single]);
        var dist = Path.Combine(_root, "dist-submission");
        var submitted = CliProcess.RunUnderMpirun(2, Limit, [.. submit, "--out", dist]);
        Assert.That(submitted.ExitCode, Is.EqualTo(0), submitted.Output);
        AssertSameFiles(single, dist, atLeast);
        Assert.That(Occurrences(submitted.Output, "upload "), Is.EqualTo(1), "rank 0 alone prints");
        Assert.That(Occurrences(submitted.Output, ShardingLine), Is.EqualTo(1), submitted.Output);
        return (single, dist);
    }

    private static int Occurrences(string text, string part) => (text.Length - text.Replace(part, "", StringComparison.Ordinal).Length) / part.Length;

    /// <summary>
    /// The same files under both folders (no temporary file left, no rank's extra copy), each the same bytes; in text files
    /// the folders' own paths, which reports name, and the error analysis's own duration count as equal; a zip's entries
    /// (names and bytes) are compared, not its own bytes, which hold each entry's time of writing.
    /// </summary>
    private static void AssertSameFiles(string expectedDir, string actualDir, int atLeast = 6)
    {
        static string Comparable(byte[] text, string dir) => Regex.Replace(
            Encoding.UTF8.GetString(text).Replace(dir, "<out>", StringComparison.Ordinal), @"analysed in [0-9.]+ s", "analysed in <time> s");
        static List<string> Files(string dir) => Directory.GetFiles(dir, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(dir, f)).Order(StringComparer.Ordinal).ToList();
        var files = Files(expectedDir);
        Assert.That(Files(actualDir), Is.EqualTo(files));
        Assert.That(files, Has.Count.GreaterThanOrEqualTo(atLeast));
        foreach (var file in files)
        {
            var expected = File.ReadAllBytes(Path.Combine(expectedDir, file));
            var actual = File.ReadAllBytes(Path.Combine(actualDir, file));
            if (Path.GetExtension(file) is ".json" or ".md" or ".csv" or ".txt")
                Assert.That(Comparable(actual, actualDir), Is.EqualTo(Comparable(expected, expectedDir)), file);
            else if (Path.GetExtension(file) is ".zip")
                Assert.That(ZipEntries(actual), Is.EqualTo(ZipEntries(expected)), file);
            else
                Assert.That(actual, Is.EqualTo(expected), file);
        }
    }
}
