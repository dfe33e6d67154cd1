using TorchSharp;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Diagnostics;
using Vim.Data.Datasets;
using Vim.Data.Prediction;
using Vim.Data.Transforms;
using static TorchSharp.torch;

namespace Vim.Segmentation;

/// <summary>
/// Test-time prediction as mmseg does it: whole-image or sliding-window (overlapping crops, logits
/// summed and divided by the number of windows covering each pixel) at the original image size,
/// optionally averaged with the horizontally flipped image and over several scales (as softmax probabilities).
/// </summary>
public static class SegmentationInference
{
    /// <summary>
    /// Refuses model.seg_test settings inference cannot run with, naming the key. Tasks call it when they are built, so
    /// a typo stops a training run at once rather than at its first evaluation.
    /// </summary>
    public static void CheckSettings(SegmentationTestConfig test)
    {
        if (test.Mode is not ("whole" or "slide"))
            throw new VimException($"model.seg_test.mode must be whole or slide, got '{test.Mode}'");
        if (test.Scales.Count == 0)
            throw new VimException("model.seg_test.scales must hold at least one scale (e.g. [1.0])");
        foreach (var scale in test.Scales)
            if (!(scale > 0)) throw new VimException($"model.seg_test.scales must be positive, got {scale}");
        if (test.Mode == "slide") SlideWindow(test);
    }

    /// <summary>
    /// The test pipeline of each model.seg_test.scales ratio, as mmseg's MultiScaleFlipAug derives them, each of the original
    /// image (not of another view): <paramref name="testPipeline"/> (data.test_pipeline) with its resize scale times the
    /// ratio, else the recipe's keep-ratio resize into <paramref name="scale"/> (data.scale) times the ratio, truncated to
    /// whole pixels. <see cref="Scores"/> resizes each view's logits to the original size, so a test pipeline may only resize
    /// and normalize; <paramref name="testPipeline"/> is the config's as <see cref="DataPipelines.TestSteps"/> checked it
    /// (against these scales), so it is not checked again here. The sliding window reads whatever size the view has.
    /// </summary>
    public static IReadOnlyList<TransformPipeline> TestPipelines(IReadOnlyList<int> scale, SegmentationTestConfig test,
        IReadOnlyList<TransformStepConfig>? testPipeline = null)
    {
        CheckSettings(test);
        if (testPipeline is null && (scale.Count != 2 || scale[0] <= 0 || scale[1] <= 0))
            throw new VimException($"data.scale must be two positive sizes [long, short], got [{string.Join(", ", scale)}]");
        return test.Scales.Select(ratio => DataPipelines.SegmentationTesting(testPipeline, scale, ratio)).ToList();
    }

    /// <summary>
    /// One image file's test views (<see cref="TestPipelines"/>; decoded once, as the datasets decode images), each
    /// (1, 3, h, w) on <paramref name="device"/>, and the image's original size.
    /// </summary>
    public static (List<Tensor> Views, int Height, int Width) TestViews(string imagePath, IReadOnlyList<TransformPipeline> pipelines, Device? device = null)
    {
        var (rgb, height, width) = ImageDecoder.ReadRgb(imagePath);
        return (TestViews(rgb, height, width, imagePath, pipelines, device), height, width);
    }

    /// <summary>The test views of decoded pixels (8-bit RGB, HWC), e.g. a video frame; <paramref name="name"/> says what they are.</summary>
    public static List<Tensor> TestViews(byte[] rgb, int height, int width, string name, IReadOnlyList<TransformPipeline> pipelines, Device? device = null)
    {
        var image = PreparedImage.Prepare(rgb, height, width, name, pipelines);
        return Enumerable.Range(0, image.Views.Count).Select(v => PreparedImage.Batch([image], v, image.Views[v].Height, image.Views[v].Width, device)).ToList();
    }

