using System.Globalization;
using System.Net;

namespace Vim.Core.IO.TensorBoard;

/// <summary>
/// A TensorBoard event file being written: TFRecord-framed <see cref="TensorBoardEvents"/>, the file version first.
/// It grows while training runs and `tensorboard --logdir` reads it live, so it is appended to rather than written
/// through a temporary file: each record goes out whole in one unbuffered write, so a process killed at any point
/// leaves complete records and at most a cut-short last one, which TensorBoard reads as a file still being written.
/// </summary>
public sealed class TensorBoardEventFile : IDisposable
{
    private readonly FileStream _stream;
    private readonly Func<double> _clock;

    private TensorBoardEventFile(string filePath, FileStream stream, Func<double> clock)
    {
        FilePath = filePath;
        _stream = stream;
        _clock = clock;
    }

    public string FilePath { get; }

    /// <summary>
    /// A new file in <paramref name="folder"/> named as TensorFlow and tensorboardX name theirs,
    /// <c>events.out.tfevents.&lt;unix seconds, 10 digits&gt;.&lt;hostname&gt;</c> (TensorBoard reads a folder's files in
    /// name order, which is then start order), with ".1", ".2", … added where a launch in the same second took the name.
    /// </summary>
    /// <param name="clock">Seconds since the Unix epoch (the events' wall_time); the system clock by default.</param>
    public static TensorBoardEventFile Create(string folder, Func<double>? clock = null)
    {
        clock ??= UnixSeconds;
        Directory.CreateDirectory(folder);
        double start = clock();
        var stem = string.Create(CultureInfo.InvariantCulture, $"events.out.tfevents.{(long)Math.Floor(start):D10}.{Dns.GetHostName()}");
        for (int attempt = 0; ; attempt++)
        {
            var path = Path.Combine(folder, attempt == 0 ? stem : $"{stem}.{attempt}");
            FileStream stream;
            try
            {
                stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.Read, bufferSize: 0);
            }
            catch (IOException) when (File.Exists(path))
            {
                continue;
            }
            var file = new TensorBoardEventFile(path, stream, clock);
            file.Append(TensorBoardEvents.FileVersionEvent(start));
            return file;
        }
    }

    public static double UnixSeconds() => (DateTime.UtcNow - DateTime.UnixEpoch).TotalSeconds;

    public void WriteScalars(long step, IReadOnlyCollection<(string Tag, float Value)> scalars)
    {
        if (scalars.Count > 0) Append(TensorBoardEvents.ScalarsEvent(_clock(), step, scalars));
    }

    public void WriteText(long step, string tag, string markdown) => Append(TensorBoardEvents.TextEvent(_clock(), step, tag, markdown));

    public void WriteSessionStart(long step) => Append(TensorBoardEvents.SessionStartEvent(_clock(), step));

    private void Append(byte[] @event)
    {
        _stream.Write(TfRecord.Frame(@event));
        // Unbuffered already; the flush says that a live reader must see the record now.
        _stream.Flush();
    }

    public void Dispose() => _stream.Dispose();
}
