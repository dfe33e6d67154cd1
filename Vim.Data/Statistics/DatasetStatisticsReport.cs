using System.Globalization;
using System.Text;
using System.Text.Json;
using Vim.Core.IO;
using Vim.Data.Coco;
using Vim.Data.Evaluation.Reports;

namespace Vim.Data.Statistics;

/// <summary>
/// A dataset's statistics as files: stats.json (every number; undefined values, such as the median box of a category
/// without instances, null), stats.md (tables and the charts) and PNG charts, each written atomically.
/// </summary>
public static class DatasetStatisticsReport
{
    public const string JsonName = "stats.json";
    public const string MarkdownName = "stats.md";

    /// <summary>The box-size scatter draws at most this many boxes (every n-th, in file order): train2017 has 860k.</summary>
    public const int MaxScatterPoints = 20_000;

    /// <summary>How many distinct image sizes stats.md lists (stats.json has them all).</summary>
    public const int ListedImageSizes = 20;

    /// <summary>stats.json's format: snake_case names, NaN as null (<see cref="MetricJson"/>).</summary>
    public static readonly JsonSerializerOptions JsonOptions = CreateJsonOptions();

    private static JsonSerializerOptions CreateJsonOptions()
    {
        var options = new JsonSerializerOptions(MetricJson.Indented) { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }

    /// <summary>Writes the COCO statistics into <paramref name="dir"/>; returns the files written. <paramref name="coco"/> gives the boxes of the scatter.</summary>
    public static IReadOnlyList<string> Write(CocoDatasetStatistics stats, CocoDataset coco, string dir)
    {
        Directory.CreateDirectory(dir);
        string name = Path.GetFileName(stats.Source);
        var byInstances = stats.Categories.OrderByDescending(c => c.Instances).ThenBy(c => c.Id).ToArray();
        var charts = new List<(string Caption, string File)>();
        string Chart(string file, string caption)
        {
            charts.Add((caption, file));
            return Path.Combine(dir, file);
        }

        ReportCharts.SaveBars(Chart("category_instances.png", "instances per category"), $"{name}: instances per category ({stats.Instances} in all)",
            "category", "instances", byInstances.Select(c => c.Name).ToList(), byInstances.Select(c => (double)c.Instances).ToList());
        ReportCharts.SaveBars(Chart("category_images.png", "images per category"), $"{name}: images holding each category ({stats.Images} images)",
            "category", "images", byInstances.Select(c => c.Name).ToList(), byInstances.Select(c => (double)c.Images).ToList());

        var boxes = coco.Annotations.Where(a => !a.IsCrowd).Select(CocoDatasetStatistics.MeasurableBox).OfType<(double W, double H)>().ToArray();
        int stride = Math.Max(1, (boxes.Length + MaxScatterPoints - 1) / MaxScatterPoints);
        var drawn = boxes.Where((_, i) => i % stride == 0).ToArray();
        ReportCharts.SaveScatter(Chart("box_sizes.png", "box width against height"),
            $"{name}: box width against height ({(stride == 1 ? $"all {boxes.Length}" : $"every {stride}th of {boxes.Length}")} boxes)",
            "box width (pixels)", "box height (pixels)", drawn.Select(b => b.W).ToArray(), drawn.Select(b => b.H).ToArray(), logX: true, logY: true);

        var (histogramLabels, histogramValues) = InstanceCountBins(stats.InstancesPerImageHistogram);
        ReportCharts.SaveBars(Chart("instances_per_image.png", "instances per image"),
            $"{name}: instances per image (mean {Number(stats.InstancesPerImage.Mean)}, median {Number(stats.InstancesPerImage.Median)}, max {Number(stats.InstancesPerImage.Max)})",
            "instances in the image", "images", histogramLabels, histogramValues);
        ReportCharts.SaveBars(Chart("area_ranges.png", "COCO area ranges"), $"{name}: instances per COCO area range (of {stats.Instances - stats.InstancesWithoutArea} with an area)",
            "area range", "share of instances (%)", stats.AreaRanges.Select(r => $"{r.Label} ({Number(r.Min)}–{Number(r.Max)})").ToList(),
            stats.AreaRanges.Select(r => 100 * r.Share).ToList(), width: 600);

        var files = charts.Select(c => Path.Combine(dir, c.File)).ToList();
        files.Add(WriteJson(stats, dir));
        files.Add(WriteMarkdown(dir, CocoMarkdown(stats, charts)));
        return files;
    }

    /// <summary>Writes the segmentation statistics into <paramref name="dir"/>; returns the files written.</summary>
    public static IReadOnlyList<string> Write(SegmentationDatasetStatistics stats, string dir)
    {
        Directory.CreateDirectory(dir);
        var byPixels = stats.Classes.OrderByDescending(c => c.Pixels).ThenBy(c => c.Index).ToArray();
        var byImages = stats.Classes.OrderByDescending(c => c.Images).ThenBy(c => c.Index).ToArray();
        var charts = new List<(string Caption, string File)>
        {
            ("pixel share per class", "class_pixel_share.png"),
            ("images per class", "class_images.png"),
        };
        ReportCharts.SaveBars(Path.Combine(dir, charts[0].File),
            $"pixel share per class, of labelled pixels ({stats.AbsentClasses} of {stats.Classes.Count} classes absent, no bar)", "class",
            "share of labelled pixels (%, log)", byPixels.Select(c => c.Name).ToList(), byPixels.Select(c => 100 * c.PixelShare).ToList(), logY: true);
        ReportCharts.SaveBars(Path.Combine(dir, charts[1].File), $"images holding each class ({stats.Images} images)", "class", "images",
            byImages.Select(c => c.Name).ToList(), byImages.Select(c => (double)c.Images).ToList());
        var files = charts.Select(c => Path.Combine(dir, c.File)).ToList();
        files.Add(WriteJson(stats, dir));
        files.Add(WriteMarkdown(dir, SegmentationMarkdown(stats, charts)));
        return files;
    }

    /// <summary>
    /// The instances-per-image histogram as bars: one per count up to 60, beyond that bins of equal width
    /// ("a–b"), so a dataset of crowded images still gives a readable chart.
    /// </summary>
    public static (IReadOnlyList<string> Labels, IReadOnlyList<double> Images) InstanceCountBins(IReadOnlyList<int> histogram)
    {
        const int MaxBars = 60;
        int width = Math.Max(1, (histogram.Count + MaxBars - 1) / MaxBars);
        var labels = new List<string>();
        var images = new List<double>();
        for (int start = 0; start < histogram.Count; start += width)
        {
            int end = Math.Min(histogram.Count, start + width) - 1;
            labels.Add(start == end ? start.ToString(CultureInfo.InvariantCulture) : $"{start}–{end}");
            images.Add(Enumerable.Range(start, end - start + 1).Sum(n => histogram[n]));
        }
        return (labels, images);
    }

    private static string WriteJson<T>(T stats, string dir)
    {
        string path = Path.Combine(dir, JsonName);
        AtomicFile.WriteText(path, JsonSerializer.Serialize(stats, JsonOptions));
        return path;
    }

    private static string WriteMarkdown(string dir, string markdown)
    {
        string path = Path.Combine(dir, MarkdownName);
        AtomicFile.WriteText(path, markdown);
        return path;
    }

    private static string CocoMarkdown(CocoDatasetStatistics s, IReadOnlyList<(string Caption, string File)> charts)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"# Dataset statistics: {Path.GetFileName(s.Source)}").AppendLine();
        sb.AppendLine($"`{s.Source}`: {s.Images} images ({s.ImagesWithoutAnnotations} without annotations, {s.ImagesWithoutInstances} without instances, " +
            $"which training skips), {s.Instances} instances (non-crowd annotations), {s.Crowd} crowd regions, {s.Categories.Count} categories.").AppendLine();
        sb.AppendLine($"Instances per image: mean {Number(s.InstancesPerImage.Mean)}, median {Number(s.InstancesPerImage.Median)}, max {Number(s.InstancesPerImage.Max)}.").AppendLine();
        sb.AppendLine("## Object sizes").AppendLine();
        sb.AppendLine($"COCO's area ranges, from each annotation's `area` as COCOeval reads it; both ends inclusive, as COCOeval compares them, so an area " +
            $"exactly on a threshold counts in both ranges. {s.InstancesWithoutArea} instances have no area, {s.InstancesWithoutBox} no box of positive size.").AppendLine();
        sb.AppendLine("| range | area | instances | share |").AppendLine("|---|---|---|---|");
        foreach (var r in s.AreaRanges) sb.AppendLine($"| {r.Label} | {Number(r.Min)}–{Number(r.Max)} | {r.Instances} | {Percent(r.Share)} |");
        sb.AppendLine().AppendLine("| box | min | median | mean | max |").AppendLine("|---|---|---|---|---|");
        sb.AppendLine(SummaryRow("width (pixels)", s.BoxWidth)).AppendLine(SummaryRow("height (pixels)", s.BoxHeight)).AppendLine(SummaryRow("width / height", s.BoxAspectRatio));
        sb.AppendLine().AppendLine("## Image sizes").AppendLine();
        AppendImageSizes(sb, s.ImageWidth, s.ImageHeight, s.ImageSizes);
        if (s.ImagesWithoutSize > 0) sb.AppendLine($"{s.ImagesWithoutSize} images have no width/height in the file.").AppendLine();
        sb.AppendLine("## Categories").AppendLine();
        string ranges = string.Join(" | ", s.AreaRanges.Select(r => r.Label));
        sb.AppendLine($"| id | category | instances | images | crowd | {ranges} | median w | median h | median w/h |");
        sb.AppendLine($"|---|---|---|---|---|{string.Concat(s.AreaRanges.Select(_ => "---|"))}---|---|---|");
        foreach (var c in s.Categories)
            sb.AppendLine($"| {c.Id} | {c.Name} | {c.Instances} | {c.Images} | {c.Crowd} | {string.Join(" | ", c.AreaRanges.Select(r => Percent(r.Share)))} | " +
                $"{Number(c.MedianWidth)} | {Number(c.MedianHeight)} | {Number(c.MedianAspectRatio)} |");
        sb.AppendLine();
        AppendCharts(sb, charts);
        return sb.ToString();
    }

    private static string SegmentationMarkdown(SegmentationDatasetStatistics s, IReadOnlyList<(string Caption, string File)> charts)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"# Dataset statistics: {s.AnnotationDir}").AppendLine();
        sb.AppendLine($"{s.Images} images with label maps (`{s.ImageDir}`), {s.Classes.Count} classes ({s.AbsentClasses} absent). Label maps read as training reads them: " +
            $"reduce_zero_label {(s.ReduceZeroLabel ? "on (label 0 is ignored)" : "off")}, ignore index {s.IgnoreIndex}.").AppendLine();
        sb.AppendLine($"Pixels: {s.Pixels} in all, {s.LabelledPixels} labelled, {s.IgnoredPixels} ignored ({Percent(s.IgnoredShare)}).").AppendLine();
        sb.AppendLine("## Image sizes").AppendLine();
        AppendImageSizes(sb, s.ImageWidth, s.ImageHeight, s.ImageSizes);
        sb.AppendLine("## Classes").AppendLine();
        sb.AppendLine("Pixel share: of the labelled pixels. Images: holding at least one pixel of the class.").AppendLine();
        sb.AppendLine("| index | class | pixels | pixel share | images | image share |").AppendLine("|---|---|---|---|---|---|");
        foreach (var c in s.Classes) sb.AppendLine($"| {c.Index} | {c.Name} | {c.Pixels} | {Percent(c.PixelShare)} | {c.Images} | {Percent(c.ImageShare)} |");
        sb.AppendLine();
        AppendCharts(sb, charts);
        return sb.ToString();
    }

    private static void AppendImageSizes(StringBuilder sb, ValueSummary widths, ValueSummary heights, IReadOnlyList<ImageSizeCount> sizes)
    {
        sb.AppendLine("| image | min | median | mean | max |").AppendLine("|---|---|---|---|---|");
        sb.AppendLine(SummaryRow("width (pixels)", widths)).AppendLine(SummaryRow("height (pixels)", heights)).AppendLine();
        sb.AppendLine($"{sizes.Count} distinct sizes{(sizes.Count > ListedImageSizes ? $", the {ListedImageSizes} most frequent (all in {JsonName})" : "")}:").AppendLine();
        sb.AppendLine("| width × height | images |").AppendLine("|---|---|");
        foreach (var size in sizes.Take(ListedImageSizes)) sb.AppendLine($"| {size.Width} × {size.Height} | {size.Images} |");
        sb.AppendLine();
    }

    private static void AppendCharts(StringBuilder sb, IReadOnlyList<(string Caption, string File)> charts)
    {
        sb.AppendLine("## Charts").AppendLine();
        foreach (var (caption, file) in charts) sb.AppendLine($"![{caption}]({file})").AppendLine();
    }

    private static string SummaryRow(string what, ValueSummary v) =>
        $"| {what} | {Number(v.Min)} | {Number(v.Median)} | {Number(v.Mean)} | {Number(v.Max)} |";

    /// <summary>Up to 4 significant digits (COCO's upper area bound as 1e10); "-" for undefined.</summary>
    private static string Number(double v) => double.IsFinite(v) ? v.ToString("G4", CultureInfo.InvariantCulture).Replace("E+", "e") : "-";

    /// <summary>Percent with 3 significant digits (a rare class's 0.00123 % stays visible); "-" for undefined.</summary>
    private static string Percent(double share) => double.IsFinite(share) ? (100 * share).ToString("G3", CultureInfo.InvariantCulture) + " %" : "-";
}
