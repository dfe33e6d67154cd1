using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Engine;
using Vim.Data.Datasets;
using Vim.Data.Prediction;
using Vim.Data.Transforms;
using Vim.Detection.Structures;
using static TorchSharp.torch;

namespace Vim.Detection;

/// <summary>
/// Detection on an image file exactly as evaluation sees a validation image: the test transform
/// (data.test_pipeline, else the keep-ratio resize into size² and normalise) of each model.det_test scale, zero padding to the backbone's square
/// (done by the detector), test-time augmentation as model.det_test says, and detections mapped back to the original image size.
/// </summary>
public static class DetectionInference
{
    /// <summary>
    /// Detections for one image at its original size (boxes xyxy, classes, scores, bool masks (N, H, W)).
    /// The tensors belong to the caller's dispose scope.
    /// </summary>
    /// <param name="testSize">The test resize target (data.crop_size[0] of the config, as evaluation uses).</param>
    /// <param name="test">model.det_test of the config (default: one plain pass).</param>
    /// <param name="testPipeline">data.test_pipeline of the config (null: the recipe's resize into <paramref name="testSize"/>).</param>
    public static Instances Predict(CascadeMaskRcnn model, string imagePath, int testSize, DetectionTestConfig? test = null,
        IReadOnlyList<TransformStepConfig>? testPipeline = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (testSize <= 0) throw new VimException($"detection test size must be positive, got {testSize}");
        var (rgb, height, width) = ImageDecoder.ReadRgb(imagePath);
        return Predict(model, rgb, height, width, imagePath, testSize, test, testPipeline);
    }

    /// <summary>
    /// <see cref="Predict(CascadeMaskRcnn, string, int, DetectionTestConfig?, IReadOnlyList{TransformStepConfig}?)"/> on decoded pixels (8-bit RGB, HWC), e.g. a
    /// video frame. The model is put in eval mode for the prediction and left as it was.
    /// </summary>
    /// <param name="name">What the pixels are, for messages (a file, a video frame).</param>
    public static Instances Predict(CascadeMaskRcnn model, byte[] rgb, int height, int width, string name, int testSize, DetectionTestConfig? test = null,
        IReadOnlyList<TransformStepConfig>? testPipeline = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (testSize <= 0) throw new VimException($"detection test size must be positive, got {testSize}");
        test ??= new DetectionTestConfig();
        var image = PreparedImage.Prepare(rgb, height, width, name, DetectionTestTimeAugmentation.TestPipelines(testSize, test, testPipeline));
        using var eval = EvalMode.Enter(model);
        return Predict(model, [image], test)[0];
    }

    /// <summary>
    /// The shape each of an image's views (<see cref="PreparedImage.Prepare"/> with <see cref="DetectionTestTimeAugmentation.TestPipelines"/>)
    /// takes in the detector: the view (a plain pass) or its content (test-time augmentation, whose passes run the content
    /// alone) padded to <see cref="CascadeMaskRcnn.InputSize"/>. Every image that fits the backbone's square takes the square,
    /// whatever its own size, so images of any sizes share a batch as each would be padded alone: no image sees padding it
    /// would not get by itself.
    /// </summary>
    public static BatchShape InputShape(CascadeMaskRcnn model, PreparedImage image, DetectionTestConfig test)
    {
        bool plain = DetectionTestTimeAugmentation.IsPlain(test);
        return new BatchShape(image.Views.Select(v => plain ? model.InputSize(v.Height, v.Width) : model.InputSize(v.ContentHeight, v.ContentWidth)));
    }

    /// <summary>
    /// The detections of a batch of images prepared with model.det_test's test pipelines, each at its original size, in
    /// order: every pass runs the whole batch through the detector once. The images must share one <see cref="InputShape"/>
    /// (refused otherwise); the model must be in eval mode; the tensors belong to the caller's dispose scope.
    /// </summary>
    public static IReadOnlyList<Instances> Predict(CascadeMaskRcnn model, IReadOnlyList<PreparedImage> images, DetectionTestConfig test)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(images);
        if (images.Count == 0) return [];
        var shape = InputShape(model, images[0], test);
        foreach (var image in images.Skip(1))
            if (InputShape(model, image, test) is var own && !own.Equals(shape))
                throw new ArgumentException($"{image.Name}: its views take {own} in the detector, {images[0].Name}'s {shape}; " +
                    "a batch holds images of one input shape", nameof(images));
        var device = DeviceSelection.Of(model);
        var views = new List<DetectionViewBatch>();
        try
        {
            for (int v = 0; v < shape.Views.Count; v++)
            {
                // Each view at the batch's largest view size: a plain pass's detector pads that to the shared input size
                // itself, and augmented passes take each image's content out of it.
                var (height, width) = (images.Max(i => (long)i.Views[v].Height), images.Max(i => (long)i.Views[v].Width));
                var contents = images.Select(i => ((long)i.Views[v].ContentHeight, (long)i.Views[v].ContentWidth)).ToList();
                views.Add(new DetectionViewBatch(PreparedImage.Batch(images, v, height, width, device), contents));
            }
            return DetectionTestTimeAugmentation.Predict(model, views, images.Select(i => ((long)i.OriginalHeight, (long)i.OriginalWidth)).ToList(), test);
        }
        finally
        {
            foreach (var view in views) view.Images.Dispose();
        }
    }
}
