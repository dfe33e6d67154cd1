using NUnit.Framework;
using Vim.Core;
using Vim.Core.Config;
using Vim.Data.Datasets;
using Vim.Data.Loading;
using Vim.Data.Transforms;
using static TorchSharp.torch;

namespace Vim.Tests.Data;

/// <summary>
/// Simple Copy-Paste (mmdet's CopyPaste) on hand-made samples of rectangle objects, whose pasted pixels, cut masks and
/// recomputed boxes are worked out by hand, and the loader's mixing stage that feeds it a second sample.
/// </summary>
public class CopyPasteTests
{
    internal readonly record struct Rect(int X0, int Y0, int X1, int Y1)
    {
        public bool Contains(int x, int y) => x >= X0 && x < X1 && y >= Y0 && y < Y1;
    }

    /// <summary>
    /// A <paramref name="height"/>×<paramref name="width"/> sample whose pixel (y, x) is (x·9 + y + 50·tag, y·11 + x, tag),
    /// so every pixel says where it is and which sample it came from, with one rectangle object per <paramref name="objects"/>
    /// entry: box = the rectangle, mask = its pixels, class k, annotation id 100·tag + k.
    /// </summary>
    internal static DataSample Scene(int height, int width, byte tag, params Rect[] objects)
    {
        var image = new byte[height * width * 3];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                int p = 3 * (y * width + x);
                image[p] = (byte)(x * 9 + y + 50 * tag);
                image[p + 1] = (byte)(y * 11 + x);
                image[p + 2] = tag;
            }
        return new DataSample(tag, $"scene/{tag}", image, height, width)
        {
            Boxes = objects.SelectMany(o => new float[] { o.X0, o.Y0, o.X1, o.Y1 }).ToArray(),
            Labels = objects.Select((_, k) => k).ToArray(),
            IsCrowd = new bool[objects.Length],
            AnnotationIds = objects.Select((_, k) => 100L * tag + k).ToArray(),
            Masks = objects.Select(o => Mask(height, width, o)).ToList(),
        };
    }

    internal static InstanceMask Mask(int height, int width, Rect rect)
    {
        var pixels = new byte[height * width];
        for (int y = rect.Y0; y < rect.Y1; y++)
            for (int x = rect.X0; x < rect.X1; x++) pixels[y * width + x] = 1;
        return new InstanceMask(height, width, pixels);
    }

    private static CopyPaste Paster(int maxNumPasted = 100, int bboxThr = 10, int maskThr = 300, bool selected = false, bool byBox = false) =>
        new(new CopyPasteConfig { MaxNumPasted = maxNumPasted, BboxOccludedThr = bboxThr, MaskOccludedThr = maskThr, Selected = selected, PasteByBox = byBox });

    internal static byte[] Pixel(byte[] image, int width, int y, int x) => image.AsSpan(3 * (y * width + x), 3).ToArray();

    /// <summary>
    /// Every source object pasted (selected: false): the result's pixels are the source's inside the union of its two
    /// masks and the destination's elsewhere; an untouched destination object keeps its box and mask, and the pasted
    /// objects follow it with their boxes, masks, classes, ids and crowd flags.
    /// </summary>
    [Test]
    public void PastedPixelsAreTheSourcesInsideItsMasksAndTheDestinationsElsewhere()
    {
        const int H = 20, W = 30;
        Rect first = new(2, 3, 8, 9), second = new(20, 10, 26, 18), untouched = new(10, 12, 16, 19);
        var destination = Scene(H, W, 1, untouched);
        var source = Scene(H, W, 2, first, second);
        source.IsCrowd = [false, true];
        var destinationImage = (byte[])destination.Image.Clone();
        var sourceImage = (byte[])source.Image.Clone();
        var untouchedMask = destination.Masks![0];
        var sourceMasks = source.Masks!.ToList();

        Paster().Mix(destination, source, new Random(0));

        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
            {
                var expected = first.Contains(x, y) || second.Contains(x, y) ? sourceImage : destinationImage;
                Assert.That(Pixel(destination.Image, W, y, x), Is.EqualTo(Pixel(expected, W, y, x)), $"pixel ({x}, {y})");
            }
        Assert.That(destination.Boxes, Is.EqualTo(new float[] { 10, 12, 16, 19, 2, 3, 8, 9, 20, 10, 26, 18 }));
        Assert.That(destination.Labels, Is.EqualTo(new[] { 0, 0, 1 }));
        Assert.That(destination.AnnotationIds, Is.EqualTo(new long[] { 100, 200, 201 }));
        Assert.That(destination.IsCrowd, Is.EqualTo(new[] { false, false, true }), "a pasted crowd region stays ignored");
        Assert.That(destination.Masks, Is.EqualTo(new[] { untouchedMask, sourceMasks[0], sourceMasks[1] }).Using<InstanceMask>(ReferenceEquals));
        Assert.That((destination.Height, destination.Width, destination.ContentHeight, destination.ContentWidth), Is.EqualTo((H, W, H, W)));
    }

    /// <summary>
    /// Destination A = [4, 8)² lies inside pasted S1 = [2, 10)²: no pixel left, dropped (mmdet's rule would keep it: its
    /// recomputed box [0, 0, 0, 0] is within 10 px of [4, 4, 8, 8]). B = x [12, 28) × y [2, 16) loses x ≥ 20 to pasted
    /// S2 = x [20, 30) × y [0, 20): its mask becomes x [12, 20) × y [2, 16) (112 pixels) and its box [12, 2, 20, 16],
    /// whose right side moved 8 ≤ 10 pixels, so it stays.
    /// </summary>
    [Test]
    public void ACoveredObjectIsDroppedAndACutOneKeepsItsVisiblePixelsAndTheirBox()
    {
        const int H = 20, W = 32;
        Rect a = new(4, 4, 8, 8), b = new(12, 2, 28, 16), s1 = new(2, 2, 10, 10), s2 = new(20, 0, 30, 20);
        var destination = Scene(H, W, 1, a, b);
        var source = Scene(H, W, 2, s1, s2);

        Paster().Mix(destination, source, new Random(0));

        Assert.That(destination.AnnotationIds, Is.EqualTo(new long[] { 101, 200, 201 }), "A dropped, B kept, S1 and S2 pasted");
        Assert.That(destination.Labels, Is.EqualTo(new[] { 1, 0, 1 }));
        Assert.That(destination.Boxes.Take(4), Is.EqualTo(new float[] { 12, 2, 20, 16 }));
        var cut = destination.Masks![0];
        Assert.That(cut.Pixels, Is.EqualTo(Mask(H, W, new Rect(12, 2, 20, 16)).Pixels));
        Assert.That(cut.Outlines, Is.Null, "a cut mask is a bitmap");
    }

    /// <summary>
    /// Object [0, 20) × [0, 10) loses its 5 right columns to a pasted [15, 20) × [0, 10): its box's right side moves
    /// 5 pixels and 150 pixels stay. It stays for bbox_occluded_thr ≥ 5 (mask_occluded_thr out of reach) or for
    /// mask_occluded_thr &lt; 150 (bbox_occluded_thr 0), and goes just past either edge.
    /// </summary>
    [TestCase(5, 1000, true)]
    [TestCase(4, 1000, false)]
    [TestCase(0, 149, true)]
    [TestCase(0, 150, false)]
    public void OcclusionThresholdsAtTheirEdges(int bboxThr, int maskThr, bool kept)
    {
        var destination = Scene(10, 24, 1, new Rect(0, 0, 20, 10));
        var source = Scene(10, 24, 2, new Rect(15, 0, 20, 10));

        Paster(bboxThr: bboxThr, maskThr: maskThr).Mix(destination, source, new Random(0));

        Assert.That(destination.AnnotationIds, Is.EqualTo(kept ? new long[] { 100, 200 } : [200]));
        if (kept) Assert.That(destination.Boxes.Take(4), Is.EqualTo(new float[] { 0, 0, 15, 10 }));
    }

    /// <summary>
    /// selected: true pastes a uniform count in [0, min(objects + 1, max_num_pasted)) of distinct source objects (mmdet's
    /// exclusive draw): with 5 objects, max_num_pasted 3 gives 0, 1 or 2, all seen over 300 draws; 100 gives 0 to 5, both
    /// ends seen. selected: false pastes all 5 whatever max_num_pasted says.
    /// </summary>
    [Test]
    public void MaxNumPastedAndSelectedBoundTheCount()
    {
        Rect[] objects = [new(0, 0, 3, 3), new(4, 0, 7, 3), new(8, 0, 11, 3), new(12, 0, 15, 3), new(16, 0, 19, 3)];
        var sourceIds = Enumerable.Range(0, 5).Select(k => 200L + k).ToArray();
        IReadOnlyList<long[]> Pasted(CopyPaste paster) => Enumerable.Range(0, 300).Select(seed =>
        {
            var destination = Scene(6, 20, 1);
            paster.Mix(destination, Scene(6, 20, 2, objects), new Random(seed));
            return destination.AnnotationIds;
        }).ToList();

        foreach (var (max, counts) in new[] { (3, new[] { 0, 1, 2 }), (100, new[] { 0, 1, 2, 3, 4, 5 }) })
        {
            var pasted = Pasted(Paster(maxNumPasted: max, selected: true));
            Assert.That(pasted.Select(ids => ids.Length).Distinct().Order(), Is.EqualTo(counts), $"max_num_pasted {max}");
            foreach (var ids in pasted) Assert.That(ids, Is.Unique.And.SubsetOf(sourceIds), "distinct source objects");
        }
        Assert.That(Pasted(Paster(maxNumPasted: 2, selected: false)), Has.All.EqualTo(sourceIds));
    }

    /// <summary>
    /// paste_by_box on box-only samples: an object's pixels are its box with the corners truncated (mmdet's create_masks).
    /// Source box [2.7, 1.2, 6.9, 5.8] pastes x 2..5, y 1..4. Destination box [4.5, 0.5, 12.25, 8.75] covers x 4..11,
    /// y 0..7, loses x 4..5 × y 1..4 and keeps pixels from x 4 (row 0) to 11 and y 0 to 7: box [4, 0, 12, 8]. An
    /// untouched box keeps its fractions; no masks appear.
    /// </summary>
    [Test]
    public void PasteByBoxPastesAndCutsBoxRectangles()
    {
        const int H = 12, W = 30;
        var destination = Scene(H, W, 1);
        destination.Boxes = [4.5f, 0.5f, 12.25f, 8.75f, 20.5f, 10.5f, 25.5f, 11.5f];
        destination.Labels = [0, 1];
        destination.IsCrowd = [false, false];
        destination.AnnotationIds = [100, 101];
        destination.Masks = null;
        var source = Scene(H, W, 2);
        source.Boxes = [2.7f, 1.2f, 6.9f, 5.8f];
        source.Labels = [3];
        source.IsCrowd = [false];
        source.AnnotationIds = [200];
        source.Masks = null;
        var destinationImage = (byte[])destination.Image.Clone();
        var sourceImage = (byte[])source.Image.Clone();

        Paster(byBox: true).Mix(destination, source, new Random(0));

        var pasted = new Rect(2, 1, 6, 5);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                Assert.That(Pixel(destination.Image, W, y, x), Is.EqualTo(Pixel(pasted.Contains(x, y) ? sourceImage : destinationImage, W, y, x)), $"pixel ({x}, {y})");
        Assert.That(destination.Boxes, Is.EqualTo(new[] { 4f, 0f, 12f, 8f, 20.5f, 10.5f, 25.5f, 11.5f, 2.7f, 1.2f, 6.9f, 5.8f }));
        Assert.That(destination.Labels, Is.EqualTo(new[] { 0, 1, 3 }));
        Assert.That(destination.Masks, Is.Null);
    }

    /// <summary>
    /// A source without objects, or a draw of none (max_num_pasted 1 always draws 0), leaves the destination as it was,
    /// even where the source is larger: nothing is padded.
    /// </summary>
    [Test]
    public void ASourceWithoutObjectsLeavesTheDestinationUnchanged()
    {
        foreach (var (paster, source) in new[] { (Paster(), Scene(16, 8, 2)), (Paster(maxNumPasted: 1, selected: true), Scene(16, 8, 2, new Rect(0, 0, 4, 4))) })
        {
            var destination = Scene(10, 12, 1, new Rect(1, 1, 5, 5));
            var original = destination.Copy();
            paster.Mix(destination, source, new Random(3));
            Assert.That(destination.Image, Is.EqualTo(original.Image));
            Assert.That((destination.Height, destination.Width, destination.ContentHeight, destination.ContentWidth), Is.EqualTo((10, 12, 10, 12)));
            Assert.That(destination.Boxes, Is.EqualTo(original.Boxes));
            Assert.That(destination.AnnotationIds, Is.EqualTo(original.AnnotationIds));
            Assert.That(destination.Masks, Is.EqualTo(original.Masks).Using<InstanceMask>(ReferenceEquals));
        }
    }

    /// <summary>
    /// A 10×12 destination and a 16×8 source are both padded (bottom/right, black) to 16×12. The pasted object
    /// x [2, 6) × y [11, 15) lies below the destination's own image, so the content becomes 16×12; the rest of the
    /// padding stays black, and the destination's mask is padded with it.
    /// </summary>
    [Test]
    public void SamplesOfDifferentSizesArePaddedToTheLargerAndTheContentCoversBoth()
    {
        Rect own = new(0, 0, 4, 4), pasted = new(2, 11, 6, 15);
        var destination = Scene(10, 12, 1, own);
        var source = Scene(16, 8, 2, pasted);
        var destinationImage = (byte[])destination.Image.Clone();
        var sourceImage = (byte[])source.Image.Clone();

        Paster().Mix(destination, source, new Random(0));

        Assert.That((destination.Height, destination.Width, destination.ContentHeight, destination.ContentWidth), Is.EqualTo((16, 12, 16, 12)));
        for (int y = 0; y < 16; y++)
            for (int x = 0; x < 12; x++)
            {
                byte[] expected = pasted.Contains(x, y) ? Pixel(sourceImage, 8, y, x) : y < 10 ? Pixel(destinationImage, 12, y, x) : [0, 0, 0];
                Assert.That(Pixel(destination.Image, 12, y, x), Is.EqualTo(expected), $"pixel ({x}, {y})");
            }
        Assert.That(destination.Boxes, Is.EqualTo(new float[] { 0, 0, 4, 4, 2, 11, 6, 15 }));
        Assert.That(destination.Masks!.Select(m => m.Pixels), Is.EqualTo(new[] { Mask(16, 12, own).Pixels, Mask(16, 12, pasted).Pixels }));
    }

    [Test]
    public void SettingsAndSamplesItCannotPasteAreRefused()
    {
        var e = Assert.Throws<VimException>(() => Paster(maxNumPasted: 0))!;
        Assert.That(e.Message, Does.StartWith("data.copy_paste.max_num_pasted must be at least 1").And.EndWith("got 0"));
        e = Assert.Throws<VimException>(() => Paster(bboxThr: -1))!;
        Assert.That(e.Message, Does.StartWith("data.copy_paste.bbox_occluded_thr must be 0 or more pixels").And.EndWith("got -1"));
        e = Assert.Throws<VimException>(() => Paster(maskThr: -2))!;
        Assert.That(e.Message, Does.StartWith("data.copy_paste.mask_occluded_thr must be 0 or more pixels").And.EndWith("got -2"));

        var boxOnly = Scene(8, 8, 1, new Rect(0, 0, 2, 2));
        boxOnly.Masks = null;
        var source = Scene(8, 8, 2, new Rect(0, 0, 2, 2));
        source.Masks = null;
        var refused = Assert.Throws<InvalidOperationException>(() => Paster().Mix(boxOnly, source, new Random(0)))!;
        Assert.That(refused.Message, Does.Contain("data.copy_paste.paste_by_box"));
        var normalized = Scene(8, 8, 1);
        new Normalize(new NormalizeOptions()).Apply(normalized, new Random(0));
        Assert.Throws<InvalidOperationException>(() => Paster().Mix(normalized, Scene(8, 8, 2), new Random(0)), "after Normalize");
    }

    /// <summary>
    /// Training-like samples: sample i is (40 + 8·(i mod 3))×(48 + 6·(i mod 4)) with two rectangle objects whose annotation
    /// ids are 10·i and 10·i + 1, so a pasted object says which sample it came from.
    /// </summary>
    internal sealed class RectangleSource(int count) : ISampleSource
    {
        public int Count => count;

        public DataSample Load(int index)
        {
            int height = 40 + 8 * (index % 3), width = 48 + 6 * (index % 4);
            Rect[] objects = [new(2 + index % 5, 3, 20 + index % 5, 25), new(24, 10 + index % 4, 44, 34)];
            var sample = Scene(height, width, (byte)(index + 1), objects);
            return new DataSample(index, $"rect/{index}", sample.Image, height, width)
            {
                Boxes = sample.Boxes,
                Labels = [index % 3, (index + 1) % 3],
                IsCrowd = sample.IsCrowd,
                AnnotationIds = [10L * index, 10L * index + 1],
                Masks = sample.Masks,
            };
        }
    }

    private static DataLoader Loader(int workers, int seed, ISampleMixer? mixer) =>
        new(new RectangleSource(9), TransformPipeline.DetectionLsjTraining(48),
            new LoaderOptions { BatchSize = 2, Kind = BatchKind.Detection, NumWorkers = workers, Seed = seed, SizeDivisor = 16 }, mixer is null ? null : [mixer]);

    /// <summary>Everything a batch holds, as plain arrays, for comparing two loaders' epochs.</summary>
    internal static List<object> Contents(DataLoader loader, int epoch)
    {
        var contents = new List<object>();
        foreach (var batch in loader.Epoch(epoch))
        {
            using var scope = NewDisposeScope();
            using (batch)
            {
                contents.Add(batch.Images.data<float>().ToArray());
                foreach (var target in batch.Targets!)
                {
                    contents.Add(target.Boxes.data<float>().ToArray());
                    contents.Add(target.Labels.data<long>().ToArray());
                    contents.Add(target.Masks!.data<byte>().ToArray());
                }
                contents.AddRange(batch.Metas.Select(m => (object)(m.ContentHeight, m.ContentWidth)));
            }
        }
        return contents;
    }

    /// <summary>
    /// The partner each sample gets and how both are augmented come from the sample's (seed, epoch, index) draws: three
    /// worker threads produce the batches the consumer thread does, a second run with the seed the same batches, and
    /// another seed others. Objects of other samples do get pasted.
    /// </summary>
    [Test]
    public void MixedSamplesDependOnTheSeedAloneNotOnTheWorkers()
    {
        var paster = Paster(selected: true);
        var inline = Contents(Loader(0, 7, paster), 1);
        Assert.That(Contents(Loader(3, 7, paster), 1), Is.EqualTo(inline), "three workers");
        Assert.That(Contents(Loader(0, 7, paster), 1), Is.EqualTo(inline), "the same seed again");
        Assert.That(Contents(Loader(0, 8, paster), 1), Is.Not.EqualTo(inline), "another seed");

        var samples = Loader(0, 7, paster).Samples(1, endless: false).ToList();
        Assert.That(samples.Count(s => s.AnnotationIds.Any(id => id / 10 != s.ImageId)), Is.GreaterThan(0), "objects of another sample pasted");
        foreach (var s in samples)
        {
            Assert.That(s.Masks, Has.Count.EqualTo(s.InstanceCount));
            Assert.That((s.Height, s.Width), Is.EqualTo((s.ContentHeight, s.ContentWidth)), "padded to the larger, the content covers both");
        }
    }

    /// <summary>
    /// The mixing stage leaves the sample's own augmentation draws where they were: a mix that pastes nothing
    /// (max_num_pasted 1) gives exactly the samples of the loader without one.
    /// </summary>
    [Test]
    public void AMixThatPastesNothingLeavesTheLoadersSamplesAsWithoutMixing()
    {
        var plain = Loader(0, 5, null).Samples(0, endless: false).ToList();
        var mixed = Loader(0, 5, Paster(maxNumPasted: 1, selected: true)).Samples(0, endless: false).ToList();
        Assert.That(mixed, Has.Count.EqualTo(plain.Count));
        for (int i = 0; i < plain.Count; i++)
        {
            Assert.That(mixed[i].ImageId, Is.EqualTo(plain[i].ImageId));
            Assert.That(mixed[i].NormalizedImage, Is.EqualTo(plain[i].NormalizedImage), $"sample {i}");
            Assert.That(mixed[i].Boxes, Is.EqualTo(plain[i].Boxes), $"sample {i}");
            Assert.That((mixed[i].Height, mixed[i].Width, mixed[i].Flipped), Is.EqualTo((plain[i].Height, plain[i].Width, plain[i].Flipped)), $"sample {i}");
        }
    }
}
