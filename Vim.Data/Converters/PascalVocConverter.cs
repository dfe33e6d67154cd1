using System.Globalization;
using System.Xml;
using System.Xml.Linq;
using Vim.Core;
using Vim.Data.Coco;

namespace Vim.Data.Converters;

/// <summary>
/// Pascal VOC's XML annotations as COCO instances json, one file per (years, split), as MMDetection's
/// tools/dataset_converters/pascal_voc.py writes them with --out-format coco: its 20 classes in its order, every image of
/// VOC{year}/ImageSets/Main/{split}.txt with the size its XML gives and file_name VOC{year}/JPEGImages/{id}.jpg (relative to
/// the VOCdevkit folder, which is therefore the image folder), boxes moved from VOC's 1-based pixel indices to 0-based
/// (each corner − 1, so width = xmax − xmin, height = ymax − ymin, area = width · height), the box's four corners as the
/// polygon, difficult objects kept as crowd regions (iscrowd 1), after the image's other objects. Departure: ids are
/// 1-based (categories 1..20, images and annotations from 1) where mmdet numbers all three from 0, because pycocotools'
/// COCOeval can never count a ground truth of annotation id 0 as matched; the classes and their order are mmdet's.
/// </summary>
public static class PascalVocConverter
{
    /// <summary>VOC's classes in mmdet's order (voc_classes()); category id k + 1 is class k.</summary>
    public static IReadOnlyList<string> ClassNames { get; } =
    [
        "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable", "dog", "horse",
        "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
    ];

    /// <summary>The splits mmdet's converter writes: every year's train, val, trainval and test.</summary>
    public static IReadOnlyList<string> DefaultSplits { get; } = ["train", "val", "trainval", "test"];

    /// <summary>One object of an XML file: its class index, box in VOC's 1-based inclusive pixel indices, and difficult flag.</summary>
    public sealed record VocObject(int ClassIndex, int XMin, int YMin, int XMax, int YMax, bool Difficult);

    /// <summary>One XML file: the image's path under the VOCdevkit folder, its size and objects in file order.</summary>
    public sealed record VocImage(string FileName, int Width, int Height, IReadOnlyList<VocObject> Objects);

    /// <summary>A json written: its path, the (years, split) it holds and how many images and annotations.</summary>
    public sealed record Written(string Path, string Name, int Images, int Annotations);

    /// <summary>
    /// Writes voc07_{split}.json / voc12_{split}.json for each year and split whose list file exists (a missing one is
    /// skipped with a note, as mmdet skips it), and voc0712_{split}.json for every split but test when both years are
    /// given, into <paramref name="outDir"/>.
    /// </summary>
    public static IReadOnlyList<Written> Convert(string devkit, string outDir, IReadOnlyList<string> years, IReadOnlyList<string> splits, TextWriter? log)
    {
        if (!Directory.Exists(devkit)) throw new VimException($"--root {devkit}: VOCdevkit folder not found.");
        foreach (var year in years)
            if (year is not ("2007" or "2012"))
                throw new VimException($"--years: expected 2007 and/or 2012, got \"{year}\".");
        var groups = years.Select(y => new[] { y }).ToList();
        if (years.Contains("2007") && years.Contains("2012")) groups.Add(["2007", "2012"]);
        var written = new List<Written>();
        foreach (var group in groups)
        {
            string prefix = group.Length == 2 ? "voc0712" : group[0] == "2007" ? "voc07" : "voc12";
            foreach (var split in splits)
            {
                // mmdet writes no combined test set: VOC2012's test annotations were never released.
                if (group.Length == 2 && split == "test") continue;
                string name = $"{prefix}_{split}";
                var lists = group.Select(y => Path.Combine(devkit, $"VOC{y}", "ImageSets", "Main", $"{split}.txt")).ToArray();
                if (lists.FirstOrDefault(l => !File.Exists(l)) is { } missing)
                {
                    log?.WriteLine($"{name}: skipped, {missing} not found");
                    continue;
                }
                var images = new List<VocImage>();
                for (int g = 0; g < group.Length; g++) images.AddRange(ReadSplit(devkit, group[g], lists[g], log));
                var coco = ToCoco(images);
                string path = Path.Combine(outDir, name + ".json");
                CocoDatasetFile.Save(path, coco);
                written.Add(new Written(path, name, coco.Images.Count, coco.Annotations.Count));
                log?.WriteLine($"{name}: {coco.Images.Count} images, {coco.Annotations.Count} annotations " +
                    $"({coco.Annotations.Count(a => a.IsCrowd)} difficult, as iscrowd 1) → {path}");
            }
        }
        if (written.Count == 0)
            throw new VimException($"--root {devkit}: none of the split lists VOC<year>/ImageSets/Main/<split>.txt exists for years {string.Join(",", years)} " +
                $"and splits {string.Join(",", splits)}; nothing written.");
        return written;
    }

    /// <summary>The XML files a split list names, parsed in parallel, in the list's order.</summary>
    private static VocImage[] ReadSplit(string devkit, string year, string listFile, TextWriter? log)
    {
        var ids = File.ReadAllLines(listFile).Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();
        if (ids.Length == 0) throw new VimException($"{listFile}: the split list is empty; expected one image id per line.");
        var images = new VocImage[ids.Length];
        var progress = new ItemProgress(log, ids.Length, $"VOC{year} {Path.GetFileNameWithoutExtension(listFile)} annotations");
        ParallelErrors.For(ids.Length, i =>
        {
            images[i] = ParseXml(Path.Combine(devkit, $"VOC{year}", "Annotations", ids[i] + ".xml"), $"VOC{year}/JPEGImages/{ids[i]}.jpg");
            progress.Advance();
        });
        return images;
    }

