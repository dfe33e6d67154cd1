using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using NUnit.Framework;
using Vim.Core.IO;
using Vim.Core.Models;
using static TorchSharp.torch;
using static Vim.Tools.Commands.BenchBackboneCommand;

namespace Vim.Tests.Core;

/// <summary>
/// `vim bench backbone --mode train`: the training step computes the gradient of the loss it documents, replaces the
/// gradients each step, a child measures forward and backward with gradients in its memory, the option is checked by
/// name, and the two modes write differently named files, infer mode's exactly as before. Nothing asserts a duration
/// beyond its being positive.
/// </summary>
public class BenchBackboneTrainModeTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(240);

    /// <summary>What infer mode has always written: the CSV header and the JSON fields of each measurement.</summary>
    private const string InferCsvHeader = "model,attention,requested_size,input_size,tokens,batch,median_ms,min_ms,peak_mib,allocator_peak_mib,rounds,gflops,status";

    private static readonly string[] InferJsonFields =
        ["Model", "Attention", "RequestedSize", "InputSize", "Tokens", "Batch", "MedianMs", "MinMs", "PeakMiB", "AllocatorPeakMiB", "Status", "Rounds", "Gflops"];

    private static nn.Module TrainingBackbone(string model)
    {
        var module = ModelRegistry.Create(model, overrides: new BackboneOverrides(DropPathRate: 0));
        if (module is VisionTransformer vit) vit.Attention = AttentionKind.Explicit;
        module.train();
        return module;
    }

    /// <summary>Parameters a loss on the dense maps cannot reach: the classifier head and the final norm (the maps are read before it).</summary>
    private static bool Unreached(string name) => name.StartsWith("head.", StringComparison.Ordinal) || name.StartsWith("norm_f.", StringComparison.Ordinal) ||
        name.StartsWith("norm.", StringComparison.Ordinal);

    [TestCase("vim_tiny")]
    [TestCase("deit_tiny")]
    public void TheTrainingStepFillsTheGradientOfTheSummedMapMeans(string model)
    {
        using var module = TrainingBackbone(model);
        var backbone = (ITokenBackbone)module;
        using var images = randn(1, 3, 32, 32, generator: new Generator(3));
        RepetitionTime time;
        using (NewDisposeScope()) time = TrainingStep(module, backbone, images);
        Assert.That(time.ForwardMs, Is.GreaterThan(0));
        Assert.That(time.BackwardMs, Is.GreaterThan(0));

        foreach (var (name, parameter) in module.named_parameters())
        {
            using var scope = NewDisposeScope();
            if (Unreached(name)) Assert.That(parameter.grad, Is.Null, name);
            else
            {
                Assert.That(parameter.grad, Is.Not.Null, name);
                Assert.That(parameter.grad!.isfinite().all().item<bool>(), name);
            }
        }

        // The gradient of one bias element against a central difference of the loss, recomputed here without autograd:
        // the sum over the maps of each map's mean.
        var bias = module.named_parameters().Single(p => p.name == "patch_embed.proj.bias").parameter;
        float analytic;
        using (NewDisposeScope()) analytic = bias.grad![0].item<float>();
        double Loss()
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            return backbone.ForwardTaps(images).Sum(map => (double)map.mean().item<float>());
        }
        const double step = 0.05;
        double up, down;
        using (NewDisposeScope())
        using (no_grad())
        {
            bias[0].add_(step);
            up = Loss();
            bias[0].add_(-2 * step);
            down = Loss();
            bias[0].add_(step);
        }
        double numeric = (up - down) / (2 * step);
        Assert.That(Math.Abs(numeric), Is.GreaterThan(1e-4), "the check needs a bias the loss depends on");
        Assert.That(analytic, Is.EqualTo(numeric).Within(0.02 * Math.Abs(numeric)));
    }

    [Test]
    public void RepeatedStepsReplaceTheGradientsInsteadOfAddingToThem()
    {
        using var module = TrainingBackbone("vim_tiny");
        var backbone = (ITokenBackbone)module;
        using var images = randn(1, 3, 32, 32, generator: new Generator(4));
        using (NewDisposeScope()) TrainingStep(module, backbone, images);
        var first = new Dictionary<string, Tensor>();
        foreach (var (name, parameter) in module.named_parameters().Where(p => !Unreached(p.name)))
            using (NewDisposeScope()) first[name] = parameter.grad!.clone().DetachFromDisposeScope();
        using (NewDisposeScope()) TrainingStep(module, backbone, images);
        try
        {
            // Accumulated gradients would be twice the first step's.
            foreach (var (name, parameter) in module.named_parameters().Where(p => !Unreached(p.name)))
                using (NewDisposeScope())
                    Assert.That(parameter.grad!.allclose(first[name], rtol: 1e-4, atol: 1e-7), name);
        }
        finally
        {
            foreach (var tensor in first.Values) tensor.Dispose();
        }
    }

    private static Measurement MeasureInChild(string spec, params string[] options)
    {
        var run = CliProcess.Run(Limit, ["bench", "backbone", "--child", spec, "--warmup", "1", "--repeats", "1", .. options]);
        Assert.That(run.ExitCode, Is.Zero, run.Output);
        var line = run.Stdout.Split('\n').Single(l => l.StartsWith("RESULT ", StringComparison.Ordinal));
        return JsonSerializer.Deserialize<Measurement>(line["RESULT ".Length..], MetricJson.Compact)!;
    }

    [TestCase("vim_tiny", "-")]
    [TestCase("deit_tiny", "explicit")]
    public void ATrainingChildMeasuresForwardAndBackwardAndCountsTheGradientsInItsPeak(string model, string attention)
    {
        var result = MeasureInChild($"{model}:{attention}:32", "--mode", "train");
        Assert.That(result.Status, Is.EqualTo("ok"));
        Assert.That(result.ForwardMs, Is.GreaterThan(0));
        Assert.That(result.BackwardMs, Is.GreaterThan(0));
        // One timed step: its latency is its forward plus its backward.
        Assert.That(result.MedianMs, Is.EqualTo(result.ForwardMs!.Value + result.BackwardMs!.Value).Within(1e-9));
        Assert.That(result.MinMs, Is.EqualTo(result.MedianMs));
        Assert.That(result.Gflops, Is.GreaterThan(0).And.LessThan(double.PositiveInfinity));
        Assert.That(result.AllocatorPeakMiB, Is.GreaterThan(0).And.LessThan(double.PositiveInfinity));
        // 32² in 16-pixel patches: a 2×2 grid and the class token.
        Assert.That((result.InputSize, result.Tokens), Is.EqualTo((32, 5L)));

        // A training step's peak holds, beyond the feature extraction's, a float gradient for every reached parameter.
        var inference = MeasureInChild($"{model}:{attention}:32");
        Assert.That((inference.ForwardMs, inference.BackwardMs), Is.EqualTo(((double?)null, (double?)null)), "infer mode has no step to split");
        using var module = TrainingBackbone(model);
        long gradients = module.named_parameters().Where(p => !Unreached(p.name)).Sum(p => p.parameter.numel());
        Assert.That(result.PeakMiB - inference.PeakMiB, Is.GreaterThan(gradients * 4.0 / (1 << 20)),
            $"training peak {result.PeakMiB:F1} MiB, inference peak {inference.PeakMiB:F1} MiB");
    }

    /// <summary>
    /// A detection entry is measured on the backbone its pyramid wraps (no class token: 2×2 tokens at 32²), and --with-cp
    /// builds it with checkpointed blocks: the child runs its training step to the end and counts the forward's FLOPs once.
    /// </summary>
    [Test]
    public void ACheckpointedTrainingChildOfTheDetectionBackboneRuns()
    {
        var result = MeasureInChild("vimdet_tiny:-:32", "--mode", "train", "--with-cp");
        Assert.That(result.Status, Is.EqualTo("ok"));
        Assert.That((result.InputSize, result.Tokens), Is.EqualTo((32, 4L)));
        Assert.That(result.BackwardMs, Is.GreaterThan(0));
        // The forward's FLOPs, not doubled by the blocks' recomputation in backward.
        var plain = MeasureInChild("vimdet_tiny:-:32", "--mode", "train");
        Assert.That(result.Gflops, Is.EqualTo(plain.Gflops).And.GreaterThan(0));
    }

    [TestCase(new[] { "--mode", "training" }, "--mode: expected infer (feature extraction) or train (forward + backward), got 'training'.")]
    [TestCase(new[] { "--mode", "Train" }, "--mode: expected infer (feature extraction) or train (forward + backward), got 'Train'.")]
    [TestCase(new[] { "--mode", "train", "--breakdown" }, "--breakdown times the stages of the inference forward only; leave out --mode train.")]
    public void TheModeIsRefusedByName(string[] options, string expected)
    {
        var run = CliProcess.Run(Limit, ["bench", "backbone", "--models", "vim_tiny", "--sizes", "32", .. options]);
        Assert.That(run.ExitCode, Is.EqualTo(2), run.Output);
        Assert.That(run.Stderr, Does.StartWith($"error: {expected}"));
    }

    /// <summary>The console lines with every number replaced, so that runs compare by what they print, not by what they timed.</summary>
    private static string[] Shapes(string stdout) =>
        stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => Regex.Replace(l, @"\s*-?\d+(\.\d+)?", " #")).ToArray();

    private static Dictionary<string, string> Hashes(string dir) =>
        Directory.GetFiles(dir).ToDictionary(f => Path.GetFileName(f), f => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f))));

    private static string[] JsonFields(string path) =>
        JsonDocument.Parse(File.ReadAllText(path)).RootElement.EnumerateArray().SelectMany(m => m.EnumerateObject().Select(p => p.Name)).Distinct().ToArray();

    /// <summary>What a row says beside its measurements: model, attention, requested and input size, tokens, batch, rounds and status.</summary>
    private static string[] Identity(string csvPath)
    {
        var lines = File.ReadAllLines(csvPath);
        int rounds = Array.IndexOf(lines[0].Split(','), "rounds");
        return lines.Skip(1).Select(l => l.Split(',')).Select(c => string.Join(',', c.Take(6).Append(c[rounds]).Append(c[^1]))).ToArray();
    }

    private static readonly string[] RowsAt32 = ["vim_tiny,-,32,32,5,1,1,\"ok\"", "deit_tiny,explicit,32,32,5,1,1,\"ok\"", "deit_tiny,sdpa,32,32,5,1,1,\"ok\""];

    [Test]
    public void InferFilesAreAsBeforeAndTrainFilesSitBesideThemUnderTheirOwnNames()
    {
        var dir = Directory.CreateTempSubdirectory("vimdense-bench-modes-").FullName;
        try
        {
            string[] common = ["bench", "backbone", "--sizes", "32", "--warmup", "0", "--repeats", "1"];
            var infer = CliProcess.Run(Limit, [.. common, "--models", "vim_tiny,deit_tiny", "--out", dir]);
            Assert.That(infer.ExitCode, Is.Zero, infer.Output);
            var inferFiles = Hashes(dir);
            Assert.That(inferFiles.Keys, Is.EquivalentTo(new[] { "backbone.csv", "backbone.json", "latency.png", "memory.png" }));
            Assert.That(File.ReadLines(Path.Combine(dir, "backbone.csv")).First(), Is.EqualTo(InferCsvHeader));
            Assert.That(JsonFields(Path.Combine(dir, "backbone.json")), Is.EqualTo(InferJsonFields));
            Assert.That(Identity(Path.Combine(dir, "backbone.csv")), Is.EqualTo(RowsAt32));
            var inferLines = infer.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.That(inferLines[0], Does.Match(@"^vim_tiny +size +32 \( +5 tokens\)  median +[\d.]+ ms +[\d.]+ GFLOPs  peak +-?[\d.]+ MiB \(default allocator +-?[\d.]+ MiB\)$"));
            Assert.That(inferLines[3], Does.Match(@"^size    32: vim_tiny vs deit_tiny/explicit: speed-up [\d.]+× \(DeiT time / Vim time\), memory saving -?[\d.]+% " +
                @"\(1 − Vim peak / DeiT peak; default allocator -?[\d.]+%\)$"));
            Assert.That(infer.Stdout, Does.Not.Contain("training step").And.Not.Contain("forward GFLOPs"));
            Assert.That(inferLines[^1], Is.EqualTo($"wrote {dir}/backbone.csv, backbone.json, latency.png, memory.png"));

            // --mode infer names the path the default takes: the same files, rows and console lines.
            var explicitDir = Path.Combine(dir, "explicit");
            var explicitInfer = CliProcess.Run(Limit, [.. common, "--models", "vim_tiny,deit_tiny", "--mode", "infer", "--out", explicitDir]);
            Assert.That(explicitInfer.ExitCode, Is.Zero, explicitInfer.Output);
            Assert.That(Hashes(explicitDir).Keys, Is.EquivalentTo(inferFiles.Keys));
            Assert.That(Identity(Path.Combine(explicitDir, "backbone.csv")), Is.EqualTo(Identity(Path.Combine(dir, "backbone.csv"))));
            Assert.That(Shapes(explicitInfer.Stdout.Replace(explicitDir, dir)), Is.EqualTo(Shapes(infer.Stdout)));

            var train = CliProcess.Run(Limit, [.. common, "--models", "vim_tiny,deit_tiny", "--mode", "train", "--out", dir]);
            Assert.That(train.ExitCode, Is.Zero, train.Output);
            var all = Hashes(dir);
            Assert.That(all.Keys, Is.EquivalentTo(inferFiles.Keys.Concat(new[] { "backbone_train.csv", "backbone_train.json", "latency_train.png", "memory_train.png" })));
            foreach (var (file, hash) in inferFiles) Assert.That(all[file], Is.EqualTo(hash), $"{file} was overwritten by the train run");
            Assert.That(File.ReadLines(Path.Combine(dir, "backbone_train.csv")).First(), Is.EqualTo(
                "model,attention,requested_size,input_size,tokens,batch,median_ms,min_ms,forward_ms,backward_ms,peak_mib,allocator_peak_mib,rounds,forward_gflops,status"));
            Assert.That(JsonFields(Path.Combine(dir, "backbone_train.json")), Is.EqualTo(InferJsonFields.Concat(new[] { "ForwardMs", "BackwardMs" })));
            Assert.That(Identity(Path.Combine(dir, "backbone_train.csv")), Is.EqualTo(RowsAt32));
            var trainLines = train.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.That(trainLines[0], Does.Match(@"^vim_tiny +size +32 \( +5 tokens\)  median +[\d.]+ ms  \(forward +[\d.]+ \+ backward +[\d.]+ ms\) +[\d.]+ forward GFLOPs  peak "));
            Assert.That(trainLines.Where(l => l.StartsWith("size ", StringComparison.Ordinal)).ToArray(), Has.Length.EqualTo(2).And.All.Contain(": training step speed-up ").And.All.Contain("), training step memory saving "));
            Assert.That(trainLines[^1], Is.EqualTo($"wrote {dir}/backbone_train.csv, backbone_train.json, latency_train.png, memory_train.png"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
