using TorchSharp;
using Vim.Core;
using Vim.Core.Config;
using static TorchSharp.torch;

namespace Vim.Segmentation;

/// <summary>
/// Test-time prediction as mmseg does it: whole-image or sliding-window (overlapping crops, logits
/// summed and divided by the number of windows covering each pixel), optionally averaged with the
/// horizontally flipped image and over several scales (as softmax probabilities).
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
    /// Class scores (B, K, H, W) at the test size for normalised images (B, 3, H, W), whose bilinear resize to the
    /// original size and argmax give the prediction (<see cref="LabelsAtOriginalSize"/>). One pass (scale 1, no flip)
    /// gives its logits, as mmseg resizes the logits before the argmax (a resize of probabilities can pick another class
    /// where neighbours disagree); flip or several scales give the mean of the passes' softmax outputs.
    /// </summary>
    public static Tensor Scores(nn.Module<Tensor, Tensor> model, Tensor images, SegmentationTestConfig test)
    {
        CheckSettings(test);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        if (!test.Flip && test.Scales is [1.0])
            return (test.Mode == "whole" ? model.forward(images) : Slide(model, images, test)).MoveToOuterDisposeScope();
        long height = images.shape[2], width = images.shape[3];
        Tensor? sum = null;
        int count = 0;
        foreach (var scale in test.Scales)
        {
            var scaled = scale == 1.0 ? images : nn.functional.interpolate(images,
                size: [(long)Math.Round(height * scale), (long)Math.Round(width * scale)], mode: InterpolationMode.Bilinear, align_corners: false);
            foreach (bool flip in test.Flip ? new[] { false, true } : new[] { false })
            {
                var input = flip ? scaled.flip(3) : scaled;
                var logits = test.Mode switch
                {
                    "whole" => model.forward(input),
                    _ => Slide(model, input, test),
                };
                if (flip) logits = logits.flip(3);
                var probabilities = logits.softmax(1);
                if (scale != 1.0)
                    probabilities = nn.functional.interpolate(probabilities, size: [height, width], mode: InterpolationMode.Bilinear, align_corners: false);
                sum = sum is null ? probabilities : sum + probabilities;
                count++;
            }
        }
        return (sum! / count).MoveToOuterDisposeScope();
    }

    /// <summary>Sliding-window logits, window placement identical to mmseg's slide_inference.</summary>
    public static Tensor Slide(nn.Module<Tensor, Tensor> model, Tensor images, SegmentationTestConfig test)
    {
        var (cropH, cropW, strideH, strideW) = SlideWindow(test);
        long height = images.shape[2], width = images.shape[3];
        long gridsH = Math.Max(height - cropH + strideH - 1, 0) / strideH + 1;
        long gridsW = Math.Max(width - cropW + strideW - 1, 0) / strideW + 1;
        Tensor? sum = null;
        var counts = zeros(new[] { 1L, 1, height, width }, device: images.device);
        for (long gh = 0; gh < gridsH; gh++)
        {
            for (long gw = 0; gw < gridsW; gw++)
            {
                using var scope = NewDisposeScope();
                long y2 = Math.Min(gh * strideH + cropH, height), x2 = Math.Min(gw * strideW + cropW, width);
                long y1 = Math.Max(y2 - cropH, 0), x1 = Math.Max(x2 - cropW, 0);
                var crop = images[.., .., (int)y1..(int)y2, (int)x1..(int)x2];
                var logits = model.forward(crop);
                var placed = nn.functional.pad(logits, [x1, width - x2, y1, height - y2]);
                if (sum is null) sum = placed.MoveToOuterDisposeScope();
                else sum.add_(placed);
                counts[.., .., (int)y1..(int)y2, (int)x1..(int)x2].add_(1);
            }
        }
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

    /// <summary>
    /// Class indices (row-major, on the host) of a single image's scores (1, K, H, W; <see cref="Scores"/>): the padded
    /// content (contentHeight × contentWidth) is cropped, resized bilinearly to the original size and arg-maxed.
    /// </summary>
    public static ushort[] LabelsAtOriginalSize(Tensor scores, long contentHeight, long contentWidth, long originalHeight, long originalWidth)
    {
        using var scope = NewDisposeScope();
        var content = scores[.., .., ..(int)contentHeight, ..(int)contentWidth];
        var original = nn.functional.interpolate(content, size: [originalHeight, originalWidth], mode: InterpolationMode.Bilinear, align_corners: false);
        return Array.ConvertAll(original.argmax(1).to_type(ScalarType.Int32).flatten().cpu().data<int>().ToArray(), c => (ushort)c);
    }
}
