using NUnit.Framework;
using Vim.Core;
using Vim.Core.Checkpoints;
using Vim.Core.Config;
using Vim.Core.Engine;
using Vim.Data.Demo;
using Vim.Data.Loading;
using Vim.Segmentation;
using Vim.Tests.Core;
using Vim.Tests.Detection;
using Vim.Tests.Segmentation;
using Vim.Tools;
using Vim.Tools.Commands;
using static TorchSharp.torch;

namespace Vim.Tests.Engine;

/// <summary>load_from (MMEngine's): a fresh run from a whole model's weights, against resume and the pretrained backbone.</summary>
public class LoadFromTests
{
    private string _root = null!;

    [SetUp]
    public void SetUp() => _root = Directory.CreateTempSubdirectory("vimdense-loadfrom-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    private string Dir(string name) => Path.Combine(_root, name);

    private static ExperimentConfig Config(int maxIters, string? loadFrom = null, double? ema = 0.9)
    {
        var config = TrainerTests.Config(maxIters, ema);
        config.LoadFrom = loadFrom;
        return config;
    }

    /// <summary>Trains the toy task <paramref name="iterations"/> iterations in <paramref name="name"/> and returns its last checkpoint.</summary>
    private string TrainedCheckpoint(string name, int iterations = 8, double? ema = 0.9)
    {
        using var task = new ToyRegressionTask();
        return new Trainer<(Tensor, Tensor)>(task, Config(iterations, ema: ema), Dir(name), "cfg", TextWriter.Null).Run(null).LastCheckpoint!;
    }

    private static Dictionary<string, float[]> Values(IReadOnlyDictionary<string, Tensor> state) =>
        // As float32: the optimiser's per-parameter step counts (step/…) are int64.
        state.ToDictionary(kv => kv.Key, kv => kv.Value.to_type(ScalarType.Float32).data<float>().ToArray());

    private static Dictionary<string, float[]> Entry(string checkpoint, string entry)
    {
        using var file = CheckpointFile.Load(checkpoint);
        return Values(file.StateDict(entry));
    }

    /// <summary>A run stopped before its first step: its interruption checkpoint holds the weights and optimiser it started with.</summary>
    private TrainingResult StartOnly(ToyRegressionTask task, ExperimentConfig config, string name, TextWriter? console = null)
    {
        using var stop = new CancellationTokenSource();
        stop.Cancel();
        return new Trainer<(Tensor, Tensor)>(task, config, Dir(name), "cfg", console ?? TextWriter.Null).Run(null, stop.Token);
    }

    [Test]
    public void ARunFromLoadFromStartsAtIterationZeroWithTheSavedWeightsAndAFreshOptimizer()
    {
        set_num_threads(1);
        var saved = TrainedCheckpoint("source");
        var trained = Entry(saved, "model");
        using var fresh = new ToyRegressionTask();
        Assert.That(Values(fresh.Model.state_dict()), Is.Not.EqualTo(trained), "training moved the weights away from the initial ones");

        var console = new StringWriter();
        var result = StartOnly(fresh, Config(8, loadFrom: saved), "fine-tune", console);

        Assert.That((result.Interrupted, result.Iteration), Is.EqualTo((true, 0)));
        Assert.That(Values(fresh.Model.state_dict()), Is.EqualTo(trained), "bit for bit the checkpoint's trained weights (not its EMA)");
        using var start = CheckpointFile.Load(result.LastCheckpoint!);
        Assert.That(start.Metadata["iteration"], Is.EqualTo("0"));
        Assert.That(start.Metadata["optimizer_steps"], Is.EqualTo("0"));
        Assert.That(start.Metadata["data_epoch"] + "/" + start.Metadata["data_index"], Is.EqualTo("0/0"));
        var optimizer = Values(start.StateDict("optim"));
        Assert.That(optimizer, Is.Not.Empty);
        Assert.That(optimizer.Values.SelectMany(v => v), Is.All.EqualTo(0f), "AdamW's moments start at zero, not the checkpoint's");
        Assert.That(Values(start.StateDict("ema")), Is.EqualTo(trained), "the EMA starts from the loaded weights");

        var report = File.ReadAllText(Path.Combine(Dir("fine-tune"), LoadFromCheckpoint.ReportFileName));
        Assert.That(report, Does.StartWith($"load_from: {saved}[model]: 4 tensor(s) matched, nothing missing, unexpected or mismatched"));
        Assert.That(console.ToString(), Does.Contain(report.TrimEnd()), "printed as saved");
    }

    /// <summary>
    /// Weights only: a whole run from load_from trains exactly as a fresh run whose model was given those weights by hand
    /// (iteration 0, warmup, zero moments); restoring the checkpoint's optimiser or schedule would train otherwise.
    /// </summary>
    [Test]
    public void ARunFromLoadFromTrainsAsAFreshRunFromThoseWeights()
    {
        set_num_threads(1);
        var saved = TrainedCheckpoint("source");
        using var byHand = new ToyRegressionTask();
        using (var file = CheckpointFile.Load(saved))
            StateDictLoader.Load(byHand.Model, file.StateDict("model"));
        new Trainer<(Tensor, Tensor)>(byHand, Config(8), Dir("by-hand"), "cfg", TextWriter.Null).Run(null);

        using var loaded = new ToyRegressionTask();
        var result = new Trainer<(Tensor, Tensor)>(loaded, Config(8, loadFrom: saved), Dir("loaded"), "cfg", TextWriter.Null).Run(null);
        Assert.That(result.Iteration, Is.EqualTo(8));
        Assert.That(loaded.Weights(), Is.EqualTo(byHand.Weights()));

        using var resumed = new ToyRegressionTask();
        new Trainer<(Tensor, Tensor)>(resumed, Config(16), Dir("source"), "cfg", TextWriter.Null).Run(saved);
        Assert.That(loaded.Weights(), Is.Not.EqualTo(resumed.Weights()), "a resume continues the schedule and the moments; load_from does not");
    }

    [Test]
    public void LoadFromEmaTakesTheCheckpointsEmaWeightsAndIsRefusedWhereThereAreNone()
    {
        set_num_threads(1);
        var saved = TrainedCheckpoint("source");
        var ema = Entry(saved, "ema");
        Assert.That(ema, Is.Not.EqualTo(Entry(saved, "model")));
        using var task = new ToyRegressionTask();
        var config = Config(8, loadFrom: saved);
        config.LoadFromEma = true;
        StartOnly(task, config, "from-ema");
        Assert.That(Values(task.Model.state_dict()), Is.EqualTo(ema));

        var withoutEma = TrainedCheckpoint("no-ema", ema: null);
        using var other = new ToyRegressionTask();
        config.LoadFrom = withoutEma;
        var e = Assert.Throws<VimException>(() => StartOnly(other, config, "refused"))!;
        Assert.That(e.Message, Does.StartWith($"load_from (load_from_ema: true): {withoutEma}: holds no EMA weights"));
        Assert.That(e.Message, Does.Contain("load_from_ema: false"));

        config.LoadFrom = null;
        e = Assert.Throws<VimException>(() => TrainingSettings.Check(config))!;
        Assert.That(e.Message, Does.Contain("load_from_ema is true but load_from names no checkpoint"));
    }

    /// <summary>
    /// A .pth holding a whole-model state dict, as MMEngine saves one ({"meta": …, "state_dict": {…}}): its tensors, written
    /// here from known values, are the model's afterwards.
    /// </summary>
    [Test]
    public void APthStateDictLoads()
    {
        var shapes = new (string Key, long[] Shape)[] { ("fc1.weight", [16, 4]), ("fc1.bias", [16]), ("fc2.weight", [1, 16]), ("fc2.bias", [1]) };
        var expected = new Dictionary<string, float[]>();
        var pickle = new PickleOps().Op('}').Str("meta").Op('}').Str("iter").Int(8).Op('s').Op('s').Str("state_dict").Op('}');
        var storages = new List<(string, byte[])>();
        for (int i = 0; i < shapes.Length; i++)
        {
            var (key, shape) = shapes[i];
            long count = shape.Aggregate(1L, (a, b) => a * b);
            long[] strides = shape.Length == 2 ? [shape[1], 1] : [1];
            expected[key] = Enumerable.Range(0, (int)count).Select(j => 0.125f * (i + 1) - j / 64f).ToArray();
            pickle.Str(key).Tensor("FloatStorage", $"{i}", count, 0, shape, strides).Op('s');
            storages.Add(($"{i}", expected[key].SelectMany(BitConverter.GetBytes).ToArray()));
        }
        var path = CheckpointTestData.WriteTorchZip(_root, "fine.pth", pickle.Op('s').Op('.').Bytes, [.. storages]);

        using var task = new ToyRegressionTask();
        var report = LoadFromCheckpoint.Load(task.Model, path, ema: false);
        Assert.That(report.Source, Is.EqualTo($"{path}[state_dict]"));
        Assert.That(report.Loaded, Is.EquivalentTo(expected.Keys));
        Assert.That(Values(task.Model.state_dict()), Is.EqualTo(expected));
    }

    /// <summary>
    /// <paramref name="source"/>, every float tensor shifted by 0.25, saved as a training checkpoint NAME.safetensors: models
    /// built from the same seeds start out alike, and the shift makes every loaded value tell.
    /// </summary>
    private string SaveShifted(nn.Module source, string name, int numLayers)
    {
        using (no_grad())
            foreach (var tensor in source.state_dict().Values.Where(t => t.is_floating_point()))
                tensor.add_(0.25f);
        var path = Path.Combine(_root, $"{name}.safetensors");
        var optimizerConfig = new OptimizerConfig();
        using (var optimizer = OptimizerFactory.Create(optimizerConfig, ParameterGroupRules.Build(source, optimizerConfig, numLayers)))
            TrainingCheckpoint.Save(path, source, optimizer, null, new TrainingState(6, 6, DataPosition.Start, null, "cfg"));
        return path;
    }

    /// <summary>
    /// Fine-tuning on data with another class count: every tensor but the classifiers' loads, and the report names the
    /// classifiers (both heads' conv_seg) as shape-mismatched; they keep the new model's values.
    /// </summary>
    [Test]
    public void ACheckpointForAnotherClassCountLoadsAllButTheClassifiers()
    {
        int classes = DemoDatasetGenerator.ClassNames.Count;
        using var source = SegmentationTaskTests.TinyModel(classes + 3);
        var path = SaveShifted(source, "other_classes", numLayers: 4);

        using var target = SegmentationTaskTests.TinyModel(classes);
        var before = target.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        var report = LoadFromCheckpoint.Load(target, path, ema: false);

        string[] classifiers = ["decode_head.conv_seg.weight", "decode_head.conv_seg.bias", "auxiliary_head.conv_seg.weight", "auxiliary_head.conv_seg.bias"];
        Assert.That(report.Mismatched.Select(m => m.Key), Is.EquivalentTo(classifiers));
        var weight = report.Mismatched.Single(m => m.Key == "decode_head.conv_seg.weight");
        Assert.That((weight.ModuleShape, weight.CheckpointShape), Is.EqualTo((new long[] { classes, 16, 1, 1 }, new long[] { classes + 3, 16, 1, 1 })));
        Assert.That(report.Missing, Is.Empty);
        Assert.That(report.Unexpected, Is.Empty);
        Assert.That(report.Loaded, Has.Count.EqualTo(before.Count - classifiers.Length));

        var sourceState = source.state_dict();
        foreach (var (key, value) in target.state_dict())
        {
            var expected = classifiers.Contains(key) ? before[key] : sourceState[key];
            Assert.That(value.equal(expected).all().item<bool>(), Is.True, key);
        }
        var summary = LoadFromCheckpoint.Summary(report);
        Assert.That(summary, Does.Contain("shape mismatch (not loaded): 4"));
        Assert.That(summary, Does.Contain($"decode_head.conv_seg.weight: module [{classes}, 16, 1, 1], checkpoint [{classes + 3}, 16, 1, 1]"));
        Assert.That(summary, Does.Contain("note: load_from skipped 4 tensor(s) of another shape"));
    }

    /// <summary>
    /// A Cascade Mask R-CNN checkpoint fine-tuned as Mask R-CNN (one stage, class-specific deltas): all it shares loads
    /// (backbone, RPN, stage 0's box head and classifier, mask head); stage 0's box deltas (4 outputs against 4K) are
    /// skipped for their shape and named with both shapes; the later stages' tensors are named as not in the model.
    /// </summary>
    [Test]
    public void ACascadeCheckpointLoadsIntoMaskRcnnAllButTheBoxDeltasAndTheLaterStages()
    {
        using var cascade = DetectionTaskTests.TinyDetector();
        var path = SaveShifted(cascade, "cascade", numLayers: 2);

        using var maskRcnn = DetectionTaskTests.TinyDetector(MaskRcnnTests.OneStageClassSpecific);
        var report = LoadFromCheckpoint.Load(maskRcnn, path, ema: false);

        string[] deltas = ["roi_heads.box_predictor.0.bbox_pred.weight", "roi_heads.box_predictor.0.bbox_pred.bias"];
        Assert.That(report.Mismatched.Select(m => m.Key), Is.EquivalentTo(deltas));
        int classes = DemoDatasetGenerator.ClassNames.Count;
        var weight = report.Mismatched.Single(m => m.Key == deltas[0]);
        Assert.That((weight.ModuleShape, weight.CheckpointShape), Is.EqualTo((new long[] { 4 * classes, 32 }, new long[] { 4, 32 })));
        var sourceState = cascade.state_dict();
        string[] laterStages = ["roi_heads.box_head.1.", "roi_heads.box_head.2.", "roi_heads.box_predictor.1.", "roi_heads.box_predictor.2."];
        Assert.That(report.Unexpected, Is.EquivalentTo(sourceState.Keys.Where(k => laterStages.Any(k.StartsWith))));
        Assert.That(report.Missing, Is.Empty);
        foreach (var (key, value) in maskRcnn.state_dict().Where(kv => !deltas.Contains(kv.Key)))
            Assert.That(TensorBits.Same(value, sourceState[key]), Is.True, key);

        var summary = LoadFromCheckpoint.Summary(report);
        Assert.That(summary, Does.Contain($"roi_heads.box_predictor.0.bbox_pred.weight: module [{4 * classes}, 32], checkpoint [4, 32]"));
        Assert.That(summary, Does.Contain($"unexpected in checkpoint (not in module): {report.Unexpected.Count}").And.Contain("roi_heads.box_head.2.fc1.weight"));
        Assert.That(summary, Does.Contain("note: load_from skipped 2 tensor(s) of another shape").And.Contain("class-agnostic"));
    }

    /// <summary>
    /// As MMEngine (init_weights, then load_checkpoint): the task loads model.backbone.pretrained, then load_from's tensors
    /// replace the ones they name; what load_from lacks keeps the pretrained (or initial) values.
    /// </summary>
    [Test]
    public void LoadFromWinsOverThePretrainedBackboneForTheKeysItHolds()
    {
        DemoDatasetGenerator.Generate(new DemoOptions
        {
            Kind = DemoKind.Ade, OutputDir = Path.Combine(_root, "ade"), TrainImages = 2, ValImages = 1, Width = 64, Height = 64, Seed = 5,
        });
        using var scope = NewDisposeScope();
        var imageNet = PretrainedDenseBackboneTests.TimmDeitStateDict(depth: 2);
        var config = SegmentationDeitPretrainedTests.Config(_root, PretrainedDenseBackboneTests.WriteOfficial(_root, "deit.safetensors", imageNet));
        using var task = new SegmentationTask(config, TextWriter.Null, SegmentationDeitPretrainedTests.Small);
        var initial = task.Model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        Assert.That(initial["backbone.net.blocks.1.attn.qkv.weight"].equal(imageNet["blocks.1.attn.qkv.weight"]).all().item<bool>(), Is.True,
            "the pretrained backbone is in place before training starts");

        // load_from holds the first block and the decode head, each unlike what the task starts with.
        var partial = initial.Where(kv => kv.Key.StartsWith("backbone.net.blocks.0.", StringComparison.Ordinal) || kv.Key.StartsWith("decode_head.", StringComparison.Ordinal))
            .ToDictionary(kv => kv.Key, kv => kv.Value.is_floating_point() ? kv.Value + 1 : kv.Value);
        config.LoadFrom = Path.Combine(_root, "partial.safetensors");
        SafeTensorsFormat.Write(config.LoadFrom, partial.ToList());
        using (var stop = new CancellationTokenSource())
        {
            stop.Cancel();
            new Trainer<Batch>(task, config, Dir("work"), "cfg", TextWriter.Null).Run(null, stop.Token);
        }

        foreach (var (key, value) in task.Model.state_dict())
            Assert.That(value.equal(partial.TryGetValue(key, out var loaded) ? loaded : initial[key]).all().item<bool>(), Is.True, key);
        var report = File.ReadAllText(Path.Combine(Dir("work"), LoadFromCheckpoint.ReportFileName));
        Assert.That(report, Does.Contain($"{partial.Count} tensor(s) matched").And.Contain("missing in checkpoint (module keeps its values)")
            .And.Contain("backbone.net.blocks.1.attn.qkv.weight"));
    }

    [Test]
    public void AMissingDamagedOrForeignCheckpointIsRefusedNamingLoadFromAndTheFile()
    {
        var missing = Path.Combine(_root, "nowhere.safetensors");
        var text = Path.Combine(_root, "notes.pth");
        File.WriteAllText(text, "these are not weights");
        var corrupt = TrainedCheckpoint("corrupt");
        var bytes = File.ReadAllBytes(corrupt);
        bytes[^3] ^= 0x40; // inside the last tensor's data
        File.WriteAllBytes(corrupt, bytes);
        var foreign = Path.Combine(_root, "foreign.safetensors");
        using (var other = nn.Linear(3, 2))
            SafeTensorsFormat.Write(foreign, other.state_dict().ToList(), new Dictionary<string, string>());

        foreach (var (path, expected) in new[]
        {
            (missing, "checkpoint file not found"),
            (_root, "is a folder; expected a checkpoint file"),
            (text, "not a checkpoint"),
            (corrupt, "checksum mismatch"),
            (foreign, "none of its 2 tensor(s) fits the model"),
        })
        {
            using var task = new ToyRegressionTask();
            var weights = task.Weights();
            var e = Assert.Throws<VimException>(() => StartOnly(task, Config(8, loadFrom: path), "refused"))!;
            Assert.That(e.Message, Does.StartWith($"load_from: {path}"), path);
            Assert.That(e.Message, Does.Contain(expected), path);
            Assert.That(task.Weights(), Is.EqualTo(weights), $"{path}: the model is left as it was");
        }
        using var linear = nn.Linear(3, 4);
        Assert.That(Assert.Throws<VimException>(() => LoadFromCheckpoint.Load(linear, foreign, ema: false))!.Message,
            Does.Contain("2 of another shape (e.g. weight: module [4, 3], checkpoint [2, 3]").And.Contain("goes in model.backbone.pretrained"));
    }

    /// <summary>`vim train --load-from` is the load_from setting, checked before the work dir is made; a path YAML would misread arrives whole.</summary>
    [Test]
    public void TheLoadFromFlagIsTheSettingAndAMissingFileIsRefusedBeforeTheWorkDir()
    {
        var config = Path.Combine(RepositoryPaths.Root, "configs/seg/upernet_vim_tiny_demo_ade.yaml");
        var work = Dir("work");
        var missing = Path.Combine(_root, "a: b #1", "best.safetensors");
        var error = new StringWriter();
        Assert.That(VimCli.Run(["train", config, "--work-dir", work, "--load-from", missing], error), Is.EqualTo(1));
        Assert.That(error.ToString(), Does.Contain($"load_from: {missing}: checkpoint file not found"));
        Assert.That(Directory.Exists(work), Is.False, "refused before the work dir");

        foreach (var value in new[] { missing, "null", "plain/best.safetensors", "it's here.pth" })
        {
            var tree = new ConfigMap(ConfigSource.Override("test"));
            ConfigLoader.ApplyOverride(tree, ConfigWriter.Override("load_from", value));
            Assert.That(ConfigBinder.Bind<ExperimentConfig>(tree).LoadFrom, Is.EqualTo(value));
        }
    }

    /// <summary>As MMEngine's load_or_resume: a checkpoint to resume wins over load_from, which is then not even read.</summary>
    [Test]
    public void AResumeWinsOverLoadFrom()
    {
        set_num_threads(1);
        using var straight = new ToyRegressionTask();
        new Trainer<(Tensor, Tensor)>(straight, Config(16), Dir("straight"), "cfg", TextWriter.Null).Run(null);
        using (var crashing = new ToyRegressionTask(failAtCall: 10))
            Assert.Throws<InvalidOperationException>(() =>
                new Trainer<(Tensor, Tensor)>(crashing, Config(16), Dir("resumed"), "cfg", TextWriter.Null).Run(null));
        // A copy: each resumed run below rotates the work dir's checkpoints.
        var latest = Path.Combine(_root, "iter_8_copy.safetensors");
        File.Copy(new CheckpointDirectory(Dir("resumed"), 2).Latest()!, latest);
        var other = TrainedCheckpoint("other", iterations: 4);

        foreach (var loadFrom in new[] { other, Path.Combine(_root, "moved-away.safetensors") })
        {
            using var resumed = new ToyRegressionTask();
            var console = new StringWriter();
            new Trainer<(Tensor, Tensor)>(resumed, Config(16, loadFrom: loadFrom), Dir("resumed"), "cfg", console).Run(latest);
            Assert.That(resumed.Weights(), Is.EqualTo(straight.Weights()), "the uninterrupted run's weights: the resumed checkpoint's, continued");
            Assert.That(console.ToString(), Does.Contain($"load_from {loadFrom} not loaded: the run resumes from {latest}"));
            Assert.That(File.Exists(Path.Combine(Dir("resumed"), LoadFromCheckpoint.ReportFileName)), Is.False);
        }

        // `--resume` without a checkpoint: the work dir's latest; with none there yet, load_from starts the run (MMEngine's
        // fallback), and without load_from there is nothing to start from.
        Assert.That(TrainCommand.ResumeFrom(other, Dir("resumed"), Config(16, loadFrom: other), TextWriter.Null), Is.EqualTo(other));
        Assert.That(TrainCommand.ResumeFrom(null, Dir("resumed"), Config(16, loadFrom: other), TextWriter.Null),
            Is.EqualTo(Path.Combine(Dir("resumed"), "iter_0000016.safetensors")));
        var note = new StringWriter();
        Assert.That(TrainCommand.ResumeFrom(null, Dir("empty"), Config(16, loadFrom: other), note), Is.Null);
        Assert.That(note.ToString(), Does.Contain($"has no checkpoint yet; starting a fresh run from load_from {other}"));
        Assert.That(Assert.Throws<VimException>(() => TrainCommand.ResumeFrom(null, Dir("empty"), Config(16), TextWriter.Null))!.Message,
            Does.Contain("--resume: ").And.Contain("has no checkpoint yet"));
    }

    /// <summary>A published checkpoint (`vim checkpoint publish`, its EMA weights) is a load_from source: the run starts from exactly those weights.</summary>
    [Test]
    public void APublishedCheckpointLoadsAsItsWeights()
    {
        set_num_threads(1);
        var saved = TrainedCheckpoint("source");
        var published = TrainingCheckpoint.Publish(saved, Dir("release/toy.safetensors"), ema: true);
        using var fresh = new ToyRegressionTask();
        StartOnly(fresh, Config(8, loadFrom: published), "fine-tune");
        Assert.That(Values(fresh.Model.state_dict()), Is.EqualTo(Entry(saved, "ema")));
    }
}
