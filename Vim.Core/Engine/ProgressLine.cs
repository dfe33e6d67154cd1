using System.Diagnostics;
using System.Globalization;

namespace Vim.Core.Engine;

/// <summary>
/// The console progress line: iteration (and in an epoch-counted run MMEngine's <c>Epoch(train) [e][i/n]</c> before it),
/// losses, lr, throughput, data-wait share and ETA.
/// </summary>
public sealed class ProgressLine(int totalIterations, int startIteration, TextWriter output)
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    public string Format(int iteration, double totalLoss, IReadOnlyDictionary<string, double> terms, double lr,
        double secondsPerIteration, double dataSeconds, int batchSize, TrainingLength? length = null)
    {
        int done = iteration - startIteration;
        double elapsed = _clock.Elapsed.TotalSeconds;
        double rate = done > 0 ? done / elapsed : 0;
        var eta = rate > 0 ? TimeSpan.FromSeconds((totalIterations - iteration) / rate) : TimeSpan.Zero;
        var termText = string.Join(", ", terms.Select(t => $"{t.Key} {t.Value.ToString("0.####", CultureInfo.InvariantCulture)}"));
        // MMEngine pads the place in the epoch to the epoch's width, so the lines of one epoch align.
        var epoch = length?.EpochAfter(iteration) is { } e && length.IterationsPerEpoch is { } perEpoch
            ? $"Epoch(train) [{e.Epoch}/{length.MaxEpochs}][{e.InEpoch.ToString(CultureInfo.InvariantCulture).PadLeft(perEpoch.ToString(CultureInfo.InvariantCulture).Length)}/{perEpoch}] | "
            : "";
        return string.Create(CultureInfo.InvariantCulture,
            $"{epoch}iter {iteration}/{totalIterations} | loss {totalLoss:0.####} ({termText}) | lr {lr:0.###e+0} | " +
            $"{1 / Math.Max(secondsPerIteration, 1e-9):0.##} it/s, {batchSize / Math.Max(secondsPerIteration, 1e-9):0.#} img/s | " +
            $"data {100 * dataSeconds / Math.Max(secondsPerIteration, 1e-9):0}% | ETA {(int)eta.TotalHours}:{eta.Minutes:00}:{eta.Seconds:00}");
    }

    public void Print(string line) => output.WriteLine(line);
}
