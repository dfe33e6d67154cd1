using NUnit.Framework;
using Vim.Core.Checkpoints;
using Vim.Core.Models;
using static TorchSharp.torch;

namespace Vim.Tests.Core;

public class PretrainedWeightsTests
{
    private static readonly VimConfig Small = VimVariants.Tiny with { EmbedDim = 32, Depth = 2, ImageSize = 64, NumClasses = 10 };

    private static string SaveClassifier(VisionMamba classifier)
    {
        var path = Path.Combine(Path.GetTempPath(), $"vimdense-pretrained-{Guid.NewGuid():N}.safetensors");
        SafeTensorsFormat.Write(path, classifier.state_dict().Select(kv => new KeyValuePair<string, Tensor>("model." + kv.Key, kv.Value)));
        return path;
    }

    [TestCase(PosEmbedResizeRule.ClassSlotAware, 8)]
    [TestCase(PosEmbedResizeRule.OfficialFirstSlot, 0)]
    public void ClassifierWeightsInitialiseASegmentationBackbone(PosEmbedResizeRule rule, int removedSlot)
    {
        using var scope = NewDisposeScope();
        using var classifier = new VisionMamba(Small, seed: 1);
        var path = SaveClassifier(classifier);
        try
        {
            var targetConfig = VimVariants.SegTiny with { EmbedDim = 32, Depth = 2, ImageSize = 96, TapBlocks = [0, 1, 1, 1], PosEmbedResize = rule };
            using var pyramid = new SegmentationPyramid(new VisionMamba(targetConfig, seed: 2));
            var backbone = (VisionMamba)pyramid.named_children().Single(c => c.name == "net").module;

            var report = PretrainedWeights.Load(pyramid, backbone, "net.", path);

            Assert.That(report.Unexpected, Is.Empty);
            Assert.That(report.Mismatched, Is.Empty);
            Assert.That(report.Ignored, Is.SupersetOf(new[] { "cls_token", "head.weight", "head.bias" }));
            Assert.That(report.Missing, Has.All.StartWith("fpn"), "only the neck is new");
            var source = classifier.state_dict();
            var target = pyramid.state_dict();
            Assert.That(target.Keys, Has.None.StartWith("backbone."), "the backbone is registered once, under net.");
            Assert.That(target["net.layers.1.mixer.A_b_log"].allclose(source["layers.1.mixer.A_b_log"], rtol: 0, atol: 0), Is.True);
            // Independent expectation: the 4×4 grid with the class row (index 16 / 2 = 8 when slot-aware, 0 for the
            // official quirk) removed, resized to 6×6.
            var expected = PositionEmbeddingResizer.Resize(PositionEmbeddingResizer.RemoveAt(source["pos_embed"], removedSlot), (4, 4), (6, 6), ClassTokenPosition.None);
            Assert.That(target["net.pos_embed"].allclose(expected, rtol: 0, atol: 0), Is.True);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void SameShapedClassifierLoadsCompletely()
    {
        using var scope = NewDisposeScope();
        using var classifier = new VisionMamba(Small, seed: 1);
        var path = SaveClassifier(classifier);
        try
        {
            using var copy = new VisionMamba(Small, seed: 5);
            var report = PretrainedWeights.Load(copy, copy, "", path);
            Assert.That(report.IsComplete, Is.True, report.ToString());
            using var noGrad = no_grad();
            var images = randn(1, 3, 64, 64);
            classifier.eval();
            copy.eval();
            Assert.That(copy.forward(images).allclose(classifier.forward(images)), Is.True);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
