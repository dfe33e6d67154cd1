using Vim.Core;
using Vim.Data.Datasets;
using Vim.Data.Transforms;
using static TorchSharp.torch;

namespace Vim.Data.Prediction;

/// <summary>
/// One test view of an image on the host, as a test pipeline leaves it: normalised float32 pixels, channels first
/// (3, <see cref="Height"/>, <see cref="Width"/>), and the size of the image's content within them (smaller only where the
/// pipeline padded, the padding right and bottom).
/// </summary>
public sealed record TestView(float[] Pixels, int Height, int Width, int ContentHeight, int ContentWidth);

/// <summary>
/// An image made ready for a model, still on the host: its test views (one per test pipeline, e.g. per test scale), its
/// original size (where predictions are mapped back to) and what it is, for messages (a file, "encoded image 3", a frame).
/// Host arrays rather than tensors, so that a predictor can hold images while it gathers a batch without keeping
/// tensors alive outside a dispose scope.
/// </summary>
public sealed class PreparedImage
{
    public PreparedImage(string name, int originalHeight, int originalWidth, IReadOnlyList<TestView> views)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(views);
        if (views.Count == 0) throw new ArgumentException($"{name}: an image needs at least one test view", nameof(views));
        (Name, OriginalHeight, OriginalWidth, Views) = (name, originalHeight, originalWidth, views);
    }

    public string Name { get; }
    public int OriginalHeight { get; }
    public int OriginalWidth { get; }
    public IReadOnlyList<TestView> Views { get; }

    /// <summary>
    /// Decoded pixels (8-bit RGB, HWC) through each test pipeline, in order: the one place where detection and
    /// segmentation, the library's predictors and the commands, turn an image into test views.
    /// </summary>
    public static PreparedImage Prepare(byte[] rgb, int height, int width, string name, IReadOnlyList<TransformPipeline> pipelines)
    {
        ArgumentNullException.ThrowIfNull(rgb);
        ArgumentNullException.ThrowIfNull(pipelines);
        if (rgb.Length != 3L * height * width) throw new ArgumentException($"{name}: {rgb.Length} bytes for a {width}x{height} RGB image", nameof(rgb));
        var views = pipelines.Select(pipeline =>
        {
            var sample = new DataSample(0, name, rgb, height, width);
            pipeline.Apply(sample, new Random(0));
            var pixels = sample.NormalizedImage ?? throw new VimException($"{name}: the test pipeline left no normalised image (it must end with a normalize step)");
            return new TestView(pixels, sample.Height, sample.Width, sample.ContentHeight, sample.ContentWidth);
        }).ToList();
        return new PreparedImage(name, height, width, views);
    }

    /// <summary>
    /// View <paramref name="view"/> of every image as one (B, 3, <paramref name="height"/>, <paramref name="width"/>) tensor on
    /// <paramref name="device"/>, in the images' order: each image's pixels top left, zeros right and bottom of a smaller
    /// view (what the detector's own padding puts there). Built on the host and moved in one transfer.
    /// </summary>
    public static Tensor Batch(IReadOnlyList<PreparedImage> images, int view, long height, long width, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.Count == 0) throw new ArgumentException("a batch needs at least one image", nameof(images));
        // One image at its own size (a prediction alone): its pixels are the batch, copied once (tensor copies its array).
        if (images is [{ } only] && only.Views[view] is var alone && alone.Height == height && alone.Width == width)
            return tensor(alone.Pixels, [1, 3, height, width], device: device);
        long plane = height * width;
        var pixels = new float[images.Count * 3 * plane];
        for (int i = 0; i < images.Count; i++)
        {
            var v = images[i].Views[view];
            if (v.Height > height || v.Width > width)
                throw new ArgumentException($"{images[i].Name}: a {v.Width}x{v.Height} view does not fit a {width}x{height} batch", nameof(images));
            if (v.Height == height && v.Width == width)
            {
                v.Pixels.CopyTo(pixels, i * 3 * plane);
                continue;
            }
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < v.Height; y++)
                    Array.Copy(v.Pixels, (c * v.Height + y) * v.Width, pixels, i * 3 * plane + c * plane + y * width, v.Width);
        }
        return tensor(pixels, [images.Count, 3, height, width], device: device);
    }
}
