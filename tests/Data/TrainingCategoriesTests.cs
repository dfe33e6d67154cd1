using System.Text.Json.Nodes;
using NUnit.Framework;
using Vim.Core;
using Vim.Core.Distributed;
using Vim.Data.Coco;
using Vim.Data.Demo;
using Vim.Detection;
using Vim.Tests.Detection;
using Vim.Tools.Commands;

namespace Vim.Tests.Data;

/// <summary>
/// What evaluation-only uses read of a training annotation file: its "categories" alone (<see cref="CocoDataset.LoadCategories(string)"/>,
/// <see cref="CategoryMap.Load"/>), the same as the full read's wherever they stand in the file, with the full read's
/// refusals; and a detection data build that reads nothing else of the training files until training asks for them.
/// </summary>
public class TrainingCategoriesTests
{
    private DataTestFiles _files = null!;

    [SetUp]
    public void SetUp() => _files = new DataTestFiles();

    [TearDown]
    public void TearDown() => _files.Dispose();

    /// <summary>The demo generator's categories as it documents them: ids 1, 2, 4, 7, 9, its class names, supercategory "shape".</summary>
    private static CocoCategory[] DemoCategories() =>
        DemoDatasetGenerator.CategoryIds.Select((id, k) => new CocoCategory(id, DemoDatasetGenerator.ClassNames[k], "shape")).ToArray();

    [Test]
    public void TheCategoriesAloneAreTheFullReadsOnTheDemoJson()
    {
        var config = TrainSplitListTests.DemoCoco(_files, trainImages: 3, valImages: 2, "train");
        var file = DetectionData.AnnotationFile(config.Data, "train");
        var full = CocoDataset.Load(file);
        Assert.That(full.Annotations, Is.Not.Empty, "the demo file holds annotations the categories-only read skips");
        Assert.That(full.Categories, Is.EqualTo(DemoCategories()));
        Assert.That(CocoDataset.LoadCategories(file), Is.EqualTo(full.Categories));
        // A 16-byte buffer cuts every token of the images and annotations the reader skips across refills.
        Assert.That(CocoDataset.LoadCategories(file, bufferBytes: 16), Is.EqualTo(full.Categories));
        var map = CategoryMap.Load(file);
        Assert.That(map.CategoryIds, Is.EqualTo(DemoDatasetGenerator.CategoryIds));
        Assert.That(map.Names, Is.EqualTo(DemoDatasetGenerator.ClassNames));
    }

    private const string Images = "\"images\": [{\"id\": 1, \"width\": 4, \"height\": 3, \"file_name\": \"a.jpg\"}]";
    private const string Annotations = "\"annotations\": [{\"id\": 5, \"image_id\": 1, \"category_id\": 3, \"bbox\": [0, 0, 2, 2], " +
        "\"segmentation\": [[0, 0, 2, 0, 2, 2]], \"categories\": [{\"id\": 99, \"name\": \"nested, not top-level\"}]}]";
    private const string CategoryArray = "[{\"id\": 3, \"name\": \"b\"}, {\"name\": \"a\", \"supercategory\": \"s\", \"id\": 1}]";
    private const string Categories = "\"categories\": " + CategoryArray;

    /// <summary>Categories before, between and after the images and annotations (COCO's files put them last), under an escaped key too.</summary>
    [TestCase(Categories + ", " + Images + ", " + Annotations)]
    [TestCase(Images + ", " + Categories + ", " + Annotations)]
    [TestCase(Images + ", " + Annotations + ", " + Categories)]
    [TestCase("\"info\": {\"categories\": []}, " + Annotations + ", " + Images + ", \"c\\u0061tegories\": " + CategoryArray)]
    public void TheCategoriesMayStandAnywhereInTheFile(string fields)
    {
        var file = _files.WriteText("instances.json", "{" + fields + "}");
        CocoCategory[] inFileOrder = [new(3, "b", null), new(1, "a", "s")];
        Assert.That(CocoDataset.LoadCategories(file), Is.EqualTo(inFileOrder));
        Assert.That(CocoDataset.LoadCategories(file, bufferBytes: 8), Is.EqualTo(inFileOrder));
        Assert.That(CocoDataset.Load(file).Categories, Is.EqualTo(inFileOrder), "the full read agrees");
        // The model's classes go by ascending id, wherever the file lists them.
        Assert.That(CategoryMap.Load(file).CategoryIds, Is.EqualTo(new long[] { 1, 3 }));
        Assert.That(CategoryMap.Load(file).Names, Is.EqualTo(new[] { "a", "b" }));
    }

    private const string Good = "{" + Images + ", " + Annotations + ", " + Categories + "}";

