using NUnit.Framework;
using TorchSharp;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Engine;
using Vim.Core.Models;
using Vim.Segmentation;
using static TorchSharp.torch;

namespace Vim.Tests.Segmentation;

public class EncoderDecoderTests
{
    private static EncoderDecoder TinySegmentor(int classes = 5)
    {
        torch.manual_seed(11);
        var backbone = new VisionMamba(VimVariants.SegTiny with { EmbedDim = 32, Depth = 4, TapBlocks = [0, 1, 2, 3], ImageSize = 64, DropPathRate = 0 }, 3);
        return new EncoderDecoder(new SegmentationPyramid(backbone), new SegmentationHeadConfig { Channels = 16, AuxiliaryChannels = 16 }, classes);
    }

    /// <summary>Returns the first K input channels: an exactly known, position-dependent "prediction".</summary>
    private sealed class ChannelProbe(int classes) : nn.Module<Tensor, Tensor>("probe")
    {
        public override Tensor forward(Tensor x) => x[.., ..classes].clone();
    }

    [TestCase(64, 64)]
    [TestCase(96, 64)]
    [TestCase(50, 70)]
    public void LogitsMatchTheInputSize(int height, int width)
    {
        using var scope = NewDisposeScope();
        using var model = TinySegmentor();
        model.eval();
        using var noGrad = no_grad();
        Assert.That(model.forward(randn(2, 3, height, width)).shape, Is.EqualTo(new long[] { 2, 5, height, width }));
    }

    /// <summary>
    /// Inference inside a bf16 autocast region gives float32 logits (whole image and sliding window) and float32
    /// probabilities, close to the fp32 run's (bf16 keeps about 3 significant digits), with the same label almost everywhere.
    /// </summary>
    [Test]
    public void InferenceUnderBf16AutocastReturnsFloat32CloseToFloat32()
    {
        using var scope = NewDisposeScope();
        using var model = TinySegmentor();
        model.eval();
        using var noGrad = no_grad();
        var images = randn(1, 3, 64, 64, generator: new Generator(2));
        var slide = new SegmentationTestConfig { Mode = "slide", CropSize = [48, 48], Stride = [32, 32] };
        var logits = model.forward(images);
        var windows = SegmentationInference.Slide(model, images, slide);
        var probabilities = SegmentationInference.Scores(model, [images], slide, 64, 64);
        Tensor halfLogits, halfWindows, halfProbabilities;
        using (new Autocast(DeviceType.CPU, ScalarType.BFloat16))
        {
            halfLogits = model.forward(images);
            halfWindows = SegmentationInference.Slide(model, images, slide);
            halfProbabilities = SegmentationInference.Scores(model, [images], slide, 64, 64);
        }
        foreach (var (name, reference, half) in new[] { ("logits", logits, halfLogits), ("sliding logits", windows, halfWindows), ("probabilities", probabilities, halfProbabilities) })
        {
            Assert.That(half.dtype, Is.EqualTo(ScalarType.Float32), name);
            double scale = reference.abs().max().ToDouble();
            Assert.That((half - reference).abs().max().ToDouble(), Is.LessThanOrEqualTo(0.05 * scale), $"{name}: within 5% of the largest value");
        }
        double sameLabel = halfProbabilities.argmax(1).eq(probabilities.argmax(1)).to_type(ScalarType.Float32).mean().ToDouble();
        Assert.That(sameLabel, Is.GreaterThan(0.98), "pixels labelled alike");
    }

    [Test]
    public void OnePassGivesLogitsAndAugmentedPassesAverageProbabilities()
    {
        using var scope = NewDisposeScope();
        using var model = TinySegmentor();
        model.eval();
        using var noGrad = no_grad();
        var image = randn(1, 3, 64, 64, generator: new Generator(5));
        // mmseg resizes one pass's logits to the original size before the argmax: the scores are the logits themselves.
        var whole = SegmentationInference.Scores(model, [image], new SegmentationTestConfig { Mode = "whole" }, 64, 64);
        Assert.That(whole.allclose(model.forward(image), rtol: 0, atol: 0), Is.True);
        // With flip the passes' softmax outputs are averaged: a distribution over the classes at every pixel.
        var flipped = SegmentationInference.Scores(model, [image], new SegmentationTestConfig { Mode = "whole", Flip = true }, 64, 64);
        Assert.That(flipped.sum(1).sub(1).abs().max().ToDouble(), Is.LessThan(1e-5));
        var expected = (model.forward(image).softmax(1) + model.forward(image.flip(3)).flip(3).softmax(1)) / 2;
        Assert.That(flipped.allclose(expected, rtol: 0, atol: 1e-6), Is.True);
    }

