using NUnit.Framework;
using OpenCvSharp;
using Vim.Core;
using Vim.Data.Datasets;
using Vim.Detection;
using Vim.Segmentation;
using Vim.Tests.Segmentation;
using Vim.Tools;
using Vim.Tools.Commands;
using static TorchSharp.torch;

namespace Vim.Tests.Detection;

/// <summary>
/// `vim infer` on videos (mmdet's and mmseg's video_demo): each drawn frame equals what `vim infer` draws for the same
/// picture as an image file. The videos are lossless (FFV1 in Matroska), so the comparison is exact.
/// </summary>
public class VideoInferTests
{
    private string _root = null!;

    [SetUp]
    public void SetUp() => _root = Directory.CreateTempSubdirectory("vimdense-video-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    /// <summary>Frame k: colour ramps (80 wide, 48 high) shifted by 7k pixels, so every frame differs.</summary>
    private static Mat Frame(int k)
    {
        var image = new Mat(48, 80, MatType.CV_8UC3);
        for (int y = 0; y < 48; y++)
            for (int x = 0; x < 80; x++)
                image.Set(y, x, new Vec3b((byte)(3 * (x + 7 * k)), (byte)(5 * y + 11 * k), (byte)(x + y)));
        return image;
    }

    /// <summary>The frames as PNG files and as one lossless video at 10 frames/s; returns (PNGs, video).</summary>
    private (string[] Images, string Video) WriteFrames(int count)
    {
        var images = new string[count];
        var video = Path.Combine(_root, "clip.mkv");
        using (var writer = new VideoFiles.Writer(video, VideoFiles.OutputFormat(video).FourCc, 10, 80, 48))
        {
            for (int k = 0; k < count; k++)
            {
                using var frame = Frame(k);
                images[k] = Path.Combine(_root, $"frame{k}.png");
                Cv2.ImWrite(images[k], frame);
                writer.Write(frame);
            }
            writer.Commit();
        }
        return (images, video);
    }

    private static List<Mat> ReadAll(string video, out double fps)
    {
        using var reader = new VideoFiles.Reader(video);
        fps = reader.Fps;
        return reader.Frames().Select(f => f.Bgr).ToList();
    }

    private static void AssertSamePixels(Mat expected, Mat actual, string what)
    {
        Assert.That((actual.Rows, actual.Cols), Is.EqualTo((expected.Rows, expected.Cols)), what);
        Assert.That(DifferingPixels(expected, actual), Is.Zero, what);
    }

    [Test]
    public void DetectionFramesAreTheImageDrawingsAndTheFrameStepKeepsEveryNth()
    {
        using var scope = NewDisposeScope();
        using var model = InferCommandTests.TinyDetector();
        using var detector = new Detector(model, InferCommandTests.DemoCategories(), testSize: 64);
        var (images, video) = WriteFrames(3);
        var imageOut = Path.Combine(_root, "images");
        var drawnImages = InferCommand.RunDetection(detector, images, imageOut, scoreThreshold: 0.0);
        Assert.That(drawnImages.All(d => d.Drawn > 0), "the untrained head draws something on every frame");

        var progress = new StringWriter();
        var (frames, output) = InferCommand.RunDetectionVideo(detector, video, Path.Combine(_root, "video"), 0.0,
            new InferCommand.FrameSelection(), progress);
        Assert.That((frames, output), Is.EqualTo((3, Path.Combine(_root, "video", "clip.mkv"))));
        var drawn = ReadAll(output, out double fps);
        Assert.That(fps, Is.EqualTo(10));
        Assert.That(drawn, Has.Count.EqualTo(3));
        for (int k = 0; k < 3; k++)
        {
            using var expected = Cv2.ImRead(Path.Combine(imageOut, $"frame{k}.png"), ImreadModes.Color);
            AssertSamePixels(expected, drawn[k], $"frame {k}");
            drawn[k].Dispose();
        }

        var (stepped, steppedOutput) = InferCommand.RunDetectionVideo(detector, video, Path.Combine(_root, "stepped"), 0.0,
            new InferCommand.FrameSelection(step: 2));
        var kept = ReadAll(steppedOutput, out double steppedFps);
        Assert.That((stepped, kept.Count, steppedFps), Is.EqualTo((2, 2, 5.0)), "frames 0 and 2, played at half the rate");
        using (var frame2 = Cv2.ImRead(Path.Combine(imageOut, "frame2.png"), ImreadModes.Color))
            AssertSamePixels(frame2, kept[1], "the second kept frame is frame 2");
        foreach (var frame in kept) frame.Dispose();
        var (limited, _) = InferCommand.RunDetectionVideo(detector, video, Path.Combine(_root, "limited"), 0.0,
            new InferCommand.FrameSelection(max: 1));
        Assert.That(limited, Is.EqualTo(1));
        Assert.That(Directory.GetFiles(Path.Combine(_root, "limited")), Is.EqualTo(new[] { Path.Combine(_root, "limited", "clip.mkv") }), "no temporary file is left");
    }

    /// <summary>
    /// `vim infer --batch-size 2` on a video of five frames (batches of 2, 2 and the last frame alone): three forwards instead
    /// of five, each frame's detections those it gets alone (within <see cref="BatchedDetectionTests"/>' float-rounding
    /// tolerances) and each written frame the one-by-one run's, but for pixels a mask pixel flipped by rounding at the 0.5
    /// threshold may change (its fill and the contour around it): at most 1% of a frame.
    /// </summary>
    [Test]
    public void BatchedDetectionFramesAreTheOneByOneFrames()
    {
        using var scope = NewDisposeScope();
        using var model = BatchedDetectionTests.SpreadScoreDetector();
        using var detector = new Detector(model, InferCommandTests.DemoCategories(), testSize: 64);
        var (_, video) = WriteFrames(5);
        var (single, singleForwards) = PredictorTestKit.CountingStage(DetectionStages.Backbone, () =>
            InferCommand.RunDetectionVideo(detector, video, Path.Combine(_root, "single"), 0.0, new InferCommand.FrameSelection()));
        var (batched, batchedForwards) = PredictorTestKit.CountingStage(DetectionStages.Backbone, () =>
            InferCommand.RunDetectionVideo(detector, video, Path.Combine(_root, "batched"), 0.0, new InferCommand.FrameSelection(), batchSize: 2));
        Assert.That((single.Frames, batched.Frames), Is.EqualTo((5, 5)));
        Assert.That((singleForwards, batchedForwards), Is.EqualTo((5L, 3L)), "one forward per frame, then per batch of two");

        var pixels = ReadAll(video, out _).Select(frame =>
        {
            using (frame)
            {
                var (rgb, height, width) = ImageDecoder.ToRgb(frame);
                return new RgbImage(height, width, rgb);
            }
        }).ToList();
        var alone = pixels.Select(frame => detector.Predict(frame)).ToList();
        var together = pixels.Chunk(2).SelectMany(pair => detector.Predict(pair, batchSize: 2)).ToList();
        Assert.That(alone.Sum(found => found.Detections.Count), Is.GreaterThan(5), "the heads detect something on the frames, so the drawings say something");
        for (int k = 0; k < 5; k++) BatchedDetectionTests.AssertClose(alone[k], together[k], $"frame {k}");

        var expected = ReadAll(single.Output, out _);
        var actual = ReadAll(batched.Output, out _);
        Assert.That(actual, Has.Count.EqualTo(5));
        int allowed = 80 * 48 / 100;
        for (int k = 0; k < 5; k++)
            Assert.That(DifferingPixels(expected[k], actual[k]), Is.LessThanOrEqualTo(allowed), $"frame {k}");
        // Neighbouring frames differ by far more, so a frame written in another's place would be caught.
        Assert.That(DifferingPixels(expected[0], actual[1]), Is.GreaterThan(allowed), "frames 0 and 1 differ");
        foreach (var frame in expected.Concat(actual)) frame.Dispose();
    }

    /// <summary>
    /// `vim infer --slice-size 32 --slice-debug` on a video: each written frame is what the same options draw on the frame as
    /// an image file, the patch grid outlined (every patch's corner white) and the pixels inside a patch untouched.
    /// </summary>
    [Test]
    public void SlicedDetectionFramesOutlineThePatchesAsTheImageDrawingsDo()
    {
        using var scope = NewDisposeScope();
        using var model = BatchedDetectionTests.SpreadScoreDetector();
        using var detector = new Detector(model, InferCommandTests.DemoCategories(), testSize: 64);
        var (images, video) = WriteFrames(2);
        var request = new DetectionRequest { Slicing = InferCommand.Slicing(32, null, null, null, wholeImage: false, debug: true) };
        var imageOut = Path.Combine(_root, "images");
        InferCommand.RunDetection(detector, images, imageOut, scoreThreshold: 1.0, batchSize: 2, request, drawPatches: true);
        var (frames, output) = InferCommand.RunDetectionVideo(detector, video, Path.Combine(_root, "video"), 1.0,
            new InferCommand.FrameSelection(), batchSize: 2, request: request, drawPatches: true);
        Assert.That(frames, Is.EqualTo(2));

        var patches = SlicedDetection.Patches(48, 80, request.Slicing!);
        Assert.That(patches, Has.Count.EqualTo(6), "columns at 0, 24, 48 and rows at 0, 16");
        var drawn = ReadAll(output, out _);
        for (int k = 0; k < 2; k++)
        {
            using var expected = Cv2.ImRead(Path.Combine(imageOut, $"frame{k}.png"), ImreadModes.Color);
            AssertSamePixels(expected, drawn[k], $"frame {k}");
            foreach (var patch in patches)
                Assert.That(drawn[k].At<Vec3b>(patch.Top, patch.Left), Is.EqualTo(new Vec3b(255, 255, 255)), $"frame {k}: corner of {patch}");
            using var source = Frame(k);
            Assert.That(drawn[k].At<Vec3b>(10, 10), Is.EqualTo(source.At<Vec3b>(10, 10)), $"frame {k}: inside a patch");
            drawn[k].Dispose();
        }
    }

    /// <summary>Pixels at which any channel differs (a grey conversion of the difference would round a 1 in blue away).</summary>
    private static int DifferingPixels(Mat expected, Mat actual)
    {
        using var difference = new Mat();
        Cv2.Absdiff(expected, actual, difference);
        var channels = Cv2.Split(difference);
        try
        {
            using var any = new Mat();
            Cv2.Max(channels[0], channels[1], any);
            Cv2.Max(any, channels[2], any);
            return Cv2.CountNonZero(any);
        }
        finally
        {
            foreach (var channel in channels) channel.Dispose();
        }
    }

    [Test]
    public void SegmentationFramesAreTheImageOverlays()
    {
        using var scope = NewDisposeScope();
        var config = SegmentationTaskTests.ConfigAt(_root);
        using var model = SegmentationTaskTests.TinyModel();
        using var segmentor = new Segmentor(model, config.Data.Scale, config.Model.SegTest, SegmentationData.ClassNamesForInference(config));
        var (images, video) = WriteFrames(2);
        var imageOut = Path.Combine(_root, "images");
        InferCommand.RunSegmentation(segmentor, images, imageOut);
        var (frames, output) = InferCommand.RunSegmentationVideo(segmentor, video, Path.Combine(_root, "video"), new InferCommand.FrameSelection());
        Assert.That(frames, Is.EqualTo(2));
        var drawn = ReadAll(output, out _);
        for (int k = 0; k < 2; k++)
        {
            using var expected = Cv2.ImRead(Path.Combine(imageOut, "overlay", $"frame{k}.png"), ImreadModes.Color);
            AssertSamePixels(expected, drawn[k], $"frame {k}");
            drawn[k].Dispose();
        }

        // Both frames in one batch: each frame's overlay as before, but for pixels whose classes tie within float rounding
        // (a batch may change the last bits of the scores): at most 0.1% of the pixels.
        var (batchedFrames, batchedOutput) = InferCommand.RunSegmentationVideo(segmentor, video, Path.Combine(_root, "batched"), new InferCommand.FrameSelection(),
            batchSize: 2);
        Assert.That(batchedFrames, Is.EqualTo(2));
        var batched = ReadAll(batchedOutput, out _);
        for (int k = 0; k < 2; k++)
        {
            using var expected = Cv2.ImRead(Path.Combine(imageOut, "overlay", $"frame{k}.png"), ImreadModes.Color);
            Assert.That(DifferingPixels(expected, batched[k]), Is.LessThanOrEqualTo(80 * 48 / 1000), $"batched frame {k}");
            batched[k].Dispose();
        }
    }

    [Test]
    public void UnreadableVideosAndBadOptionsAreRefusedByName()
    {
        var fake = Path.Combine(_root, "notes.mp4");
        File.WriteAllText(fake, "not a video");
        Assert.That(Assert.Throws<VimException>(() => new VideoFiles.Reader(fake).Dispose())!.Message, Does.StartWith($"{fake}: cannot open as a video"));
        Assert.That(Assert.Throws<VimException>(() => _ = new InferCommand.FrameSelection(step: 0))!.Message, Does.Contain("--frame-step"));
        Assert.That(Assert.Throws<VimException>(() => _ = new InferCommand.FrameSelection(max: 0))!.Message, Does.Contain("--max-frames"));
        var errors = new StringWriter();
        var config = Path.Combine(RepositoryPaths.Root, "configs", "det", "cascade_mask_rcnn_vim_tiny_demo_coco.yaml");
        Assert.That(VimCli.Run(["infer", config, "--checkpoint", fake, Path.Combine(_root, "absent.mp4")], errors), Is.EqualTo(1));
        Assert.That(errors.ToString(), Does.Contain("absent.mp4: video file not found"));
    }
}
