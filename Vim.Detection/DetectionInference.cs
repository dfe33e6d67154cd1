using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Engine;
using Vim.Data.Datasets;
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
    public static Instances Predict(CascadeMaskRcnn model, string imagePath, int testSize, DetectionTestConfig? test = null) =>
        Predict(model, imagePath, testSize, test, testPipeline: null);

    /// <summary><see cref="Predict(CascadeMaskRcnn, string, int, DetectionTestConfig?)"/> through a config's data.test_pipeline (null: the recipe's resize into <paramref name="testSize"/>).</summary>
    public static Instances Predict(CascadeMaskRcnn model, string imagePath, int testSize, DetectionTestConfig? test, IReadOnlyList<TransformStepConfig>? testPipeline)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (testSize <= 0) throw new VimException($"detection test size must be positive, got {testSize}");
        var (rgb, height, width) = ImageDecoder.ReadRgb(imagePath);
        return Predict(model, rgb, height, width, imagePath, testSize, test, testPipeline);
    }

    /// <summary><see cref="Predict(CascadeMaskRcnn, string, int, DetectionTestConfig?)"/> on decoded pixels (8-bit RGB, HWC), e.g. a video frame.</summary>
    /// <param name="name">What the pixels are, for messages (a file, a video frame).</param>
    public static Instances Predict(CascadeMaskRcnn model, byte[] rgb, int height, int width, string name, int testSize, DetectionTestConfig? test = null) =>
        Predict(model, rgb, height, width, name, testSize, test, testPipeline: null);

    /// <summary><see cref="Predict(CascadeMaskRcnn, byte[], int, int, string, int, DetectionTestConfig?)"/> through a config's data.test_pipeline (null: the recipe).</summary>
    public static Instances Predict(CascadeMaskRcnn model, byte[] rgb, int height, int width, string name, int testSize, DetectionTestConfig? test,
        IReadOnlyList<TransformStepConfig>? testPipeline)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (testSize <= 0) throw new VimException($"detection test size must be positive, got {testSize}");
        if (rgb.Length != 3L * height * width) throw new ArgumentException($"{name}: {rgb.Length} bytes for a {width}x{height} RGB image", nameof(rgb));
        test ??= new DetectionTestConfig();
        var pipelines = DetectionTestTimeAugmentation.TestPipelines(testSize, test, testPipeline);
        bool wasTraining = model.training;
        model.eval();
        var views = new List<DetectionView>();
        try
        {
            var device = DeviceSelection.Of(model);
            views.AddRange(pipelines.Select(pipeline =>
            {
                var sample = new DataSample(0, name, rgb, height, width);
                pipeline.Apply(sample, new Random(0));
                var pixels = sample.NormalizedImage ?? throw new InvalidOperationException("the detection test pipeline must end with Normalize");
                return new DetectionView(tensor(pixels, [1, 3, sample.Height, sample.Width], device: device), sample.ContentHeight, sample.ContentWidth);
            }));
            return DetectionTestTimeAugmentation.Predict(model, views, height, width, test);
        }
        finally
        {
            foreach (var view in views) view.Image.Dispose();
            if (wasTraining) model.train();
        }
    }
}
