using Vim.Core;
using Vim.Data.Coco;
using Vim.Data.Masks;

namespace Vim.Data.Datasets;

/// <summary>
/// COCO instances as training/evaluation samples on top of <see cref="CocoDataset"/>: contiguous class
/// indices (the <see cref="Categories"/> map converts back for results), xyxy boxes, lazily decoded
/// polygon/RLE masks, crowd flags. Records that cannot be used are either errors naming the file and
/// the annotation (unknown image or category, malformed polygon, RLE of the wrong size or sum, an image
/// file missing under the image folder: all found when the dataset is built) or, for
/// degenerate geometry that real datasets contain, skipped and counted in <see cref="Warnings"/>.
/// </summary>
public sealed class CocoInstanceDataset : ISampleSource
{
    public const string DegenerateBox = "annotation with a zero/negative-size or non-finite box";
    public const string MissingBox = "annotation without a bbox";
    public const string BoxOutsideImage = "annotation whose box lies outside its image";
    public const string DegeneratePolygon = "annotation whose polygons enclose no area";
    public const string PolygonTooShort = "annotation whose polygons all have fewer than 3 points";

    private readonly CocoDataset _coco;
    private readonly string _source;
    private readonly string _imageRoot;
    private readonly CocoImage[] _images;
    private readonly Dictionary<long, List<(CocoAnnotation Ann, int Index)>> _byImage;
    private readonly Lazy<HashSet<long>> _imagesWithObjects;
    private bool _imageFilesFound;

    /// <summary>How many missing file names an error lists.</summary>
    private const int ListedMissing = 5;

    public CocoInstanceDataset(CocoDataset coco, string source, string imageRoot, CocoInstanceOptions? options = null)
    {
        _coco = coco;
        _source = source;
        _imageRoot = imageRoot;
        Options = options ?? new CocoInstanceOptions();
        Categories = CategoryMap.FromCategories(coco.Categories, source);
        _byImage = new Dictionary<long, List<(CocoAnnotation, int)>>();
        for (int i = 0; i < coco.Annotations.Count; i++)
        {
            var a = coco.Annotations[i];
            string where = $"{source}: annotations[{i}] (id {a.Id})";
            if (!coco.ImagesById.TryGetValue(a.ImageId, out var image))
                throw new VimException($"{where}: image_id {a.ImageId} is not among the file's images.");
            if (!Categories.TryGetClassIndex(a.CategoryId, out _))
                throw new VimException($"{where}: category_id {a.CategoryId} is not among the file's categories (ids {string.Join(", ", Categories.CategoryIds)}).");
            if (!Usable(a, image, where)) continue;
            if (!_byImage.TryGetValue(a.ImageId, out var list)) _byImage[a.ImageId] = list = [];
            list.Add((a, i));
        }
        var kept = new List<CocoImage>(coco.Images.Count);
        var filter = Options.FilterCfg;
        // mmdet's filter_empty_gt asks the json's category-to-image index, which lists every annotation: crowd regions and
        // annotations too degenerate to train on included.
        var annotated = filter is { FilterEmptyGt: true } ? coco.Annotations.Select(a => a.ImageId).ToHashSet() : null;
        for (int i = 0; i < coco.Images.Count; i++)
        {
            var image = coco.Images[i];
            if (string.IsNullOrEmpty(image.FileName))
                throw new VimException($"{source}: images[{i}] (id {image.Id}): missing field \"file_name\".");
            if (filter is null)
            {
                bool hasInstance = _byImage.TryGetValue(image.Id, out var anns) && anns.Any(x => !x.Ann.IsCrowd);
                if (!hasInstance && Options.SkipImagesWithoutAnnotations) { ImagesWithoutObjectsSkipped++; continue; }
            }
            else
            {
                if (annotated is not null && !annotated.Contains(image.Id)) { ImagesWithoutObjectsSkipped++; continue; }
                if (filter.MinSize > 0 && (image.Width <= 0 || image.Height <= 0))
                    throw new VimException($"{source}: images[{i}] (id {image.Id}, '{image.FileName}') has no width/height, which data.filter_cfg.min_size " +
                        $"{filter.MinSize} compares with; add them (COCO's instances files have them) or remove min_size");
                if (Math.Min(image.Width, image.Height) < filter.MinSize) { ImagesBelowMinSizeSkipped++; continue; }
            }
            kept.Add(image);
        }
        _images = kept.ToArray();
        _imagesWithObjects = new Lazy<HashSet<long>>(() => coco.Annotations.Where(a => !a.IsCrowd).Select(a => a.ImageId).ToHashSet());
        if (Options.CheckImageFiles) RequireImageFiles();
    }

