using System.Diagnostics;
using System.Globalization;

namespace Vim.Data;

/// <summary>
/// Progress of a pass over a known number of items, reported from any number of worker threads: at most every
/// <c>intervalSeconds</c> one line with the items done, their share, the time elapsed and the time left at the pace so
/// far (a line per item would flood the console on a 2,000-image split; silence would look like a hang).
/// </summary>
public sealed class ItemProgress
{
    private readonly TextWriter? _output;
    private readonly int _total;
    private readonly string _items;
    private readonly double _intervalSeconds;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly object _printLock = new();
    private int _done;
    private double _lastPrint;

    /// <param name="output">Where the lines go; null for none.</param>
    /// <param name="items">What is counted, plural ("label maps", "images").</param>
    public ItemProgress(TextWriter? output, int total, string items, double intervalSeconds = 5)
    {
        _output = output;
        _total = total;
        _items = items;
        _intervalSeconds = intervalSeconds;
    }

    public double ElapsedSeconds => _clock.Elapsed.TotalSeconds;

    /// <summary>The elapsed time as minutes:seconds.</summary>
    public string Elapsed => Durations.Clock(ElapsedSeconds);

    /// <summary>Counts one item done, and prints a line when the interval has passed since the last one.</summary>
    public void Advance()
    {
        int done = Interlocked.Increment(ref _done);
        if (_output is null || ElapsedSeconds - Volatile.Read(ref _lastPrint) < _intervalSeconds) return;
        lock (_printLock)
        {
            double now = ElapsedSeconds;
            if (now - _lastPrint < _intervalSeconds) return;
            _lastPrint = now;
            _output.WriteLine(Line(done, _total, _items, now));
        }
    }

    internal static string Line(int done, int total, string items, double elapsedSeconds) => string.Create(CultureInfo.InvariantCulture,
        $"  {done}/{total} {items} ({100.0 * done / total:F0}%), {Durations.Clock(elapsedSeconds)} elapsed, about {Durations.Clock(elapsedSeconds / done * (total - done))} left");
}
