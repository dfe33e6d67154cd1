using System.Text.Json.Nodes;
using NUnit.Framework;
using Vim.Core;
using Vim.Core.Config;
using Vim.Data.Coco;
using Vim.Data.Datasets;
using Vim.Data.Demo;
using Vim.Data.Loading;
using Vim.Data.Transforms;
using Vim.Detection;

namespace Vim.Tests.Data;

/// <summary>
/// mmdet's annotation filtering ported: the FilterAnnotations step (against mmdet's own test cases and hand-worked
/// boxes, polygon and RLE masks), its keep_empty refetch through the loader, the dataset's filter_cfg on a hand-made COCO
/// json (counts by hand), and random_crop's recompute_bbox and bbox_clip_border on hand-placed objects.
/// </summary>
public class AnnotationFilterTests
{
    private DataTestFiles _files = null!;

    [SetUp]
    public void SetUp() => _files = new DataTestFiles();

    [TearDown]
    public void TearDown() => _files.Dispose();

    private static ISampleTransform Step(string yaml) => TransformConfigTests.FromYaml("train_pipeline:\n  - " + yaml).Steps[0];

    /// <summary>
    /// mmdet's test_filter_annotations sample: on a 24×24 image the boxes [2, 10, 4, 14] and [2, 10, 2.1, 10.1], the first
    /// with a mask of rows 10..13 × columns 2..3 (8 pixels; as a polygon, the 2×4 rectangle, area 8), the second with an
    /// empty mask (as a polygon, the 0.1×0.1 square, area 0.01).
    /// </summary>
    private static DataSample MmdetSample(bool polygons)
    {
        var first = new byte[24 * 24];
        for (int y = 10; y < 14; y++)
            for (int x = 2; x < 4; x++) first[y * 24 + x] = 1;
        // A polygon's area is its outlines', never its drawn pixels'.
        static byte[] NotDrawn() => throw new AssertionException("a polygon mask's area is read from its outlines");
        return new DataSample(7, "mmdet.png", new byte[24 * 24 * 3], 24, 24)
        {
            Boxes = [2, 10, 4, 14, 2, 10, 2.1f, 10.1f], Labels = [3, 5], IsCrowd = [false, false], AnnotationIds = [1, 2],
            Masks = polygons
                ? [new InstanceMask(24, 24, NotDrawn, [[2, 10, 4, 10, 4, 14, 2, 14]]), new InstanceMask(24, 24, NotDrawn, [[2, 10, 2.1, 10, 2.1, 10.1, 2, 10.1]])]
                : [new InstanceMask(24, 24, first), new InstanceMask(24, 24, new byte[24 * 24])],
        };
    }

    /// <summary>How many objects the step leaves; null where it gives the sample up (mmdet's transform returns None).</summary>
    private static int? Remaining(string options, DataSample sample)
    {
        try
        {
            Step($"filter_annotations: {options}").Apply(sample, new Random(0));
            return sample.InstanceCount;
        }
        catch (SampleRejectedException)
        {
            return null;
        }
    }

    /// <summary>mmdet's _build_filter_annotations_args: each option set and the count mmdet's test expects, for bitmap and polygon masks alike.</summary>
    [TestCase("{min_gt_bbox_wh: [100, 100]}", null)]
    [TestCase("{min_gt_bbox_wh: [100, 100], keep_empty: false}", 0)]
    [TestCase("{min_gt_bbox_wh: [1, 1]}", 1)]
    [TestCase("{min_gt_bbox_wh: [0.01, 0.01]}", 2)]
    [TestCase("{min_gt_bbox_wh: [0.01, 0.01], by_mask: true}", 1)]
    [TestCase("{by_mask: true}", 1)]
    [TestCase("{by_box: false, by_mask: true}", 1)]
    public void FilterAnnotationsLeavesWhatMmdetsTestExpects(string options, int? expected)
    {
        Assert.That(Remaining(options, MmdetSample(polygons: false)), Is.EqualTo(expected), "RLE (bitmap) masks");
        Assert.That(Remaining(options, MmdetSample(polygons: true)), Is.EqualTo(expected), "polygon masks");
    }

