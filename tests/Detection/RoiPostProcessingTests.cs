using NUnit.Framework;
using TorchSharp;
using Vim.Detection.Modeling;
using static TorchSharp.torch;

namespace Vim.Tests.Detection;

public class RoiPostProcessingTests
{
    [Test]
    public void InferenceThresholdsReplicatesPerClassNmsesAndCaps()
    {
        using var scope = NewDisposeScope();
        var boxes = tensor(new[]
        {
            0f, 0, 10, 10,       // R0: c0 0.7, c1 0.2
            1, 0, 11, 10,        // R1: IoU 90/110 with R0; c0 0.6 (suppressed by R0), c1 0.3 (suppresses R0's c1)
            50, 50, 70, 70,      // R2: c0 0.04, c1 0.03 → below the 0.05 threshold
            -5, 90, 30, 120,     // R3: c1 0.8 (c0 0.01 below threshold), clipped to [0, 90, 30, 100]
            30, 30, 40, 40,      // R4: c0 0.45, c1 0.45 → the one box is reported for both classes
            float.NaN, 0, 1, 1,  // R5: non-finite → dropped
        }).view(6, 4);
        var probabilities = tensor(new[]
        {
            0.7, 0.2, 0.1,
            0.6, 0.3, 0.1,
            0.04, 0.03, 0.93,
            0.01, 0.8, 0.19,
            0.45, 0.45, 0.1,
            0.9, 0.05, 0.05,
        }).view(6, 3).to_type(ScalarType.Float32);
        var (det, roi) = FastRcnnInference.SingleImage(boxes, probabilities, 100, 100, 0.05, 0.5, -1);
        Assert.That(det.Classes!.data<long>().ToArray(), Is.EqualTo(new long[] { 1, 0, 0, 1, 1 }));
        Assert.That(roi.data<long>().ToArray(), Is.EqualTo(new long[] { 3, 0, 4, 4, 1 }));
        Assert.That(det.Scores!.data<float>().ToArray(), Is.EqualTo(new[] { 0.8f, 0.7f, 0.45f, 0.45f, 0.3f }));
        Assert.That(det.Boxes.Tensor[0].data<float>().ToArray(), Is.EqualTo(new[] { 0f, 90, 30, 100 }));
        Assert.That(det.Boxes.Tensor[2].eq(det.Boxes.Tensor[3]).all().item<bool>(), Is.True);

        var (top2, _) = FastRcnnInference.SingleImage(boxes, probabilities, 100, 100, 0.05, 0.5, 2);
        Assert.That(top2.Scores!.data<float>().ToArray(), Is.EqualTo(new[] { 0.8f, 0.7f }));
        // A stricter NMS (IoU 0.9) keeps R1's class-0 box too (IoU 0.82 with R0).
        var (loose, _) = FastRcnnInference.SingleImage(boxes, probabilities, 100, 100, 0.05, 0.9, -1);
        Assert.That(loose.Count, Is.EqualTo(7));
    }

    [Test]
    public void MaskTargetsCropAndResizeAHandMadeRectangle()
    {
        using var scope = NewDisposeScope();
        var masks = zeros(new long[] { 2, 20, 20 }, ScalarType.Bool);
        masks[1, 6..10, 4..12] = tensor(true); // rows 6–9, columns 4–11
        // RoI 0 is the rectangle itself: every target cell is 1.
        // RoI 1 is [0, 0, 16, 16] at 4×4: one bilinear sample per 4-pixel bin at pixel coordinate 4b + 1.5;
        // columns: 1.5 → 0, 5.5 → 1, 9.5 → 1, 13.5 → 0; rows: 5.5 and 9.5 straddle the edge (0.5 → kept by ≥ 0.5).
        // RoI 2 points at the empty mask 0.
        var boxes = tensor(new[] { 4f, 6, 12, 10, 0, 0, 16, 16, 4, 6, 12, 10 }).view(3, 4);
        var targets = MaskTargets.CropAndResize(masks, boxes, tensor(new long[] { 1, 1, 0 }), 4);
        Assert.That(targets.shape, Is.EqualTo(new long[] { 3, 4, 4 }));
        Assert.That(targets.dtype, Is.EqualTo(ScalarType.Bool));
        Assert.That(targets[0].all().item<bool>(), Is.True);
        var expected = new[] { false, false, false, false, false, true, true, false, false, true, true, false, false, false, false, false };
        Assert.That(targets[1].flatten().data<bool>().ToArray(), Is.EqualTo(expected));
        Assert.That(targets[2].any().item<bool>(), Is.False);
    }