    /// <summary>
    /// Refuses images the json lists that are not files under the image folder, naming the json, the count, the first
    /// few file_names and the folder: found when the dataset is built rather than when the loader reaches the image,
    /// which may be hours into training or mid-evaluation. Every listed image counts, also those training skips: the
    /// same json serves evaluation, which reads them all. Checked once per dataset.
    /// </summary>
    public void RequireImageFiles()
    {
        if (_imageFilesFound) return;
        var missing = MissingImageFiles(_coco.Images, _imageRoot);
        if (missing.Count > 0)
            throw new VimException($"{_source}: {missing.Count} of the {_coco.Images.Count} images it lists not found in {_imageRoot} " +
                $"({(missing.Count > ListedMissing ? $"first {ListedMissing}" : "file_name")}: {string.Join(", ", missing.Take(ListedMissing).Select(i => i.FileName))}); " +
                "expected each images[i].file_name to be a file in that folder.");
        _imageFilesFound = true;
    }

    /// <summary>
    /// The images whose file_name is not a file under <paramref name="imageRoot"/>, in the given order. The checks run in
    /// parallel: on a network file system each is a round trip, and train2017 lists 118k images.
    /// </summary>
    public static IReadOnlyList<CocoImage> MissingImageFiles(IReadOnlyList<CocoImage> images, string imageRoot)
    {
        var absent = new bool[images.Count];
        Parallel.For(0, images.Count, i => absent[i] = !File.Exists(Path.Combine(imageRoot, images[i].FileName!)));
        var missing = new List<CocoImage>();
        for (int i = 0; i < images.Count; i++)
            if (absent[i]) missing.Add(images[i]);
        return missing;
    }

    /// <summary>Reads an instances json (via <see cref="CocoDataset.Load"/>) with images under <paramref name="imageRoot"/>.</summary>
    public static CocoInstanceDataset Load(string annotationFile, string imageRoot, CocoInstanceOptions? options = null) =>
        new(CocoDataset.Load(annotationFile), annotationFile, imageRoot, options);

    public CocoInstanceOptions Options { get; }

    /// <summary>The json's images left out for holding no object (<see cref="CocoInstanceOptions.SkipImagesWithoutAnnotations"/>, or filter_cfg's filter_empty_gt).</summary>
    public int ImagesWithoutObjectsSkipped { get; }

    /// <summary>The json's images left out as narrower or lower than filter_cfg's min_size.</summary>
    public int ImagesBelowMinSizeSkipped { get; }

    /// <summary>What the annotations were read from (the json file): how errors about them name it.</summary>
    public string AnnotationSource => _source;

    /// <summary>The parsed annotation file, all images and annotations included (the ground truth for evaluation).</summary>
    public CocoDataset Coco => _coco;
    public CategoryMap Categories { get; }
    public DatasetWarnings Warnings { get; } = new();
    public CocoDataset Source => _coco;
    public int Count => _images.Length;
    public IReadOnlyList<CocoImage> Images => _images;

    /// <summary>The image folder the file_names are relative to.</summary>
    public string ImageRoot => _imageRoot;

    /// <summary>Where an image of this dataset lives: its file_name under the image folder.</summary>
    public string ImagePath(CocoImage image) => Path.Combine(_imageRoot, image.FileName!);

    /// <summary>
    /// Whether <paramref name="image"/> holds an object: a non-crowd annotation in the json, as the evaluation's ground
    /// truth counts it (one training skips for its box counts too); an image with crowd regions alone, or none, holds
    /// none. What picks the images `vim test --overlays` draws, the robustness grid's sample and the demo report's count
    /// of empty images. Training's <see cref="CocoInstanceOptions.SkipImagesWithoutAnnotations"/> asks more: a usable one.
    /// </summary>
    public bool HoldsObject(CocoImage image) => _imagesWithObjects.Value.Contains(image.Id);

