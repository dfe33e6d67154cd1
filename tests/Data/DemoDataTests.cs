using System.Security.Cryptography;
using System.Text.Json;
using NUnit.Framework;
using Vim.Data.Coco;
using Vim.Data.Datasets;
using Vim.Data.Demo;
using Vim.Tools;

namespace Vim.Tests.Data;

public class DemoDataTests
{
    /// <summary>Mean colour of the selected pixels.</summary>
    private static (double R, double G, double B) MeanColour(byte[] rgb, Func<int, bool> selected)
    {
        double r = 0, g = 0, b = 0;
        int n = 0;
        for (int p = 0; p < rgb.Length / 3; p++)
        {
            if (!selected(p)) continue;
            r += rgb[3 * p]; g += rgb[3 * p + 1]; b += rgb[3 * p + 2];
            n++;
        }
        return (r / n, g / n, b / n);
    }

    /// <summary>
    /// The class colours as a person would describe them: circle red, rectangle blue, triangle green,
    /// ellipse yellow (red and green, little blue), star purple (red and blue, little green).
    /// </summary>
    private static bool LooksLikeClass(int cls, (double R, double G, double B) c) => cls switch
    {
        0 => c.R > 150 && c.G < 100 && c.B < 100,
        1 => c.B > 150 && c.R < 100 && c.G < 130,
        2 => c.G > 130 && c.R < 100 && c.B < 120,
        3 => c.R > 170 && c.G > 150 && c.B < 100,
        4 => c.R > 130 && c.B > 150 && c.G < 100,
        _ => false,
    };

    [Test]
    public void CocoDemoAnnotationsMatchThePixelsExactly()
    {
        using var files = new DataTestFiles();
        var summary = DemoDatasetGenerator.Generate(new DemoOptions
        {
            Kind = DemoKind.Coco, OutputDir = files.Root, TrainImages = 16, ValImages = 4, Width = 96, Height = 80, ImageExtension = ".png", Seed = 3,
        });
        Assert.That(summary.EmptyImages, Is.EqualTo(2), "train images 7 and 15 are empty (val has only 4)");
        Assert.That(summary.CrowdRegions, Is.GreaterThanOrEqualTo(4));
        Assert.That(Directory.GetFiles(files.Root, "*.tmp*", SearchOption.AllDirectories), Is.Empty, "atomic writes leave no temp files");

        var json = JsonDocument.Parse(File.ReadAllText(files.PathOf("annotations", "instances_train.json"))).RootElement;
        var kinds = json.GetProperty("annotations").EnumerateArray().Select(a =>
            a.GetProperty("segmentation").ValueKind == JsonValueKind.Array ? "polygon"
            : a.GetProperty("segmentation").GetProperty("counts").ValueKind == JsonValueKind.String ? "compressed" : "uncompressed").ToHashSet();
        Assert.That(kinds, Is.EquivalentTo(new[] { "polygon", "compressed", "uncompressed" }));

        var eval = CocoInstanceDataset.Load(files.PathOf("annotations", "instances_train.json"), files.PathOf("train"), CocoInstanceOptions.Evaluation);
        var train = CocoInstanceDataset.Load(files.PathOf("annotations", "instances_train.json"), files.PathOf("train"));
        Assert.That(eval.Count, Is.EqualTo(16));
        Assert.That(train.Count, Is.EqualTo(14), "empty images are skipped for training");
        Assert.That(eval.Categories.CategoryIds, Is.EqualTo(new long[] { 1, 2, 4, 7, 9 }));
        Assert.That(eval.Categories.Names, Is.EqualTo(DemoDatasetGenerator.ClassNames));
        Assert.That(eval.Warnings.Total, Is.Zero);

        var seenClasses = new HashSet<int>();
        for (int i = 0; i < eval.Count; i++)
        {
            var s = eval.Load(i);
            var owned = new bool[s.Height * s.Width];
            for (int k = 0; k < s.InstanceCount; k++)
            {
                var mask = s.Masks![k].Pixels;
                var tight = RectangleScene.Bounds(mask, s.Height, s.Width, p => mask[p] != 0)!.Value;
                Assert.That(s.Boxes.Skip(4 * k).Take(4), Is.EqualTo(new float[] { tight.X0, tight.Y0, tight.X1, tight.Y1 }),
                    $"image {s.ImageId} instance {k}: box is the mask's tight box");
                for (int p = 0; p < mask.Length; p++)
                {
                    if (mask[p] == 0) continue;
                    Assert.That(owned[p], Is.False, $"image {s.ImageId}: visible masks overlap at pixel {p}");
                    owned[p] = true;
                }
                var colour = MeanColour(s.Image, p => mask[p] != 0);
                Assert.That(LooksLikeClass(s.Labels[k], colour), Is.True, $"image {s.ImageId} instance {k} class {s.Labels[k]} has colour {colour}");
                seenClasses.Add(s.Labels[k]);
            }
            if (owned.Any(o => !o))
            {
                var background = MeanColour(s.Image, p => !owned[p]);
                Assert.That(Enumerable.Range(0, 5).Any(c => LooksLikeClass(c, background)), Is.False, $"image {s.ImageId}: background looks like an object");
            }
        }
        Assert.That(seenClasses, Has.Count.EqualTo(5));
    }