    /// <summary>
    /// Which objects stay, worked by hand: a box must be wider and taller than min_gt_bbox_wh (strictly: a 2-wide box
    /// against 2 goes), a mask's area at least min_gt_mask_area (a 3-4-5 triangle's 6 plus a 1×2 rectangle's 2 make 8, and
    /// 8 passes); the labels, ids and masks of the survivors follow them, crowd regions are filtered alike, and a sample
    /// that comes without objects passes even with keep_empty.
    /// </summary>
    [Test]
    public void ObjectsAreKeptByTheirOwnBoxesAndMaskAreas()
    {
        var rle = new byte[20 * 20];
        rle[0] = rle[1] = rle[25] = 1; // 3 pixels
        DataSample Sample() => new(1, "hand.png", new byte[20 * 20 * 3], 20, 20)
        {
            // 2×5, 3×3 (crowd), 5×2.5 and 4×4.
            Boxes = [0, 0, 2, 5, 5, 5, 8, 8, 10, 10, 15, 12.5f, 0, 0, 4, 4],
            Labels = [0, 1, 2, 3], IsCrowd = [false, true, false, false], AnnotationIds = [10, 11, 12, 13],
            Masks =
            [
                new InstanceMask(20, 20, new byte[20 * 20], [[0, 0, 4, 0, 0, 3], [5, 5, 6, 5, 6, 7, 5, 7]]), // 6 + 2 = 8
                new InstanceMask(20, 20, new byte[20 * 20], [[5, 5, 8, 5, 8, 8, 5, 8]]), // 9
                new InstanceMask(20, 20, rle), // 3 pixels
                new InstanceMask(20, 20, new byte[20 * 20], [[0, 0, 1, 0, 1, 1]]), // 0.5
            ],
        };

        var byBox = Sample();
        Step("filter_annotations: {min_gt_bbox_wh: [2, 2]}").Apply(byBox, new Random(0));
        Assert.That(byBox.AnnotationIds, Is.EqualTo(new long[] { 11, 12, 13 }), "the 2-wide box is not wider than 2");
        Assert.That(byBox.IsCrowd, Is.EqualTo(new[] { true, false, false }));
        Assert.That(byBox.Boxes, Is.EqualTo(new float[] { 5, 5, 8, 8, 10, 10, 15, 12.5f, 0, 0, 4, 4 }));

        var tallerThan = Sample();
        Step("filter_annotations: {min_gt_bbox_wh: [1, 2.5]}").Apply(tallerThan, new Random(0));
        Assert.That(tallerThan.AnnotationIds, Is.EqualTo(new long[] { 10, 11, 13 }), "the 2.5-high box is not taller than 2.5");

        var byMask = Sample();
        Step("filter_annotations: {by_box: false, by_mask: true, min_gt_mask_area: 8}").Apply(byMask, new Random(0));
        Assert.That(byMask.AnnotationIds, Is.EqualTo(new long[] { 10, 11 }), "areas 8 and 9 pass 8; 3 pixels and 0.5 do not");
        Assert.That(byMask.Masks!.Select(m => m.Outlines!.Count), Is.EqualTo(new[] { 2, 1 }), "the masks follow their objects");

        var both = Sample();
        Step("filter_annotations: {min_gt_bbox_wh: [2, 2], by_mask: true, min_gt_mask_area: 3}").Apply(both, new Random(0));
        Assert.That(both.AnnotationIds, Is.EqualTo(new long[] { 11, 12 }), "a box and a mask test both must pass");

        var empty = new DataSample(2, "empty.png", new byte[20 * 20 * 3], 20, 20) { Masks = [] };
        Step("filter_annotations: {min_gt_bbox_wh: [100, 100]}").Apply(empty, new Random(0));
        Assert.That(empty.InstanceCount, Is.Zero, "a sample without objects is not given up");
    }

    /// <summary>
    /// mmdet compares its float32 box widths and heights with min_gt_bbox_wh in float32 (torch casts a Python number to the
    /// tensor's dtype): a box 0.1f wide is not wider than 0.1, although 0.1f (0.100000001…) is above the double 0.1.
    /// </summary>
    [Test]
    public void BoxSizesAreComparedInSinglePrecisionAsMmdetsTensors()
    {
        var sample = new DataSample(1, "tenth.png", new byte[4 * 4 * 3], 4, 4)
        {
            Boxes = [0, 0, 0.1f, 0.1f, 0, 0, 0.2f, 0.2f], Labels = [0, 1], IsCrowd = [false, false], AnnotationIds = [1, 2],
        };
        Step("filter_annotations: {min_gt_bbox_wh: [0.1, 0.1]}").Apply(sample, new Random(0));
        Assert.That(sample.AnnotationIds, Is.EqualTo(new long[] { 2 }));
    }

