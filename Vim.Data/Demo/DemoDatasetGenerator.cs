using OpenCvSharp;
using Vim.Core;
using Vim.Data.Coco;
using Vim.Data.Evaluation;
using Vim.Data.Loading;
using Vim.Data.Masks;
using Vim.Core.IO;

namespace Vim.Data.Demo;

/// <summary>
/// Writes a small deterministic dataset in the real COCO or ADE20k layout: textured backgrounds, five
/// shape classes with overlaps, crowd regions (iscrowd=1, uncompressed RLE) and some empty images.
/// COCO instances are exact polygons when fully visible and compressed RLE of the visible part when
/// occluded; ADE label PNGs use 0 for background (ignored with reduce_zero_label) and class k+1.
/// Every file is written atomically.
/// </summary>
public static class DemoDatasetGenerator
{
    /// <summary>Demo class names in contiguous-index order.</summary>
    public static IReadOnlyList<string> ClassNames => DemoScene.ClassNames;

    /// <summary>COCO category ids of the demo classes: deliberately non-contiguous, like COCO's.</summary>
    public static IReadOnlyList<long> CategoryIds { get; } = [1, 2, 4, 7, 9];

    /// <summary>Every 8th image (index 7, 15, …) has no objects.</summary>
    public static bool IsEmptyImage(int index) => index % 8 == 7;

    /// <summary>Every 4th image from index 1 carries a crowd region (unless empty).</summary>
    public static bool HasCrowd(int index) => index % 4 == 1 && !IsEmptyImage(index);

    public static DemoSummary Generate(DemoOptions options)
    {
        if (options.TrainImages <= 0 || options.ValImages <= 0)
            throw new VimException($"demo data: --images must be positive (train {options.TrainImages}, val {options.ValImages}).");
        if (options.Width < 32 || options.Height < 32 || options.Width > 4096 || options.Height > 4096)
            throw new VimException($"demo data: --size {options.Width}x{options.Height} must be between 32 and 4096 on each side.");
        if (options.ImageExtension is not (".jpg" or ".png"))
            throw new VimException($"demo data: image extension \"{options.ImageExtension}\" must be .jpg or .png.");
        var totals = new int[5];
        foreach (var (split, count, splitIndex) in new[] { ("train", options.TrainImages, 0), ("val", options.ValImages, 1) })
        {
            var summary = options.Kind == DemoKind.Coco ? WriteCoco(options, split, count, splitIndex) : WriteAde(options, split, count, splitIndex);
            totals[0] += summary.Images; totals[1] += summary.Instances; totals[2] += summary.CrowdRegions;
            totals[3] += summary.EmptyImages; totals[4] += summary.OccludedInstances;
        }
        if (options.Kind == DemoKind.Ade)
            AtomicFile.WriteText(Path.Combine(options.OutputDir, "class_names.txt"), string.Join('\n', ClassNames) + "\n");
        return new DemoSummary(totals[0], totals[1], totals[2], totals[3], totals[4]);
    }

    private static DemoScene Scene(DemoOptions o, int splitIndex, int i) =>
        DemoScene.Generate(new Random(SampleSeeds.Mix(o.Seed, splitIndex, i)), o.Height, o.Width, IsEmptyImage(i), HasCrowd(i));

    private static DemoSummary WriteCoco(DemoOptions o, string split, int count, int splitIndex)
    {
        int crowds = 0, empty = 0, occluded = 0;
        var images = new List<CocoImage>(count);
        var annotations = new List<CocoAnnotation>();
        for (int i = 0; i < count; i++)
        {
            images.Add(new CocoImage(i + 1, o.Width, o.Height, FileName(i, o.ImageExtension)));
            var scene = Scene(o, splitIndex, i);
            WriteImage(Path.Combine(o.OutputDir, split, FileName(i, o.ImageExtension)), scene);
            if (scene.Objects.Count == 0) empty++;
            foreach (var obj in scene.Objects)
            {
                var rle = Rle.Encode(obj.VisibleMask, o.Height, o.Width);
                CocoSegmentation segmentation;
                if (obj.IsCrowd)
                {
                    segmentation = CocoSegmentation.FromUncompressed(rle.Counts, o.Height, o.Width);
                    crowds++;
                }
                else if (obj.Occluded)
                {
                    segmentation = CocoSegmentation.FromRle(rle);
                    occluded++;
                }
                else segmentation = CocoSegmentation.FromPolygons([obj.Polygon!]);
                annotations.Add(new CocoAnnotation(annotations.Count + 1, i + 1, CategoryIds[obj.ClassIndex], rle.ToBbox(), rle.Area,
                    obj.IsCrowd, segmentation));
            }
        }
        var categories = Enumerable.Range(0, ClassNames.Count).Select(c => new CocoCategory(CategoryIds[c], ClassNames[c], "shape")).ToArray();
        CocoDatasetFile.Save(Path.Combine(o.OutputDir, "annotations", $"instances_{split}.json"), new CocoDataset(images, annotations, categories),
            $"VimDense synthetic shapes ({split}, seed {o.Seed})");
        return new DemoSummary(count, annotations.Count, crowds, empty, occluded);
    }

    private static DemoSummary WriteAde(DemoOptions o, string split, int count, int splitIndex)
    {
        string folder = split == "train" ? "training" : "validation";
        int instances = 0, crowds = 0, empty = 0, occluded = 0;
        for (int i = 0; i < count; i++)
        {
            var scene = Scene(o, splitIndex, i);
            string stem = $"ADE_{split}_{i + 1:D8}";
            WriteImage(Path.Combine(o.OutputDir, "images", folder, stem + ".jpg"), scene, forceExtension: ".jpg");
            var labels = new byte[o.Height * o.Width];
            foreach (var obj in scene.Objects)
            {
                for (int p = 0; p < labels.Length; p++) if (obj.FullMask[p] != 0) labels[p] = (byte)(obj.ClassIndex + 1);
                instances++;
                if (obj.IsCrowd) crowds++;
                if (obj.Occluded) occluded++;
            }
            if (scene.Objects.Count == 0) empty++;
            WriteGrayPng(Path.Combine(o.OutputDir, "annotations", folder, stem + ".png"), labels, o.Height, o.Width);
        }
        return new DemoSummary(count, instances, crowds, empty, occluded);
    }

    private static string FileName(int i, string extension) => $"{i + 1:D12}{extension}";

    private static unsafe void WriteImage(string path, DemoScene scene, string? forceExtension = null)
    {
        string extension = forceExtension ?? Path.GetExtension(path);
        byte[] encoded;
        fixed (byte* p = scene.Rgb)
        {
            using var rgb = Mat.FromPixelData(scene.Height, scene.Width, MatType.CV_8UC3, (IntPtr)p);
            using var bgr = new Mat();
            Cv2.CvtColor(rgb, bgr, ColorConversionCodes.RGB2BGR);
            int[] flags = extension == ".jpg" ? [(int)ImwriteFlags.JpegQuality, 95] : [];
            Cv2.ImEncode(extension, bgr, out encoded, flags);
        }
        AtomicFile.Write(path, s => s.Write(encoded));
    }

    private static unsafe void WriteGrayPng(string path, byte[] pixels, int height, int width)
    {
        byte[] encoded;
        fixed (byte* p = pixels)
        {
            using var mat = Mat.FromPixelData(height, width, MatType.CV_8UC1, (IntPtr)p);
            Cv2.ImEncode(".png", mat, out encoded);
        }
        AtomicFile.Write(path, s => s.Write(encoded));
    }
}
