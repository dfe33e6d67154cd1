using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Diagnostics;
using Vim.Data.Coco;
using Vim.Data.Datasets;
using Vim.Data.Demo;
using Vim.Data.Loading;
using Vim.Data.Transforms;

namespace Vim.Tools.Commands;

/// <summary>`vim data demo|bench|bench-json|check|browse|stats|convert`: built-in synthetic datasets, dataset checks, data-pipeline throughput, drawings of what the pipeline feeds the model (<see cref="DataBrowseCommand"/>) dataset statistics (<see cref="DataStatsCommand"/>) and converters (<see cref="DataConvertCommand"/>).</summary>
public static class DataCommand
{
    public static Command Create()
    {
        var command = new Command("data", "Generate demo datasets, convert other layouts (VOC, image folders, Cityscapes), check, browse and describe datasets (statistics), and measure the data pipeline.");
        command.Subcommands.Add(CreateDemo());
        command.Subcommands.Add(CreateBench());
        command.Subcommands.Add(CreateCheck());
        command.Subcommands.Add(CreateBenchJson());
        command.Subcommands.Add(DataBrowseCommand.Create());
        command.Subcommands.Add(DataStatsCommand.Create());
        command.Subcommands.Add(DataConvertCommand.Create());
        return command;
    }

    /// <summary>
    /// The options naming a dataset on disk, shared by `data check` and `data stats`: its format, root, split and classes, and
    /// where its files lie when not in the format's own layout (the data.* layout keys as options, <see cref="DatasetLayout"/>).
    /// </summary>
    internal sealed record DatasetOptions(Option<string> Kind, Option<string> Root, Option<string> Split, Option<string?> Classes,
        Option<string?> AnnFile, Option<string?> ImgDir, Option<string?> SegMapDir, Option<string?> ImgSuffix, Option<string?> SegMapSuffix,
        Option<bool> ReduceZeroLabel)
    {
        public static DatasetOptions Create() => new(
            KindOption(),
            new Option<string>("--root") { Description = "Dataset root (COCO: holds annotations/ and image folders; ADE: ADEChallengeData2016).", Required = true },
            new Option<string>("--split") { Description = "COCO: annotation/image split name (train → annotations/instances_train.json + train/); ADE: training or validation.", DefaultValueFactory = _ => "train" },
            new Option<string?>("--classes") { Description = "ADE: class list file (default: ROOT/class_names.txt if present, else the 150 ADE20k classes)." },
            new Option<string?>("--ann-file") { Description = "COCO: the annotation file under ROOT, {split} for the split's name (data.ann_file; default annotations/instances_{split}.json)." },
            new Option<string?>("--img-dir") { Description = "The image folder under ROOT, with {split} (data.img_dir; default {split} for COCO, images/{split} for ADE)." },
            new Option<string?>("--seg-map-dir") { Description = "ADE: the label-map folder under ROOT, with {split} (data.seg_map_dir; default annotations/{split})." },
            new Option<string?>("--img-suffix") { Description = "ADE: how image file names end (data.img_suffix; default .jpg)." },
            new Option<string?>("--seg-map-suffix") { Description = "ADE: how label-map file names end (data.seg_map_suffix; default .png)." },
            new Option<bool>("--reduce-zero-label")
            {
                Description = "ADE: label 0 is 'other', ignored, and k is class k − 1 (data.reduce_zero_label; ADE20k's labels); false for labels that are class indices.",
                DefaultValueFactory = _ => true,
            });

        public IEnumerable<Option> All => [Kind, Root, Split, Classes, AnnFile, ImgDir, SegMapDir, ImgSuffix, SegMapSuffix, ReduceZeroLabel];

        /// <summary>
        /// The dataset's layout from --kind, --root and the layout options (refused naming the option, as DatasetLayout refuses
        /// a key); null when none is given: the format's own layout.
        /// </summary>
        public DatasetLayout? Layout(ParseResult parse) =>
            new[] { AnnFile, ImgDir, SegMapDir, ImgSuffix, SegMapSuffix }.All(o => parse.GetValue(o) is null) ? null : DatasetLayout.Of(new DataConfig
        {
            Type = ParseKind(parse.GetValue(Kind)!) == DemoKind.Coco ? "coco" : "ade20k",
            Root = parse.GetValue(Root)!,
            AnnFile = parse.GetValue(AnnFile),
            ImgDir = parse.GetValue(ImgDir),
            SegMapDir = parse.GetValue(SegMapDir),
            ImgSuffix = parse.GetValue(ImgSuffix),
            SegMapSuffix = parse.GetValue(SegMapSuffix),
        }, key => "--" + key["data.".Length..].Replace('_', '-'));
    }

