using ScottPlot;

namespace Vim.Data.Evaluation.Reports;

/// <summary>ScottPlot chart helpers shared by the evaluation reports; PNGs are written atomically.</summary>
public static class ReportCharts
{
    public const int DefaultWidth = 1000;
    public const int DefaultHeight = 600;

    /// <summary>One line per series over a shared x axis, with a legend.</summary>
    public static void SaveLines(string path, string title, string xLabel, string yLabel,
        IReadOnlyList<(string Label, double[] Xs, double[] Ys)> series, double? yMin = null, double? yMax = null,
        int width = DefaultWidth, int height = DefaultHeight, bool markers = false, Alignment legend = Alignment.LowerLeft)
    {
        var plt = new Plot();
        var palette = new ScottPlot.Palettes.Category10();
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
        plt.Title(title);
        plt.Axes.Bottom.Label.Text = xLabel;
        plt.Axes.Left.Label.Text = yLabel;
        plt.ShowLegend(legend);
        plt.Axes.AutoScale();
        if (yMin is not null && yMax is not null) plt.Axes.SetLimitsY(yMin.Value, yMax.Value);
        Save(plt, path, width, height);
    }

    /// <summary>
    /// A bar chart with one labelled bar per value. An undefined value (NaN, or pycocotools' −1: a class without ground
    /// truth) is no zero: it gets a short grey stub and "(n/a)" after its label, and the title counts them, as the
    /// tables print nan or "-".
    /// </summary>
    public static void SaveBars(string path, string title, string xLabel, string yLabel, IReadOnlyList<string> labels,
        IReadOnlyList<double> values, int? width = null, int height = DefaultHeight)
    {
        var plt = new Plot();
        var bars = new List<Bar>(values.Count);
        var ticks = new Tick[values.Count];
        double top = Math.Max(1e-9, values.Where(double.IsFinite).DefaultIfEmpty(0).Max()) * 1.05;
        int undefined = 0;
        for (int i = 0; i < values.Count; i++)
        {
            bool defined = double.IsFinite(values[i]) && values[i] >= 0;
            if (!defined) undefined++;
            bars.Add(defined
                ? new Bar { Position = i, Value = values[i], FillColor = Colors.SteelBlue, LineWidth = 0 }
                : new Bar { Position = i, Value = 0.03 * top, FillColor = Colors.LightGray, LineWidth = 0 });
            ticks[i] = new Tick(i, defined ? labels[i] : $"{labels[i]} (n/a)");
        }
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
        plt.Axes.SetLimitsY(0, top);
        plt.Axes.SetLimitsX(-0.75, values.Count - 0.25);
        Save(plt, path, width ?? Math.Max(DefaultWidth, 16 * values.Count + 200), height);
    }

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