    /// <summary>
    /// The demo's instances json is written by the converters' writer (<c>CocoDatasetFile.Save</c>); read back it holds
    /// what the generator drew: images numbered from 1 with their files and size, annotations numbered from 1, each area
    /// the pixel count of its visible mask, the demo's non-contiguous category ids under supercategory "shape", and the
    /// seed in info.description.
    /// </summary>
    [Test]
    public void CocoDemoJsonReadsBackAsTheGeneratedScenes()
    {
        using var files = new DataTestFiles();
        var summary = DemoDatasetGenerator.Generate(new DemoOptions
        {
            Kind = DemoKind.Coco, OutputDir = files.Root, TrainImages = 9, ValImages = 4, Width = 72, Height = 64, ImageExtension = ".png", Seed = 11,
        });
        string json = files.PathOf("annotations", "instances_train.json");
        var coco = CocoDataset.Load(json);
        Assert.That(coco.Images.Select(i => (i.Id, i.FileName, i.Width, i.Height)),
            Is.EqualTo(Enumerable.Range(1, 9).Select(id => ((long)id, $"{id:D12}.png", 72, 64))));
        Assert.That(coco.Images.Select(i => File.Exists(files.PathOf("train", i.FileName!))), Is.All.True);
        Assert.That(coco.Annotations.Select(a => a.Id), Is.EqualTo(Enumerable.Range(1, coco.Annotations.Count).Select(id => (long)id)));
        Assert.That(coco.Categories.Select(c => (c.Id, c.Name, c.Supercategory)),
            Is.EqualTo(new[] { 1L, 2, 4, 7, 9 }.Select((id, c) => (id, DemoDatasetGenerator.ClassNames[c], (string?)"shape"))));
        Assert.That(JsonDocument.Parse(File.ReadAllText(json)).RootElement.GetProperty("info").GetProperty("description").GetString(),
            Is.EqualTo("VimDense synthetic shapes (train, seed 11)"));

        foreach (var a in coco.Annotations)
        {
            var mask = a.Segmentation!.ToRle(64, 72).Decode();
            Assert.That(a.Area, Is.EqualTo((double)mask.Count(b => b != 0)), $"annotation {a.Id}: area is its mask's pixel count");
        }
        // The instance dataset sees the same objects: every annotation once, with its crowd flag, class and mask.
        var eval = CocoInstanceDataset.Load(json, files.PathOf("train"), CocoInstanceOptions.Evaluation);
        var byId = coco.Annotations.ToDictionary(a => a.Id);
        var seen = new List<long>();
        for (int i = 0; i < eval.Count; i++)
        {
            var sample = eval.Load(i);
            for (int k = 0; k < sample.InstanceCount; k++)
            {
                var annotation = byId[sample.AnnotationIds[k]];
                Assert.That(annotation.ImageId, Is.EqualTo(sample.ImageId));
                Assert.That(sample.IsCrowd[k], Is.EqualTo(annotation.IsCrowd), $"annotation {annotation.Id}");
                Assert.That(eval.Categories.CategoryIds[sample.Labels[k]], Is.EqualTo(annotation.CategoryId), $"annotation {annotation.Id}");
                Assert.That(sample.Masks![k].Pixels.Count(p => p != 0), Is.EqualTo((int)annotation.Area!.Value), $"annotation {annotation.Id}");
                seen.Add(annotation.Id);
            }
        }
        Assert.That(seen, Is.EquivalentTo(byId.Keys));
        Assert.That(coco.Annotations.Count + CocoDataset.Load(files.PathOf("annotations", "instances_val.json")).Annotations.Count,
            Is.EqualTo(summary.Instances));
    }

