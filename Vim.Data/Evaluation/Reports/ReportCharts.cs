using ScottPlot;

namespace Vim.Data.Evaluation.Reports;

/// <summary>ScottPlot chart helpers shared by the evaluation reports; PNGs are written atomically.</summary>
public static class ReportCharts
{
    public const int DefaultWidth = 1000;
    public const int DefaultHeight = 600;

    /// <summary>
    /// One line per series over a shared x axis, with a legend. With <paramref name="stacked"/> the series are nested
    /// curves, each on or above the one before (the error analysis's stages): the band between a curve and the previous
    /// one (the first: the x axis) is filled in the curve's colour, as mmdet's coco_error_analysis.py draws them.
    /// With <paramref name="logY"/> the y axis is logarithmic (decades labelled with their values); points at or below
    /// zero have no place on it and are left out. More than ten series take Category20's colours, more than twenty
    /// colours along a colormap in series order (layer-decay scales: neighbours in the legend are neighbours in colour),
    /// and more than ten have their legend beside the plot. With <paramref name="integerX"/> the x axis is ticked at whole
    /// numbers only (levels such as corruption severities, where 2.5 means nothing). <paramref name="xMarks"/> draws a light
    /// dashed vertical line at each mark within the data's x range, its label (if any) at the top edge (epoch ends of a
    /// training run: <see cref="TrainingReport.EpochMarks"/>).
    /// </summary>
    public static void SaveLines(string path, string title, string xLabel, string yLabel,
        IReadOnlyList<(string Label, double[] Xs, double[] Ys)> series, double? yMin = null, double? yMax = null,
        int width = DefaultWidth, int height = DefaultHeight, bool markers = false, Alignment legend = Alignment.LowerLeft, bool stacked = false,
        bool logY = false, bool integerX = false, IReadOnlyList<ChartMark>? xMarks = null)
    {
        if (logY && stacked) throw new ArgumentException("stacked bands fill down to zero, which a log axis does not have", nameof(logY));
        if (logY)
            series = series.Select(s =>
            {
                var kept = Enumerable.Range(0, s.Ys.Length).Where(i => s.Ys[i] > 0).ToArray();
                return (s.Label, kept.Select(i => s.Xs[i]).ToArray(), kept.Select(i => Math.Log10(s.Ys[i])).ToArray());
            }).ToList();
        var plt = new Plot();
        var palette = LinePalette(series.Count);
        if (stacked)
        {
            // Bands first, so every curve is drawn over them.
            for (int i = 0; i < series.Count; i++)
            {
                var (_, xs, ys) = series[i];
                var band = plt.Add.FillY(xs, i == 0 ? new double[ys.Length] : series[i - 1].Ys, ys);
                band.FillColor = palette.GetColor(i).WithAlpha(0.75);
                band.LineWidth = 0;
            }
        }
        for (int i = 0; i < series.Count; i++)
        {
            var (label, xs, ys) = series[i];
            var line = plt.Add.Scatter(xs, ys, palette.GetColor(i));
            line.LegendText = label;
            // Sparse measurements (evaluations) get markers so the lines are not read as continuous data; a series of one
            // point (a run shorter than its logging interval) has no line to draw without one.
            line.MarkerSize = markers || ys.Count(double.IsFinite) < 2 ? 8 : 0;
            line.LineWidth = 2;
        }
        // Room above the plot for the marks' labels, below the title.
        if (xMarks?.Any(m => m.Label is not null) == true) plt.Axes.Top.MinimumSize = 24;
        foreach (var mark in xMarks ?? [])
        {
            var line = plt.Add.VerticalLine(mark.X, 1, Colors.Gray.WithAlpha(0.6), LinePattern.Dashed);
            // The data set the axis; a mark beyond it (an epoch end before the first evaluation) is not drawn.
            line.EnableAutoscale = false;
            line.ExcludeFromLegend = true;
            if (mark.Label is null) continue;
            line.LabelText = mark.Label;
            line.LabelOppositeAxis = true;
            line.LabelFontSize = 11;
            line.LabelFontColor = Colors.DimGray;
            line.LabelBackgroundColor = Colors.White.WithAlpha(0.8);
        }
        plt.Title(title);
        plt.Axes.Bottom.Label.Text = xLabel;
        plt.Axes.Left.Label.Text = yLabel;
        if (logY) plt.Axes.Left.TickGenerator = LogTicks(series.SelectMany(s => s.Ys));
        if (integerX) plt.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericFixedInterval(1);
        // A legend of many series would cover the lines: beside the plot instead, in one column (ScottPlot wraps a legend
        // taller than the plot into clipped columns), the image grown to keep the plot's size.
        if (series.Count > 10)
        {
            plt.ShowLegend(Edge.Right);
            width += 8 * series.Max(s => s.Label.Length) + 70;
            height = Math.Max(height, 21 * series.Count + 140);
        }
        else plt.ShowLegend(legend);
        plt.Axes.AutoScale();
        if (yMin is not null && yMax is not null)
            plt.Axes.SetLimitsY(logY ? Math.Log10(yMin.Value) : yMin.Value, logY ? Math.Log10(yMax.Value) : yMax.Value);
        Save(plt, path, width, height);
    }

