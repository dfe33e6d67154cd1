using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Vim.Core.Engine;

/// <summary>
/// The console progress line: iteration (and in an epoch-counted run MMEngine's <c>Epoch(train) [e][i/n]</c> before it),
/// losses and the headline statistics (<see cref="TrainingTerms.OnProgressLine"/>), lr and, where a scheduler moves it, the
/// momentum (as MMEngine's LoggerHook prints them), throughput, data-wait share and ETA. A line longer than
/// <see cref="Width"/> columns is broken between its items, each further line indented, so a detector's eight losses and
/// three stage accuracies stay readable on a 120-column terminal.
/// </summary>
public sealed class ProgressLine(int totalIterations, int startIteration, TextWriter output)
{
    /// <summary>The terminal width the line is broken to fit.</summary>
    public const int Width = 120;

    /// <summary>What continues a broken line.</summary>
    public const string Continuation = "    ";

    private readonly Stopwatch _clock = Stopwatch.StartNew();

    /// <summary>The line after <paramref name="iteration"/>, its ETA at the pace since this run (or resume) started.</summary>
    public string Format(int iteration, double totalLoss, IReadOnlyDictionary<string, double> terms, double lr, double? momentum,
        double secondsPerIteration, double dataSeconds, int batchSize, TrainingLength? length = null)
    {
        int done = iteration - startIteration;
        double elapsed = _clock.Elapsed.TotalSeconds;
        double rate = done > 0 ? done / elapsed : 0;
        var eta = rate > 0 ? TimeSpan.FromSeconds((totalIterations - iteration) / rate) : TimeSpan.Zero;
        return Layout(iteration, totalIterations, totalLoss, terms, lr, momentum, secondsPerIteration, dataSeconds, batchSize, eta, length);
    }

    /// <summary>The line for the given values and <paramref name="eta"/>, broken to <see cref="Width"/> columns.</summary>
    public static string Layout(int iteration, int totalIterations, double totalLoss, IReadOnlyDictionary<string, double> terms, double lr,
        double? momentum, double secondsPerIteration, double dataSeconds, int batchSize, TimeSpan eta, TrainingLength? length = null)
    {
        ArgumentNullException.ThrowIfNull(terms);
        var items = new List<string>();
        // MMEngine pads the place in the epoch to the epoch's width, so the lines of one epoch align.
        if (length?.EpochAfter(iteration) is { } e && length.IterationsPerEpoch is { } perEpoch)
            items.Add(string.Create(CultureInfo.InvariantCulture,
                $"Epoch(train) [{e.Epoch}/{length.MaxEpochs}][{Integer(e.InEpoch).PadLeft(Integer(perEpoch).Length)}/{perEpoch}] | "));
        items.Add(string.Create(CultureInfo.InvariantCulture, $"iter {iteration}/{totalIterations} | "));
        // Each term is an item of its own, so a long list breaks between terms, never inside one.
        var termItems = terms.Select(t => $"{t.Key} {Number(t.Value)}").ToList();
        if (termItems.Count == 0) items.Add($"loss {Number(totalLoss)} | ");
        for (int i = 0; i < termItems.Count; i++)
            items.Add((i == 0 ? $"loss {Number(totalLoss)} (" : "") + termItems[i] + (i == termItems.Count - 1 ? ") | " : ", "));
        items.Add(string.Create(CultureInfo.InvariantCulture, $"lr {lr:0.###e+0} | "));
        if (momentum is { } m) items.Add($"momentum {Number(m)} | ");
        double seconds = Math.Max(secondsPerIteration, 1e-9);
        items.Add(string.Create(CultureInfo.InvariantCulture, $"{1 / seconds:0.##} it/s, {batchSize / seconds:0.#} img/s | "));
        items.Add(string.Create(CultureInfo.InvariantCulture, $"data {100 * dataSeconds / seconds:0}% | "));
        items.Add(string.Create(CultureInfo.InvariantCulture, $"ETA {(int)eta.TotalHours}:{eta.Minutes:00}:{eta.Seconds:00}"));
        return Break(items, Width);
    }

    /// <summary>
    /// <paramref name="items"/> (each with its trailing separator) on lines of at most <paramref name="width"/> columns, trailing
    /// blanks dropped, each further line starting with <see cref="Continuation"/>; an item longer than a line gets a line of its own.
    /// </summary>
    internal static string Break(IReadOnlyList<string> items, int width)
    {
        var text = new StringBuilder();
        var line = new StringBuilder();
        bool lineHasItem = false;
        foreach (var item in items)
        {
            if (lineHasItem && line.Length + item.TrimEnd().Length > width)
            {
                text.Append(line.ToString().TrimEnd()).Append('\n');
                line.Clear().Append(Continuation);
            }
            line.Append(item);
            lineHasItem = true;
        }
        return text.Append(line.ToString().TrimEnd()).ToString();
    }

    private static string Number(double value) => value.ToString("0.####", CultureInfo.InvariantCulture);

    private static string Integer(int value) => value.ToString(CultureInfo.InvariantCulture);

    public void Print(string line) => output.WriteLine(line);
}