    [Test]
    public void SlidingWindowEqualsWholeImageWhenOneWindowCoversIt()
    {
        using var scope = NewDisposeScope();
        using var model = TinySegmentor();
        model.eval();
        var image = randn(1, 3, 64, 64);
        var test = new SegmentationTestConfig { Mode = "slide", CropSize = [64, 64], Stride = [48, 48] };
        var slide = SegmentationInference.Scores(model, [image], test, 64, 64);
        var whole = SegmentationInference.Scores(model, [image], new SegmentationTestConfig { Mode = "whole" }, 64, 64);
        Assert.That(slide.allclose(whole, rtol: 0, atol: 0), Is.True);
        // An image smaller than the crop is one window too.
        var small = randn(1, 3, 48, 40);
        Assert.That(SegmentationInference.Scores(model, [small], test, 48, 40)
            .allclose(SegmentationInference.Scores(model, [small], new SegmentationTestConfig { Mode = "whole" }, 48, 40), rtol: 0, atol: 0), Is.True);
    }

    [Test]
    public void OverlappingWindowsAverageBackToTheExactMap()
    {
        using var scope = NewDisposeScope();
        // With a model whose output is its input, averaging overlapping windows must reproduce the
        // input everywhere: any error in window placement, padding or counting shows up.
        var image = arange(3 * 37 * 53, dtype: ScalarType.Float32).reshape(1, 3, 37, 53);
        var logits = SegmentationInference.Slide(new ChannelProbe(2), image,
            new SegmentationTestConfig { Mode = "slide", CropSize = [16, 20], Stride = [7, 9] });
        Assert.That(logits.allclose(image[.., ..2], rtol: 1e-6, atol: 1e-3), Is.True);
    }

    [Test]
    public void FlipAndScaleAugmentationOfAnEquivariantModelChangeNothing()
    {
        using var scope = NewDisposeScope();
        var image = rand(1, 3, 32, 32);
        var plain = SegmentationInference.Scores(new ChannelProbe(3), [image], new SegmentationTestConfig { Mode = "whole" }, 32, 32);
        var flipped = SegmentationInference.Scores(new ChannelProbe(3), [image], new SegmentationTestConfig { Mode = "whole", Flip = true }, 32, 32);
        // One pass gives logits, the flip pair averages probabilities: equal once the logits are softmaxed.
        Assert.That(flipped.allclose(plain.softmax(1), rtol: 1e-6, atol: 1e-6), Is.True);
        // A constant image is invariant under resizing too.
        var constant = full(1, 3, 32, 32, 0.5f);
        var multi = SegmentationInference.Scores(new ChannelProbe(3), [full(1, 3, 16, 16, 0.5f), constant, full(1, 3, 48, 48, 0.5f)],
            new SegmentationTestConfig { Mode = "whole", Scales = [0.5, 1.0, 1.5] }, 32, 32);
        Assert.That(multi.allclose(full(1, 3, 32, 32, 1f / 3), rtol: 1e-5, atol: 1e-6), Is.True);
    }

    /// <summary>
    /// mmseg's multi-scale test: each pass's logits are resized to the original size, then softmaxed, then averaged (a
    /// softmax at the view's size resized afterwards differs where the resize blends neighbours).
    /// </summary>
    [Test]
    public void SeveralScalesAverageTheSoftmaxOfLogitsResizedToTheOriginalSize()
    {
        using var scope = NewDisposeScope();
        // Logits of a few units (the probe returns its input), where the softmax is far from linear.
        var model = new ChannelProbe(3);
        var small = randn(1, 3, 32, 48, generator: new Generator(7)) * 4;
        var large = randn(1, 3, 64, 96, generator: new Generator(8)) * 4;
        var test = new SegmentationTestConfig { Mode = "whole", Scales = [0.5, 1.0], Flip = true };
        var scores = SegmentationInference.Scores(model, [small, large], test, 50, 75);
        Tensor AtOriginal(Tensor logits) => nn.functional.interpolate(logits, size: [50, 75], mode: InterpolationMode.Bilinear, align_corners: false).softmax(1);
        var expected = (AtOriginal(small) + AtOriginal(small.flip(3).flip(3)) + AtOriginal(large) + AtOriginal(large.flip(3).flip(3))) / 4;
        Assert.That(scores.shape, Is.EqualTo(new long[] { 1, 3, 50, 75 }));
        Assert.That(scores.allclose(expected, rtol: 0, atol: 1e-6), Is.True);
        Assert.That(SegmentationInference.Labels(scores), Is.EqualTo(expected.argmax(1).flatten().data<long>().ToArray().Select(c => (ushort)c).ToArray()));
        var softmaxFirst = nn.functional.interpolate(small.softmax(1), size: [50, 75], mode: InterpolationMode.Bilinear, align_corners: false);
        Assert.That((AtOriginal(small) - softmaxFirst).abs().max().ToDouble(), Is.GreaterThan(1e-2), "the order is observable");
    }

