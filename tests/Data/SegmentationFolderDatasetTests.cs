using NUnit.Framework;
using OpenCvSharp;
using Vim.Core;
using Vim.Data.Datasets;

namespace Vim.Tests.Data;

public class SegmentationFolderDatasetTests
{
    [Test]
    public void Ade20kClassListIsTheOfficial150()
    {
        var names = Ade20kClasses.Names;
        Assert.That(names, Has.Count.EqualTo(150));
        Assert.That(names.Distinct().Count(), Is.EqualTo(150));
        Assert.That((names[0], names[7], names[12], names[20], names[149]), Is.EqualTo(("wall", "bed", "person", "car", "flag")));
    }

    private static DataTestFiles AdeFixture(Func<int, int, byte> labelA)
    {
        var files = new DataTestFiles();
        files.WriteRgb(Path.Combine("images", "training", "ADE_train_1.jpg"), 6, 8, (y, x) => (200, 10, 10));
        files.WriteGray(Path.Combine("annotations", "training", "ADE_train_1.png"), 6, 8, labelA);
        files.WriteRgb(Path.Combine("images", "training", "ADE_train_2.jpg"), 6, 8, (y, x) => (10, 10, 200));
        files.WriteGray(Path.Combine("annotations", "training", "ADE_train_2.png"), 6, 8, (_, _) => 1);
        return files;
    }

    [Test]
    public void ReduceZeroLabelMapsZeroToIgnoreAndShiftsTheRest()
    {
        byte[] raw = [0, 1, 2, 150, 255, 7];
        using var files = AdeFixture((y, x) => raw[(y * 8 + x) % raw.Length]);
        var ds = SegmentationFolderDataset.Ade20k(files.Root, "training");
        Assert.That(ds.Count, Is.EqualTo(2));
        var s = ds.Load(0);
        Assert.That(s.LabelMap!.Take(6), Is.EqualTo(new ushort[] { 255, 0, 1, 149, 255, 6 }));
        Assert.That(s.Image[0], Is.GreaterThan(150), "JPEG decoded as RGB: red first");
        Assert.That(ds.Load(1).LabelMap!.All(v => v == 0), Is.True);
    }

    /// <summary>
    /// The images-only view evaluation loaders read: the same pixels, no label map, and so no label PNG read (a label
    /// value the dataset would refuse goes unnoticed there; evaluation reads and checks each map itself).
    /// </summary>
    [Test]
    public void TheImagesOnlyViewLoadsTheImagesWithoutTheirLabelMaps()
    {
        using var files = AdeFixture((y, x) => y == 2 && x == 5 ? (byte)151 : (byte)3);
        var ds = SegmentationFolderDataset.Ade20k(files.Root, "training");
        var images = ds.ImagesOnly;
        Assert.That(images.Count, Is.EqualTo(2));
        Assert.Throws<VimException>(() => ds.Load(0), "the label map is out of range");
        var alone = images.Load(0);
        Assert.That(alone.LabelMap, Is.Null);
        Assert.That((alone.ImageId, alone.Height, alone.Width), Is.EqualTo((0L, 6, 8)));
        Assert.That(images.Load(1).Image, Is.EqualTo(ds.Load(1).Image));
    }

    [Test]
    public void OutOfRangeLabelsNameTheFileTheValueAndThePixel()
    {
        using var files = AdeFixture((y, x) => y == 2 && x == 5 ? (byte)151 : (byte)3);
        var ds = SegmentationFolderDataset.Ade20k(files.Root, "training");
        var e = Assert.Throws<VimException>(() => ds.Load(0))!;
        Assert.That(e.Message, Does.Contain("ADE_train_1.png").And.Contain("label value 151").And.Contain("x=5, y=2").And.Contain("0..150"));

        var custom = new SegmentationFolderDataset(new SegmentationFolderOptions
        {
            ImageDir = files.PathOf("images", "training"),
            AnnotationDir = files.PathOf("annotations", "training"),
            ClassNames = ["a", "b", "c"],
        });
        e = Assert.Throws<VimException>(() => custom.Load(0))!;
        Assert.That(e.Message, Does.Contain("label value 3").And.Contain("0..2 or 255"));
        Assert.That(custom.Load(1).LabelMap!.All(v => v == 1), Is.True, "without reduce_zero_label values pass through");
    }