    /// <summary>Two samples of 60×80: 0 holds a 0.5-pixel-wide object only, 1 a large one.</summary>
    private sealed class ThinThenLarge : ISampleSource
    {
        public int Count => 2;

        public DataSample Load(int index) => new(index, $"mem/{index}", new byte[60 * 80 * 3], 60, 80)
        {
            Boxes = index == 0 ? [10, 10, 10.5f, 30] : [0, 0, 40, 30], Labels = [index], IsCrowd = [false], AnnotationIds = [index],
        };
    }

    private static List<DataSample> Draw(string filter, int workers, int epochs = 20)
    {
        var pipeline = new TransformPipeline(Step(filter), new Normalize(new NormalizeOptions()));
        var loader = new DataLoader(new ThinThenLarge(), pipeline, new LoaderOptions { BatchSize = 1, NumWorkers = workers, Seed = 9, Shuffle = false });
        return Enumerable.Range(0, epochs).SelectMany(epoch => loader.Samples(epoch, endless: false)).ToList();
    }

    /// <summary>
    /// keep_empty (mmdet's default): a sample the filter would empty is given up and the loader fetches another, so over
    /// 20 unshuffled epochs of [0, 1] every sample handed on is sample 1 with its object, the same whatever the workers;
    /// with keep_empty: false sample 0 comes at its own place every epoch, without objects.
    /// </summary>
    [Test]
    public void KeepEmptyGivesTheSampleUpAndTheLoaderFetchesAnother()
    {
        var refetched = Draw("filter_annotations: {}", workers: 0);
        Assert.That(refetched, Has.Count.EqualTo(40));
        Assert.That(refetched.Select(s => s.ImageId), Is.All.EqualTo(1L), "sample 0's only object is 0.5 wide, so it is always given up");
        Assert.That(refetched.Select(s => s.InstanceCount), Is.All.EqualTo(1));
        Assert.That(Draw("filter_annotations: {}", workers: 2).Select(s => s.ImageId), Is.EqualTo(refetched.Select(s => s.ImageId)));

        var error = Assert.Throws<InvalidOperationException>(() => Draw("filter_annotations: {min_gt_bbox_wh: [100, 100]}", workers: 0, epochs: 1))!;
        Assert.That(error.Message, Does.Contain($"gave up on {DataLoader.MaxRefetch + 1} samples in a row").And.Contain("filter_annotations' keep_empty"),
            "the hint names the step that gave the samples up, not only random_crop");

        var kept = Draw("filter_annotations: {keep_empty: false}", workers: 0);
        Assert.That(kept.Select(s => s.ImageId), Is.EqualTo(Enumerable.Range(0, 40).Select(i => (long)(i % 2))));
        Assert.That(kept.Select(s => s.InstanceCount), Is.EqualTo(Enumerable.Range(0, 40).Select(i => i % 2)));
    }

    /// <summary>Bad options are refused naming the step; a by_mask filter is refused where the samples carry no masks.</summary>
    [Test]
    public void BadFilterOptionsAreRefused()
    {
        string Refusal(string options) => Assert.Throws<VimException>(() => Step($"filter_annotations: {options}"))!.Message;
        Assert.That(Refusal("{by_box: false}"), Does.Contain("train_pipeline[0]").And.Contain("needs by_box or by_mask"));
        Assert.That(Refusal("{min_gt_bbox_wh: [1]}"), Does.Contain("min_gt_bbox_wh must be [width, height]"));
        Assert.That(Refusal("{min_gt_bbox_wh: [1, -1]}"), Does.Contain("min_gt_bbox_wh must be [width, height]"));
        Assert.That(Refusal("{min_gt_mask_area: -2}"), Does.Contain("min_gt_mask_area -2"));
        Assert.That(Refusal("{min_gt_bbox_hw: [1, 1]}"), Does.Contain("min_gt_bbox_hw"));

        var boxOnly = new DataSample(3, "boxes.png", new byte[10 * 10 * 3], 10, 10) { Boxes = [0, 0, 5, 5], Labels = [0], IsCrowd = [false], AnnotationIds = [1] };
        Assert.That(Assert.Throws<InvalidOperationException>(() => Step("filter_annotations: {by_mask: true}").Apply(boxOnly, new Random(0)))!.Message,
            Does.Contain("boxes.png").And.Contain("carries none"));
    }