    /// <summary>Reads one annotation XML; <paramref name="fileName"/> is the image's path the json records.</summary>
    public static VocImage ParseXml(string xmlPath, string fileName)
    {
        if (!File.Exists(xmlPath)) throw new VimException($"{xmlPath}: annotation file not found (named by the split list).");
        XElement root;
        try
        {
            root = XDocument.Load(xmlPath).Root ?? throw new VimException($"{xmlPath}: empty XML document.");
        }
        catch (XmlException e)
        {
            throw new VimException($"{xmlPath}: not well-formed XML: {e.Message}");
        }
        var size = root.Element("size") ?? throw new VimException($"{xmlPath}: <size> missing; expected <size><width>…</width><height>…</height></size>.");
        int width = Integer(size, "width", xmlPath, "<size>"), height = Integer(size, "height", xmlPath, "<size>");
        if (width <= 0 || height <= 0) throw new VimException($"{xmlPath}: <size> is {width}x{height}; expected a positive width and height.");
        var objects = new List<VocObject>();
        int index = 0;
        foreach (var obj in root.Elements("object"))
        {
            index++;
            string where = $"<object> {index}";
            var name = obj.Element("name")?.Value.Trim() ?? throw new VimException($"{xmlPath}: {where} has no <name>.");
            int classIndex = IndexOf(name);
            if (classIndex < 0)
                throw new VimException($"{xmlPath}: {where} <name> \"{name}\" is not a VOC class; expected one of {string.Join(", ", ClassNames)}.");
            where += $" ({name})";
            // mmdet's converter requires <difficult>; its VOC dataset reads a missing one as 0, as here.
            var difficultText = obj.Element("difficult")?.Value.Trim();
            bool difficult = difficultText switch
            {
                null or "0" => false,
                "1" => true,
                _ => throw new VimException($"{xmlPath}: {where} <difficult> is \"{difficultText}\"; expected 0 or 1."),
            };
            var box = obj.Element("bndbox") ?? throw new VimException($"{xmlPath}: {where} has no <bndbox>.");
            int xMin = Integer(box, "xmin", xmlPath, where), yMin = Integer(box, "ymin", xmlPath, where);
            int xMax = Integer(box, "xmax", xmlPath, where), yMax = Integer(box, "ymax", xmlPath, where);
            if (xMax < xMin || yMax < yMin)
                throw new VimException($"{xmlPath}: {where} <bndbox> ({xMin}, {yMin}, {xMax}, {yMax}) has xmax < xmin or ymax < ymin.");
            objects.Add(new VocObject(classIndex, xMin, yMin, xMax, yMax, difficult));
        }
        return new VocImage(fileName, width, height, objects);
    }

    private static int IndexOf(string name)
    {
        for (int i = 0; i < ClassNames.Count; i++)
            if (ClassNames[i] == name) return i;
        return -1;
    }

    /// <summary>
    /// A child element's integer. A few VOC2012 files hold coordinates such as "273.5"; they are truncated as mmdet's
    /// VOC dataset reads them (int(float(text))), where its converter's int(text) would stop.
    /// </summary>
    private static int Integer(XElement parent, string child, string xmlPath, string where)
    {
        var text = parent.Element(child)?.Value.Trim() ?? throw new VimException($"{xmlPath}: {where} has no <{child}>.");
        if (int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int value)) return value;
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double real) && Math.Abs(real) < int.MaxValue)
            return (int)Math.Truncate(real);
        throw new VimException($"{xmlPath}: {where} <{child}> is \"{text}\"; expected a number.");
    }

    /// <summary>The images as COCO: ids from 1 in list order, each image's non-difficult objects first, then its difficult ones as crowd regions.</summary>
    public static CocoDataset ToCoco(IReadOnlyList<VocImage> images)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var cocoImages = new List<CocoImage>(images.Count);
        var annotations = new List<CocoAnnotation>();
        for (int i = 0; i < images.Count; i++)
        {
            var image = images[i];
            if (!seen.Add(image.FileName)) throw new VimException($"{image.FileName}: listed twice in the split; each image may appear once.");
            long imageId = i + 1;
            cocoImages.Add(new CocoImage(imageId, image.Width, image.Height, image.FileName));
            foreach (var obj in image.Objects.Where(o => !o.Difficult).Concat(image.Objects.Where(o => o.Difficult)))
                annotations.Add(Annotation(annotations.Count + 1, imageId, obj));
        }
        return new CocoDataset(cocoImages, annotations, CocoDatasetFile.NumberedCategories(ClassNames));
    }

    private static CocoAnnotation Annotation(long id, long imageId, VocObject obj)
    {
        // VOC's indices start at 1 and include xmax: mmdet subtracts 1 from all four, so width is xmax − xmin.
        double x1 = obj.XMin - 1, y1 = obj.YMin - 1, x2 = obj.XMax - 1, y2 = obj.YMax - 1;
        double width = x2 - x1, height = y2 - y1;
        var corners = new[] { x1, y1, x1, y2, x2, y2, x2, y1 };
        return new CocoAnnotation(id, imageId, obj.ClassIndex + 1, [x1, y1, width, height], width * height, obj.Difficult,
            CocoSegmentation.FromPolygons([corners]));
    }
}