    [Test]
    public void MissingAndMismatchedLabelMapsAreErrors()
    {
        using var files = AdeFixture((_, _) => 1);
        File.Delete(files.PathOf("annotations", "training", "ADE_train_2.png"));
        var e = Assert.Throws<VimException>(() => SegmentationFolderDataset.Ade20k(files.Root, "training"))!;
        Assert.That(e.Message, Does.Contain("ADE_train_2.jpg").And.Contain("ADE_train_2.png"));

        files.WriteGray(Path.Combine("annotations", "training", "ADE_train_2.png"), 5, 8, (_, _) => 1);
        var ds = SegmentationFolderDataset.Ade20k(files.Root, "training");
        e = Assert.Throws<VimException>(() => ds.Load(1))!;
        Assert.That(e.Message, Does.Contain("8x5").And.Contain("8x6"));

        using (var colour = new Mat(6, 8, MatType.CV_8UC3, Scalar.All(1))) files.Write(Path.Combine("annotations", "training", "ADE_train_2.png"), colour);
        e = Assert.Throws<VimException>(() => ds.Load(1))!;
        Assert.That(e.Message, Does.Contain("single-channel").And.Contain("3 channel"));

        e = Assert.Throws<VimException>(() => SegmentationFolderDataset.Ade20k(files.Root, "validation"))!;
        Assert.That(e.Message, Does.Contain(Path.Combine("images", "validation")).And.Contain("not found"));
    }

    /// <summary>
    /// An image without its label map and a label map without its image are both found when the dataset is built, each
    /// with its count, the files and the file expected beside them.
    /// </summary>
    [Test]
    public void UnpairedImagesAndLabelMapsAreNamedWhenTheDatasetIsBuilt()
    {
        using var files = AdeFixture((_, _) => 1);
        files.WriteGray(Path.Combine("annotations", "training", "sub", "ADE_train_3.png"), 6, 8, (_, _) => 1);
        var e = Assert.Throws<VimException>(() => SegmentationFolderDataset.Ade20k(files.Root, "training"))!;
        string images = files.PathOf("images", "training"), labels = files.PathOf("annotations", "training");
        Assert.That(e.Message, Is.EqualTo($"segmentation dataset {images}: images and label maps do not pair up: 1 label map(s) in {labels} have no image in " +
            $"{images} (files: {Path.Combine(labels, "sub", "ADE_train_3.png")}; expected e.g. {Path.Combine(images, "sub", "ADE_train_3.jpg")})."));

        File.Delete(files.PathOf("annotations", "training", "ADE_train_1.png"));
        e = Assert.Throws<VimException>(() => SegmentationFolderDataset.Ade20k(files.Root, "training"))!;
        Assert.That(e.Message, Does.Contain($"1 of the 2 images in {images} have no label map in {labels} (files: {Path.Combine(images, "ADE_train_1.jpg")}; " +
            $"expected e.g. {Path.Combine(labels, "ADE_train_1.png")})").And.Contain("; and 1 label map(s)"));

        files.WriteRgb(Path.Combine("images", "training", "sub", "ADE_train_3.jpg"), 6, 8, (_, _) => (1, 2, 3));
        files.WriteGray(Path.Combine("annotations", "training", "ADE_train_1.png"), 6, 8, (_, _) => 1);
        Assert.That(SegmentationFolderDataset.Ade20k(files.Root, "training").Count, Is.EqualTo(3), "paired again, the subfolder included");
    }

    [Test]
    public void ExifOrientationIsIgnored()
    {
        using var files = new DataTestFiles();
        var path = files.WriteJpegRotatedByExif("rotated.jpg", 20, 30, new Scalar(0, 0, 255));
        using (var honoured = Cv2.ImRead(path, ImreadModes.Color))
            Assert.That((honoured.Rows, honoured.Cols), Is.EqualTo((30, 20)), "fixture check: OpenCV sees the EXIF rotation");
        var (rgb, h, w) = ImageDecoder.ReadRgb(path);
        Assert.That((h, w), Is.EqualTo((20, 30)), "annotations refer to the stored pixel grid");
        Assert.That(rgb[0], Is.GreaterThan(200), "red stays red in RGB order");
    }

    [Test]
    public void GrayscaleAndRgbaImagesBecomeRgb()
    {
        using var files = new DataTestFiles();
        files.WriteGray("g.png", 3, 4, (y, x) => (byte)(10 * x + y));
        using (var rgba = new Mat(3, 4, MatType.CV_8UC4, new Scalar(30, 20, 10, 128))) files.Write("rgba.png", rgba);
        var (g, gh, gw) = ImageDecoder.ReadRgb(files.PathOf("g.png"));
        Assert.That((gh, gw), Is.EqualTo((3, 4)));
        int p = 3 * (2 * 4 + 3);
        Assert.That((g[p], g[p + 1], g[p + 2]), Is.EqualTo(((byte)32, (byte)32, (byte)32)));
        var (c, _, _) = ImageDecoder.ReadRgb(files.PathOf("rgba.png"));
        Assert.That((c[0], c[1], c[2]), Is.EqualTo(((byte)10, (byte)20, (byte)30)), "BGRA(30,20,10) → RGB(10,20,30), alpha dropped");
        Assert.That(c, Has.Length.EqualTo(3 * 12));
    }
}