    /// <summary>
    /// A COCO split as `data check` and `data stats` read it: the evaluation view (every image of the json, each checked
    /// on disk) and the training view over the same records (what training keeps, and the annotations it skips).
    /// </summary>
    internal static (CocoInstanceDataset Evaluation, CocoInstanceDataset Training) OpenCoco(DatasetLayout layout, string split)
    {
        string annotationFile = layout.AnnotationFile(split), imageDir = layout.ImageDir(split);
        var coco = CocoInstanceDataset.Load(annotationFile, imageDir, CocoInstanceOptions.Evaluation);
        // The same images, already found on disk by the evaluation view.
        var training = new CocoInstanceDataset(coco.Source, annotationFile, imageDir, new CocoInstanceOptions { CheckImageFiles = false });
        return (coco, training);
    }

    /// <summary>A split of image and label-map folders as `data check` and `data stats` read it: ADE20k's layout, where
    /// --split train means training, unless <paramref name="layout"/> gives another (whose split names are taken as they are);
    /// <paramref name="classFile"/> as --classes gives it.</summary>
    internal static SegmentationFolderDataset OpenAde(string root, string split, string? classFile, DatasetLayout? layout = null,
        bool reduceZeroLabel = true)
    {
        classFile ??= File.Exists(Path.Combine(root, "class_names.txt")) ? Path.Combine(root, "class_names.txt") : null;
        var names = classFile is null ? Ade20kClasses.Names : SegmentationFolderDataset.ReadClassNames(classFile);
        return layout is null
            ? SegmentationFolderDataset.InLayout(DatasetLayout.Ade20k(root), AdeSplit(split), names, reduceZeroLabel)
            : SegmentationFolderDataset.InLayout(layout, split, names, reduceZeroLabel);
    }

    private static Command CreateCheck()
    {
        var dataset = DatasetOptions.Create();
        var (kind, root, split, classes) = (dataset.Kind, dataset.Root, dataset.Split, dataset.Classes);
        var decode = new Option<int>("--decode") { Description = "Also fully load this many samples (image, masks, labels); -1 = all.", DefaultValueFactory = _ => 16 };
        var check = new Command("check", "Validate a dataset on disk: annotation errors, skipped records, and decoding of the first samples.");
        foreach (var o in dataset.All.Append(decode)) check.Options.Add(o);
        check.SetAction(parse =>
        {
            string dataRoot = parse.GetValue(root)!, splitName = parse.GetValue(split)!;
            var layout = dataset.Layout(parse);
            ISampleSource source;
            var clock = Stopwatch.StartNew();
            if (ParseKind(parse.GetValue(kind)!) == DemoKind.Coco)
            {
                var (coco, training) = OpenCoco(layout ?? DatasetLayout.Coco(dataRoot), splitName);
                Console.WriteLine($"COCO {splitName}: {coco.Count} images ({training.Count} used for training), {coco.Source.Annotations.Count} annotations, " +
                    $"{coco.Categories.Count} categories; loaded in {clock.Elapsed.TotalSeconds:F2} s");
                Console.Write(training.Warnings.Summary());
                source = coco;
            }
            else
            {
                var ade = OpenAde(dataRoot, splitName, parse.GetValue(classes), layout, parse.GetValue(dataset.ReduceZeroLabel));
                Console.WriteLine($"ADE {splitName}: {ade.Count} image/label pairs, {ade.ClassNames.Count} classes");
                source = ade;
            }
            int n = parse.GetValue(decode) < 0 ? source.Count : Math.Min(parse.GetValue(decode), source.Count);
            long instances = 0;
            for (int i = 0; i < n; i++)
            {
                var sample = source.Load(i);
                instances += sample.InstanceCount;
                if (sample.Masks is not null) foreach (var m in sample.Masks) _ = m.Pixels;
            }
            Console.WriteLine(source is CocoInstanceDataset ? $"decoded {n} samples ({instances} instances): ok" : $"decoded {n} samples: ok");
            return 0;
        });
        return check;
    }

