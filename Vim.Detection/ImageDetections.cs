using Vim.Core;
using Vim.Data.Coco;
using Vim.Data.Masks;
using Vim.Detection.Structures;
using static TorchSharp.torch;

namespace Vim.Detection;

/// <summary>
/// One image's detections from a <see cref="Detector"/>, as plain managed values (no tensors, nothing to dispose), in the
/// order the detector returned them (by descending score after its per-class NMS).
/// </summary>
public sealed class ImageDetections
{
    public ImageDetections(int height, int width, IReadOnlyList<DetectedObject> detections)
    {
        ArgumentNullException.ThrowIfNull(detections);
        (Height, Width, Detections) = (height, width, detections);
    }

    /// <summary>The image's size in pixels, as given: boxes and masks refer to it.</summary>
    public int Height { get; }
    public int Width { get; }

    /// <summary>Every detection above the config's model.det_head.test_score_threshold (at most detections_per_image).</summary>
    public IReadOnlyList<DetectedObject> Detections { get; }

    /// <summary>
    /// The managed copy of a detector's output for one image (<paramref name="found"/>: boxes xyxy, classes, scores and, with a
    /// mask head, masks at the original size, as <see cref="DetectionInference.Predict(CascadeMaskRcnn, string, int, DetectionTestConfig?, IReadOnlyList{TransformStepConfig}?)"/>
    /// returns them): boxes and scores keep their float32 values, each mask is encoded as COCO RLE. The tensors stay the caller's.
    /// </summary>
    /// <param name="minScore">Detections scoring below are left out, before their masks are copied to the host and encoded.</param>
    public static ImageDetections FromInstances(Instances found, CategoryMap categories, double minScore = 0)
    {
        ArgumentNullException.ThrowIfNull(found);
        ArgumentNullException.ThrowIfNull(categories);
        int height = checked((int)found.ImageHeight), width = checked((int)found.ImageWidth);
        if (found.Count == 0) return new ImageDetections(height, width, []);
        if (found.Classes is null || found.Scores is null)
            throw new ArgumentException("detections need classes and scores", nameof(found));
        using var scope = NewDisposeScope();
        var kept = minScore > 0 ? found.Select(found.Scores.ge(minScore)) : found;
        if (kept.Count == 0) return new ImageDetections(height, width, []);
        // Reading through data<T>() needs contiguous host memory (post-processing can return strided views, on the model's device).
        var boxes = kept.Boxes.Tensor.to_type(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();
        var classes = kept.Classes!.to_type(ScalarType.Int64).cpu().contiguous().data<long>().ToArray();
        var scores = kept.Scores!.to_type(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();
        // One transfer and one host copy for all masks (N, H, W) rather than one per detection; each is encoded from its slice.
        var masks = kept.Masks?.to_type(ScalarType.Byte).cpu().contiguous().data<byte>().ToArray();
        int plane = height * width;
        var detections = new DetectedObject[classes.Length];
        for (int i = 0; i < detections.Length; i++)
        {
            int classIndex = (int)classes[i];
            Rle? mask = masks is null ? null : Rle.Encode(masks.AsSpan(i * plane, plane), height, width);
            detections[i] = new DetectedObject(boxes[4 * i], boxes[4 * i + 1], boxes[4 * i + 2], boxes[4 * i + 3], scores[i], classIndex,
                categories.ToCategoryId(classIndex), categories.Names[classIndex], mask);
        }
        return new ImageDetections(height, width, detections);
    }
}

/// <summary>
/// One detected object: its box (<see cref="X1"/>, <see cref="Y1"/>) to (<see cref="X2"/>, <see cref="Y2"/>) in the original
/// image's pixels (continuous coordinates, x to the right, y down), the detector's score, its class (the model's index
/// and the dataset's COCO category id and name), and its instance mask as COCO RLE (null for a detector without a mask
/// head), which <see cref="MaskBitmap"/> decodes.
/// </summary>
public sealed record DetectedObject(float X1, float Y1, float X2, float Y2, float Score, int ClassIndex, long CategoryId, string CategoryName, Rle? Mask)
{
    /// <summary>
    /// The mask as one byte per pixel of the image, row-major (index y·width + x), 1 inside the object and 0 outside; null
    /// without a mask. Decoded on each call (an image-sized array): keep the result rather than calling it per pixel.
    /// </summary>
    public byte[]? MaskBitmap() => Mask?.Decode();
}

/// <summary>
/// What a <see cref="Detector"/> prediction returns besides the default (every detection above the config's
/// model.det_head.test_score_threshold): <see cref="MinScore"/> leaves out detections scoring below it (mmdet's
/// <c>DetInferencer</c> <c>pred_score_thr</c>), before their masks are copied to the host and encoded, which is most of
/// the work of turning a detector's output into managed results.
/// </summary>
public sealed record DetectionRequest
{
    /// <summary>The lowest score a returned detection has, within [0, 1]; 0 keeps every detection.</summary>
    public double MinScore { get; init; }

    /// <summary>
    /// Predict each image in overlapping patches at its own resolution and merge them (<see cref="DetectionSlicing"/>; mmdet's
    /// large_image_demo.py); null predicts the whole image resized into the test size. The list <c>Predict</c>'s
    /// <c>batchSize</c> then batches one image's patches; the single-image <c>Predict</c> runs them one at a time.
    /// </summary>
    public DetectionSlicing? Slicing { get; init; }

    /// <summary>Refuses a <see cref="MinScore"/> outside [0, 1] and <see cref="Slicing"/> settings that cannot slice, by name.</summary>
    public void Check()
    {
        if (!(MinScore >= 0 && MinScore <= 1))
            throw new VimException($"DetectionRequest.MinScore must be within [0, 1], got {MinScore.ToString(System.Globalization.CultureInfo.InvariantCulture)}");
        Slicing?.Check();
    }
}
