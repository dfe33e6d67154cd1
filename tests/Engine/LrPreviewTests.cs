using System.Globalization;
using NUnit.Framework;
using TorchSharp.Modules;
using Vim.Core.Config;
using Vim.Core.Engine;
using Vim.Tests.Eval;
using Vim.Tools;
using Vim.Tools.Commands;
using static TorchSharp.torch;

namespace Vim.Tests.Engine;

/// <summary>
/// `vim config lr`: each group's lr against the schedule formulas written out by hand, against what the real trainer
/// sets in its optimiser, with auto_scale_lr over K processes, through lr.csv read back by an independent CSV parser,
/// and the refusals of bad options.
/// </summary>
public class LrPreviewTests
{
    private string _root = null!;

    [SetUp]
    public void SetUp() => _root = Directory.CreateTempSubdirectory("vimdense-lrvis-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    private static (string, Parameter) P(string name, params long[] shape) => (name, new Parameter(zeros(shape)));

    /// <summary>A one-block backbone and a head: layer ids 0 (embedding), 1 (block) and 2 (head); rate 0.5 gives scales ¼, ½, 1.</summary>
    private static IReadOnlyList<ParameterGroup> OneBlockGroups(OptimizerConfig optimizer) => ParameterGroupRules.Build(
        [P("patch_embed.proj.weight", 4, 2), P("layers.0.mixer.in_proj.weight", 4, 4), P("layers.0.norm.weight", 4), P("head.weight", 2, 4), P("head.bias", 2)],
        optimizer, numLayers: 1);

    private static ExperimentConfig Config(ScheduleConfig schedule) => new()
    {
        Optimizer = new OptimizerConfig { Lr = 0.01, WeightDecay = 0.05, LayerDecayRate = 0.5 },
        Schedule = schedule,
    };

    [Test]
    public void PolyWithWarmupAndMinLrMatchesTheFormulasByHand()
    {
        // Warmup factor 0.1 + 0.9·i/10 for i < 10; poly (lr·scale − min_lr)·(1 − i/100)² + min_lr, min_lr one floor for all groups.
        var config = Config(new ScheduleConfig { MaxIters = 100, Policy = LrPolicy.Poly, Power = 2, MinLr = 1e-4, WarmupIters = 10, WarmupRatio = 0.1 });
        var preview = new LrPreview(config, OneBlockGroups(config.Optimizer), processes: 1);
        var byName = preview.Groups.ToDictionary(g => g.Name);

        Assert.That(preview.Groups.Select(g => (g.Name, g.Parameters, g.WeightDecays.Single(), g.LrScale)), Is.EqualTo(new[]
        {
            ("layer0_decay", 8L, 0.05, 0.25), ("layer1_decay", 16L, 0.05, 0.5), ("layer1_no_decay", 4L, 0.0, 0.5),
            ("layer2_decay", 8L, 0.05, 1.0), ("layer2_no_decay", 2L, 0.0, 1.0),
        }));
        var expected = new (string Group, int Iteration, double Lr)[]
        {
            ("layer0_decay", 0, ((0.0025 - 1e-4) * 1.0 + 1e-4) * 0.1),
            ("layer0_decay", 5, ((0.0025 - 1e-4) * 0.95 * 0.95 + 1e-4) * 0.55),
            ("layer1_no_decay", 5, ((0.005 - 1e-4) * 0.95 * 0.95 + 1e-4) * 0.55),
            ("layer2_decay", 9, ((0.01 - 1e-4) * 0.91 * 0.91 + 1e-4) * 0.91),
            ("layer2_decay", 10, (0.01 - 1e-4) * 0.9 * 0.9 + 1e-4),
            ("layer1_decay", 50, (0.005 - 1e-4) * 0.5 * 0.5 + 1e-4),
            ("layer0_decay", 99, (0.0025 - 1e-4) * 0.01 * 0.01 + 1e-4),
            ("layer2_no_decay", 99, (0.01 - 1e-4) * 0.01 * 0.01 + 1e-4),
        };
        foreach (var (group, iteration, lr) in expected)
            Assert.That(preview.LrAt(byName[group], iteration), Is.EqualTo(lr).Within(1e-15), $"{group} at iteration {iteration}");
        Assert.That(preview.KeyIterations(), Is.EqualTo(new[] { ("first", 0), ("warmup end", 10), ("last", 99) }));
    }

    [Test]
    public void MultistepWithWarmupMatchesTheFormulasByHand()
    {
        var config = Config(new ScheduleConfig { MaxIters = 100, Policy = LrPolicy.Multistep, Milestones = [30, 60], Gamma = 0.1, WarmupIters = 5, WarmupRatio = 0.2 });
        var preview = new LrPreview(config, OneBlockGroups(config.Optimizer), processes: 1);
        var block = preview.Groups.Single(g => g.Name == "layer1_decay");
        var expected = new (int Iteration, double Lr)[]
        {
            (0, 0.005 * 0.2), (3, 0.005 * (0.2 + 0.8 * 3 / 5)), (5, 0.005), (29, 0.005), (30, 0.005 * 0.1), (59, 0.005 * 0.1),
            (60, 0.005 * 0.01), (99, 0.005 * 0.01),
        };
        foreach (var (iteration, lr) in expected)
            Assert.That(preview.LrAt(block, iteration), Is.EqualTo(lr).Within(1e-15), $"iteration {iteration}");
        Assert.That(preview.KeyIterations(), Is.EqualTo(new[] { ("first", 0), ("warmup end", 5), ("milestone", 30), ("milestone", 60), ("last", 99) }));
        // Every 40th iteration, and each key iteration with the one before it: the steps are drawn where they happen.
        Assert.That(preview.SampledIterations(40), Is.EqualTo(new[] { 0, 4, 5, 29, 30, 40, 59, 60, 80, 98, 99 }));

        var summary = preview.ByScale();
        Assert.That(summary.Select(g => (g.Name, g.Parameters, g.LrScale)), Is.EqualTo(new[]
        {
            ("layer0_decay", 8L, 0.25), ("layer1_decay+layer1_no_decay", 20L, 0.5), ("layer2_decay+layer2_no_decay", 10L, 1.0),
        }));
        Assert.That(summary[1].WeightDecays, Is.EqualTo(new[] { 0.05, 0.0 }));
        var table = preview.Table(summary);
        Assert.That(table, Does.Contain("lr milestone (it 30)").And.Contain("lr last (it 99)"));
        Assert.That(table.Split('\n').Single(l => l.Contains("layer1_decay+layer1_no_decay")),
            Does.Match(@"^\| layer1_decay\+layer1_no_decay +\| +20 \| +0\.05, 0 \| +0\.5 \| +1e-3 \| +5e-3 \| +5e-4 \| +5e-5 \| +5e-5 \|"),
            "name, parameters, weight decays, scale, then the lr at 0, 5, 30, 60 and 99");
    }

    /// <summary>
    /// The toy trainer with layer decay (three scales, decay and no-decay groups), warmup, poly with min_lr and clipping:
    /// after every optimiser step the lr each of its groups took equals the preview's for that group and iteration.
    /// </summary>
    [TestCase(1)]
    [TestCase(2)]
    public void PreviewEqualsTheLrsTheTrainerSetsInItsOptimiser(int accumulate)
    {
        set_num_threads(1);
        var config = new ExperimentConfig
        {
            Optimizer = new OptimizerConfig { Lr = 0.02, WeightDecay = 0.01, LayerDecayRate = 0.6, GradClipNorm = 5.0 },
            Schedule = new ScheduleConfig { MaxIters = 12, Policy = LrPolicy.Poly, Power = 0.9, MinLr = 1e-4, WarmupIters = 4, WarmupRatio = 0.1 },
            Train = new TrainConfig { LogInterval = 4, CheckpointInterval = 12, EvalInterval = 0, KeepLast = 1, AccumulateSteps = accumulate },
            AutoScaleLr = new AutoScaleLrConfig { Enable = true, BaseBatchSize = 16 },
        };
        config.Data.BatchSize = 4;
        using var task = new ToyRegressionTask(dropout: 0, layered: true);
        var preview = new LrPreview(config, ParameterGroupRules.Build(task.Model, config.Optimizer, task.NumBackboneLayers), processes: 1);
        Assert.That(preview.Groups.Select(g => g.LrScale).Distinct(), Is.EquivalentTo(new[] { 0.36, 0.6, 1.0 }).Using<double>((a, b) => Math.Abs(a - b) < 1e-15),
            "the toy's embedding, block and head get rate², rate and 1");

        var seen = new List<(int Iteration, string Group, double Lr)>();
        var trainer = new Trainer<(Tensor, Tensor)>(task, config, Path.Combine(_root, "run"), "cfg", TextWriter.Null)
        {
            AfterOptimizerStep = (iteration, optimizer) =>
                seen.AddRange(optimizer.Groups.Select((g, i) => (iteration, g.Name, optimizer.GroupLrs[i]))),
        };
        trainer.Run(null);

        var steps = Enumerable.Range(0, 12).Where(i => (i + 1) % accumulate == 0).ToList();
        Assert.That(seen.Select(s => s.Iteration).Distinct(), Is.EqualTo(steps), "one optimiser step per accumulation");
        Assert.That(seen.Select(s => s.Group).Distinct(), Is.EqualTo(preview.Groups.Select(g => g.Name)));
        var byName = preview.Groups.ToDictionary(g => g.Name);
        foreach (var (iteration, group, lr) in seen)
            Assert.That(lr, Is.EqualTo(preview.LrAt(byName[group], iteration)), $"{group} at iteration {iteration}");
        // auto_scale_lr (4 × 1 × accumulate images against 16) reached the optimiser: the head at iteration 4, past warmup.
        double baseLr = 0.02 * 4 * accumulate / 16;
        Assert.That(preview.BaseLr, Is.EqualTo(baseLr));
        int afterWarmup = steps.First(i => i >= 4);
        Assert.That(seen.Single(s => s.Iteration == afterWarmup && s.Group == "layer2_decay").Lr,
            Is.EqualTo((baseLr - 1e-4) * Math.Pow(1 - afterWarmup / 12.0, 0.9) + 1e-4).Within(1e-15));
    }

    /// <summary>
    /// The demo segmentation config (Vim-Ti: 24 blocks, layer ids 0–25) through the CLI with layer decay and auto_scale_lr over
    /// 4 processes: lr.csv, read back by a plain RFC 4180 parser, holds for every group column and row the lr the hand
    /// formula gives for its layer id, and exactly the preview's values.
    /// </summary>
    [Test]
    public void CliCsvRoundTripsWithAutoScaleLrAppliedForTheProcesses()
    {
        var outDir = Path.Combine(_root, "lr");
        var config = Path.Combine(RepositoryPaths.Root, "configs", "seg", "upernet_vim_tiny_demo_ade.yaml");
        string[] overrides =
        [
            "optimizer.layer_decay_rate=0.9", "optimizer.layer_decay_scope=blocks", "schedule.min_lr=1e-6", "schedule.power=0.9",
            "auto_scale_lr.enable=true", "auto_scale_lr.base_batch_size=16", "data.batch_size=2",
        ];
        var console = new StringWriter();
        var preview = ConfigLrCommand.Run(new ConfigLrCommand.Request(config, overrides, Processes: 4, Out: outDir, Interval: 7), console);

        // The demo config's optimizer.lr 1e-3, for 2 images × 4 processes against 16.
        const double baseLr = 1e-3 * 8 / 16;
        Assert.That(preview.BaseLr, Is.EqualTo(baseLr));
        Assert.That(console.ToString(), Does.Contain("auto_scale_lr: 8 images per optimiser step (2 per process × 4 process(es) × 1 accumulated)"));
        Assert.That(Directory.GetFiles(outDir).Select(Path.GetFileName), Is.EquivalentTo(new[] { "lr.csv", "lr.png" }), "no temporary file left behind");

        var records = ConfusionCsv.Parse(File.ReadAllText(Path.Combine(outDir, "lr.csv")));
        var header = records[0];
        Assert.That(header[0], Is.EqualTo("iteration"));
        Assert.That(header.Skip(1), Is.EqualTo(preview.Groups.Select(g => g.Name)));
        Assert.That(header, Does.Contain("layer0_no_decay").And.Contain("layer25_decay"), "embedding and heads both present");
        var iterations = records.Skip(1).Select(r => int.Parse(r[0], CultureInfo.InvariantCulture)).ToList();
        Assert.That(iterations, Is.EqualTo(preview.SampledIterations(7)));
        Assert.That(iterations, Does.Contain(29).And.Contain(30).And.Contain(299), "warmup's end and the last iteration are rows");
        for (int c = 1; c < header.Count; c++)
        {
            int layerId = int.Parse(header[c]["layer".Length..header[c].IndexOf('_')], CultureInfo.InvariantCulture);
            double scale = Math.Pow(0.9, 25 - layerId);
            for (int r = 1; r < records.Count; r++)
            {
                int i = iterations[r - 1];
                double warmup = i < 30 ? 1e-6 + (1 - 1e-6) * i / 30.0 : 1.0;
                double byHand = ((baseLr * scale - 1e-6) * Math.Pow(1 - i / 300.0, 0.9) + 1e-6) * warmup;
                double written = double.Parse(records[r][c], CultureInfo.InvariantCulture);
                Assert.That(written, Is.EqualTo(preview.LrAt(preview.Groups[c - 1], i)), $"{header[c]} at {i}: written exactly");
                Assert.That(written, Is.EqualTo(byHand).Within(1e-12 * baseLr), $"{header[c]} at {i}");
            }
        }
    }

    /// <summary>
    /// The detection demo config switched to mmdet's 1x shape (12 epochs, milestones [8, 11]) on generated COCO data: the
    /// epoch is the training images with an object that is no crowd region (what training keeps, counted from the json here)
    /// in global batches of 2 × 2 processes, and lr.csv holds the base lr up to the iteration before epoch 8's start and a
    /// tenth from it, warmup's 50 iterations before.
    /// </summary>
    [Test]
    public void AnEpochCountedScheduleIsPreviewedInTheIterationsOfTheTrainingData()
    {
        var dataRoot = Path.Combine(_root, "coco");
        Vim.Data.Demo.DemoDatasetGenerator.Generate(new Vim.Data.Demo.DemoOptions
        {
            Kind = Vim.Data.Demo.DemoKind.Coco, OutputDir = dataRoot, TrainImages = 24, ValImages = 4, Width = 64, Height = 64, Seed = 3,
        });
        using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dataRoot, "annotations", "instances_train.json")));
        int trained = json.RootElement.GetProperty("annotations").EnumerateArray()
            .Where(a => a.GetProperty("iscrowd").GetInt32() == 0).Select(a => a.GetProperty("image_id").GetInt64()).Distinct().Count();
        int perEpoch = trained / (2 * 2);
        Assert.That(perEpoch, Is.GreaterThan(1), "the generated split fills more than one global batch");

        var config = Path.Combine(RepositoryPaths.Root, "configs", "det", "cascade_mask_rcnn_vim_tiny_demo_coco.yaml");
        string[] overrides =
        [
            $"data.root={dataRoot}", "data.batch_size=2", "schedule.max_iters=null", "schedule.max_epochs=12", "schedule.milestones=[8, 11]",
            "train.eval_interval=1", "train.checkpoint_interval=1",
        ];
        var outDir = Path.Combine(_root, "lr");
        var preview = ConfigLrCommand.Run(new ConfigLrCommand.Request(config, overrides, Processes: 2, Out: outDir, Groups: "summary", Interval: 1), new StringWriter());
        Assert.That(preview.IterationsPerEpoch, Is.EqualTo(perEpoch));
        var records = ConfusionCsv.Parse(File.ReadAllText(Path.Combine(outDir, "lr.csv")));
        Assert.That(records.Count - 1, Is.EqualTo(12 * perEpoch), "a row per iteration of the 12 epochs");
        int column = 1 + preview.ByScale().ToList().FindIndex(g => g.LrScale == 1.0);
        Assert.That(column, Is.GreaterThan(0), "a group at the full lr (the heads)");
        double LrAt(int iteration) => double.Parse(records[iteration + 1][column], CultureInfo.InvariantCulture);
        const double lr = 2e-4; // the demo config's optimizer.lr; its warmup: 50 iterations from 0.001 × lr
        Assert.That(LrAt(0), Is.EqualTo(lr * 0.001).Within(1e-18));
        int eighth = 8 * perEpoch, eleventh = 11 * perEpoch;
        Assert.That(LrAt(eighth - 1), Is.EqualTo(eighth - 1 >= 50 ? lr : lr * (0.001 + 0.999 * (eighth - 1) / 50.0)).Within(1e-18));
        Assert.That(LrAt(eighth), Is.EqualTo(lr * 0.1 * (eighth >= 50 ? 1 : 0.001 + 0.999 * eighth / 50.0)).Within(1e-18));
        Assert.That(LrAt(eleventh), Is.EqualTo(lr * 0.01 * (eleventh >= 50 ? 1 : 0.001 + 0.999 * eleventh / 50.0)).Within(1e-18));
    }

    [TestCase("--processes", "0", "--processes must be at least 1")]
    [TestCase("--groups", "layers", "--groups must be all or summary, got 'layers'")]
    [TestCase("--interval", "0", "--interval must be at least 1")]
    [TestCase("--set", "schedule.milestones=[50,20]", "schedule.milestones must be rising positive iterations")]
    [TestCase("--set", "optimizer.layer_decay_rate=1.5", "optimizer.layer_decay_rate must be in (0, 1]")]
    public void BadOptionsAreRefusedByName(string option, string value, string message)
    {
        var outDir = Path.Combine(_root, "out");
        var config = Path.Combine(RepositoryPaths.Root, "configs", "seg", "upernet_vim_tiny_demo_ade.yaml");
        var error = new StringWriter();
        Assert.That(VimCli.Run(["config", "lr", config, "--out", outDir, option, value], error), Is.EqualTo(1));
        Assert.That(error.ToString(), Does.StartWith("error: ").And.Contain(message));
        Assert.That(Directory.Exists(outDir), Is.False, "nothing written");
    }

    [Test]
    public void OutThatIsAFileIsRefused()
    {
        var file = Path.Combine(_root, "taken");
        File.WriteAllText(file, "");
        var config = Path.Combine(RepositoryPaths.Root, "configs", "seg", "upernet_vim_tiny_demo_ade.yaml");
        var error = new StringWriter();
        Assert.That(VimCli.Run(["config", "lr", config, "--out", file], error), Is.EqualTo(1));
        Assert.That(error.ToString(), Does.Contain($"--out {file}: is a file"));
    }

    /// <summary>
    /// The demo segmentor with its backbone's blocks frozen and the decode head at 10× lr: the groups hold every other
    /// parameter, the frozen count is what the block names hold, and the head's groups carry scale 10.
    /// </summary>
    [Test]
    public void FrozenParametersAreCountedOutsideTheGroups()
    {
        var (config, _) = ExperimentConfig.Load(Path.Combine(RepositoryPaths.Root, "configs", "seg", "upernet_vim_tiny_demo_ade.yaml"),
            ["optimizer.custom_keys={backbone.net.layers: {lr_mult: 0}, decode_head: {lr_mult: 10}}"]);
        var preview = ConfigLrCommand.Preview(config, processes: 1);
        using var model = Vim.Segmentation.EncoderDecoder.FromConfig(config, config.Runtime.Seed);
        var parameters = model.named_parameters().ToList();
        long inBlocks = parameters.Where(p => p.name.Contains("backbone.net.layers", StringComparison.Ordinal)).Sum(p => p.parameter.numel());
        Assert.That(inBlocks, Is.GreaterThan(0));
        Assert.That(preview.FrozenParameters, Is.EqualTo(inBlocks));
        Assert.That(preview.Groups.Sum(g => g.Parameters) + preview.FrozenParameters, Is.EqualTo(parameters.Sum(p => p.parameter.numel())));
        Assert.That(preview.Groups.Where(g => g.Name.EndsWith("_decode_head", StringComparison.Ordinal)).Select(g => g.LrScale), Is.Not.Empty.And.All.EqualTo(10.0));
        Assert.That(preview.Table(preview.Groups), Does.Contain(string.Create(CultureInfo.InvariantCulture, $"in no group: {inBlocks:N0} parameters")));
    }
}