    internal static Option<string> KindOption() => new("--kind")
    {
        Description = "Dataset format: coco or ade.",
        DefaultValueFactory = _ => "coco",
    };

    internal static DemoKind ParseKind(string kind) => kind.ToLowerInvariant() switch
    {
        "coco" => DemoKind.Coco,
        "ade" or "ade20k" => DemoKind.Ade,
        _ => throw new VimException($"--kind: expected coco or ade, got \"{kind}\"."),
    };

    private static (int Width, int Height) ParseSize(string size)
    {
        var parts = size.ToLowerInvariant().Split('x');
        if (parts.Length == 2 && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int w)
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int h))
            return (w, h);
        throw new VimException($"--size: expected WIDTHxHEIGHT such as 256x256, got \"{size}\".");
    }

    private static Command CreateDemo()
    {
        var kind = KindOption();
        var output = new Option<string>("--out") { Description = "Output folder.", Required = true };
        var images = new Option<int>("--images") { Description = "Training images (validation gets a quarter, at least 4).", DefaultValueFactory = _ => 64 };
        var seed = new Option<int>("--seed") { Description = "Random seed (same seed, same files).", DefaultValueFactory = _ => 0 };
        var size = new Option<string>("--size") { Description = "Image size WIDTHxHEIGHT.", DefaultValueFactory = _ => "256x256" };
        var format = new Option<string>("--format") { Description = "COCO image format: jpg or png (ADE images are always jpg).", DefaultValueFactory = _ => "jpg" };
        var demo = new Command("demo", "Write a deterministic synthetic dataset in the real COCO or ADE20k format.");
        foreach (var o in new Option[] { kind, output, images, seed, size, format }) demo.Options.Add(o);
        demo.SetAction(parse =>
        {
            var (w, h) = ParseSize(parse.GetValue(size)!);
            OutputFolder.Check(parse.GetValue(output)!, "--out");
            int train = parse.GetValue(images);
            var options = new DemoOptions
            {
                Kind = ParseKind(parse.GetValue(kind)!),
                OutputDir = parse.GetValue(output)!,
                TrainImages = train,
                ValImages = Math.Max(4, train / 4),
                Seed = parse.GetValue(seed),
                Width = w,
                Height = h,
                ImageExtension = parse.GetValue(format)!.ToLowerInvariant() switch
                {
                    "jpg" or "jpeg" => ".jpg",
                    "png" => ".png",
                    var f => throw new VimException($"--format: expected jpg or png, got \"{f}\"."),
                },
            };
            var summary = DemoDatasetGenerator.Generate(options);
            Console.WriteLine($"wrote {options.Kind.ToString().ToLowerInvariant()} demo data to {Path.GetFullPath(options.OutputDir)}: " +
                $"{summary.Images} images ({options.TrainImages} train, {options.ValImages} val), {summary.Instances} instances " +
                $"({summary.OccludedInstances} occluded, {summary.CrowdRegions} crowd regions), {summary.EmptyImages} empty images; " +
                $"classes: {string.Join(", ", DemoDatasetGenerator.ClassNames)}");
            return 0;
        });
        return demo;
    }

    /// <summary>The ADE folder of a --split value: train (the option's default, COCO's name) is ADE's training.</summary>
    private static string AdeSplit(string split) => split == "train" ? "training" : split;

    private static Command CreateBench()
    {
        var kind = KindOption();
        var root = new Option<string?>("--root") { Description = "Existing demo/real dataset root (default: generate demo data in a temp folder)." };
        var split = new Option<string>("--split") { Description = "COCO: annotation/image split name (train → annotations/instances_train.json + train/, train2017 for COCO itself); ADE: training or validation.", DefaultValueFactory = _ => "train" };
        var workers = new Option<string>("--workers") { Description = "Comma-separated worker counts to compare.", DefaultValueFactory = _ => "0,1,2" };
        var epochs = new Option<int>("--epochs") { Description = "Epochs per measurement.", DefaultValueFactory = _ => 2 };
        var crop = new Option<int>("--crop") { Description = "Training crop (detection LSJ size / segmentation crop).", DefaultValueFactory = _ => 512 };
        var cvThreads = new Option<int>("--cv-threads") { Description = "OpenCV's own thread count during the measurement (-1 = OpenCV default).", DefaultValueFactory = _ => -1 };
        var jsonMb = new Option<double>("--json-mb") { Description = "Also time reading a synthetic COCO json of this many MB (0 = skip).", DefaultValueFactory = _ => 7 };
        var bench = new Command("bench", "Measure decode+augment images/s with different worker counts, and COCO json load time.");
        foreach (var o in new Option[] { kind, root, split, workers, epochs, crop, cvThreads, jsonMb }) bench.Options.Add(o);
        bench.SetAction(parse =>
        {
            var demoKind = ParseKind(parse.GetValue(kind)!);
            string? dataRoot = parse.GetValue(root);
            string? temp = null;
            try
            {
                if (dataRoot is null)
                {
                    temp = dataRoot = Path.Combine(Path.GetTempPath(), $"vimdense-bench-{Guid.NewGuid():N}");
                    DemoDatasetGenerator.Generate(new DemoOptions { Kind = demoKind, OutputDir = dataRoot });
                }
                int previousCvThreads = OpenCvSharp.Cv2.GetNumThreads();
                if (parse.GetValue(cvThreads) >= 0) OpenCvSharp.Cv2.SetNumThreads(parse.GetValue(cvThreads));
                try
                {
                    RunThroughput(demoKind, dataRoot, parse.GetValue(split)!, parse.GetValue(workers)!, parse.GetValue(epochs), parse.GetValue(crop));
                }
                finally
                {
                    OpenCvSharp.Cv2.SetNumThreads(previousCvThreads);
                }
                double mb = parse.GetValue(jsonMb);
                if (mb > 0) RunJsonLoad(mb);
            }
            finally
            {
                if (temp is not null && Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
            }
            return 0;
        });
        return bench;
    }

    private static void RunThroughput(DemoKind kind, string root, string split, string workerList, int epochs, int crop)
    {
        ISampleSource source;
        BatchKind batchKind;
        if (kind == DemoKind.Coco)
        {
            var layout = DatasetLayout.Coco(root);
            source = CocoInstanceDataset.Load(layout.AnnotationFile(split), layout.ImageDir(split));
            batchKind = BatchKind.Detection;
        }
        else
        {
            source = OpenAde(root, split, classFile: null);
            batchKind = BatchKind.Segmentation;
        }
        // The task's official training recipe at --crop: what training builds for a config without data.train_pipeline.
        var pipeline = DataPipelines.Training(new ExperimentConfig
        {
            Task = kind == DemoKind.Coco ? TaskKind.Detection : TaskKind.Segmentation,
            Data = new DataConfig { CropSize = [crop, crop] },
        });
        Console.WriteLine($"pipeline: {(kind == DemoKind.Coco ? "LSJ detection" : "ADE20k segmentation")} (crop {crop}), {source.Count} images, " +
            $"{Environment.ProcessorCount} cores, OpenCV threads {OpenCvSharp.Cv2.GetNumThreads()}");
        foreach (var token in workerList.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            if (!int.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out int n))
                throw new VimException($"--workers: expected comma-separated non-negative integers, got \"{workerList}\".");
            var loader = new DataLoader(source, pipeline, new LoaderOptions { BatchSize = 2, Kind = batchKind, NumWorkers = n, Seed = 1 });
            // One warm-up epoch so JIT and OpenCV initialisation are not measured.
            foreach (var b in loader.Epoch(0)) b.Dispose();
            int images = 0;
            var clock = Stopwatch.StartNew();
            for (int e = 1; e <= epochs; e++)
                foreach (var b in loader.Epoch(e))
                {
                    images += b.Count;
                    b.Dispose();
                }
            clock.Stop();
            Console.WriteLine($"  workers {n}: {images / clock.Elapsed.TotalSeconds,8:F1} images/s ({images} images in {clock.Elapsed.TotalSeconds:F2} s)");
        }
    }

    private static void RunJsonLoad(double megabytes)
    {
        var path = Path.Combine(Path.GetTempPath(), $"vimdense-json-{Guid.NewGuid():N}.json");
        var imageDir = Path.Combine(Path.GetTempPath(), $"vimdense-json-images-{Guid.NewGuid():N}");
        try
        {
            var (images, annotations) = SyntheticCocoJson.Write(path, (long)(megabytes * 1024 * 1024));
            double size = new FileInfo(path).Length / 1024.0 / 1024.0;
            var clock = Stopwatch.StartNew();
            var coco = CocoDataset.Load(path);
            double parse = clock.Elapsed.TotalSeconds;
            // The dataset refuses images missing on disk; empty files stand in for them (they are never decoded here).
            CreateEmptyImageFiles(coco, imageDir);
            clock.Restart();
            var dataset = new CocoInstanceDataset(coco, path, imageDir);
            double index = clock.Elapsed.TotalSeconds;
            Console.WriteLine($"COCO json {size:F1} MB ({images} images, {annotations} annotations): CocoDataset.Load {parse:F2} s, " +
                $"+ training index and image-file check {index:F2} s ({dataset.Count} images kept)");
        }
        finally
        {
            File.Delete(path);
            if (Directory.Exists(imageDir)) Directory.Delete(imageDir, recursive: true);
        }
    }

    private static void CreateEmptyImageFiles(CocoDataset coco, string imageDir)
    {
        Directory.CreateDirectory(imageDir);
        foreach (var image in coco.Images) File.Create(Path.Combine(imageDir, image.FileName!)).Dispose();
    }

    private static Command CreateBenchJson()
    {
        var images = new Option<int>("--images") { Description = "Image entries (train2017: 118287).", DefaultValueFactory = _ => 118_287 };
        var annotations = new Option<int>("--annotations") { Description = "Annotations (train2017: 860001).", DefaultValueFactory = _ => 860_001 };
        var vertices = new Option<int>("--vertices") { Description = "Mean polygon vertices per object (28 gives train2017's ~450 MB).", DefaultValueFactory = _ => 28 };
        var document = new Option<bool>("--document") { Description = "Also parse the same file into a JsonDocument, for comparison with a tree-based reader." };
        var dir = new Option<string>("--dir") { Description = "Folder for the temporary json (deleted afterwards).", DefaultValueFactory = _ => Path.GetTempPath() };
        var imageFiles = new Option<bool>("--image-files")
        {
            Description = "Also create an empty file for every listed image in a temporary folder under --dir and time the datasets' check that each exists " +
                "(warm cache: the files were just written), then build the training dataset (index + check) on them.",
        };
        var bench = new Command("bench-json", "Write a train2017-sized synthetic COCO json, then measure CocoDataset.Load (what training reads) and CocoDataset.LoadCategories " +
            "(what vim test, vim infer and other evaluation-only uses read of a training file): seconds, peak managed heap and peak RSS against the file size.");
        foreach (var o in new Option[] { images, annotations, vertices, document, dir, imageFiles }) bench.Options.Add(o);
        bench.SetAction(parse =>
        {
            string path = Path.Combine(parse.GetValue(dir)!, $"vimdense-bench-json-{Guid.NewGuid():N}.json");
            try
            {
                var clock = Stopwatch.StartNew();
                long bytes = SyntheticCocoJson.WriteTrainShaped(path, parse.GetValue(images), parse.GetValue(annotations), parse.GetValue(vertices));
                double fileMb = bytes / 1048576.0;
                Console.WriteLine($"wrote {path}: {fileMb:F1} MB ({parse.GetValue(images)} images, {parse.GetValue(annotations)} annotations) in {clock.Elapsed.TotalSeconds:F1} s");
                // Categories first, while the heap holds nothing of the full load: what evaluation-only uses read of a training file.
                var (categories, categoriesOnly) = MeasureLoad(() => CocoDataset.LoadCategories(path));
                var (coco, load) = MeasureLoad(() => CocoDataset.Load(path));
                long polygons = 0, coordinates = 0, runs = 0;
                foreach (var a in coco.Annotations)
                {
                    if (a.Segmentation?.Polygons is { } p)
                    {
                        polygons += p.Count;
                        foreach (var xy in p) coordinates += xy.Length;
                    }
                    runs += a.Segmentation?.UncompressedCounts?.Length ?? 0;
                }
                Console.WriteLine($"parsed {coco.Images.Count} images, {coco.Annotations.Count} annotations, {polygons} polygons, {coordinates} coordinates, {runs} RLE runs");
                Console.WriteLine($"  payload: {(coordinates * 8 + runs * 4) / 1048576.0:F0} MB of coordinates (float64) and runs (uint32)");
                Report("streaming CocoDataset.Load", load, fileMb);
                Report($"CocoDataset.LoadCategories ({categories.Count} categories; images and annotations skipped)", categoriesOnly, fileMb);
                Console.WriteLine($"  categories alone against the full load: {load.Seconds / categoriesOnly.Seconds:F1}x less wall time, " +
                    $"{load.CpuSeconds / categoriesOnly.CpuSeconds:F1}x less CPU, managed heap peak +{categoriesOnly.PeakManagedBytes / 1048576.0:F0} MB " +
                    $"against +{load.PeakManagedBytes / 1048576.0:F0} MB, RSS peak +{(categoriesOnly.PeakRssBytes - categoriesOnly.RssBeforeBytes) / 1048576.0:F0} MB " +
                    $"against +{(load.PeakRssBytes - load.RssBeforeBytes) / 1048576.0:F0} MB");
                if (parse.GetValue(imageFiles)) MeasureImageFileCheck(coco, path, parse.GetValue(dir)!);
                GC.KeepAlive(coco);
                coco = null;
                if (parse.GetValue(document))
                {
                    var (doc, tree) = MeasureLoad(() =>
                    {
                        using var stream = File.OpenRead(path);
                        return JsonDocument.Parse(stream);
                    });
                    Report("JsonDocument.Parse alone (no records)", tree, fileMb);
                    doc.Dispose();
                }
            }
            finally
            {
                File.Delete(path);
            }
            return 0;
        });
        return bench;
    }

    /// <summary>The cost the datasets add at load by checking that every listed image exists (`--image-files`).</summary>
    private static void MeasureImageFileCheck(CocoDataset coco, string annotationFile, string dir)
    {
        var imageDir = Path.Combine(dir, $"vimdense-bench-images-{Guid.NewGuid():N}");
        try
        {
            var clock = Stopwatch.StartNew();
            CreateEmptyImageFiles(coco, imageDir);
            Console.WriteLine($"created {coco.Images.Count} empty image files in {imageDir} in {clock.Elapsed.TotalSeconds:F1} s");
            for (int round = 1; round <= 3; round++)
            {
                clock.Restart();
                int missing = CocoInstanceDataset.MissingImageFiles(coco.Images, imageDir).Count;
                Console.WriteLine($"  image-file check, round {round}: {clock.Elapsed.TotalSeconds:F3} s for {coco.Images.Count} files " +
                    $"({1e6 * clock.Elapsed.TotalSeconds / Math.Max(1, coco.Images.Count):F2} µs each, {Environment.ProcessorCount} cores; {missing} missing)");
            }
            clock.Restart();
            var dataset = new CocoInstanceDataset(coco, annotationFile, imageDir);
            Console.WriteLine($"training dataset (annotation index + image-file check): {clock.Elapsed.TotalSeconds:F2} s ({dataset.Count} images kept)");
        }
        finally
        {
            if (Directory.Exists(imageDir)) Directory.Delete(imageDir, recursive: true);
        }
    }

    private sealed record LoadMeasurement(double Seconds, double CpuSeconds, long PeakManagedBytes, long RetainedManagedBytes, long RssBeforeBytes, long PeakRssBytes, bool PeakRssExact);

    private static void Report(string what, LoadMeasurement m, double fileMb)
    {
        const double Mb = 1048576.0;
        // CPU seconds beside wall seconds: on a shared machine the wall clock also counts time spent waiting for a core.
        Console.WriteLine($"{what}: {m.Seconds:F2} s wall, {m.CpuSeconds:F2} s CPU ({fileMb / m.Seconds:F0} MB/s wall); managed heap peak +{m.PeakManagedBytes / Mb:F0} MB " +
            $"({m.PeakManagedBytes / Mb / fileMb:F2}x file), retained +{m.RetainedManagedBytes / Mb:F0} MB ({m.RetainedManagedBytes / Mb / fileMb:F2}x file); " +
            $"RSS {m.RssBeforeBytes / Mb:F0} MB before, peak {m.PeakRssBytes / Mb:F0} MB (+{(m.PeakRssBytes - m.RssBeforeBytes) / Mb:F0} MB, " +
            $"{(m.PeakRssBytes - m.RssBeforeBytes) / Mb / fileMb:F2}x file){(m.PeakRssExact ? "" : "; RSS peak sampled every 5 ms")}");
    }

    /// <summary>
    /// Times <paramref name="load"/> and records the managed heap (sampled every 5 ms, and after a full
    /// collection with the result alive) and the resident set (the kernel's high-water mark, reset first
    /// through /proc/self/clear_refs where allowed, otherwise sampled).
    /// </summary>
    private static (T Result, LoadMeasurement Measurement) MeasureLoad<T>(Func<T> load)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        long managedBefore = GC.GetTotalMemory(forceFullCollection: true);
        bool exactPeak = TryResetPeakRss();
        long rssBefore = ProcessMemory.ResidentBytes();
        long peakManaged = managedBefore, peakRss = rssBefore;
        using var stop = new ManualResetEventSlim();
        var sampler = new Thread(() =>
        {
            do
            {
                peakManaged = Math.Max(peakManaged, GC.GetTotalMemory(false));
                if (!exactPeak) peakRss = Math.Max(peakRss, ProcessMemory.ResidentBytes());
            }
            while (!stop.Wait(5));
        }) { IsBackground = true };
        sampler.Start();
        using var process = Process.GetCurrentProcess();
        var cpuBefore = process.TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        var result = load();
        double seconds = clock.Elapsed.TotalSeconds;
        process.Refresh();
        double cpuSeconds = (process.TotalProcessorTime - cpuBefore).TotalSeconds;
        stop.Set();
        sampler.Join();
        peakManaged = Math.Max(peakManaged, GC.GetTotalMemory(false));
        if (exactPeak) peakRss = ProcessMemory.PeakResidentBytes();
        long retained = GC.GetTotalMemory(forceFullCollection: true) - managedBefore;
        GC.KeepAlive(result);
        return (result, new LoadMeasurement(seconds, cpuSeconds, peakManaged - managedBefore, retained, rssBefore, peakRss, exactPeak));
    }

    /// <summary>Writing 5 to /proc/self/clear_refs resets VmHWM (Linux 4.0+), so the peak covers only what follows.</summary>
    private static bool TryResetPeakRss()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return ProcessMemory.PeakResidentBytes() <= ProcessMemory.ResidentBytes() + (64L << 20);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