    /// <summary>Each damaged file is refused with a message that names it and says what was wrong.</summary>
    [TestCase("truncated in the annotations, before the categories", "not valid JSON")]
    [TestCase("truncated inside the categories", "not valid JSON")]
    [TestCase("truncated after the categories' array", "not valid JSON")]
    [TestCase("no categories", "\"categories\" is missing, empty or not an array; expected an array of at least one category")]
    [TestCase("categories: a string", "\"categories\" is missing, empty or not an array")]
    [TestCase("categories: an object", "\"categories\" is missing, empty or not an array")]
    [TestCase("categories: empty", "\"categories\" is missing, empty or not an array")]
    [TestCase("a category that is a number", "categories[1]: expected an object, got 7.")]
    [TestCase("a category id that is a string", "categories[0]: field \"id\" must be an integer id, got \"3\".")]
    [TestCase("a category id that is a fraction", "categories[0]: field \"id\" must be an integer id, got 3.5.")]
    [TestCase("a category without id", "categories[1]: missing field \"id\".")]
    [TestCase("a repeated category id", "category id 3 appears more than once.")]
    [TestCase("an array at the top", "expected a JSON object with images/annotations/categories.")]
    [TestCase("trailing garbage", "not valid JSON")]
    public void ADamagedFileIsRefusedNamingIt(string damage, string expected)
    {
        string text = damage switch
        {
            "truncated in the annotations, before the categories" => Good[..Good.IndexOf("\"bbox\"", StringComparison.Ordinal)],
            "truncated inside the categories" => Good[..Good.IndexOf("\"supercategory\"", StringComparison.Ordinal)],
            "truncated after the categories' array" => Good[..^1],
            "no categories" => "{" + Images + ", " + Annotations + "}",
            "categories: a string" => "{" + Images + ", \"categories\": \"person\"}",
            "categories: an object" => "{\"categories\": {\"id\": 1, \"name\": \"a\"}}",
            "categories: empty" => "{" + Images + ", \"categories\": []}",
            "a category that is a number" => "{\"categories\": [{\"id\": 3, \"name\": \"b\"}, 7]}",
            "a category id that is a string" => "{\"categories\": [{\"id\": \"3\", \"name\": \"b\"}]}",
            "a category id that is a fraction" => "{\"categories\": [{\"id\": 3.5, \"name\": \"b\"}]}",
            "a category without id" => "{\"categories\": [{\"id\": 3, \"name\": \"b\"}, {\"name\": \"a\"}]}",
            "a repeated category id" => "{\"categories\": [{\"id\": 3, \"name\": \"b\"}, {\"id\": 3, \"name\": \"c\"}]}",
            "an array at the top" => "[" + CategoryArray + "]",
            "trailing garbage" => Good + " {",
            _ => throw new ArgumentException(damage),
        };
        var file = _files.WriteText("instances_damaged.json", text);
        var e = Assert.Throws<VimException>(() => CategoryMap.Load(file), damage)!;
        Assert.That(e.Message, Does.StartWith(file + ": ").And.Contain(expected), damage);
    }

    [Test]
    public void AMissingFileIsRefusedNamingIt()
    {
        var file = _files.PathOf("annotations", "instances_absent.json");
        var e = Assert.Throws<VimException>(() => CategoryMap.Load(file))!;
        Assert.That(e.Message, Is.EqualTo($"{file}: file not found."));
    }

