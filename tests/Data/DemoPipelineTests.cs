using Vim.Data.Masks;
using NUnit.Framework;
using Vim.Data.Datasets;
using Vim.Data.Demo;
using Vim.Data.Loading;
using Vim.Data.Transforms;
using static TorchSharp.torch;

namespace Vim.Tests.Data;

/// <summary>The demo datasets through the official recipes and the loader, end to end.</summary>
public class DemoPipelineTests
{
    [Test]
    public void CocoDemoThroughLsjKeepsBoxesAroundTheirMasks()
    {
        using var files = new DataTestFiles();
        DemoDatasetGenerator.Generate(new DemoOptions { Kind = DemoKind.Coco, OutputDir = files.Root, TrainImages = 8, ValImages = 4, Width = 96, Height = 96, Seed = 7 });
        var dataset = CocoInstanceDataset.Load(files.PathOf("annotations", "instances_train.json"), files.PathOf("train"));
        var loader = new DataLoader(dataset, TransformPipeline.DetectionLsjTraining(128),
            new LoaderOptions { BatchSize = 2, NumWorkers = 2, Kind = BatchKind.Detection, SizeDivisor = 32, Seed = 3 });
        int instances = 0, polygons = 0;
        for (int epoch = 0; epoch < 2; epoch++)
        {
            foreach (var batch in loader.Epoch(epoch))
            {
                using var scope = NewDisposeScope();
                using (batch)
                {
                    Assert.That(batch.Images.shape[0], Is.EqualTo(2));
                    Assert.That(batch.Images.shape[2] % 32, Is.Zero);
                    Assert.That(batch.Images.shape[2], Is.LessThanOrEqualTo(128));
                    for (int n = 0; n < batch.Count; n++)
                    {
                        var t = batch.Targets![n];
                        var meta = batch.Metas[n];
                        var boxes = t.Boxes.data<float>().ToArray();
                        var masks = t.Masks!;
                        int h = (int)masks.shape[1], w = (int)masks.shape[2];
                        Assert.That((h, w), Is.EqualTo((meta.ContentHeight, meta.ContentWidth)));
                        for (int k = 0; k < boxes.Length / 4; k++)
                        {
                            instances++;
                            var mask = masks[k].data<byte>().ToArray();
                            if (t.Outlines![k] is not { } outlines)
                            {
                                // An RLE instance (the demo writes occluded objects so): the box bounds its bitmap.
                                var bounds = RectangleScene.Bounds(mask, h, w, p => mask[p] != 0);
                                Assert.That(bounds, Is.Not.Null, "instances whose mask vanished are removed");
                                var (x0, y0, x1, y1) = bounds!.Value;
                                Assert.That(boxes[4 * k], Is.LessThanOrEqualTo(x0 + 1f));
                                Assert.That(boxes[4 * k + 1], Is.LessThanOrEqualTo(y0 + 1f));
                                Assert.That(boxes[4 * k + 2], Is.GreaterThanOrEqualTo(x1 - 1f).And.LessThanOrEqualTo(w));
                                Assert.That(boxes[4 * k + 3], Is.GreaterThanOrEqualTo(y1 - 1f).And.LessThanOrEqualTo(h));
                                continue;
                            }
                            polygons++;
                            // A polygon instance: its outlines travel with the sample, and the box is their extent
                            // (detectron2's recompute_boxes), inside the image.
                            Assert.That(outlines.Count, Is.GreaterThan(0), "instances whose outlines were cut away are removed");
                            var extent = Outlines.Extent(outlines)!;
                            Assert.That(boxes.Skip(4 * k).Take(4), Is.EqualTo(new[] { Math.Max(extent[0], 0), Math.Max(extent[1], 0), Math.Min(extent[2], w), Math.Min(extent[3], h) }));
                            // The bitmap moved with them: drawn from the outlines here it covers nearly the same pixels.
                            var drawn = PolygonRasterizer.FromPolygons(outlines, h, w).Decode();
                            int both = 0, either = 0;
                            for (int p = 0; p < mask.Length; p++)
                            {
                                if (mask[p] != 0 && drawn[p] != 0) both++;
                                if (mask[p] != 0 || drawn[p] != 0) either++;
                            }
                            if (either >= 100) Assert.That((double)both / either, Is.GreaterThan(0.8), $"instance {k}: bitmap and outlines overlap");
                        }
                    }
                }
            }
        }
        Assert.That(instances, Is.GreaterThan(10));
        Assert.That(polygons, Is.GreaterThan(5));
    }

    [Test]
    public void AdeDemoThroughTheSegmentationRecipeGivesFixedSizeBatches()
    {
        using var files = new DataTestFiles();
        DemoDatasetGenerator.Generate(new DemoOptions { Kind = DemoKind.Ade, OutputDir = files.Root, TrainImages = 6, ValImages = 4, Width = 64, Height = 48, Seed = 2 });
        var dataset = SegmentationFolderDataset.Ade20k(files.Root, "training", SegmentationFolderDataset.ReadClassNames(files.PathOf("class_names.txt")));
        var loader = new DataLoader(dataset, TransformPipeline.SegmentationTraining(32, 32, 256, 64),
            new LoaderOptions { BatchSize = 3, NumWorkers = 1, Kind = BatchKind.Segmentation });
        var seen = new HashSet<long>();
        foreach (var batch in loader.Epoch(0))
        {
            using var scope = NewDisposeScope();
            using (batch)
            {
                Assert.That(batch.Images.shape, Is.EqualTo(new long[] { 3, 3, 32, 32 }));
                Assert.That(batch.Labels!.shape, Is.EqualTo(new long[] { 3, 32, 32 }));
                var values = batch.Labels.unique().output.data<long>().ToArray();
                Assert.That(values.All(v => v is >= 0 and < 5 or 255), Is.True, string.Join(",", values));
                foreach (var v in values) seen.Add(v);
            }
        }
        Assert.That(seen, Does.Contain(255L));
        Assert.That(seen.Count(v => v < 5), Is.GreaterThanOrEqualTo(2));
    }
}