    /// <summary>
    /// The pipeline checks refuse, at the step's file and line, a filter_annotations in a segmentation pipeline (no objects),
    /// in a test pipeline (evaluation's ground truth is the json's), and by_mask for a box-only detector (no masks on the
    /// samples), also inside a random_choice sub-pipeline.
    /// </summary>
    [Test]
    public void FilterStepsThatCannotRunAreRefusedAtTheirLine()
    {
        string Refusal(string task, string model, string pipelines)
        {
            var path = _files.WriteText("pipeline.yaml", $"task: {task}\nmodel:\n  det_head: {{mask_on: {model}}}\ndata:\n{pipelines}");
            var error = Assert.Throws<VimException>(() => DataPipelines.Check(ExperimentConfig.Load(path, []).Config))!;
            return error.Message;
        }
        const string Train = "  train_pipeline:\n    - random_flip: {prob: 0.5}\n    - filter_annotations: {by_mask: true}\n    - normalize: {}\n";
        Assert.That(Refusal("detection", "false", Train), Does.Contain("pipeline.yaml:7: data.train_pipeline[1]: filter_annotations by_mask reads the objects' masks")
            .And.Contain("model.det_head.mask_on is false"));
        var inChoice = "  train_pipeline:\n    - random_choice: {transforms: [[random_flip: {prob: 0.5}], [filter_annotations: {by_mask: true}]]}\n    - normalize: {}\n";
        Assert.That(Refusal("detection", "false", inChoice), Does.Contain("data.train_pipeline[0].random_choice.transforms[1][0]: filter_annotations by_mask"));
        Assert.That(Refusal("detection", "true", "  test_pipeline:\n    - filter_annotations: {}\n    - normalize: {}\n"),
            Does.Contain("pipeline.yaml:6: data.test_pipeline[0]: filter_annotations cannot be a test step"));
        var segmentation = _files.WriteText("seg.yaml", "task: segmentation\ndata:\n  train_pipeline:\n    - filter_annotations: {}\n    - normalize: {}\n");
        Assert.That(Assert.Throws<VimException>(() => DataPipelines.Check(ExperimentConfig.Load(segmentation, []).Config))!.Message,
            Does.Contain("seg.yaml:4: data.train_pipeline[0]: filter_annotations is a detection step"));

        var path = _files.WriteText("fine.yaml", $"task: detection\nmodel:\n  det_head: {{mask_on: true}}\ndata:\n{Train}");
        Assert.That(() => DataPipelines.Check(ExperimentConfig.Load(path, []).Config), Throws.Nothing, "a mask model's samples carry masks");
    }

    private string WriteJson(string name, string images, string annotations) => _files.WriteText(name, $$"""
        {"images": [{{images}}], "categories": [{"id": 1, "name": "thing"}, {"id": 2, "name": "other"}], "annotations": [{{annotations}}]}
        """);

    /// <summary>
    /// Five images: 1 with an object; 2 with a crowd region only; 3 with no annotation; 4 with an object but 20 pixels wide;
    /// 5 with a zero-width annotation only (unusable, skipped when read).
    /// </summary>
    private string HandMadeCoco() => WriteJson("filter.json",
        """
        {"id": 1, "width": 100, "height": 80, "file_name": "1.jpg"}, {"id": 2, "width": 100, "height": 80, "file_name": "2.jpg"},
        {"id": 3, "width": 100, "height": 80, "file_name": "3.jpg"}, {"id": 4, "width": 20, "height": 80, "file_name": "4.jpg"},
        {"id": 5, "width": 100, "height": 80, "file_name": "5.jpg"}
        """,
        """
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "area": 400, "iscrowd": 0},
        {"id": 2, "image_id": 2, "category_id": 2, "bbox": [10, 10, 20, 20], "area": 400, "iscrowd": 1},
        {"id": 3, "image_id": 4, "category_id": 1, "bbox": [2, 10, 10, 20], "area": 200, "iscrowd": 0},
        {"id": 4, "image_id": 5, "category_id": 1, "bbox": [10, 10, 0, 20], "area": 0, "iscrowd": 0}
        """);

