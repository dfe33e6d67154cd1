using NUnit.Framework;
using Vim.Core;
using Vim.Data.Transforms;

namespace Vim.Tests.Data;

/// <summary>The mmseg steps random_rotate, random_cutout, adjust_gamma, clahe and rgb2gray in a YAML pipeline.</summary>
public class AugmentationStepConfigTests
{
    [Test]
    public void AYamlPipelineOfTheNewStepsEqualsTheSameStepsBuiltInCode()
    {
        var fromYaml = TransformConfigTests.FromYaml("""
            train_pipeline:
              - random_rotate: {prob: 0.8, degree: 20, pad_val: 0, seg_pad_val: 255}
              - random_cutout: {prob: 0.9, n_holes: [1, 3], cutout_shape: [[10, 6], [4, 12]], fill_in: 128, seg_fill_in: 255}
              - adjust_gamma: {gamma: 1.3}
              - clahe: {clip_limit: 2.0, tile_grid_size: [4, 4]}
              - rgb2gray: {weights: [0.114, 0.587, 0.299]}
              - normalize: {}
            """);
        Assert.That(fromYaml.Steps.Select(s => s.GetType().Name), Is.EqualTo(new[]
            { "RandomRotate", "RandomCutout", "AdjustGamma", "Clahe", "Rgb2Gray", "Normalize" }));
        // degree: 20 is the range [-20, 20] and fill_in: 128 the colour (128, 128, 128), as mmseg reads them.
        var inCode = new TransformPipeline(
            new RandomRotate(new RandomRotateOptions { Prob = 0.8, Degree = [-20, 20] }),
            new RandomCutout(new RandomCutoutOptions { Prob = 0.9, NHoles = [1, 3], CutoutShape = [[10, 6], [4, 12]], FillIn = [128, 128, 128], SegFillIn = 255 }),
            new AdjustGamma(new AdjustGammaOptions { Gamma = 1.3 }),
            new Clahe(new ClaheOptions { ClipLimit = 2, TileGridSize = [4, 4] }),
            new Rgb2Gray(new Rgb2GrayOptions { Weights = [0.114, 0.587, 0.299] }),
            new Normalize(new NormalizeOptions()));
        RectangleScene.AssertSameAugmentation(fromYaml, inCode, seeds: 6);
    }

    [TestCase("random_rotate: {prob: -1, degree: 10}", "prob -1")]
    [TestCase("random_rotate: {prob: 0.5}", "needs degree")]
    [TestCase("random_rotate: {prob: 0.5, degree: 10, center: [5, 5], auto_bound: true}", "center")]
    [TestCase("random_cutout: {prob: 0.5, n_holes: 2, cutout_shape: [[4, 4]], cutout_ratio: [[0.1, 0.1]]}", "exactly one of cutout_shape")]
    [TestCase("random_cutout: {prob: 0.5, n_holes: [4, 2], cutout_shape: [[4, 4]]}", "n_holes [4, 2]")]
    [TestCase("adjust_gamma: {gamma: 0}", "gamma 0")]
    [TestCase("clahe: {tile_grid_size: [8, 0]}", "tile_grid_size [8, 0]")]
    [TestCase("rgb2gray: {out_channels: 1}", "out_channels 1")]
    public void ABadOptionIsNamedWithItsStep(string step, string expected)
    {
        var e = Assert.Throws<VimException>(() => TransformConfigTests.FromYaml($"train_pipeline:\n  - {{random_flip: {{prob: 0.5}}}}\n  - {step}\n"))!;
        Assert.That(e.Message, Does.Contain("train_pipeline[1]").And.Contain(expected));
    }

    [Test]
    public void TwoStepsInOneEntryListTheNewNames()
    {
        var e = Assert.Throws<VimException>(() => TransformConfigTests.FromYaml("""
            train_pipeline:
              - clahe: {}
                rgb2gray: {}
            """))!;
        Assert.That(e.Message, Does.Contain("exactly one of").And.Contain("random_rotate").And.Contain("random_cutout")
            .And.Contain("adjust_gamma").And.Contain("clahe").And.Contain("rgb2gray"));
    }
}
