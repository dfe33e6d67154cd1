using NUnit.Framework;
using Vim.Core;
using Vim.Core.Config;
using Vim.Data.Transforms;

namespace Vim.Tests.Data;

public class TransformConfigTests
{
    public sealed class PipelineHolder
    {
        public List<TransformStepConfig> TrainPipeline { get; set; } = [];
    }

    internal static TransformPipeline FromYaml(string yaml)
    {
        var holder = ConfigBinder.Bind<PipelineHolder>((ConfigMap)ConfigLoader.Parse(yaml, "test.yaml"));
        return TransformPipeline.FromConfig(holder.TrainPipeline, "train_pipeline");
    }

    [Test]
    public void YamlPipelineEqualsTheBuiltInSegmentationRecipe()
    {
        var fromYaml = FromYaml("""
            train_pipeline:
              - resize: {scales: [[320, 80]], ratio_range: [0.5, 2.0]}
              - random_crop: {height: 64, width: 64, cat_max_ratio: 0.75}
              - random_flip: {prob: 0.5}
              - photo_metric_distortion: {}
              - normalize: {mean: [123.675, 116.28, 103.53], std: [58.395, 57.12, 57.375]}
              - pad: {size: [64, 64], seg_pad_value: 255}
            """);
        Assert.That(fromYaml.Steps.Select(s => s.GetType().Name), Is.EqualTo(new[]
            { "Resize", "RandomCrop", "RandomFlip", "PhotoMetricDistortion", "Normalize", "Pad" }));
        var preset = TransformPipeline.SegmentationTraining(64, 64, 320, 80);
        for (int seed = 0; seed < 5; seed++)
        {
            var a = RectangleScene.Create();
            var b = RectangleScene.Create();
            fromYaml.Apply(a, new Random(seed));
            preset.Apply(b, new Random(seed));
            Assert.That(a.NormalizedImage, Is.EqualTo(b.NormalizedImage));
            Assert.That(a.LabelMap, Is.EqualTo(b.LabelMap));
        }
    }

    [Test]
    public void BadStepsNameTheirPosition()
    {
        var e = Assert.Throws<VimException>(() => FromYaml("""
            train_pipeline:
              - random_flip: {prob: 0.5}
              - random_flip: {prob: 0.5}
                pad: {size_divisor: 32}
            """))!;
        Assert.That(e.Message, Does.Contain("train_pipeline[1]").And.Contain("exactly one"));
        e = Assert.Throws<VimException>(() => FromYaml("""
            train_pipeline:
              - random_flip: {prob: 2}
            """))!;
        Assert.That(e.Message, Does.Contain("train_pipeline[0]").And.Contain("prob 2"));
        e = Assert.Throws<VimException>(() => FromYaml("""
            train_pipeline:
              - random_flip: {probability: 0.5}
            """))!;
        Assert.That(e.Message, Does.Contain("prob"), "unknown keys get the closest valid key from the binder");
    }
}