    private static CocoInstanceDataset Read(string json, DatasetFilterConfig? filter) =>
        CocoInstanceDataset.Load(json, "images", new CocoInstanceOptions { WithMasks = false, CheckImageFiles = false, FilterCfg = filter });

    /// <summary>
    /// mmdet's filter_data on the hand-made json: filter_empty_gt drops image 3 alone (the crowd-only and the
    /// unusable-only images have annotations in the json), min_size 32 drops image 4 (20 &lt; 32) and min_size 20 keeps it
    /// (20 ≥ 20); an empty filter_cfg keeps all five; without filter_cfg training keeps 1 and 4 (a usable non-crowd object).
    /// </summary>
    [Test]
    public void FilterCfgKeepsTheImagesMmdetsFilterDataKeeps()
    {
        var json = HandMadeCoco();
        static long[] Ids(CocoInstanceDataset d) => d.Images.Select(i => i.Id).ToArray();

        var ours = Read(json, null);
        Assert.That(Ids(ours), Is.EqualTo(new long[] { 1, 4 }));
        Assert.That((ours.ImagesWithoutObjectsSkipped, ours.ImagesBelowMinSizeSkipped), Is.EqualTo((3, 0)));

        var mmdet = Read(json, new DatasetFilterConfig { FilterEmptyGt = true, MinSize = 32 });
        Assert.That(Ids(mmdet), Is.EqualTo(new long[] { 1, 2, 5 }));
        Assert.That((mmdet.ImagesWithoutObjectsSkipped, mmdet.ImagesBelowMinSizeSkipped), Is.EqualTo((1, 1)));
        Assert.That(mmdet.ClassesIn(1), Is.EqualTo(new[] { 1 }), "the crowd-only image counts its crowd region's class (category 2), as mmdet's get_cat_ids");
        Assert.That(mmdet.ClassesIn(2), Is.Empty, "the unusable annotation is still skipped when read");

        Assert.That(Ids(Read(json, new DatasetFilterConfig { MinSize = 20 })), Is.EqualTo(new long[] { 1, 2, 3, 4, 5 }), "20 >= 20");
        Assert.That(Ids(Read(json, new DatasetFilterConfig())), Is.EqualTo(new long[] { 1, 2, 3, 4, 5 }), "filter_cfg: {} keeps every image");

        var unsized = WriteJson("unsized.json", """{"id": 1, "file_name": "1.jpg"}""", "");
        Assert.That(Assert.Throws<VimException>(() => Read(unsized, new DatasetFilterConfig { MinSize = 32 }))!.Message,
            Does.Contain("unsized.json").And.Contain("images[0]").And.Contain("data.filter_cfg.min_size 32"));
        Assert.That(Read(unsized, new DatasetFilterConfig { FilterEmptyGt = false }).Count, Is.EqualTo(1), "no size is read without min_size");
    }

