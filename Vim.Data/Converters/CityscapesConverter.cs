using OpenCvSharp;
using Vim.Core;
using Vim.Core.IO;
using Vim.Data.Datasets;

namespace Vim.Data.Converters;

/// <summary>
/// Cityscapes' label maps for semantic segmentation, as MMSegmentation's tools/dataset_converters/cityscapes.py prepares
/// them: beside every gtFine/**/*_gtFine_labelIds.png a *_gtFine_labelTrainIds.png with the 19 training classes (0–18) and
/// 255 for every other label. mmseg draws the polygons of *_gtFine_polygons.json with cityscapesscripts' json2labelImg
/// in 'trainIds'; the labelIds PNG is the same drawing in label ids (license plates, id −1, are not drawn in either), so
/// mapping each pixel's id to its train id gives the same image. mmseg's train.txt/val.txt are not written: the layout
/// keys (data.img_dir, data.seg_map_dir and the suffixes) pair every image below a split's folder, without a list.
/// </summary>
public static class CityscapesConverter
{
    public const string LabelIdSuffix = "_gtFine_labelIds.png";
    public const string TrainIdSuffix = "_gtFine_labelTrainIds.png";
    public const byte Ignore = 255;

    /// <summary>The 19 training classes, train id k the k-th (cityscapesscripts' labels.py; mmseg's CityscapesDataset.METAINFO).</summary>
    public static IReadOnlyList<string> ClassNames { get; } =
    [
        "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation", "terrain", "sky",
        "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
    ];

    /// <summary>
    /// The train id of each label id 0–33 (cityscapesscripts' labels.py): unlabeled, ego vehicle, rectification border,
    /// out of roi, static, dynamic, ground (0–6), parking, rail track (9, 10), guard rail, bridge, tunnel (14–16),
    /// polegroup (18), caravan, trailer (29, 30) are ignored.
    /// </summary>
    private static readonly byte[] TrainIdOfLabelId =
    [
        Ignore, Ignore, Ignore, Ignore, Ignore, Ignore, Ignore, // 0–6
        0, 1, // road 7, sidewalk 8
        Ignore, Ignore, // parking, rail track
        2, 3, 4, // building 11, wall 12, fence 13
        Ignore, Ignore, Ignore, // guard rail, bridge, tunnel
        5, // pole 17
        Ignore, // polegroup 18
        6, 7, 8, 9, 10, 11, 12, 13, 14, 15, // traffic light 19 … bus 28
        Ignore, Ignore, // caravan 29, trailer 30
        16, 17, 18, // train 31, motorcycle 32, bicycle 33
    ];

    /// <summary>The train id of a label id as an 8-bit PNG stores it; 255 is license plate's −1; other ids above 33 do not exist.</summary>
    public static byte? TrainId(byte labelId) => labelId < TrainIdOfLabelId.Length ? TrainIdOfLabelId[labelId] : labelId == 255 ? Ignore : null;

    /// <summary>The label maps converted and the class list written.</summary>
    public sealed record Summary(int LabelMaps, string ClassNamesFile);

    /// <summary>
    /// Converts every labelIds PNG below <paramref name="root"/>/gtFine on <paramref name="threads"/> threads (-1: all
    /// cores), each written atomically beside its source, and writes the 19 class names to
    /// <paramref name="outDir"/>/class_names.txt, where the segmentation data and tools look for them under data.root.
    /// </summary>
    public static Summary Convert(string root, string outDir, int threads, TextWriter? log)
    {
        var gtFine = Path.Combine(root, "gtFine");
        if (!Directory.Exists(gtFine)) throw new VimException($"--root {root}: no gtFine folder; expected Cityscapes' gtFine/{{train,val,test}}/<city>/ label maps.");
        if (threads == 0 || threads < -1) throw new VimException($"--threads: expected a positive thread count or -1 for every core, got {threads}.");
        var files = Directory.EnumerateFiles(gtFine, "*" + LabelIdSuffix, SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray();
        if (files.Length == 0) throw new VimException($"{gtFine}: no *{LabelIdSuffix} files below it.");
        var progress = new ItemProgress(log, files.Length, "label maps");
        ParallelErrors.For(files.Length, i =>
        {
            ConvertFile(files[i], files[i][..^LabelIdSuffix.Length] + TrainIdSuffix);
            progress.Advance();
        }, threads);
        var classFile = Path.Combine(outDir, "class_names.txt");
        AtomicFile.WriteText(classFile, string.Join('\n', ClassNames) + "\n");
        return new Summary(files.Length, classFile);
    }

    /// <summary>One labelIds PNG (8-bit, one channel) as a trainIds PNG.</summary>
    public static void ConvertFile(string labelIdsPath, string trainIdsPath)
    {
        var file = File.ReadAllBytes(labelIdsPath);
        var png = PngLabelLayout.ReadHeader(file, labelIdsPath)
            ?? throw new VimException($"{labelIdsPath}: not a PNG; expected Cityscapes' 8-bit single-channel labelIds PNG.");
        if (png.ColorType != PngLabelLayout.Grayscale || png.BitDepth != 8)
            throw new VimException($"{labelIdsPath}: PNG of bit depth {png.BitDepth} and colour type {png.ColorType}; expected an 8-bit single-channel " +
                "(grayscale, colour type 0) labelIds PNG.");
        using var labelIds = Cv2.ImDecode(file, ImreadModes.Unchanged);
        if (labelIds.Empty() || labelIds.Type() != MatType.CV_8UC1)
            throw new VimException($"{labelIdsPath}: cannot decode it as an 8-bit single-channel PNG (damaged file).");
        var pixels = ImageDecoder.CopyPixels(labelIds);
        var mapped = new byte[pixels.Length];
        for (int i = 0; i < pixels.Length; i++)
            mapped[i] = TrainId(pixels[i]) ?? throw new VimException($"{labelIdsPath}: pixel ({i % labelIds.Cols}, {i / labelIds.Cols}) holds label id " +
                $"{pixels[i]}; Cityscapes' label ids are 0–33 (and 255 for −1).");
        using var trainIds = Mat.FromPixelData(labelIds.Rows, labelIds.Cols, MatType.CV_8UC1, mapped);
        ImageEncoder.WritePng(trainIdsPath, trainIds);
    }
}
