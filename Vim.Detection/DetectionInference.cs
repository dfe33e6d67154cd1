using Vim.Core;
using Vim.Core.Engine;
using Vim.Data.Datasets;
using Vim.Data.Transforms;
using Vim.Detection.Structures;
using static TorchSharp.torch;

namespace Vim.Detection;

/// <summary>
/// Detection on an image file exactly as evaluation sees a validation image: the test transform
/// (keep-ratio resize into size², normalise), zero padding to a multiple of 32 (done by the
/// detector), and detections mapped back to the original image size.
/// </summary>
public static class DetectionInference
{
    /// <summary>
    /// Detections for one image at its original size (boxes xyxy, classes, scores, bool masks (N, H, W)).
    /// The tensors belong to the caller's dispose scope.
    /// </summary>
    /// <param name="testSize">The test resize target (data.crop_size[0] of the config, as evaluation uses).</param>
    public static Instances Predict(CascadeMaskRcnn model, string imagePath, int testSize)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (testSize <= 0) throw new VimException($"detection test size must be positive, got {testSize}");
        var (rgb, height, width) = ImageDecoder.ReadRgb(imagePath);
        var sample = new DataSample(0, imagePath, rgb, height, width);
        TransformPipeline.DetectionTesting(testSize).Apply(sample, new Random(0));
        var pixels = sample.NormalizedImage ?? throw new InvalidOperationException("the detection test pipeline must end with Normalize");
        bool wasTraining = model.training;
        model.eval();
        try
        {
            using var image = tensor(pixels, [1, 3, sample.Height, sample.Width], device: DeviceSelection.Of(model));
            return model.Predict(image, [(sample.ContentHeight, sample.ContentWidth)], [(height, width)])[0];
        }
        finally
        {
            if (wasTraining) model.train();
        }
    }
}