    [Test]
    public void DemoGenerationIsDeterministicPerSeed()
    {
        using var a = new DataTestFiles();
        using var b = new DataTestFiles();
        using var c = new DataTestFiles();
        foreach (var (dir, seed) in new[] { (a, 1), (b, 1), (c, 2) })
            DemoDatasetGenerator.Generate(new DemoOptions { Kind = DemoKind.Coco, OutputDir = dir.Root, TrainImages = 4, ValImages = 4, Width = 64, Height = 64, Seed = seed });
        string Hash(DataTestFiles d, params string[] p) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(d.PathOf(p))));
        Assert.That(Hash(a, "annotations", "instances_train.json"), Is.EqualTo(Hash(b, "annotations", "instances_train.json")));
        Assert.That(Hash(a, "train", "000000000002.jpg"), Is.EqualTo(Hash(b, "train", "000000000002.jpg")));
        Assert.That(Hash(a, "annotations", "instances_train.json"), Is.Not.EqualTo(Hash(c, "annotations", "instances_train.json")));
    }

    [Test]
    public void AdeDemoLabelsFollowTheZeroIsBackgroundConvention()
    {
        using var files = new DataTestFiles();
        int exit = VimCli.Run(["data", "demo", "--kind", "ade", "--out", files.Root, "--images", "8", "--size", "72x64", "--seed", "4"]);
        Assert.That(exit, Is.Zero);
        var names = SegmentationFolderDataset.ReadClassNames(files.PathOf("class_names.txt"));
        Assert.That(names, Is.EqualTo(DemoDatasetGenerator.ClassNames));
        var train = SegmentationFolderDataset.Ade20k(files.Root, "training", names);
        var val = SegmentationFolderDataset.Ade20k(files.Root, "validation", names);
        Assert.That((train.Count, val.Count), Is.EqualTo((8, 4)));
        var classPixels = new long[5];
        for (int i = 0; i < train.Count; i++)
        {
            var s = train.Load(i);
            Assert.That((s.Height, s.Width), Is.EqualTo((64, 72)));
            for (int c = 0; c < 5; c++)
            {
                var labels = s.LabelMap!;
                int count = labels.Count(v => v == c);
                classPixels[c] += count;
                // JPEG blurs edges, so judge the class colour on its pixels as a whole.
                if (count > 60) Assert.That(LooksLikeClass(c, MeanColour(s.Image, p => labels[p] == c)), Is.True, $"{s.FilePath}: class {c}");
            }
            Assert.That(s.LabelMap!.All(v => v < 5 || v == 255), Is.True);
            if (DemoDatasetGenerator.IsEmptyImage(i)) Assert.That(s.LabelMap!.All(v => v == 255), Is.True, "empty images are all background → ignore");
            else Assert.That(s.LabelMap!.Count(v => v == 255), Is.GreaterThan(0).And.LessThan(64 * 72), "background and objects");
        }
        Assert.That(classPixels.Count(n => n > 0), Is.GreaterThanOrEqualTo(4));
    }

    /// <summary>
    /// `vim data check` reports files missing on disk without decoding any sample (--decode 0): what the datasets find
    /// when they are built.
    /// </summary>
    [Test]
    public void CheckCommandValidatesDemoDataAndNamesMissingFiles()
    {
        using var files = new DataTestFiles();
        Assert.That(VimCli.Run(["data", "demo", "--out", files.Root, "--images", "4", "--size", "48x40"]), Is.Zero);
        Assert.That(VimCli.Run(["data", "check", "--root", files.Root, "--split", "val", "--decode", "-1"]), Is.Zero);
        File.Delete(files.PathOf("val", "000000000002.jpg"));
        var error = new StringWriter();
        Assert.That(VimCli.Run(["data", "check", "--root", files.Root, "--split", "val", "--decode", "0"], error), Is.EqualTo(1));
        Assert.That(error.ToString(), Does.Contain(files.PathOf("annotations", "instances_val.json")).And.Contain("1 of the 4 images")
            .And.Contain("not found in " + files.PathOf("val")).And.Contain("000000000002.jpg"));
    }

    [Test]
    public void CheckCommandNamesUnpairedAdeImagesAndLabelMaps()
    {
        using var files = new DataTestFiles();
        Assert.That(VimCli.Run(["data", "demo", "--kind", "ade", "--out", files.Root, "--images", "4", "--size", "48x40"]), Is.Zero);
        string[] check = ["data", "check", "--kind", "ade", "--root", files.Root, "--split", "training", "--decode", "0"];
        Assert.That(VimCli.Run(check), Is.Zero);
        var image = Directory.GetFiles(files.PathOf("images", "training")).Order(StringComparer.Ordinal).First();
        var stem = Path.GetFileNameWithoutExtension(image);
        File.Move(image, files.PathOf("stray.jpg"));
        var error = new StringWriter();
        Assert.That(VimCli.Run(check, error), Is.EqualTo(1));
        Assert.That(error.ToString(), Does.Contain("1 label map(s) in " + files.PathOf("annotations", "training"))
            .And.Contain(files.PathOf("annotations", "training", stem + ".png")).And.Contain(files.PathOf("images", "training", stem + ".jpg")));
    }

    [Test]
    public void DemoCommandRejectsBadArguments()
    {
        using var files = new DataTestFiles();
        var error = new StringWriter();
        Assert.That(VimCli.Run(["data", "demo", "--kind", "voc", "--out", files.Root], error), Is.EqualTo(1));
        Assert.That(error.ToString(), Does.Contain("--kind").And.Contain("coco or ade"));
        error = new StringWriter();
        Assert.That(VimCli.Run(["data", "demo", "--out", files.Root, "--size", "64by64"], error), Is.EqualTo(1));
        Assert.That(error.ToString(), Does.Contain("--size").And.Contain("WIDTHxHEIGHT"));
    }

    [Test]
    public void SyntheticBenchJsonIsAValidCocoFileOfTheRequestedSize()
    {
        using var files = new DataTestFiles();
        var path = files.PathOf("big.json");
        var (images, annotations) = SyntheticCocoJson.Write(path, 400_000);
        Assert.That(new FileInfo(path).Length, Is.InRange(250_000, 600_000));
        var coco = Vim.Data.Coco.CocoDataset.Load(path);
        // The json's images are not written; the dataset only checks that they exist.
        foreach (var image in coco.Images) File.Create(files.PathOf(image.FileName!)).Dispose();
        var ds = new CocoInstanceDataset(coco, path, files.Root);
        Assert.That(ds.Source.Images, Has.Count.EqualTo(images));
        Assert.That(ds.Source.Annotations, Has.Count.EqualTo(annotations));
        Assert.That(ds.Categories.Count, Is.EqualTo(80));
        Assert.That(ds.Warnings.Total, Is.Zero);
        var crowdAnnotation = ds.Source.Annotations.First(a => a.IsCrowd);
        var crowd = crowdAnnotation.Segmentation!.ToRle(480, 640);
        var box = crowd.ToBbox();
        Assert.That(box[2], Is.EqualTo(box[3]), "a square region");
        Assert.That(crowd.Area, Is.EqualTo((long)(box[2] * box[3])));
        Assert.That(box[0], Is.EqualTo(Math.Floor(crowdAnnotation.Bbox![0])));
    }
}