    /// <summary>
    /// A training file whose annotations are garbage-typed but whose categories are valid: evaluation-only uses (a detection
    /// data build, `vim infer`'s classes, `vim test --format-only`'s) accept it, since they read only its categories;
    /// training reads the file whole and refuses it, naming the file and the field.
    /// </summary>
    [Test]
    public void AnEvaluationBuildReadsOnlyTheTrainingCategories()
    {
        var config = TrainSplitListTests.DemoCoco(_files, trainImages: 4, valImages: 2, "train");
        var trainFile = DetectionData.AnnotationFile(config.Data, "train");
        var json = JsonNode.Parse(File.ReadAllText(trainFile))!;
        json["annotations"] = "not an array";
        File.WriteAllText(trainFile, json.ToJsonString());
        Assert.Throws<VimException>(() => CocoDataset.Load(trainFile), "the full read refuses the file");

        var data = new DetectionData(config);
        Assert.That(data.Categories.CategoryIds, Is.EqualTo(DemoDatasetGenerator.CategoryIds));
        Assert.That(data.Categories.Names, Is.EqualTo(DemoDatasetGenerator.ClassNames));
        Assert.That(data.CategorySource, Is.EqualTo(trainFile));
        Assert.That(data.Summary, Does.Contain("training images not read"));
        Assert.That(data.ValSet.Count, Is.EqualTo(2), "the validation split is read whole: evaluation needs it");
        using (var task = new DetectionTask(config, TextWriter.Null, DetectionTaskTests.TinyDetector))
            Assert.That(task.Data.Categories.Count, Is.EqualTo(DemoDatasetGenerator.ClassNames.Count), "an evaluation task builds");
        Assert.That(InferCommand.Categories(config).CategoryIds, Is.EqualTo(DemoDatasetGenerator.CategoryIds), "vim infer's classes");

        string refusal = $"{trainFile}: \"annotations\" must be an array.";
        Assert.That(Assert.Throws<VimException>(() => _ = data.TrainSet)!.Message, Is.EqualTo(refusal), "training's first use reads the file whole");
        Assert.That(Assert.Throws<VimException>(() => data.TrainingLoader(0, DataShard.Whole))!.Message, Is.EqualTo(refusal));
        Assert.That(Assert.Throws<VimException>(() => new DetectionTask(config, TextWriter.Null, DetectionTaskTests.TinyDetector, training: DataShard.Whole))!.Message,
            Is.EqualTo(refusal), "vim train's task is refused before it trains");
    }

    /// <summary>
    /// The evaluation build still checks every listed training file's categories against the first's (the model's class
    /// k is the first file's k-th category), from the categories alone: a second split with garbage annotations and a
    /// renamed category is refused naming both files; with its categories restored it is accepted, and refused by training.
    /// </summary>
    [Test]
    public void TheEvaluationBuildComparesTheCategoriesOfEveryTrainingSplit()
    {
        var config = TrainSplitListTests.DemoCoco(_files, trainImages: 3, valImages: 2, "train", "extra");
        var root = config.Data.Root;
        var trainFile = DetectionData.AnnotationFile(config.Data, "train");
        var extraFile = DetectionData.AnnotationFile(config.Data, "extra");
        var json = JsonNode.Parse(File.ReadAllText(DetectionData.AnnotationFile(config.Data, "val")))!;
        json["annotations"] = new JsonObject { ["not"] = "an array" };
        json["categories"]![2]!["name"] = "renamed";
        File.WriteAllText(extraFile, json.ToJsonString());

        var e = Assert.Throws<VimException>(() => new DetectionData(config))!;
        Assert.That(e.Message, Does.StartWith($"{extraFile} and {trainFile} list different categories: class 2 is category 4 'renamed' in one and " +
            $"category 4 '{DemoDatasetGenerator.ClassNames[2]}' in the other"));

        json["categories"]![2]!["name"] = DemoDatasetGenerator.ClassNames[2];
        File.WriteAllText(extraFile, json.ToJsonString());
        var data = new DetectionData(config);
        Assert.That(data.Categories.Names, Is.EqualTo(DemoDatasetGenerator.ClassNames));
        Assert.That(Assert.Throws<VimException>(() => _ = data.TrainSet)!.Message, Is.EqualTo($"{extraFile}: \"annotations\" must be an array."));
        Assert.That(Directory.Exists(Path.Combine(root, "extra")), Is.False, "the extra split's images were never needed");
    }

    /// <summary>`vim test --format-only`'s classes come from the training file's categories alone, which garbage annotations do not disturb.</summary>
    [Test]
    public void FormatOnlyReadsTheTrainingCategoriesAlone()
    {
        var config = TrainSplitListTests.DemoCoco(_files, trainImages: 2, valImages: 2, "train");
        var root = config.Data.Root;
        var trainFile = DetectionData.AnnotationFile(config.Data, "train");
        var info = JsonNode.Parse(File.ReadAllText(DetectionData.AnnotationFile(config.Data, "val")))!;
        info.AsObject().Remove("annotations");
        File.WriteAllText(DetectionData.ImageInfoFile(config.Data, "test-dev"), info.ToJsonString());
        Directory.Move(Path.Combine(root, "val"), Path.Combine(root, "test"));
        var json = JsonNode.Parse(File.ReadAllText(trainFile))!;
        json["images"] = 42;
        File.WriteAllText(trainFile, json.ToJsonString());

        var data = DetectionData.ForUnlabelledSplit(config, "test-dev");
        Assert.That(data.CategorySource, Is.EqualTo(trainFile));
        Assert.That(data.Categories.CategoryIds, Is.EqualTo(DemoDatasetGenerator.CategoryIds));
        Assert.That(data.UnlabelledSplit("test-dev").Count, Is.EqualTo(2));
    }
}
