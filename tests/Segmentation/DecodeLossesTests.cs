using NUnit.Framework;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Engine;
using Vim.Segmentation;
using Vim.Segmentation.Losses;
using static TorchSharp.torch;

namespace Vim.Tests.Segmentation;

/// <summary>
/// model.seg_head.losses (mmseg's loss_decode list), its one-loss shorthand loss / loss_weight, and model.seg_head.sampler
/// as the config sets them and the model computes them.
/// </summary>
public class DecodeLossesTests
{
    private const int Classes = 5;
    private string _dir = null!;

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("vimdense-decodelosses-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private static SegmentationHeadConfig Heads() => new() { Channels = 16, AuxiliaryChannels = 16, AverageOverNonIgnored = true };

    /// <summary>Images and labels for the tiny model (5 classes), a few pixels ignored.</summary>
    private static (Tensor Images, Tensor Labels) Batch()
    {
        manual_seed(7);
        var images = randn(2, 3, 32, 32);
        var labels = randint(0, Classes, [2, 32, 32], dtype: ScalarType.Int64);
        labels.narrow(1, 0, 4).fill_(255);
        return (images, labels);
    }

    /// <summary>The training terms of a tiny model with <paramref name="heads"/>, in eval mode (no dropout, running BN statistics).</summary>
    private static Dictionary<string, float> Terms(SegmentationHeadConfig heads, Tensor images, Tensor labels)
    {
        using var model = SegmentationTaskTests.TinyModel(Classes, heads);
        model.eval();
        using var scope = NewDisposeScope();
        return model.Losses(images, labels).ToDictionary(t => t.Key, t => t.Value.item<float>());
    }

    /// <summary>
    /// Cross-entropy (weight 1), Dice (3) and Lovász (0.5) listed together give decode.loss_ce, decode.loss_dice and
    /// decode.loss_lovasz, each equal to a model of the same weights with that one loss alone, and to the loss of the
    /// model's own logits (its forward) times the weight; the auxiliary head computes the first listed loss; the objective
    /// (the terms named "loss") is their sum.
    /// </summary>
    [Test]
    public void SeveralDecodeLossesAreEachLossAloneWeightedAndSummed()
    {
        using var scope = NewDisposeScope();
        var (images, labels) = Batch();
        var listed = Heads();
        listed.Losses = [new() { Type = SegmentationLossKind.CrossEntropy, Weight = 1.0 }, new() { Type = SegmentationLossKind.Dice, Weight = 3.0 },
            new() { Type = SegmentationLossKind.Lovasz, Weight = 0.5 }];
        var together = Terms(listed, images, labels);
        Assert.That(together.Keys, Is.EqualTo(new[] { "decode.loss_ce", "decode.loss_dice", "decode.loss_lovasz", "decode.acc_seg", "aux.loss_ce", "aux.acc_seg" }));

        var alone = new Dictionary<string, float>();
        foreach (var (kind, weight) in new[] { (SegmentationLossKind.CrossEntropy, 1.0), (SegmentationLossKind.Dice, 3.0), (SegmentationLossKind.Lovasz, 0.5) })
        {
            var heads = Heads();
            heads.Loss = kind;
            heads.LossWeight = weight;
            foreach (var (name, value) in Terms(heads, images, labels).Where(t => t.Key.StartsWith("decode.loss", StringComparison.Ordinal)))
                alone.Add(name, value);
        }
        foreach (var (name, value) in alone) Assert.That(together[name], Is.EqualTo(value), name);

        using var model = SegmentationTaskTests.TinyModel(Classes, listed);
        model.eval();
        var logits = model.forward(images);
        Assert.That(together["decode.loss_ce"], Is.EqualTo(SegmentationLosses.CrossEntropy(logits, labels, averageOverNonIgnored: true).item<float>()).Within(1e-6));
        Assert.That(together["decode.loss_dice"], Is.EqualTo(3.0 * SegmentationLosses.Dice(logits, labels).item<float>()).Within(1e-5));
        Assert.That(together["decode.loss_lovasz"], Is.EqualTo(0.5 * SegmentationLosses.LovaszSoftmax(logits, labels).item<float>()).Within(1e-6));
        Assert.That(together["decode.loss_dice"], Is.GreaterThan(0));
        Assert.That(together["decode.loss_lovasz"], Is.GreaterThan(0));

        var dice = Heads();
        dice.Losses = [new() { Type = SegmentationLossKind.Dice, Weight = 2.0 }, new() { Type = SegmentationLossKind.CrossEntropy, Weight = 1.0 }];
        var diceFirst = Terms(dice, images, labels);
        Assert.That(diceFirst.Keys, Does.Contain("aux.loss_dice").And.Not.Contain("aux.loss_ce"), "the auxiliary head computes the first listed loss");
        var auxDice = Heads();
        auxDice.Loss = SegmentationLossKind.Dice;
        Assert.That(diceFirst["aux.loss_dice"], Is.EqualTo(Terms(auxDice, images, labels)["aux.loss_dice"]), "weighted auxiliary_loss_weight alone");

        double objective = together.Where(t => TrainingTerms.IsLoss(t.Key)).Sum(t => (double)t.Value);
        Assert.That(objective, Is.EqualTo(alone.Values.Sum(v => (double)v) + together["aux.loss_ce"]).Within(1e-6));
    }

    /// <summary>
    /// Nothing set, the shorthand spelled out (loss: cross_entropy, loss_weight: 1), its one-entry list, and an OHEM sampler
    /// that keeps every labelled pixel (min_kept above the batch's pixels, no threshold) give the same terms to the bit; the
    /// default's cross-entropy is the mean over labelled pixels of −log softmax at the label.
    /// </summary>
    [Test]
    public void TheDefaultItsSpelledOutFormsAndASamplerKeepingEveryPixelGiveTheSameTerms()
    {
        using var scope = NewDisposeScope();
        var (images, labels) = Batch();
        var unset = Terms(Heads(), images, labels);
        Assert.That(unset.Keys, Is.EqualTo(new[] { "decode.loss_ce", "decode.acc_seg", "aux.loss_ce", "aux.acc_seg" }));

        var shorthand = Heads();
        shorthand.Loss = SegmentationLossKind.CrossEntropy;
        shorthand.LossWeight = 1.0;
        var list = Heads();
        list.Losses = [new() { Type = SegmentationLossKind.CrossEntropy }];
        var everyPixel = Heads();
        everyPixel.Sampler = new SegmentationSamplerConfig { MinKept = 2 * 32 * 32 };
        foreach (var (name, heads) in new[] { ("shorthand", shorthand), ("list", list), ("sampler keeping every pixel", everyPixel) })
            Assert.That(Terms(heads, images, labels), Is.EqualTo(unset), name);

        // A threshold below every probability leaves the floor: 200 of the 1,792 labelled pixels, the least confident, are
        // kept, and the cross-entropy, divided by the same count, is smaller.
        var sampled = Heads();
        sampled.Sampler = new SegmentationSamplerConfig { Thresh = 0.01, MinKept = 100 };
        var ohem = Terms(sampled, images, labels);
        Assert.That(ohem["decode.loss_ce"], Is.LessThan(unset["decode.loss_ce"]));
        Assert.That(ohem["aux.loss_ce"], Is.EqualTo(unset["aux.loss_ce"]), "the auxiliary head is not sampled");

        using var model = SegmentationTaskTests.TinyModel(Classes, Heads());
        model.eval();
        var logProbabilities = model.forward(images).log_softmax(1);
        var labelled = labels.ne(255);
        var truth = logProbabilities.gather(1, labels.where(labelled, zeros_like(labels)).unsqueeze(1)).squeeze(1);
        double expected = -truth.masked_select(labelled).mean().item<float>();
        Assert.That(unset["decode.loss_ce"], Is.EqualTo(expected).Within(1e-5));
    }

    /// <summary>
    /// Class weights and a sampler without threshold in the model (min_kept 100: 200 of the batch's 1,792 labelled pixels):
    /// decode.loss_ce is the rule applied by hand to the model's own logits (each pixel's w_c · −log softmax at its label,
    /// the 200 largest summed, divided by the labelled pixels), the auxiliary head's loss is unsampled, and a second call,
    /// which reuses the class-weight tensor the first built, gives the same terms to the bit.
    /// </summary>
    [Test]
    public void ASamplerWithClassWeightsKeepsThePixelsOfLargestWeightedLoss()
    {
        using var scope = NewDisposeScope();
        var (images, labels) = Batch();
        double[] classWeights = [0.5, 2.0, 1.0, 3.0, 0.25];
        var heads = Heads();
        heads.ClassWeights = [.. classWeights];
        heads.Sampler = new SegmentationSamplerConfig { MinKept = 100 };
        using var model = SegmentationTaskTests.TinyModel(Classes, heads);
        model.eval();
        var first = model.Losses(images, labels).ToDictionary(t => t.Key, t => t.Value.item<float>());
        var second = model.Losses(images, labels).ToDictionary(t => t.Key, t => t.Value.item<float>());
        Assert.That(second, Is.EqualTo(first));

        var logProbabilities = model.forward(images).log_softmax(1);
        var labelled = labels.ne(255);
        var truth = logProbabilities.gather(1, labels.where(labelled, zeros_like(labels)).unsqueeze(1)).squeeze(1).data<float>().ToArray();
        var label = labels.data<long>().ToArray();
        var pixelLosses = Enumerable.Range(0, label.Length).Where(i => label[i] != 255).Select(i => -classWeights[label[i]] * truth[i]).ToList();
        Assert.That(pixelLosses, Has.Count.EqualTo(1792));
        double expected = pixelLosses.OrderDescending().Take(200).Sum() / pixelLosses.Count;
        Assert.That(first["decode.loss_ce"], Is.EqualTo(expected).Within(1e-5 * expected));
        Assert.That(first["decode.loss_ce"], Is.LessThan(pixelLosses.Sum() / pixelLosses.Count), "fewer pixels over the same divisor");

        var unsampled = Heads();
        unsampled.ClassWeights = [.. classWeights];
        Assert.That(first["aux.loss_ce"], Is.EqualTo(Terms(unsampled, images, labels)["aux.loss_ce"]), "the auxiliary head is not sampled");
    }

    private ExperimentConfig Load(string segHead, params string[] overrides)
    {
        var path = Path.Combine(_dir, "config.yaml");
        File.WriteAllText(path, "task: segmentation\nmodel:\n  num_classes: 5\n  seg_head:\n" + string.Concat(segHead.Split('\n').Select(line => "    " + line + "\n")));
        return ExperimentConfig.Load(path, overrides).Config;
    }

    private static void Check(SegmentationHeadConfig heads) => OhemPixelSampler.FromConfig(heads, DecodeLosses.Resolve(heads));

    [TestCase("losses: [{type: cross_entropy}, {type: focal}]", "'model.seg_head.losses[1].type' must be one of cross_entropy, dice, lovasz, got 'focal'")]
    [TestCase("losses: [{type: dice, wieght: 3}]", "unknown key 'model.seg_head.losses[0].wieght'; did you mean 'model.seg_head.losses[0].weight'?")]
    [TestCase("losses: {type: dice}", "'model.seg_head.losses' must be a list, got a mapping")]
    [TestCase("sampler: {type: ohme}", "'model.seg_head.sampler.type' must be one of ohem, got 'ohme'")]
    [TestCase("sampler: {type: ohem, min_kep: 10}", "unknown key 'model.seg_head.sampler.min_kep'; did you mean 'model.seg_head.sampler.min_kept'?")]
    public void TheSchemaNamesTheKeyOfAnUnreadableEntry(string segHead, string expected)
    {
        var error = Assert.Throws<VimException>(() => Load(segHead))!;
        Assert.That(error.Message, Does.Contain(expected));
        Assert.That(error.Message, Does.Contain("config.yaml:"), "with the file and line");
    }

    [TestCase("losses: []", "model.seg_head.losses is empty; list at least one loss")]
    [TestCase("losses: [{weight: 2}]", "model.seg_head.losses[0].type is not set; expected one of cross_entropy, dice, lovasz")]
    [TestCase("losses: [{type: cross_entropy}, {type: dice, weight: -3}]", "model.seg_head.losses[1].weight must be a finite number ≥ 0 (the loss's multiplier), got -3")]
    [TestCase("losses: [{type: dice}, {type: cross_entropy}, {type: dice, weight: 2}]",
        "model.seg_head.losses[2].type dice is listed twice (also model.seg_head.losses[0]); each loss is logged under its own name (decode.loss_dice)")]
    [TestCase("loss: dice\nlosses: [{type: cross_entropy}]", "model.seg_head.loss and model.seg_head.losses are both set")]
    [TestCase("loss: cross_entropy\nlosses: [{type: dice}]", "model.seg_head.loss and model.seg_head.losses are both set")]
    [TestCase("loss_weight: 2\nlosses: [{type: dice}]", "model.seg_head.loss_weight and model.seg_head.losses are both set")]
    [TestCase("loss: dice\nloss_weight: 2\nlosses: [{type: dice}]", "model.seg_head.loss, model.seg_head.loss_weight and model.seg_head.losses are all set")]
    [TestCase("loss_weight: -0.5", "model.seg_head.loss_weight must be a finite number ≥ 0 (the loss's multiplier), got -0.5")]
    [TestCase("sampler: {type: ohem, min_kept: 1}", "model.seg_head.sampler.min_kept must be more than 1")]
    [TestCase("sampler: {thresh: 1.2}", "model.seg_head.sampler.thresh must be a probability in [0, 1] or null, got 1.2")]
    [TestCase("loss: lovasz\nsampler: {thresh: 0.7}", "model.seg_head.sampler weights the pixels of the decode head's cross_entropy")]
    [TestCase("losses: [{type: dice}, {type: lovasz}]\nsampler: {type: ohem}", "but the decode losses are dice, lovasz; add cross_entropy to model.seg_head.losses")]
    public void UnusableLossSettingsNameTheirKeys(string segHead, string expected)
    {
        var config = Load(segHead);
        var error = Assert.Throws<VimException>(() => Check(config.Model.SegHead))!;
        Assert.That(error.Message, Does.Contain(expected));
    }

    /// <summary>
    /// A config with losses and a sampler, set by --set as mmseg users would, reads back from the config.yaml a run writes
    /// (the unset shorthand written as null, so not refused); a config.yaml written before losses existed spells the
    /// shorthand's default out, in a detection run's too, and still reads.
    /// </summary>
    [Test]
    public void SavedConfigsReadBackAndOlderOnesSpellingTheDefaultStillRead()
    {
        var config = Load("channels: 16",
            "model.seg_head.losses=[{type: cross_entropy, weight: 1.0}, {type: dice, weight: 3.0}]", "model.seg_head.sampler={type: ohem, thresh: 0.7, min_kept: 100000}");
        var saved = Path.Combine(_dir, "saved.yaml");
        File.WriteAllText(saved, ConfigWriter.ToYaml(ConfigBinder.ToNode(config)));
        var again = ExperimentConfig.Load(saved).Config.Model.SegHead;
        Assert.That(DecodeLosses.Resolve(again), Is.EqualTo(new[] { new WeightedLoss(SegmentationLossKind.CrossEntropy, 1.0), new WeightedLoss(SegmentationLossKind.Dice, 3.0) }));
        var sampler = OhemPixelSampler.FromConfig(again, DecodeLosses.Resolve(again))!;
        Assert.That((sampler.Threshold, sampler.MinKept), Is.EqualTo(((double?)0.7, 100000)));

        Assert.That(DecodeLosses.Resolve(Load("channels: 16").Model.SegHead), Is.EqualTo(new[] { new WeightedLoss(SegmentationLossKind.CrossEntropy, 1.0) }));
        Assert.That(OhemPixelSampler.FromConfig(new SegmentationHeadConfig(), [new WeightedLoss(SegmentationLossKind.CrossEntropy, 1.0)]), Is.Null);

        var older = Path.Combine(_dir, "older_detection.yaml");
        File.WriteAllText(older, "task: detection\nmodel:\n  seg_head:\n    channels: 192\n    loss: cross_entropy\n    loss_weight: 1.0\n    ignore_index: 255\n");
        Assert.That(ExperimentConfig.Load(older).Config.Task, Is.EqualTo(TaskKind.Detection));
        File.WriteAllText(older, "task: detection\nmodel:\n  seg_head:\n    loss: dice\n");
        Assert.That(Assert.Throws<VimException>(() => ExperimentConfig.Load(older))!.Message, Does.Contain("model.seg_head is a segmentation setting"));
    }
}
