using System.Globalization;
using OpenCvSharp;
using Vim.Core;

namespace Vim.Data.Datasets;

/// <summary>
/// Video in and out through OpenCV's FFmpeg backend, for `vim infer` on videos (mmdet's and mmseg's video_demo.py):
/// frames decoded as 8-bit BGR Mats, drawn frames written in the input's container.
/// </summary>
public static class VideoFiles
{
    /// <summary>What `vim infer` reads as a video (any case).</summary>
    public static readonly string[] Extensions = [".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm"];

    public static bool IsVideo(string path) => Extensions.Contains(Path.GetExtension(path), StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// The container and codec a drawn video is written in: Matroska stays Matroska with FFV1 (lossless, frame for frame
    /// what was drawn), AVI stays AVI with Motion JPEG, everything else becomes MPEG-4 Part 2 in .mp4 (what OpenCV's FFmpeg
    /// writes without extra encoders).
    /// </summary>
    public static (string Extension, int FourCc) OutputFormat(string inputPath) => Path.GetExtension(inputPath).ToLowerInvariant() switch
    {
        ".mkv" => (".mkv", VideoWriter.FourCC('F', 'F', 'V', '1')),
        ".avi" => (".avi", VideoWriter.FourCC('M', 'J', 'P', 'G')),
        _ => (".mp4", VideoWriter.FourCC('m', 'p', '4', 'v')),
    };

    /// <summary>A video being read frame by frame.</summary>
    public sealed class Reader : IDisposable
    {
        private readonly VideoCapture _capture;

        public Reader(string path)
        {
            if (!File.Exists(path)) throw new VimException($"{path}: video file not found.");
            Path = path;
            _capture = new VideoCapture(path, VideoCaptureAPIs.FFMPEG);
            if (!_capture.IsOpened())
            {
                _capture.Dispose();
                throw new VimException($"{path}: cannot open as a video (OpenCV's FFmpeg backend reads {string.Join(", ", Extensions)}; corrupt file or unknown codec).");
            }
            Width = _capture.FrameWidth;
            Height = _capture.FrameHeight;
            // A stream without a frame rate (some webm) is written at 25 fps, FFmpeg's default.
            Fps = _capture.Fps is > 0 and < 1000 ? _capture.Fps : 25;
            FrameCount = Math.Max(0, _capture.FrameCount);
        }

        public string Path { get; }
        public int Width { get; }
        public int Height { get; }
        public double Fps { get; }

        /// <summary>The frame count the container announces (0 when it announces none); an estimate for progress only.</summary>
        public int FrameCount { get; }

        /// <summary>
        /// Every <paramref name="step"/>-th frame from the first (index in the video, BGR frame: the caller disposes it),
        /// at most <paramref name="maxFrames"/> of them.
        /// </summary>
        public IEnumerable<(int Index, Mat Bgr)> Frames(int step = 1, int? maxFrames = null)
        {
            if (step < 1) throw new ArgumentOutOfRangeException(nameof(step), step, "a frame step is at least 1");
            int yielded = 0;
            for (int index = 0; maxFrames is null || yielded < maxFrames; index++)
            {
                var frame = new Mat();
                if (!_capture.Read(frame) || frame.Empty())
                {
                    frame.Dispose();
                    yield break;
                }
                if (index % step != 0)
                {
                    frame.Dispose();
                    continue;
                }
                if (frame.Type() != MatType.CV_8UC3)
                {
                    frame.Dispose();
                    throw new VimException($"{Path}: frame {index} decodes as {frame.Type()}, expected 8-bit BGR.");
                }
                yielded++;
                yield return (index, frame);
            }
        }

        public void Dispose() => _capture.Dispose();
    }

    /// <summary>
    /// A video written through a temporary sibling (its name ends in the container's extension, which FFmpeg reads the
    /// format from) and renamed into place by <see cref="Commit"/>: an interrupted run leaves no half-written video
    /// under the final name, and an earlier one stays whole until the new one is complete.
    /// </summary>
    public sealed class Writer : IDisposable
    {
        private readonly VideoWriter _writer;
        private readonly string _temporary;
        private bool _committed;

        public Writer(string path, int fourCc, double fps, int width, int height)
        {
            FinalPath = System.IO.Path.GetFullPath(path);
            var folder = System.IO.Path.GetDirectoryName(FinalPath)!;
            Directory.CreateDirectory(folder);
            _temporary = System.IO.Path.Combine(folder, System.IO.Path.GetFileNameWithoutExtension(FinalPath) +
                $".tmp-{Environment.ProcessId.ToString(CultureInfo.InvariantCulture)}-{Guid.NewGuid().ToString("N")[..8]}{System.IO.Path.GetExtension(FinalPath)}");
            Width = width;
            Height = height;
            _writer = new VideoWriter(_temporary, VideoCaptureAPIs.FFMPEG, fourCc, fps, new Size(width, height));
            if (!_writer.IsOpened())
            {
                _writer.Dispose();
                if (File.Exists(_temporary)) File.Delete(_temporary);
                throw new VimException($"{FinalPath}: OpenCV's FFmpeg backend cannot write this video (codec {FourCcText(fourCc)}, {width}x{height}).");
            }
        }

        public string FinalPath { get; }
        public int Width { get; }
        public int Height { get; }
        public int FramesWritten { get; private set; }

        public void Write(Mat bgr)
        {
            if (bgr.Cols != Width || bgr.Rows != Height || bgr.Type() != MatType.CV_8UC3)
                throw new ArgumentException($"{FinalPath}: frames must be 8-bit BGR {Width}x{Height}, got {bgr.Type()} {bgr.Cols}x{bgr.Rows}", nameof(bgr));
            _writer.Write(bgr);
            FramesWritten++;
        }

        /// <summary>Finishes the file and renames it into place.</summary>
        public void Commit()
        {
            _writer.Release();
            File.Move(_temporary, FinalPath, overwrite: true);
            _committed = true;
        }

        public void Dispose()
        {
            _writer.Dispose();
            if (!_committed && File.Exists(_temporary)) File.Delete(_temporary);
        }

        private static string FourCcText(int code) => new([(char)(code & 0xFF), (char)((code >> 8) & 0xFF), (char)((code >> 16) & 0xFF), (char)((code >> 24) & 0xFF)]);
    }
}