    /// <summary>The dataset's images (<see cref="Images"/>, in order) that hold an object (<see cref="HoldsObject"/>).</summary>
    public IEnumerable<CocoImage> ImagesWithObjects() => _images.Where(HoldsObject);

    /// <summary>
    /// The classes of sample <paramref name="index"/>'s annotations, each once, read from the json without decoding the
    /// image: the annotations training keeps (usable boxes), crowd regions included, as MMDetection's get_cat_ids and
    /// detectron2's repeat factors count them (the image shows the class, though the losses ignore the region).
    /// </summary>
    public IEnumerable<int> ClassesIn(int index) =>
        _byImage.TryGetValue(_images[index].Id, out var anns) ? anns.Select(x => Categories.ToClassIndex(x.Ann.CategoryId)).Distinct() : [];

    public DataSample Load(int index)
    {
        var image = _images[index];
        var path = ImagePath(image);
        var (rgb, h, w) = ImageDecoder.ReadRgb(path);
        if ((image.Height > 0 && image.Height != h) || (image.Width > 0 && image.Width != w))
            throw new VimException($"{path}: decoded size {w}x{h} differs from {_source} image id {image.Id} ({image.Width}x{image.Height}).");
        var anns = _byImage.TryGetValue(image.Id, out var list) ? list : [];
        var boxes = new float[anns.Count * 4];
        var labels = new int[anns.Count];
        var crowd = new bool[anns.Count];
        var ids = new long[anns.Count];
        var masks = Options.WithMasks && Options.MasksOnSamples ? new List<InstanceMask>(anns.Count) : null;
        var keep = new bool[anns.Count];
        for (int i = 0; i < anns.Count; i++)
        {
            var (a, annIndex) = anns[i];
            var b = a.Bbox!;
            float x1 = Math.Clamp((float)b[0], 0, w), y1 = Math.Clamp((float)b[1], 0, h);
            float x2 = Math.Clamp((float)(b[0] + b[2]), 0, w), y2 = Math.Clamp((float)(b[1] + b[3]), 0, h);
            keep[i] = x2 > x1 && y2 > y1;
            if (!keep[i]) Warnings.Add(BoxOutsideImage, $"{_source}: annotations[{annIndex}] (id {a.Id}) box [{string.Join(", ", b)}] vs image {w}x{h}");
            boxes[4 * i] = x1; boxes[4 * i + 1] = y1; boxes[4 * i + 2] = x2; boxes[4 * i + 3] = y2;
            labels[i] = Categories.ToClassIndex(a.CategoryId);
            crowd[i] = a.IsCrowd;
            ids[i] = a.Id;
            if (masks is not null)
            {
                var outlines = a.Segmentation!.Kind == CocoSegmentationKind.Polygons ? TrainingOutlines(a.Segmentation.Polygons!) : null;
                var segmentation = outlines is not null ? CocoSegmentation.FromPolygons(outlines) : a.Segmentation;
                string where = $"{_source}: annotations[{annIndex}] (id {a.Id})";
                masks.Add(new InstanceMask(h, w, () => DecodeMask(segmentation, h, w, where), outlines));
            }
        }
        var sample = new DataSample(image.Id, path, rgb, h, w)
        {
            Boxes = boxes, Labels = labels, IsCrowd = crowd, AnnotationIds = ids, Masks = masks,
        };
        sample.KeepInstances(keep);
        return sample;
    }

    private static byte[] DecodeMask(CocoSegmentation segmentation, int h, int w, string where)
    {
        Rle rle;
        try
        {
            rle = segmentation.ToRle(h, w);
        }
        catch (ArgumentException e)
        {
            throw new VimException($"{where}: bad segmentation: {e.Message}", e);
        }
        if (rle.Height != h || rle.Width != w)
            throw new VimException($"{where}: RLE size {rle.Height}x{rle.Width} differs from the image ({h}x{w}).");
        return rle.Decode();
    }