    /// <summary>
    /// The shape each view of an image takes in the model: the view as the test resize leaves it. The segmentor runs it
    /// unpadded, and Vim's result for a token depends on every token of the image, so only images of these very shapes
    /// may share a batch.
    /// </summary>
    public static BatchShape InputShape(PreparedImage image) => new(image.Views.Select(v => ((long)v.Height, (long)v.Width)));

    /// <summary>
    /// Whether <see cref="Scores"/> returns one pass's logits as they are (no flip, one scale) rather than the mean of
    /// several passes' softmax probabilities.
    /// </summary>
    public static bool ReturnsLogits(SegmentationTestConfig test) => !test.Flip && test.Scales.Count == 1;

    /// <summary>
    /// Class scores (1, K, H, W) at the original size from one image's test views (unpadded, normalised, one per
    /// model.seg_test.scales ratio, made by <see cref="TestPipelines"/>), as mmseg's inference and aug_test compute them:
    /// each pass's logits (whole image or sliding window; the flipped view's flipped back) are resized bilinearly to the
    /// original size. One pass returns those logits (its argmax is mmseg's simple_test); several return the mean of
    /// their softmax outputs (<see cref="ReturnsLogits"/>). <see cref="Labels"/> turns the scores into the prediction.
    /// The model must be in eval mode.
    /// </summary>
    public static Tensor Scores(nn.Module<Tensor, Tensor> model, IReadOnlyList<Tensor> views, SegmentationTestConfig test, long originalHeight, long originalWidth)
    {
        foreach (var view in views)
            if (view.dim() != 4 || view.shape[0] != 1)
                throw new ArgumentException($"a test view must be one image (1, 3, H, W), got [{string.Join(", ", view.shape)}]", nameof(views));
        return Scores(model, views, test, [(originalHeight, originalWidth)])[0];
    }

    /// <summary>
    /// <see cref="Scores(nn.Module{Tensor, Tensor}, IReadOnlyList{Tensor}, SegmentationTestConfig, long, long)"/> of a batch:
    /// each view (B, 3, h, w) holds that view of every image, all of one shape (see <see cref="InputShape"/>), and each pass
    /// runs the batch through the model once (a sliding window crops the whole batch); per image, its scores (1, K, H, W)
    /// at its own original size in <paramref name="originalSizes"/>.
    /// </summary>
    public static IReadOnlyList<Tensor> Scores(nn.Module<Tensor, Tensor> model, IReadOnlyList<Tensor> views, SegmentationTestConfig test,
        IReadOnlyList<(long Height, long Width)> originalSizes)
    {
        CheckSettings(test);
        if (views.Count != test.Scales.Count)
            throw new ArgumentException($"{views.Count} test views for {test.Scales.Count} model.seg_test.scales", nameof(views));
        int count = originalSizes.Count;
        foreach (var view in views)
            if (view.dim() != 4 || view.shape[0] != count)
                throw new ArgumentException($"a test view must hold the batch's {count} images (B, 3, H, W), got [{string.Join(", ", view.shape)}]", nameof(views));
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        bool onePass = ReturnsLogits(test);
        var sums = new Tensor?[count];
        int passes = 0;
        foreach (var view in views)
        {
            foreach (bool flip in test.Flip ? new[] { false, true } : new[] { false })
            {
                Tensor input;
                using (StageProfiler.Measure(SegmentationStages.Rescale))
                    input = flip ? view.flip(3) : view;
                var logits = test.Mode == "whole" ? model.call(input) : Slide(model, input, test);
                using var stage = StageProfiler.Measure(SegmentationStages.Rescale);
                if (flip) logits = logits.flip(3);
                // Each image goes back to its own original size: images of one test shape may come from different sizes.
                for (int i = 0; i < count; i++)
                {
                    var resized = nn.functional.interpolate(logits.narrow(0, i, 1), size: [originalSizes[i].Height, originalSizes[i].Width],
                        mode: InterpolationMode.Bilinear, align_corners: false);
                    if (onePass)
                    {
                        sums[i] = resized;
                        continue;
                    }
                    var probabilities = resized.softmax(1);
                    sums[i] = sums[i] is null ? probabilities : sums[i]!.add_(probabilities);
                }
                passes++;
            }
        }
        using (StageProfiler.Measure(SegmentationStages.Rescale))
            return sums.Select(sum => (onePass ? sum! : sum!.div_(passes)).MoveToOuterDisposeScope()).ToList();
    }

