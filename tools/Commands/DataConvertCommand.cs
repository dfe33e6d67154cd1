using System.CommandLine;
using Vim.Core;
using Vim.Data.Coco;
using Vim.Data.Converters;
using Vim.Data.Datasets;

namespace Vim.Tools.Commands;

/// <summary>
/// `vim data convert voc|images|cityscapes`: datasets in other tools' layouts prepared for ours, as MMDetection's and
/// MMSegmentation's tools/dataset_converters prepare them (<see cref="PascalVocConverter"/>, <see cref="ImageFolderConverter"/>,
/// <see cref="CityscapesConverter"/>).
/// </summary>
public static class DataConvertCommand
{
    public static Command Create()
    {
        var command = new Command("convert", "Convert a dataset into the layouts vim reads (mmdet/mmseg's tools/dataset_converters): " +
            "voc (Pascal VOC XML → COCO json), images (an image folder → a COCO json of images only, for vim test --format-only), " +
            "cityscapes (gtFine labelIds → labelTrainIds PNGs).");
        command.Subcommands.Add(CreateVoc());
        command.Subcommands.Add(CreateImages());
        command.Subcommands.Add(CreateCityscapes());
        return command;
    }

    private static IReadOnlyList<string> CommaList(string value) =>
        value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static Command CreateVoc()
    {
        var root = new Option<string>("--root") { Description = "The VOCdevkit folder (holding VOC2007/ and/or VOC2012/); the image folder of the json (data.img_dir).", Required = true };
        var output = new Option<string?>("--out") { Description = "Folder for the json files (default: --root)." };
        var years = new Option<string?>("--years") { Description = "Comma-separated years, 2007 and/or 2012 (default: those under --root); both also give voc0712_<split>.json (not for test)." };
        var splits = new Option<string>("--splits") { Description = "Comma-separated splits, each read from VOC<year>/ImageSets/Main/<split>.txt (a missing list is skipped).", DefaultValueFactory = _ => string.Join(",", PascalVocConverter.DefaultSplits) };
        var voc = new Command("voc", "Pascal VOC XML annotations → COCO instances json per year and split (voc07_trainval.json, …), as mmdet's pascal_voc.py --out-format coco: " +
            "its 20 classes in its order (category ids 1–20), boxes [xmin − 1, ymin − 1, xmax − xmin, ymax − ymin], area their product, the box as polygon, " +
            "difficult objects as iscrowd 1; file_name VOC<year>/JPEGImages/<id>.jpg, so --root is the image folder. " +
            "Train with --set data.root=VOCdevkit --set 'data.ann_file=voc{split}.json' --set data.img_dir=. --set data.train_split=0712_trainval --set data.val_split=07_test " +
            "--set model.num_classes=20 (see the README).");
        foreach (var o in new Option[] { root, output, years, splits }) voc.Options.Add(o);
        voc.SetAction(parse =>
        {
            string devkit = parse.GetValue(root)!;
            var yearList = parse.GetValue(years) is { } given ? CommaList(given)
                : new[] { "2007", "2012" }.Where(y => Directory.Exists(Path.Combine(devkit, $"VOC{y}"))).ToArray();
            if (yearList.Count == 0) throw new VimException($"--root {devkit}: holds neither VOC2007 nor VOC2012.");
            var splitList = CommaList(parse.GetValue(splits)!);
            if (splitList.Count == 0) throw new VimException("--splits: expected at least one split name, such as trainval.");
            var written = PascalVocConverter.Convert(devkit, parse.GetValue(output) ?? devkit, yearList, splitList, Console.Out);
            Console.WriteLine($"wrote {written.Count} COCO json file(s); their file_name values are relative to {Path.GetFullPath(devkit)}");
            return 0;
        });
        return voc;
    }

    private static Command CreateImages()
    {
        var images = new Option<string>("--images") { Description = "The image folder (searched at any depth); file_name is the path below it.", Required = true };
        var output = new Option<string>("--out") { Description = "The json to write (for vim test --format-only --split S: DATA_ROOT/annotations/image_info_S.json, images in DATA_ROOT/S/).", Required = true };
        var classes = new Option<string?>("--classes") { Description = "Class list file, one name per line: categories with ids 1..N in that order." };
        var fromCoco = new Option<string?>("--from-coco") { Description = "Copy the categories (ids, names, supercategories) of this COCO json, e.g. the training annotations, which vim test --format-only requires." };
        var exclude = new Option<string[]>("--exclude-extensions")
        {
            Description = "Leave out files whose names end in these (case-insensitive), e.g. .txt .json; every other file must be an image.",
            Arity = ArgumentArity.OneOrMore,
            AllowMultipleArgumentsPerToken = true,
        };
        var command = new Command("images", "An image folder → a COCO json of images (sizes from the file headers) and categories, no annotations, as mmdet's images2coco.py: " +
            "what vim test --format-only predicts (see the README for the command sequence).");
        foreach (var o in new Option[] { images, output, classes, fromCoco, exclude }) command.Options.Add(o);
        command.SetAction(parse =>
        {
            string? classFile = parse.GetValue(classes), cocoFile = parse.GetValue(fromCoco);
            if ((classFile is null) == (cocoFile is null)) throw new VimException("give the categories with exactly one of --classes FILE and --from-coco ANN.json.");
            var categories = classFile is not null
                ? CocoDatasetFile.NumberedCategories(SegmentationFolderDataset.ReadClassNames(classFile))
                : CocoDataset.LoadCategories(cocoFile!);
            if (categories.Count == 0) throw new VimException($"--from-coco {cocoFile}: the file lists no categories.");
            string outFile = parse.GetValue(output)!;
            if (!outFile.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) throw new VimException($"--out {outFile}: expected a .json file name.");
            var coco = ImageFolderConverter.Convert(parse.GetValue(images)!, categories, parse.GetValue(exclude) ?? [], Console.Out);
            CocoDatasetFile.Save(outFile, coco);
            Console.WriteLine($"wrote {outFile}: {coco.Images.Count} images, {coco.Categories.Count} categories");
            return 0;
        });
        return command;
    }

    private static Command CreateCityscapes()
    {
        var root = new Option<string>("--root") { Description = "The Cityscapes folder (holding gtFine/ and leftImg8bit/).", Required = true };
        var outDir = new Option<string?>("--out-dir") { Description = "Where class_names.txt (the 19 training classes) goes (default: --root, where the segmentation data looks for it); the PNGs are written beside their sources." };
        var threads = new Option<int>("--threads") { Description = "Threads converting label maps (-1: every core).", DefaultValueFactory = _ => -1 };
        var command = new Command("cityscapes", "Every gtFine/**/*_gtFine_labelIds.png → *_gtFine_labelTrainIds.png beside it (Cityscapes' 19 train ids, 255 ignored), as mmseg's cityscapes.py, " +
            "and class_names.txt; then train with the layout keys given in the README.");
        foreach (var o in new Option[] { root, outDir, threads }) command.Options.Add(o);
        command.SetAction(parse =>
        {
            string dataRoot = parse.GetValue(root)!;
            var summary = CityscapesConverter.Convert(dataRoot, parse.GetValue(outDir) ?? dataRoot, parse.GetValue(threads), Console.Out);
            Console.WriteLine($"wrote {summary.LabelMaps} *{CityscapesConverter.TrainIdSuffix} label maps and {summary.ClassNamesFile}");
            return 0;
        });
        return command;
    }
}