    private static IPalette LinePalette(int count) => count switch
    {
        <= 10 => new ScottPlot.Palettes.Category10(),
        <= 20 => new ScottPlot.Palettes.Category20(),
        _ => ScottPlot.Palette.FromColors(Enumerable.Range(0, count).Select(i => new ScottPlot.Colormaps.Turbo().GetColor(0.05 + 0.9 * i / (count - 1))).ToArray()),
    };

    /// <summary>
    /// A bar chart with one labelled bar per value. An undefined value (NaN, or pycocotools' −1: a class without ground
    /// truth) is no zero: it gets a short grey stub and "(n/a)" after its label, and the title counts them, as the
    /// tables print nan or "-". With <paramref name="logY"/> the y axis is logarithmic (decades labelled with their
    /// values), bars rise from the decade below the smallest positive value, and a zero, which a log axis cannot place,
    /// has no bar: a long tail of rare classes stays readable beside the frequent ones.
    /// </summary>
    public static void SaveBars(string path, string title, string xLabel, string yLabel, IReadOnlyList<string> labels,
        IReadOnlyList<double> values, int? width = null, int height = DefaultHeight, bool logY = false)
    {
        var plt = new Plot();
        var bars = new List<Bar>(values.Count);
        var ticks = new Tick[values.Count];
        var positive = values.Where(v => double.IsFinite(v) && v > 0).ToList();
        // On a log axis bars are drawn in log10 units from a floor a decade boundary below the smallest value.
        double floor = logY && positive.Count > 0 ? Math.Floor(Math.Log10(positive.Min())) : 0;
        double Place(double v) => logY ? Math.Log10(v) : v;
        double top = logY
            ? (positive.Count > 0 ? Math.Max(floor + 1, Math.Log10(positive.Max()) + 0.05 * (Math.Log10(positive.Max()) - floor)) : 1)
            : Math.Max(1e-9, values.Where(double.IsFinite).DefaultIfEmpty(0).Max()) * 1.05;
        int undefined = 0;
        for (int i = 0; i < values.Count; i++)
        {
            bool defined = double.IsFinite(values[i]) && values[i] >= 0;
            if (!defined) undefined++;
            // A zero has no place on a log axis: its label stays, without a bar.
            bool placeable = !(defined && logY && values[i] == 0);
            if (placeable) bars.Add(defined
                ? new Bar { Position = i, ValueBase = floor, Value = Place(values[i]), FillColor = Colors.SteelBlue, LineWidth = 0 }
                : new Bar { Position = i, ValueBase = floor, Value = floor + 0.03 * (top - floor), FillColor = Colors.LightGray, LineWidth = 0 });
            ticks[i] = new Tick(i, defined ? labels[i] : $"{labels[i]} (n/a)");
        }
        if (logY) plt.Axes.Left.TickGenerator = LogTicks([floor, top]);
        if (undefined > 0) title += $" ({undefined} undefined, grey)";
        plt.Add.Bars(bars);
        plt.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks);
        plt.Axes.Bottom.TickLabelStyle.Rotation = 90;
        plt.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleLeft;
        plt.Axes.Bottom.MinimumSize = 120;
        plt.Title(title);
        plt.Axes.Bottom.Label.Text = xLabel;
        plt.Axes.Left.Label.Text = yLabel;
        plt.Axes.Margins(bottom: 0);
        plt.Axes.SetLimitsY(floor, top);
        plt.Axes.SetLimitsX(-0.75, values.Count - 0.25);
        Save(plt, path, width ?? Math.Max(DefaultWidth, 16 * values.Count + 200), height);
    }

    /// <summary>
    /// Ticks for an axis whose coordinates are log10 of the values (<paramref name="log10Values"/>: those plotted), labelled
    /// with the values they stand for: whole decades with minor ticks at 2..9 of each; where the values span less than
    /// two decades (box sizes of 10–100 px, say) 1, 2 and 5 of each decade, and less than one every multiple, so a narrow
    /// axis still has labels.
    /// </summary>
    private static ScottPlot.TickGenerators.NumericManual LogTicks(IEnumerable<double> log10Values) => new(LogTickMarks(log10Values));

    internal static Tick[] LogTickMarks(IEnumerable<double> log10Values)
    {
        var finite = log10Values.Where(double.IsFinite).ToList();
        double low = finite.Count > 0 ? finite.Min() : 0, high = finite.Count > 0 ? finite.Max() : 1;
        // A little beyond the data, as the axis is, so the ticks just outside the extremes are drawn too.
        double margin = Math.Max(0.05 * (high - low), 0.02);
        low -= margin;
        high += margin;
        int[] labelled = high - low < 1 ? [1, 2, 3, 4, 5, 6, 7, 8, 9] : high - low < 2 ? [1, 2, 5] : [1];
        var ticks = new List<Tick>();
        for (int decade = (int)Math.Floor(low); decade <= (int)Math.Ceiling(high); decade++)
            for (int m = 1; m <= 9; m++)
            {
                double at = decade + Math.Log10(m);
                if (at < low || at > high) continue;
                ticks.Add(labelled.Contains(m)
                    ? new Tick(at, (m * Math.Pow(10, decade)).ToString("G3", System.Globalization.CultureInfo.InvariantCulture), true)
                    : new Tick(at, "", false));
            }
        return [.. ticks];
    }

    /// <summary>
    /// One marker per point (x against y), optionally on logarithmic axes, where points at or below zero have no place
    /// and are left out (the title should say how many points there are; the caller knows what they stand for).
    /// </summary>
    public static void SaveScatter(string path, string title, string xLabel, string yLabel, IReadOnlyList<double> xs, IReadOnlyList<double> ys,
        bool logX = false, bool logY = false, int width = DefaultWidth, int height = DefaultHeight)
    {
        if (xs.Count != ys.Count) throw new ArgumentException($"a scatter needs as many ys as xs ({xs.Count}), got {ys.Count}", nameof(ys));
        var kept = Enumerable.Range(0, xs.Count)
            .Where(i => double.IsFinite(xs[i]) && double.IsFinite(ys[i]) && (!logX || xs[i] > 0) && (!logY || ys[i] > 0)).ToArray();
        var plotXs = kept.Select(i => logX ? Math.Log10(xs[i]) : xs[i]).ToArray();
        var plotYs = kept.Select(i => logY ? Math.Log10(ys[i]) : ys[i]).ToArray();
        var plt = new Plot();
        var points = plt.Add.ScatterPoints(plotXs, plotYs, Colors.SteelBlue.WithAlpha(0.5));
        points.MarkerSize = 4;
        if (logX) plt.Axes.Bottom.TickGenerator = LogTicks(plotXs);
        if (logY) plt.Axes.Left.TickGenerator = LogTicks(plotYs);
        plt.Title(title);
        plt.Axes.Bottom.Label.Text = xLabel;
        plt.Axes.Left.Label.Text = yLabel;
        plt.Axes.AutoScale();
        Save(plt, path, width, height);
    }

    /// <summary>
    /// One bar per label, stacked from <paramref name="segments"/> (each a name and one value per bar, in the order they
    /// stack from the axis up), with a legend naming them; a bar is as tall as its segments together. A value that is
    /// zero or undefined leaves no segment in its bar.
    /// </summary>
    public static void SaveStackedBars(string path, string title, string xLabel, string yLabel, IReadOnlyList<string> labels,
        IReadOnlyList<(string Name, IReadOnlyList<double> Values)> segments, int height = DefaultHeight)
    {
        if (segments.Any(s => s.Values.Count != labels.Count))
            throw new ArgumentException($"every segment needs one value per bar ({labels.Count})", nameof(segments));
        var plt = new Plot();
        // Category20: a detector's and a segmentor's stages together outnumber Category10's colours.
        var palette = new ScottPlot.Palettes.Category20();
        var bars = new List<Bar>();
        var tops = new double[labels.Count];
        for (int s = 0; s < segments.Count; s++)
        {
            var colour = palette.GetColor(s);
            for (int i = 0; i < labels.Count; i++)
            {
                double value = segments[s].Values[i];
                if (!(double.IsFinite(value) && value > 0)) continue;
                bars.Add(new Bar { Position = i, ValueBase = tops[i], Value = tops[i] + value, FillColor = colour, LineWidth = 0 });
                tops[i] += value;
            }
            plt.Legend.ManualItems.Add(new LegendItem { LabelText = segments[s].Name, FillColor = colour });
        }
        plt.Add.Bars(bars);
        plt.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(labels.Select((label, i) => new Tick(i, label)).ToArray());
        plt.Axes.Bottom.TickLabelStyle.Rotation = 90;
        plt.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleLeft;
        // ScottPlot does not measure rotated tick labels: room for the longest, and the axis title's line.
        plt.Axes.Bottom.MinimumSize = Math.Min(labels.Max(l => l.Length), 60) * 8 + 40;
        plt.Title(title);
        plt.Axes.Bottom.Label.Text = xLabel;
        plt.Axes.Left.Label.Text = yLabel;
        // Beside the plot, where no bar can hide under it.
        plt.ShowLegend(Edge.Right);
        plt.Axes.Margins(bottom: 0);
        plt.Axes.SetLimitsY(0, Math.Max(1e-9, tops.Max()) * 1.05);
        plt.Axes.SetLimitsX(-0.75, labels.Count - 0.25);
        Save(plt, path, Math.Max(DefaultWidth, 90 * labels.Count + 400), height + (int)plt.Axes.Bottom.MinimumSize);
    }

    /// <summary>
    /// Rows of percentages as coloured cells (plasma, 0–100 %; NaN, a row with nothing in it, grey), row 0 at the top,
    /// as mmdet's and mmseg's confusion-matrix plots. The image grows with the matrix so that every row and column keeps
    /// its label; each cell shows its rounded value while cells are large enough for text (up to
    /// <see cref="HeatmapMaxLabelledCells"/> a side; the 81 of COCO and 150 of ADE20k are colour only).
    /// </summary>
    public static void SaveHeatmap(string path, string title, string xLabel, string yLabel, IReadOnlyList<string> rowLabels,
        IReadOnlyList<string> columnLabels, double[,] percent)
    {
        int rows = percent.GetLength(0), columns = percent.GetLength(1);
        if (rows != rowLabels.Count || columns != columnLabels.Count)
            throw new ArgumentException($"a {rows}×{columns} heatmap needs {rows} row and {columns} column labels, got {rowLabels.Count} and {columnLabels.Count}.");
        int cell = Math.Clamp(900 / Math.Max(rows, columns), 10, 80);
        var plt = new Plot();
        var heatmap = plt.Add.Heatmap(percent);
        heatmap.Colormap = new ScottPlot.Colormaps.Plasma();
        heatmap.ManualRange = new ScottPlot.Range(0, 100);
        heatmap.NaNCellColor = Colors.LightGray;
        // Cell (r, c) centred on (c, rows − 1 − r): integer ticks name the cells, and row 0 is drawn at the top.
        heatmap.Rectangle = new CoordinateRect(-0.5, columns - 0.5, -0.5, rows - 0.5);
        var colorBar = plt.Add.ColorBar(heatmap);
        colorBar.Label = "% of the ground-truth row";
        if (Math.Max(rows, columns) <= HeatmapMaxLabelledCells)
        {
            float fontSize = Math.Clamp(cell / 4f, 9, 16);
            for (int r = 0; r < rows; r++)
            {
                for (int c = 0; c < columns; c++)
                {
                    double v = percent[r, c];
                    var text = plt.Add.Text(double.IsNaN(v) ? "-" : $"{Math.Round(v, MidpointRounding.AwayFromZero):0}%", c, rows - 1 - r);
                    text.LabelAlignment = Alignment.MiddleCenter;
                    text.LabelFontSize = fontSize;
                    // Plasma runs from dark blue to light yellow: dark text on the light end and on the grey of NaN.
                    text.LabelFontColor = double.IsNaN(v) ? Colors.DimGray : v >= 70 ? Colors.Black : Colors.White;
                }
            }
        }
        float tickSize = Math.Clamp(cell * 0.6f, 7, 14);
        plt.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            Enumerable.Range(0, columns).Select(c => new Tick(c, columnLabels[c])).ToArray());
        plt.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            Enumerable.Range(0, rows).Select(r => new Tick(rows - 1 - r, rowLabels[r])).ToArray());
        plt.Axes.Bottom.TickLabelStyle.Rotation = 90;
        plt.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleLeft;
        plt.Axes.Bottom.TickLabelStyle.FontSize = tickSize;
        // Rotated labels start at the axis line: a few pixels keep their first letter off it.
        plt.Axes.Bottom.TickLabelStyle.OffsetY = 4;
        plt.Axes.Left.TickLabelStyle.FontSize = tickSize;
        plt.Axes.Bottom.MajorTickStyle.Length = 0;
        plt.Axes.Left.MajorTickStyle.Length = 0;
        plt.Axes.Bottom.MinorTickStyle.Length = 0;
        plt.Axes.Left.MinorTickStyle.Length = 0;
        int longest = Math.Max(rowLabels.Max(l => l.Length), columnLabels.Max(l => l.Length));
        int labelRoom = (int)Math.Ceiling(Math.Min(longest, 40) * tickSize * 0.62) + 20;
        // ScottPlot does not measure rotated tick labels: the bottom axis is given their length plus its own title's line.
        plt.Axes.Bottom.MinimumSize = labelRoom + 30;
        plt.Axes.Left.MinimumSize = labelRoom;
        plt.Title(title);
        plt.Axes.Bottom.Label.Text = xLabel;
        plt.Axes.Left.Label.Text = yLabel;
        plt.HideGrid();
        plt.Axes.SetLimits(-0.5, columns - 0.5, -0.5, rows - 0.5);
        Save(plt, path, columns * cell + labelRoom + 220, rows * cell + labelRoom + 150);
    }

    /// <summary>The largest heatmap side whose cells still show their value.</summary>
    public const int HeatmapMaxLabelledCells = 30;

    private static void Save(Plot plt, string path, int width, int height)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full);
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        var tmp = Path.Combine(dir ?? ".", $".{Path.GetFileNameWithoutExtension(full)}.{Guid.NewGuid():N}.png");
        try
        {
            plt.SavePng(tmp, width, height);
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }
}

/// <summary>A vertical line across a line chart at <paramref name="X"/>, labelled at the top edge unless <paramref name="Label"/> is null.</summary>
public readonly record struct ChartMark(double X, string? Label);
