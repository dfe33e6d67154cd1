using NUnit.Framework;
using OpenCvSharp;
using TorchSharp;
using Vim.Core.Config;
using Vim.Core.Diagnostics;
using Vim.Core.Engine;
using Vim.Data.Datasets;
using static TorchSharp.torch;

namespace Vim.Tests;

/// <summary>What the tests of the library's predictors (Detector, Segmentor) share: images, checkpoints, and the memory and thread checks.</summary>
internal static class PredictorTestKit
{
    /// <summary>A lossless (PNG) or lossy (JPEG, by the extension) image of colour ramps shifted by <paramref name="shift"/>, so images differ.</summary>
    public static string WriteImage(string path, int width, int height, int shift = 0)
    {
        using var image = new Mat(height, width, MatType.CV_8UC3);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                image.Set(y, x, new Vec3b((byte)(3 * x + shift), (byte)(5 * y + 2 * shift), (byte)((x * y + shift) % 256)));
        Cv2.ImWrite(path, image);
        return path;
    }

    /// <summary>An image file's pixels decoded independently of the library: OpenCV's BGR read, reordered to RGB here.</summary>
    public static RgbImage PixelsOf(string path)
    {
        using var bgr = Cv2.ImRead(path, ImreadModes.Color);
        int rows = bgr.Rows, cols = bgr.Cols;
        var rgb = new byte[rows * cols * 3];
        for (int y = 0; y < rows; y++)
            for (int x = 0; x < cols; x++)
            {
                var pixel = bgr.At<Vec3b>(y, x);
                int at = (y * cols + x) * 3;
                (rgb[at], rgb[at + 1], rgb[at + 2]) = (pixel.Item2, pixel.Item1, pixel.Item0);
            }
        return new RgbImage(rows, cols, rgb);
    }

    /// <summary>A `vim train` checkpoint of <paramref name="model"/> (and an EMA copy of <paramref name="averaged"/>'s weights) trained with <paramref name="config"/>.</summary>
    public static void SaveCheckpoint(string path, nn.Module model, ExperimentConfig config, nn.Module? averaged = null)
    {
        var optimizer = new AdamWOptimizer([new ParameterGroup("all", model.named_parameters().ToList(), 0.0, 1.0)]);
        using var ema = averaged is null ? null : new ExponentialMovingAverage(averaged, 0.999);
        TrainingCheckpoint.Save(path, model, optimizer, ema, new TrainingState(3, 3, DataPosition.Start, null, ConfigWriter.ToYaml(ConfigBinder.ToNode(config))));
    }

    /// <summary>
    /// Runs <paramref name="predict"/> 20 times, then <paramref name="count"/> times more inside the caller's dispose scope,
    /// and asserts that the later ones leave no tensor alive on this thread, nothing in that scope, and the native heap
    /// (glibc's bytes in use: libtorch's CPU tensors) within <paramref name="heapSlackBytes"/> of where it was.
    /// </summary>
    public static void AssertMemoryStaysFlat(Action predict, int count, long heapSlackBytes)
    {
        using var callerScope = NewDisposeScope();
        for (int i = 0; i < 20; i++) predict();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long liveBefore = DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount;
        long heapBefore = ProcessMemory.MallocBytesInUse();
        for (int i = 0; i < count; i++) predict();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        long heapGrowth = ProcessMemory.MallocBytesInUse() - heapBefore;
        Assert.That(DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount - liveBefore, Is.Zero, "tensors left alive");
        Assert.That(callerScope.DisposablesCount, Is.Zero, "nothing was attached to the caller's dispose scope");
        Assert.That(heapGrowth, Is.LessThan(heapSlackBytes), $"native heap grew {heapGrowth} bytes over {count} predictions");
    }

    /// <summary>
    /// <paramref name="run"/>'s result and how often the stage <paramref name="stage"/> ran in it (the backbone's stage:
    /// the model's forwards), counted by the process-wide <see cref="StageProfiler"/>, so callers are NonParallelizable.
    /// </summary>
    public static (T Result, long Calls) CountingStage<T>(string stage, Func<T> run)
    {
        StageProfiler.Start([stage]);
        try
        {
            var result = run();
            return (result, StageProfiler.Stop().SingleOrDefault()?.Calls ?? 0);
        }
        finally
        {
            StageProfiler.Stop();
        }
    }

    /// <summary>
    /// Four threads each predict every image three times, in different orders, through one shared predictor; each result
    /// must be what one thread got for that image (<paramref name="assertSame"/>: expected, actual, what).
    /// </summary>
    public static void AssertThreadsGetTheSequentialResults<TResult>(IReadOnlyList<string> images, Func<string, TResult> predict,
        Action<TResult, TResult, string> assertSame)
    {
        var sequential = images.Select(predict).ToArray();
        var parallel = Enumerable.Range(0, 4).Select(t => Task.Run(() =>
            Enumerable.Range(0, 3 * images.Count).Select(n => (n + t) % images.Count).Select(k => (k, predict(images[k]))).ToList())).ToArray();
        Task.WaitAll(parallel);
        foreach (var (k, result) in parallel.SelectMany(p => p.Result))
            assertSame(sequential[k], result, $"image {k} on a thread");
    }
}
