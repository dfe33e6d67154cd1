namespace Vim.Core.Config;

/// <summary>
/// Where a split's files lie under data.root. By default COCO's layout (annotations/instances_{split}.json, images in
/// {split}/) for data.type coco and ADE20k's (images/{split}/*.jpg with label maps annotations/{split}/*.png) for ade20k;
/// data.ann_file, data.img_dir and data.seg_map_dir move them (patterns in which {split} stands for the split's name,
/// relative to data.root or absolute), and data.img_suffix / data.seg_map_suffix say which files of the two folders pair
/// up (an image and its label map share the path below their folders without the suffix, as in mmseg). So a custom COCO
/// file (MMDetection's ann_file + data_prefix.img) or Cityscapes (leftImg8bit/{split} with _leftImg8bit.png, gtFine/{split}
/// with _gtFine_labelTrainIds.png, city folders below) is read where it is.
/// </summary>
public sealed class DatasetLayout
{
    public const string SplitPlaceholder = "{split}";

    public string Root { get; }
    /// <summary>COCO: the annotation file of a split (a pattern with <see cref="SplitPlaceholder"/>); null for ADE20k.</summary>
    public string? AnnotationFilePattern { get; }
    public string ImageDirPattern { get; }
    /// <summary>ADE20k: the label-map folder of a split; null for COCO.</summary>
    public string? LabelDirPattern { get; }
    /// <summary>ADE20k: how image file names end (COCO names its image files in the annotation file).</summary>
    public string ImageSuffix { get; }
    public string LabelSuffix { get; }

    private DatasetLayout(string root, string? annotationFilePattern, string imageDirPattern, string? labelDirPattern, string imageSuffix,
        string labelSuffix)
    {
        Root = root;
        AnnotationFilePattern = annotationFilePattern;
        ImageDirPattern = imageDirPattern;
        LabelDirPattern = labelDirPattern;
        ImageSuffix = imageSuffix;
        LabelSuffix = labelSuffix;
    }

    public const string CocoAnnotationFile = "annotations/instances_{split}.json";
    public const string CocoImageDir = SplitPlaceholder;
    public const string Ade20kImageDir = "images/{split}";
    public const string Ade20kLabelDir = "annotations/{split}";
    public const string Ade20kImageSuffix = ".jpg";
    public const string Ade20kLabelSuffix = ".png";

    /// <summary>COCO's layout under <paramref name="root"/>.</summary>
    public static DatasetLayout Coco(string root) => Of(new DataConfig { Type = "coco", Root = root });

    /// <summary>ADE20k's layout under <paramref name="root"/>.</summary>
    public static DatasetLayout Ade20k(string root) => Of(new DataConfig { Type = "ade20k", Root = root });

    /// <summary>
    /// The layout data.type and the layout keys of <paramref name="data"/> describe; a key the type has no use for, or a
    /// pattern without {split}, is refused naming the key (as <paramref name="keyName"/> names data.* keys: a command's
    /// options that stand for them name themselves).
    /// </summary>
    public static DatasetLayout Of(DataConfig data, Func<string, string>? keyName = null)
    {
        string Key(string key) => keyName?.Invoke(key) ?? key;
        switch (data.Type)
        {
            case "coco":
                foreach (var (key, value) in new[] { ("data.seg_map_dir", data.SegMapDir), ("data.img_suffix", data.ImgSuffix), ("data.seg_map_suffix", data.SegMapSuffix) })
                    if (value is not null)
                        throw new VimException($"{Key(key)} applies to segmentation label maps (data.type ade20k); COCO names its image files in its annotation file. Leave it out");
                return new(data.Root, Checked(data.AnnFile ?? CocoAnnotationFile, Key("data.ann_file"), "annotations/{split}.json"), Checked(data.ImgDir ?? CocoImageDir, Key("data.img_dir"), "images/{split}", splitRequired: false),
                    null, "", "");
            case "ade20k":
                if (data.AnnFile is not null)
                    throw new VimException($"{Key("data.ann_file")} applies to COCO annotation files (data.type coco); segmentation reads label maps from " +
                        $"{Key("data.seg_map_dir")}. Leave it out");
                return new(data.Root, null, Checked(data.ImgDir ?? Ade20kImageDir, Key("data.img_dir"), "images/{split}"), Checked(data.SegMapDir ?? Ade20kLabelDir, Key("data.seg_map_dir"), "annotations/{split}"),
                    CheckedSuffix(data.ImgSuffix ?? Ade20kImageSuffix, Key("data.img_suffix")),
                    CheckedSuffix(data.SegMapSuffix ?? Ade20kLabelSuffix, Key("data.seg_map_suffix")));
            default:
                throw new VimException($"data.type '{data.Type}' is unknown; expected coco (detection) or ade20k (segmentation: image and label-map folders)");
        }
    }

    /// <summary>The annotation file of <paramref name="split"/> (COCO).</summary>
    public string AnnotationFile(string split) =>
        Resolve(AnnotationFilePattern ?? throw new InvalidOperationException("an ADE20k layout has no annotation file"), split);

    public string ImageDir(string split) => Resolve(ImageDirPattern, split);

    /// <summary>The label-map folder of <paramref name="split"/> (ADE20k).</summary>
    public string LabelDir(string split) =>
        Resolve(LabelDirPattern ?? throw new InvalidOperationException("a COCO layout has no label-map folder"), split);

    /// <summary>What a split consists of, "&lt;split&gt;" standing for its name, for messages.</summary>
    public string Describe()
    {
        static string Shown(string pattern) => pattern.Replace(SplitPlaceholder, "<split>", StringComparison.Ordinal);
        return AnnotationFilePattern is { } annotations
            ? $"{Shown(annotations)} and the image folder {Shown(ImageDirPattern)}/"
            : $"{Shown(ImageDirPattern)}/*{ImageSuffix} and {Shown(LabelDirPattern!)}/*{LabelSuffix}";
    }

    private string Resolve(string pattern, string split) => Path.Combine(Root, pattern.Replace(SplitPlaceholder, split, StringComparison.Ordinal));

    /// <param name="example">A pattern of this kind, for the refusal of one without the placeholder.</param>
    /// <param name="splitRequired">
    /// False for COCO's image folder: one folder may hold every split's images, since each split's annotation file names
    /// its own (Pascal VOC converted to COCO: every file_name under VOCdevkit, mmdet's data_prefix img='').
    /// </param>
    private static string Checked(string pattern, string key, string example, bool splitRequired = true)
    {
        if (string.IsNullOrWhiteSpace(pattern))
            throw new VimException($"{key} is empty; expected a path under data.root with {SplitPlaceholder} for the split's name");
        if (splitRequired && !pattern.Contains(SplitPlaceholder, StringComparison.Ordinal))
            throw new VimException($"{key} '{pattern}' does not contain {SplitPlaceholder}: every split would read the same files; write where the " +
                $"split's name goes, e.g. {example}");
        var rest = pattern.Replace(SplitPlaceholder, "", StringComparison.Ordinal);
        if (rest.Contains('{') || rest.Contains('}'))
            throw new VimException($"{key} '{pattern}': the only placeholder is {SplitPlaceholder}");
        return pattern;
    }

    private static string CheckedSuffix(string suffix, string key) =>
        suffix.Length > 0 && !suffix.Contains('/') && !suffix.Contains('\\')
            ? suffix
            : throw new VimException($"{key} '{suffix}': expected how the file names end, such as .png or _gtFine_labelTrainIds.png");
}