    /// <summary>Sliding-window logits, window placement identical to mmseg's slide_inference.</summary>
    public static Tensor Slide(nn.Module<Tensor, Tensor> model, Tensor images, SegmentationTestConfig test)
    {
        var (cropH, cropW, strideH, strideW) = SlideWindow(test);
        long height = images.shape[2], width = images.shape[3];
        long gridsH = Math.Max(height - cropH + strideH - 1, 0) / strideH + 1;
        long gridsW = Math.Max(width - cropW + strideW - 1, 0) / strideW + 1;
        Tensor? sum = null;
        Tensor counts;
        using (StageProfiler.Measure(SegmentationStages.SlideWindow))
            counts = zeros(new[] { 1L, 1, height, width }, device: images.device);
        for (long gh = 0; gh < gridsH; gh++)
        {
            for (long gw = 0; gw < gridsW; gw++)
            {
                using var scope = NewDisposeScope();
                long y2 = Math.Min(gh * strideH + cropH, height), x2 = Math.Min(gw * strideW + cropW, width);
                long y1 = Math.Max(y2 - cropH, 0), x1 = Math.Max(x2 - cropW, 0);
                Tensor crop;
                using (StageProfiler.Measure(SegmentationStages.SlideWindow))
                    crop = images[.., .., (int)y1..(int)y2, (int)x1..(int)x2];
                var logits = model.call(crop);
                using var stage = StageProfiler.Measure(SegmentationStages.SlideWindow);
                var placed = nn.functional.pad(logits, [x1, width - x2, y1, height - y2]);
                if (sum is null) sum = placed.MoveToOuterDisposeScope();
                else sum.add_(placed);
                counts[.., .., (int)y1..(int)y2, (int)x1..(int)x2].add_(1);
            }
        }
        using (StageProfiler.Measure(SegmentationStages.SlideWindow))
            return sum! / counts;
    }

    private static (long CropH, long CropW, long StrideH, long StrideW) SlideWindow(SegmentationTestConfig test)
    {
        if (test.CropSize.Count != 2 || test.Stride.Count != 2)
            throw new VimException("model.seg_test.crop_size and model.seg_test.stride must each be [height, width]");
        long cropH = test.CropSize[0], cropW = test.CropSize[1], strideH = test.Stride[0], strideW = test.Stride[1];
        if (cropH <= 0 || cropW <= 0)
            throw new VimException($"model.seg_test.crop_size must be positive, got {cropH}x{cropW}");
        if (strideH <= 0 || strideW <= 0 || strideH > cropH || strideW > cropW)
            throw new VimException($"model.seg_test.stride {strideH}x{strideW} must be positive and at most the crop {cropH}x{cropW}");
        return (cropH, cropW, strideH, strideW);
    }

    /// <summary>Class indices (row-major, on the host) of one image's <see cref="Scores"/>: the argmax over classes.</summary>
    public static ushort[] Labels(Tensor scores)
    {
        if (scores.dim() != 4 || scores.shape[0] != 1)
            throw new ArgumentException($"scores must be (1, K, H, W), got [{string.Join(", ", scores.shape)}]", nameof(scores));
        using var scope = NewDisposeScope();
        using var stage = StageProfiler.Measure(SegmentationStages.Argmax);
        return Array.ConvertAll(scores.argmax(1).to_type(ScalarType.Int32).flatten().cpu().data<int>().ToArray(), c => (ushort)c);
    }
}