    [Test]
    public void PastingNoMasksGivesAnEmptyStackOfTheImageSize()
    {
        using var scope = NewDisposeScope();
        var pasted = MaskPaster.Paste(zeros(0, 28, 28), zeros(0, 4), 30, 40);
        Assert.That(pasted.shape, Is.EqualTo(new long[] { 0, 30, 40 }));
    }

    [Test]
    public void PastingAConstantMaskFillsExactlyTheBox()
    {
        using var scope = NewDisposeScope();
        var ones28 = ones(2, 28, 28);
        var boxes = tensor(new[] { 10f, 20, 30, 35, 10.3f, 20.6f, 29.5f, 35.2f }).view(2, 4);
        var pasted = MaskPaster.Paste(ones28, boxes, 50, 60);
        Assert.That(pasted.shape, Is.EqualTo(new long[] { 2, 50, 60 }));
        var expected = zeros(new long[] { 50, 60 }, ScalarType.Bool);
        expected[20..35, 10..30] = tensor(true);
        Assert.That(pasted[0].eq(expected).all().item<bool>(), Is.True, "integer box: exactly its 20 × 15 pixels");
        // Fractional box: the pixels whose centres lie inside it, up to one boundary row/column.
        long area = pasted[1].sum().ToInt64();
        Assert.That(area, Is.InRange(19 * 14, 20 * 15));
        Assert.That(pasted[1].nonzero()[.., 0].min().ToInt64(), Is.GreaterThanOrEqualTo(20));
        Assert.That(pasted[1].nonzero()[.., 1].max().ToInt64(), Is.LessThanOrEqualTo(29));

        // A left-half mask on a box the size of the mask: pixel centres hit mask pixel centres → 14 columns exactly.
        var half = zeros(1, 28, 28);
        half[0, .., ..14] = tensor(1f);
        var halfPasted = MaskPaster.Paste(half, tensor(new[] { 0f, 0, 28, 28 }).view(1, 4), 40, 40);
        Assert.That(halfPasted.sum().ToInt64(), Is.EqualTo(28 * 14));
        Assert.That(halfPasted[0, .., 14..].any().item<bool>(), Is.False);
        // A box outside the image pastes nothing.
        Assert.That(MaskPaster.Paste(ones(1, 28, 28), tensor(new[] { 70f, 70, 90, 90 }).view(1, 4), 50, 60).any().item<bool>(), Is.False);
    }

    [Test]
    public void PostprocessingMapsDetectionsToTheOriginalImage()
    {
        using var scope = NewDisposeScope();
        // Input valid size 50 × 100 (h × w), original image 100 × 200: everything doubles.
        var boxes = new Vim.Detection.Structures.Boxes(tensor(new[] { 10f, 10, 30, 20, 5, 60, 40, 70, 90, 10, 99, 40 }).view(3, 4));
        var det = new Vim.Detection.Structures.Instances(50, 100, boxes, tensor(new long[] { 2, 0, 1 }), tensor(new[] { 0.9f, 0.8f, 0.7f }),
            ones(3, 28, 28));
        var output = DetectionPostprocessor.ToOutputSize(det, 100, 200);
        // Box 1 starts below the image (y 60 of 50 → 120 of 100) and clips to zero height: dropped.
        Assert.That(output.Count, Is.EqualTo(2));
        Assert.That(output.Boxes.Tensor.flatten().data<float>().ToArray(), Is.EqualTo(new[] { 20f, 20, 60, 40, 180, 20, 198, 80 }));
        Assert.That(output.Classes!.data<long>().ToArray(), Is.EqualTo(new long[] { 2, 1 }));
        Assert.That(output.Masks!.shape, Is.EqualTo(new long[] { 2, 100, 200 }));
        Assert.That(output.Masks[0].sum().ToInt64(), Is.EqualTo(40 * 20));
        Assert.That(output.Masks[1].sum().ToInt64(), Is.EqualTo(18 * 60));
    }
}
