using System.CommandLine;
using Vim.Core;
using Vim.Core.Config;
using Vim.Data.Demo;
using Vim.Data.Statistics;

namespace Vim.Tools.Commands;

/// <summary>
/// `vim data stats --kind coco|ade --root D --split S [--classes F] [--out DIR] [--threads N]`: what a dataset holds,
/// before training on it (mmyolo's dataset_analysis.py, mmdet's and mmseg's analysis tools). The dataset is opened as
/// `vim data check` opens it (<see cref="DataCommand.OpenCoco"/>, <see cref="DataCommand.OpenAde"/>), so the same
/// problems are refused first; the numbers are <see cref="CocoDatasetStatistics"/> and <see cref="SegmentationDatasetStatistics"/>,
/// the files <see cref="DatasetStatisticsReport"/>'s.
/// </summary>
public static class DataStatsCommand
{
    private const string Help =
        "Describe a dataset: stats.json (every number), stats.md (tables and charts) and PNG charts. " +
        "COCO (annotations/instances_SPLIT.json, images in SPLIT/, or where --ann-file and --img-dir say): per category the instances (non-crowd annotations), the images holding them, " +
        "crowd regions, the share in each COCO area range (small ≤ 32², medium 32²–96², large ≥ 96², from each annotation's area, both ends " +
        "inclusive as COCOeval compares them: an area exactly on a threshold counts in both ranges) and the median box width, height and " +
        "width/height; overall the images, those without annotations or without instances (training skips them), instances per image " +
        "(mean, median, max, histogram) and the distinct image sizes. Charts: instances and images per category, box width against height " +
        "(log axes), instances per image, area ranges. " +
        "ADE (images/SPLIT/*.jpg, annotations/SPLIT/*.png, or where --img-dir, --seg-map-dir, --img-suffix, --seg-map-suffix say; --split train means training): every label map read as training reads it " +
        "(--reduce-zero-label, default true; ignore index 255), on --threads threads with progress lines: per class the share of the labelled pixels and the " +
        "images holding it, the ignored share, the image sizes (the label maps'). Charts: pixel share per class (log axis), images per class.";

    public static Command Create()
    {
        var dataset = DataCommand.DatasetOptions.Create();
        var outDir = new Option<string?>("--out") { Description = "Output folder (default: work_dirs/data_stats/KIND_SPLIT)." };
        var threads = new Option<int>("--threads") { Description = "ADE: threads reading label maps (0 = one per core).", DefaultValueFactory = _ => 0 };
        var command = new Command("stats", Help);
        foreach (var option in dataset.All.Append(outDir).Append(threads)) command.Options.Add(option);
        command.SetAction(parse =>
        {
            var kind = DataCommand.ParseKind(parse.GetValue(dataset.Kind)!);
            string split = parse.GetValue(dataset.Split)!;
            var dir = parse.GetValue(outDir) ?? DefaultOutput(kind, split);
            var written = Run(kind, parse.GetValue(dataset.Root)!, split, parse.GetValue(dataset.Classes), dir, parse.GetValue(threads), Console.Out,
                dataset.Layout(parse), parse.GetValue(dataset.ReduceZeroLabel));
            Console.WriteLine($"wrote {written.Count} files to {Path.GetFullPath(dir)}: {string.Join(", ", written.Select(Path.GetFileName))}");
            return 0;
        });
        return command;
    }

    public static string DefaultOutput(DemoKind kind, string split) => Path.Combine("work_dirs", "data_stats", $"{kind.ToString().ToLowerInvariant()}_{split}");

    /// <summary>Computes and writes the statistics of one split; returns the files written. Options are checked before any file is read.</summary>
    /// <param name="layout">Where the split's files lie (<see cref="DatasetLayout"/>; null: the format's own layout under <paramref name="root"/>).</param>
    public static IReadOnlyList<string> Run(DemoKind kind, string root, string split, string? classFile, string outDir, int threads, TextWriter output,
        DatasetLayout? layout = null, bool reduceZeroLabel = true)
    {
        if (threads < 0) throw new VimException($"--threads: expected 0 (one per core) or a positive thread count, got {threads}");
        if (string.IsNullOrWhiteSpace(split)) throw new VimException("--split: the split name is empty; expected e.g. train2017 (COCO) or training (ADE)");
        if (!Directory.Exists(root)) throw new VimException($"--root {root}: folder not found; expected the dataset root (COCO: holding annotations/; ADE: ADEChallengeData2016)");
        if (classFile is not null && kind == DemoKind.Coco)
            throw new VimException($"--classes {classFile}: applies to --kind ade only (a COCO file names its own categories)");
        OutputFolder.Check(outDir, "--out");
        if (kind == DemoKind.Coco)
        {
            var (coco, training) = DataCommand.OpenCoco(layout ?? DatasetLayout.Coco(root), split);
            output.WriteLine($"COCO {split}: {coco.Count} images, {coco.Source.Annotations.Count} annotations, {coco.Categories.Count} categories " +
                $"({coco.AnnotationSource})");
            output.Write(training.Warnings.Summary());
            var stats = CocoDatasetStatistics.Compute(coco.Source, coco.AnnotationSource);
            output.WriteLine($"{stats.Instances} instances and {stats.Crowd} crowd regions; {stats.ImagesWithoutAnnotations} images without annotations; " +
                $"area ranges {string.Join(", ", stats.AreaRanges.Select(r => $"{r.Label} {r.Instances}"))}");
            return DatasetStatisticsReport.Write(stats, coco.Source, outDir);
        }
        var ade = DataCommand.OpenAde(root, split, classFile, layout, reduceZeroLabel);
        int workers = threads > 0 ? threads : Environment.ProcessorCount;
        output.WriteLine($"ADE {split}: {ade.Count} image/label pairs, {ade.ClassNames.Count} classes; reading every label map on {workers} thread(s)");
        var segmentation = SegmentationDatasetStatistics.Compute(ade, output, workers);
        output.WriteLine($"{segmentation.LabelledPixels} labelled and {segmentation.IgnoredPixels} ignored pixels; " +
            $"{segmentation.AbsentClasses} of {segmentation.Classes.Count} classes absent");
        return DatasetStatisticsReport.Write(segmentation, outDir);
    }
}