    /// <summary>
    /// data.filter_cfg through a detection config on the demo data with two images added to its training json (one without
    /// annotations, one 30 pixels wide with an object): the summary `vim train` prints counts what each filter left out,
    /// and the key is refused in a segmentation config.
    /// </summary>
    [Test]
    public void TrainingSummarySaysHowManyImagesWereFiltered()
    {
        var root = _files.PathOf("coco");
        DemoDatasetGenerator.Generate(new DemoOptions { Kind = DemoKind.Coco, OutputDir = root, TrainImages = 3, ValImages = 1, Width = 64, Height = 64, Seed = 2 });
        var trainJson = Path.Combine(root, "annotations", "instances_train.json");
        var coco = JsonNode.Parse(File.ReadAllText(trainJson))!.AsObject();
        var demoImages = coco["images"]!.AsArray().Count;
        var annotations = coco["annotations"]!.AsArray();
        var demoWithObjects = annotations.Select(a => (long)a!["image_id"]!).Distinct().Count();
        var demoWithNonCrowd = annotations.Where(a => (int?)a!["iscrowd"] is null or 0).Select(a => (long)a!["image_id"]!).Distinct().Count();
        var category = (long)coco["categories"]![0]!["id"]!;
        coco["images"]!.AsArray().Add(JsonNode.Parse("""{"id": 9001, "width": 64, "height": 64, "file_name": "none.jpg"}"""));
        coco["images"]!.AsArray().Add(JsonNode.Parse("""{"id": 9002, "width": 30, "height": 64, "file_name": "narrow.jpg"}"""));
        coco["annotations"]!.AsArray().Add(JsonNode.Parse($$"""{"id": 9002, "image_id": 9002, "category_id": {{category}}, "bbox": [2, 2, 20, 20], "area": 400, "iscrowd": 0}"""));
        File.WriteAllText(trainJson, coco.ToJsonString());

        string Config(string name, string extra) => _files.WriteText(name, string.Join('\n',
            "task: detection", "model:", $"  num_classes: {DemoDatasetGenerator.ClassNames.Count}", "  det_head: {mask_on: false}",
            "data:", "  type: coco", $"  root: {root}", "  train_split: train", "  val_split: val", "  crop_size: [48, 48]", extra) + "\n");

        var filtered = new DetectionData(ExperimentConfig.Load(Config("filtered.yaml", "  filter_cfg: {filter_empty_gt: true, min_size: 32}"), []).Config);
        Assert.That(filtered.TrainSet.Count, Is.EqualTo(demoWithObjects));
        Assert.That(filtered.Summary, Does.StartWith($"{demoWithObjects} training images ({demoImages - demoWithObjects + 2} more filtered out: " +
            $"{demoImages - demoWithObjects + 1} without annotations (data.filter_cfg.filter_empty_gt), 1 smaller than 32 pixels on a side (data.filter_cfg.min_size))"));

        var sizeOnly = new DetectionData(ExperimentConfig.Load(Config("size-only.yaml", "  filter_cfg: {min_size: 32}"), []).Config);
        Assert.That(sizeOnly.TrainSet.Count, Is.EqualTo(demoImages + 1), "every image but the narrow one, the unannotated included");
        Assert.That(sizeOnly.Summary, Does.StartWith($"{demoImages + 1} training images (1 more filtered out: 1 smaller than 32 pixels on a side (data.filter_cfg.min_size))"),
            "filter_empty_gt is off, so the summary names no image filtered by it");

        var recipe = new DetectionData(ExperimentConfig.Load(Config("recipe.yaml", ""), []).Config);
        Assert.That(recipe.TrainSet.Count, Is.EqualTo(demoWithNonCrowd + 1), "the narrow image is kept without min_size");
        Assert.That(recipe.Summary, Does.Contain($"({demoImages - demoWithNonCrowd + 1} more filtered out: {demoImages - demoWithNonCrowd + 1} without a usable non-crowd object)"));

        var segmentation = _files.WriteText("seg.yaml", "task: segmentation\ndata:\n  filter_cfg: {filter_empty_gt: true}\n");
        Assert.That(Assert.Throws<VimException>(() => ExperimentConfig.Load(segmentation, []))!.Message,
            Does.Contain("seg.yaml:3").And.Contain("data.filter_cfg is a detection setting"));
        var negative = Config("negative.yaml", "  filter_cfg: {min_size: -1}");
        Assert.That(Assert.Throws<VimException>(() => new DetectionData(ExperimentConfig.Load(negative, []).Config))!.Message,
            Does.Contain("data.filter_cfg.min_size is -1"));
    }

    /// <summary>The seed whose crop of a 40×40 image to a 40-high, 20-wide window starts at x = 10 (mmdet's draw: the row offset, then the column's).</summary>
    private static int SeedForWindowAtTen()
    {
        for (int seed = 0; ; seed++)
        {
            var replay = new Random(seed);
            if (replay.Next(1) == 0 && replay.Next(21) == 10) return seed;
        }
    }

    private static DataSample Cropped(string options, DataSample sample)
    {
        Step($"random_crop: {{height: 40, width: 20{options}}}").Apply(sample, new Random(SeedForWindowAtTen()));
        Assert.That((sample.Height, sample.Width), Is.EqualTo((40, 20)));
        return sample;
    }

    /// <summary>Box-only: A [5, 5, 15, 15] half out of the window x ∈ [10, 30), F [12, 30, 28, 38] inside, D [32, 0, 38, 6] beyond it.</summary>
    private static DataSample BoxesOnly() => new(1, "boxes.png", new byte[40 * 40 * 3], 40, 40)
    {
        Boxes = [5, 5, 15, 15, 12, 30, 28, 38, 32, 0, 38, 6], Labels = [0, 1, 2], IsCrowd = [false, false, false], AnnotationIds = [1, 2, 3],
    };

