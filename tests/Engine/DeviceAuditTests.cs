using System.Text.RegularExpressions;
using NUnit.Framework;

namespace Vim.Tests.Engine;

/// <summary>
/// Source-level guards for runtime.device, which this CPU-only test machine cannot exercise on a GPU:
/// the tasks move every batch to the model's device and read results on the host, and the detection and
/// segmentation code creates no tensor that silently lands on the CPU while its inputs are on a GPU.
/// A new violation fails here with file and statement; deliberate host tensors are listed with the reason.
/// </summary>
public class DeviceAuditTests
{
    private static readonly string[] AuditedProjects = ["Vim.Detection", "Vim.Segmentation"];

    // Factories that allocate on the CPU unless given a device.
    private static readonly Regex Factory = new(
        @"(?<![\w.])(?:torch\.)?(zeros|ones|full|empty|arange|tensor|randperm|rand|randn|randint|linspace|eye)\(", RegexOptions.Compiled);

    /// <summary>(file, statement fragment) → why a host tensor is right there.</summary>
    private static readonly (string File, string Fragment, string Why)[] HostByDesign =
    [
        ("Vim.Detection/Ops/Nms.cs", "var keep = empty(n, ScalarType.Int64)", "both NMS kernels write the kept indices to host memory"),
        ("Vim.Detection/Modeling/AnchorGenerator.cs", "return tensor(values.ToArray())", "cell anchors are a small constant; Generate moves them to the grid's device"),
        ("Vim.Segmentation/SegmentationTask.cs", "using var counts = tensor(metric.ExportCounts())", "host confusion counts for the communicator, read back on the host"),
        ("Vim.Segmentation/SegmentationTask.cs", "metric.ImportCounts(counts.data<long>()", "counts is the host tensor above"),
        ("Vim.Detection/DetectionTask.cs", "var bitmap = masks[i].contiguous()", "masks were copied to the host once, above"),
        ("Vim.Detection/ImageDetections.cs", "mask = Rle.Encode(bitmap.data<byte>()", "bitmap is a row of the masks copied to the host once, above"),
        ("Vim.Detection/Modeling/MaskPaster.cs", "var coords = b.data<float>()", "b is the .cpu() copy of the boxes"),
        ("Vim.Detection/Modeling/DetectionStatistics.cs", "private static Tensor Scalar(double value) => tensor((float)value)",
            "a training statistic is counted on the host (item) and only read back there by the trainer, never a model input"),
    ];

    [Test]
    public void TensorFactoriesInDetectionAndSegmentationNameTheirDevice()
    {
        var offenders = Statements().Where(s => Factory.IsMatch(s.Text) && !s.Text.Contains("device", StringComparison.Ordinal) && !Allowed(s))
            .Select(s => $"{s.File}: {Shorten(s.Text)}").ToList();
        Assert.That(offenders, Is.Empty, "tensors created without a device land on the CPU while the model may be on a GPU; pass device: x.device");
    }

    [Test]
    public void HostReadsOfTensorsGoThroughCpu()
    {
        // data<T>() of a CUDA tensor throws: results must be copied to the host first.
        var offenders = Statements().Where(s => s.Text.Contains(".data<", StringComparison.Ordinal) && !s.Text.Contains(".cpu()", StringComparison.Ordinal) && !Allowed(s))
            .Select(s => $"{s.File}: {Shorten(s.Text)}").ToList();
        Assert.That(offenders, Is.Empty);
    }

    [TestCase("Vim.Segmentation/SegmentationTask.cs")]
    [TestCase("Vim.Detection/DetectionTask.cs")]
    public void TasksMoveEveryBatchTensorToTheModelsDevice(string file)
    {
        var text = File.ReadAllText(Path.Combine(RepositoryPaths.Root, file));
        Assert.That(Regex.Matches(text, @"batch\.Images\.to\(device\)"), Has.Count.GreaterThanOrEqualTo(2), $"{file}: Losses and evaluation move the images");
        var stranded = Regex.Matches(text, @"batch\.(Images|Labels)(?>!?)(?!\.to\(device\))[^;]{0,30}").Select(m => m.Value).ToList();
        Assert.That(stranded, Is.Empty, $"{file}: batch tensors must follow the model to its device");
        Assert.That(text, Does.Contain("DeviceSelection.Of(_model)"), $"{file}: the device is the model's");
    }

    [Test]
    public void DetectionTargetsTravelWithTheImages()
    {
        var text = File.ReadAllText(Path.Combine(RepositoryPaths.Root, "Vim.Detection/DetectionTask.cs"));
        var body = text[text.IndexOf("private static Instances GroundTruth", StringComparison.Ordinal)..];
        body = body[..body.IndexOf("return new Instances", StringComparison.Ordinal)];
        foreach (var field in new[] { "target.Boxes", "target.Labels", "target.Masks" })
        {
            var statement = body[body.IndexOf(field, StringComparison.Ordinal)..];
            statement = statement[..statement.IndexOf(';')];
            Assert.That(statement, Does.Contain(".to(device)"), $"{field} reaches the losses on the model's device");
        }
    }

    private static bool Allowed((string File, string Text) s) =>
        HostByDesign.Any(a => a.File == s.File && s.Text.Contains(a.Fragment, StringComparison.Ordinal));

    private static string Shorten(string text) => text.Length > 160 ? text[..160] + "…" : text;

    /// <summary>Every statement (text up to ';', comments removed, whitespace collapsed) of the audited sources.</summary>
    private static IEnumerable<(string File, string Text)> Statements()
    {
        foreach (var project in AuditedProjects)
            foreach (var path in Directory.GetFiles(Path.Combine(RepositoryPaths.Root, project), "*.cs", SearchOption.AllDirectories))
            {
                if (path.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                    || path.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
                    continue;
                var relative = Path.GetRelativePath(RepositoryPaths.Root, path).Replace('\\', '/');
                var code = Regex.Replace(File.ReadAllText(path), @"//[^\n]*", "");
                foreach (var statement in code.Split(';'))
                    yield return (relative, Regex.Replace(statement, @"\s+", " ").Trim());
            }
    }
}