    /// <summary>Validates one annotation; false (with a counted warning) for records training should skip.</summary>
    private bool Usable(CocoAnnotation a, CocoImage image, string where)
    {
        var b = a.Bbox;
        if (b is null)
        {
            Warnings.Add(MissingBox, where);
            return false;
        }
        if (!b.All(double.IsFinite) || b[2] <= 0 || b[3] <= 0)
        {
            Warnings.Add(DegenerateBox, $"{where}: bbox [{string.Join(", ", b)}]");
            return false;
        }
        if (image.Width > 0 && image.Height > 0 && (b[0] >= image.Width || b[1] >= image.Height || b[0] + b[2] <= 0 || b[1] + b[3] <= 0))
        {
            Warnings.Add(BoxOutsideImage, $"{where}: bbox [{string.Join(", ", b)}] vs image {image.Width}x{image.Height}");
            return false;
        }
        if (!Options.WithMasks) return true;
        var s = a.Segmentation;
        if (s is null)
            throw new VimException($"{where}: missing or empty \"segmentation\"; expected polygons or an RLE object (or train without masks).");
        switch (s.Kind)
        {
            case CocoSegmentationKind.Polygons:
                // Outlines of fewer than 3 points are left out of training masks, as detectron2's and mmdet's loaders
                // do (a first one of 4 numbers is not read as pycocotools' [x, y, w, h] box form: that would train a
                // two-point outline as a filled rectangle); an instance with no outline left is skipped.
                for (int p = 0; p < s.Polygons!.Count; p++)
                    if (!s.Polygons[p].All(double.IsFinite))
                        throw new VimException($"{where}: segmentation polygon {p} has a non-finite coordinate.");
                var outlines = TrainingOutlines(s.Polygons);
                if (outlines.Count == 0)
                {
                    Warnings.Add(PolygonTooShort, $"{where}: {s.Polygons.Count} outline(s) of {string.Join(", ", s.Polygons.Select(xy => xy.Length))} numbers");
                    return false;
                }
                bool anyArea = outlines.Any(xy => !Collinear(xy));
                if (!anyArea)
                {
                    Warnings.Add(DegeneratePolygon, where);
                    return false;
                }
                return true;
            case CocoSegmentationKind.CompressedRle:
                uint[] counts;
                try
                {
                    counts = RleStringCodec.Decode(s.CompressedCounts!);
                }
                catch (Exception e) when (e is ArgumentException or FormatException or IndexOutOfRangeException)
                {
                    throw new VimException($"{where}: \"segmentation.counts\" is not a valid compressed RLE string ({e.Message}).", e);
                }
                long total = 0;
                foreach (var c in counts) total += c;
                if (total != (long)s.RleHeight * s.RleWidth)
                    throw new VimException($"{where}: \"segmentation.counts\" sum to {total}, expected height*width = {(long)s.RleHeight * s.RleWidth}.");
                return CheckRleSize(s, image, where);
            default:
                return CheckRleSize(s, image, where);
        }
    }

    /// <summary>The outlines a training mask is drawn from: those of at least 3 points.</summary>
    private static List<double[]> TrainingOutlines(IReadOnlyList<double[]> polygons) => polygons.Where(xy => xy.Length >= 6).ToList();

    private static bool CheckRleSize(CocoSegmentation s, CocoImage image, string where)
    {
        if (image.Width > 0 && image.Height > 0 && (s.RleHeight != image.Height || s.RleWidth != image.Width))
            throw new VimException($"{where}: RLE size [{s.RleHeight}, {s.RleWidth}] differs from image id {image.Id} ({image.Height}x{image.Width}).");
        return true;
    }

    /// <summary>
    /// True when every vertex lies on one line (the outline encloses nothing). Self-intersecting outlines
    /// are not degenerate: their signed area can cancel to zero while the even-odd fill still covers pixels.
    /// </summary>
    private static bool Collinear(double[] xy)
    {
        double x0 = xy[0], y0 = xy[1];
        int n = xy.Length / 2;
        int far = 1;
        for (int i = 2; i < n; i++)
            if (Math.Abs(xy[2 * i] - x0) + Math.Abs(xy[2 * i + 1] - y0) > Math.Abs(xy[2 * far] - x0) + Math.Abs(xy[2 * far + 1] - y0)) far = i;
        double dx = xy[2 * far] - x0, dy = xy[2 * far + 1] - y0;
        double length = Math.Sqrt(dx * dx + dy * dy);
        if (length == 0) return true;
        for (int i = 1; i < n; i++)
        {
            // Distance of vertex i from the line through vertex 0 and the farthest vertex.
            double cross = dx * (xy[2 * i + 1] - y0) - dy * (xy[2 * i] - x0);
            if (Math.Abs(cross) / length > 1e-9) return false;
        }
        return true;
    }
}