    /// <summary>
    /// Masked, on 40×40: B, an RLE mask of two blobs (columns 12..14 × rows 0..4 and columns 32..36 × rows 30..34, box
    /// [12, 0, 37, 35]); C, the polygon triangle (5, 10), (25, 10), (5, 30) (box [5, 10, 25, 30]); E, an RLE mask at columns
    /// 31..34 (outside the window) under a loose box [25, 20, 35, 25] that reaches into it; D, a polygon square beyond the window.
    /// </summary>
    private static DataSample Masked()
    {
        var blobs = new byte[40 * 40];
        var beyond = new byte[40 * 40];
        for (int y = 0; y < 40; y++)
            for (int x = 0; x < 40; x++)
            {
                blobs[y * 40 + x] = (byte)((x is >= 12 and <= 14 && y <= 4) || (x is >= 32 and <= 36 && y is >= 30 and <= 34) ? 1 : 0);
                beyond[y * 40 + x] = (byte)(x is >= 31 and <= 34 && y is >= 20 and <= 24 ? 1 : 0);
            }
        return new DataSample(2, "masked.png", new byte[40 * 40 * 3], 40, 40)
        {
            Boxes = [12, 0, 37, 35, 5, 10, 25, 30, 25, 20, 35, 25, 32, 0, 38, 6],
            Labels = [0, 1, 2, 3], IsCrowd = [false, false, false, false], AnnotationIds = [1, 2, 3, 4],
            Masks =
            [
                new InstanceMask(40, 40, blobs),
                new InstanceMask(40, 40, new byte[40 * 40], [[5, 10, 25, 10, 5, 30]]),
                new InstanceMask(40, 40, beyond),
                new InstanceMask(40, 40, new byte[40 * 40], [[32, 0, 38, 0, 38, 6, 32, 6]]),
            ],
        };
    }

    /// <summary>
    /// The window x ∈ [10, 30) of hand-placed objects. Box-only objects: clipped by default ([−5, 5, 5, 15] → [0, 5, 5, 15]),
    /// as shifted with bbox_clip_border false; the one beyond the window goes either way. Masked objects, mmdet's default
    /// (no recompute_bbox): B keeps its box clipped, [2, 0, 20, 35] (unclipped [2, 0, 27, 35]), C [0, 10, 15, 30] (unclipped
    /// [−5, 10, 15, 30]); with recompute_bbox each box is what is left of its mask whatever the clipping: B's left blob,
    /// columns 2..4 × rows 0..4 → [2, 0, 5, 5], and C's triangle cut at x = 0 along x + y = 15 → (0, 10), (15, 10), (0, 25),
    /// [0, 10, 15, 25]. E, whose mask lies wholly outside, goes in every mode (ours: mmdet keeps it with an empty mask).
    /// </summary>
    [Test]
    public void RandomCropClipsAndRecomputesBoxesAsItsOptionsSay()
    {
        Assert.That(Cropped("", BoxesOnly()).Boxes, Is.EqualTo(new float[] { 0, 5, 5, 15, 2, 30, 18, 38 }));
        Assert.That(Cropped(", bbox_clip_border: false", BoxesOnly()).Boxes, Is.EqualTo(new float[] { -5, 5, 5, 15, 2, 30, 18, 38 }));
        Assert.That(Cropped(", recompute_bbox: true", BoxesOnly()).Boxes, Is.EqualTo(new float[] { 0, 5, 5, 15, 2, 30, 18, 38 }), "box-only objects have no mask to recompute from");

        var expected = new Dictionary<string, float[]>
        {
            [""] = [2, 0, 20, 35, 0, 10, 15, 30],
            [", bbox_clip_border: false"] = [2, 0, 27, 35, -5, 10, 15, 30],
            [", recompute_bbox: true"] = [2, 0, 5, 5, 0, 10, 15, 25],
            [", recompute_bbox: true, bbox_clip_border: false"] = [2, 0, 5, 5, 0, 10, 15, 25],
        };
        foreach (var (options, boxes) in expected)
        {
            var sample = Cropped(options, Masked());
            Assert.That(sample.AnnotationIds, Is.EqualTo(new long[] { 1, 2 }), options);
            Assert.That(sample.Boxes, Is.EqualTo(boxes).Within(1e-5), options);
            Assert.That(SampleGeometry.TightBox(sample.Masks![0].Pixels, 40, 20), Is.EqualTo(new float[] { 2, 0, 5, 5 }), $"{options}: the mask is cut either way");
        }
    }
}