    /// <summary>
    /// The views come from the original image at data.scale × ratio (truncated), each a keep-ratio fit, as mmseg's
    /// MultiScaleFlipAug makes them. A 683×512 ADE20k image with data.scale [2048, 512], hand-computed: ratio 0.5 →
    /// fit (1024, 256): factor 0.5 → 342×256 (683·0.5 + 0.5 = 342); 0.75 → (1536, 384): 0.75 → 512×384;
    /// 1.75 → (3584, 896): 1.75 → 1195×896 (1195.25 + 0.5).
    /// </summary>
    [Test]
    public void TestViewsResizeTheOriginalImageByEachRatioOfDataScale()
    {
        var pipelines = SegmentationInference.TestPipelines([2048, 512], new SegmentationTestConfig { Scales = [0.5, 0.75, 1.75] });
        var sizes = pipelines.Select(pipeline =>
        {
            var sample = new Vim.Data.Datasets.DataSample(0, "ade.jpg", new byte[512 * 683 * 3], 512, 683);
            pipeline.Apply(sample, new Random(0));
            return (sample.Width, sample.Height);
        }).ToList();
        Assert.That(sizes, Is.EqualTo(new[] { (342, 256), (512, 384), (1195, 896) }));
        var error = Assert.Throws<VimException>(() => SegmentationInference.TestPipelines([2048, 512], new SegmentationTestConfig { Scales = [0.001] }));
        Assert.That(error!.Message, Does.Contain("model.seg_test.scales: ratio 0.001 of data.scale [2048, 512] leaves no pixel"));
    }

    [Test]
    public void TrainingLossesReachEveryParameter()
    {
        using var scope = NewDisposeScope();
        using var model = TinySegmentor();
        model.train();
        var labels = randint(0, 5, new long[] { 2, 64, 64 });
        labels[0, ..8, ..8] = tensor(255L);
        var images = randn(2, 3, 64, 64);
        var losses = model.Losses(images, labels);
        Assert.That(losses.Keys, Is.EquivalentTo(new[] { "decode.loss_ce", "decode.acc_seg", "aux.loss_ce", "aux.acc_seg" }), "mmseg's names");
        // Untrained heads start near uniform: CE ≈ ln 5 averaged over all pixels (1/64 of image 0 ignored → factor 1 − 1/128).
        Assert.That(losses["decode.loss_ce"].item<float>(), Is.EqualTo(Math.Log(5) * (1 - 1.0 / 128)).Within(0.05));
        Assert.That(losses["aux.loss_ce"].item<float>(), Is.EqualTo(0.4 * Math.Log(5) * (1 - 1.0 / 128)).Within(0.02));
        Assert.That(losses["decode.acc_seg"].requires_grad, Is.False, "logged only");
        // acc_seg: the share of labelled pixels whose argmax is the label, in percent. In eval mode (no dropout, running
        // BatchNorm statistics) the training terms and forward see the same logits.
        model.eval();
        var predicted = model.forward(images).argmax(1);
        var labelled = labels.ne(255);
        double expected = 100.0 * predicted.eq(labels).logical_and(labelled).sum().item<long>() / labelled.sum().item<long>();
        Assert.That(model.Losses(images, labels)["decode.acc_seg"].item<float>(), Is.EqualTo(expected).Within(1e-3));
        model.train();
        (losses["decode.loss_ce"] + losses["aux.loss_ce"]).backward();
        // norm_f is kept for official-checkpoint compatibility but dense taps never apply it.
        var withoutGrad = model.named_parameters().Where(p => p.parameter.grad is null).Select(p => p.name).ToList();
        Assert.That(withoutGrad, Is.EqualTo(new[] { "backbone.net.norm_f.weight" }));
    }

    [Test]
    public void ANonSegmentationBackboneIsRejectedByName()
    {
        var config = new ExperimentConfig { Model = new ModelConfig { Backbone = new BackboneConfig { Name = "vim_tiny" } } };
        var e = Assert.Throws<VimException>(() => EncoderDecoder.FromConfig(config, 0))!;
        Assert.That(e.Message, Does.Contain("model.backbone.name 'vim_tiny'").And.Contain("vimseg_tiny"));
    }
}
