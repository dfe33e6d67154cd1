using Vim.Core;
using Vim.Core.Config;
using Vim.Data.Datasets;

namespace Vim.Data.Transforms;

/// <summary>
/// Simple Copy-Paste (Ghiasi et al. 2021) as MMDetection's CopyPaste: some of the source sample's objects are pasted over
/// the destination at the places they have in the source. Both samples have been through the same augmentation; the
/// smaller is padded (bottom/right, black, as mmdet's Pad before its CopyPaste) so both have one size. The destination's
/// pixels under the union of the pasted objects become the source's, and its objects lose those pixels: one left with
/// none is dropped; one cut otherwise stays while its box, recomputed from what is left, moved no side by more than
/// bbox_occluded_thr pixels or more than mask_occluded_thr of its pixels are left, and then has the recomputed box and
/// the cut mask (a bitmap: the polygon outlines no longer describe it). The pasted objects follow the destination's,
/// unchanged, crowd flags included. A source with no objects, or a draw of none, leaves the destination as it is.
/// </summary>
/// <remarks>
/// Departures from mmdet, each where its rule would keep an object without pixels or drop an object nothing covers: mmdet
/// recomputes every destination object's box from its mask and applies the occlusion rule to all of them, so a fully
/// covered object whose box lay within bbox_occluded_thr pixels of the origin stayed with an empty mask, and an uncovered
/// one whose annotated box is far from its mask's (more than bbox_occluded_thr) and small (at most mask_occluded_thr
/// pixels) was dropped. Here objects the paste does not touch keep their boxes and masks, and an object with no pixel
/// left always goes.
/// </remarks>
public sealed class CopyPaste : ISampleMixer
{
    private readonly CopyPasteConfig _settings;

    public CopyPaste(CopyPasteConfig settings)
    {
        CheckSettings(settings);
        _settings = settings;
    }

    /// <summary>Refuses settings mmdet could not run with or that mean nothing, naming <paramref name="key"/> (data.copy_paste, or data.pipeline_switch.copy_paste).</summary>
    public static void CheckSettings(CopyPasteConfig settings, string key = "data.copy_paste")
    {
        if (settings.MaxNumPasted < 1)
            throw new VimException($"{key}.max_num_pasted must be at least 1 (each sample pastes a number drawn from 0 to " +
                $"min(the source's objects, max_num_pasted - 1), as mmdet draws it), got {settings.MaxNumPasted}");
        if (settings.BboxOccludedThr < 0)
            throw new VimException($"{key}.bbox_occluded_thr must be 0 or more pixels (a covered object stays while its recomputed box moved no side by more), got {settings.BboxOccludedThr}");
        if (settings.MaskOccludedThr < 0)
            throw new VimException($"{key}.mask_occluded_thr must be 0 or more pixels (a covered object stays while more of its pixels are visible), got {settings.MaskOccludedThr}");
    }

    public int PartnerCount => 1;

    void ISampleMixer.Mix(DataSample destination, IReadOnlyList<DataSample> partners, Random random) => Mix(destination, partners[0], random);

    public void Mix(DataSample destination, DataSample source, Random random)
    {
        SampleGeometry.RequireBytes(destination, "CopyPaste");
        SampleGeometry.RequireBytes(source, "CopyPaste");
        if (destination.LabelMap is not null || source.LabelMap is not null)
            throw new InvalidOperationException($"{destination.FilePath}: CopyPaste pastes instances; a sample with a label map (segmentation) has no place for them.");
        bool byBox = destination.Masks is null;
        if (byBox != (source.Masks is null))
            throw new InvalidOperationException($"{destination.FilePath} and {source.FilePath}: one sample has masks and the other not; CopyPaste needs both alike.");
        if (byBox && !_settings.PasteByBox)
            throw new InvalidOperationException($"{destination.FilePath}: CopyPaste pastes objects by their masks and the samples have none; " +
                "set data.copy_paste.paste_by_box: true to paste their boxes' rectangles.");

        if (_settings.Selected) source.KeepInstances(ChooseObjects(source.InstanceCount, random));
        if (source.InstanceCount == 0) return;

        int height = Math.Max(destination.Height, source.Height), width = Math.Max(destination.Width, source.Width);
        PadTo(destination, height, width, random);
        PadTo(source, height, width, random);
        var pasted = new byte[height * width];
        for (int i = 0; i < source.InstanceCount; i++)
        {
            if (byBox)
            {
                FillBox(pasted, source, i);
                continue;
            }
            var pixels = source.Masks![i].Pixels;
            for (int p = 0; p < pasted.Length; p++) pasted[p] |= pixels[p];
        }
        // Nothing outside the pasted pixels' extent changes, so the scans below stay inside it.
        var extent = SampleGeometry.TightBox(pasted, height, width) is { } tight
            ? (X0: (int)tight[0], Y0: (int)tight[1], X1: (int)tight[2], Y1: (int)tight[3])
            : (X0: 0, Y0: 0, X1: 0, Y1: 0);

        for (int y = extent.Y0; y < extent.Y1; y++)
            for (int x = extent.X0; x < extent.X1; x++)
            {
                int p = y * width + x;
                if (pasted[p] != 0) Buffer.BlockCopy(source.Image, 3 * p, destination.Image, 3 * p, 3);
            }

        var keep = new bool[destination.InstanceCount];
        for (int i = 0; i < keep.Length; i++)
        {
            keep[i] = true;
            // By box, the object is its rectangle: only the part of the extent inside it is scanned, and its pixels are
            // made only once the paste covers some of them.
            var pixels = byBox ? null : destination.Masks![i].Pixels;
            var (x0, y0, x1, y1) = extent;
            if (byBox)
            {
                var r = BoxPixels(destination, i);
                (x0, y0, x1, y1) = (Math.Max(x0, r.X0), Math.Max(y0, r.Y0), Math.Min(x1, r.X1), Math.Min(y1, r.Y1));
            }
            byte[]? visible = null;
            for (int y = y0; y < y1; y++)
                for (int x = x0; x < x1; x++)
                {
                    int p = y * width + x;
                    if (pasted[p] == 0 || (pixels is not null && pixels[p] == 0)) continue;
                    visible ??= pixels is null ? FillBox(new byte[height * width], destination, i) : (byte[])pixels.Clone();
                    visible[p] = 0;
                }
            if (visible is null) continue; // untouched: its box and mask (polygon outlines included) stay exact
            var box = SampleGeometry.TightBox(visible, height, width);
            var cut = new InstanceMask(height, width, visible);
            keep[i] = box is not null && (Moved(destination.Boxes, i, box) <= _settings.BboxOccludedThr || cut.Area() > _settings.MaskOccludedThr);
            if (!keep[i]) continue;
            box!.CopyTo(destination.Boxes, 4 * i);
            if (!byBox) destination.Masks![i] = cut;
        }
        destination.KeepInstances(keep);
        destination.AppendInstances(source);
        // The pasted objects lie in the source's content, which may reach past the destination's into its padding.
        destination.ContentHeight = Math.Max(destination.ContentHeight, source.ContentHeight);
        destination.ContentWidth = Math.Max(destination.ContentWidth, source.ContentWidth);
    }

    /// <summary>
    /// mmdet's _get_selected_inds: how many, uniformly in [0, min(count + 1, max_num_pasted)), then which, without
    /// replacement (a partial Fisher–Yates shuffle); a flag per object.
    /// </summary>
    private bool[] ChooseObjects(int count, Random random)
    {
        int pasted = random.Next(0, Math.Min(count + 1, _settings.MaxNumPasted));
        var order = Enumerable.Range(0, count).ToArray();
        var flags = new bool[count];
        for (int k = 0; k < pasted; k++)
        {
            int j = random.Next(k, count);
            (order[k], order[j]) = (order[j], order[k]);
            flags[order[k]] = true;
        }
        return flags;
    }

    private static void PadTo(DataSample sample, int height, int width, Random random)
    {
        if (sample.Height != height || sample.Width != width) new Pad(new PadOptions { Size = [height, width] }).Apply(sample, random);
    }

    /// <summary>
    /// By box, object <paramref name="i"/>'s pixels: the columns [X0, X1) of the rows [Y0, Y1), the whole pixels its box
    /// covers (mmdet's create_masks truncates the corners); empty where X1 ≤ X0 or Y1 ≤ Y0.
    /// </summary>
    private static (int X0, int Y0, int X1, int Y1) BoxPixels(DataSample sample, int i)
    {
        int height = sample.Height, width = sample.Width;
        var b = sample.Boxes;
        return (Math.Clamp((int)b[4 * i], 0, width), Math.Clamp((int)b[4 * i + 1], 0, height),
            Math.Clamp((int)b[4 * i + 2], 0, width), Math.Clamp((int)b[4 * i + 3], 0, height));
    }

    /// <summary>Sets object <paramref name="i"/>'s <see cref="BoxPixels"/> to 1 in <paramref name="pixels"/>, a map of the sample's size; returns it.</summary>
    private static byte[] FillBox(byte[] pixels, DataSample sample, int i)
    {
        var (x0, y0, x1, y1) = BoxPixels(sample, i);
        for (int y = y0; y < y1; y++) pixels.AsSpan(y * sample.Width + x0, Math.Max(x1 - x0, 0)).Fill(1);
        return pixels;
    }

    /// <summary>The largest change of a side between object <paramref name="i"/>'s box and <paramref name="box"/> (mmdet's L1 distance per coordinate).</summary>
    private static float Moved(float[] boxes, int i, float[] box)
    {
        float moved = 0;
        for (int k = 0; k < 4; k++) moved = Math.Max(moved, Math.Abs(box[k] - boxes[4 * i + k]));
        return moved;
    }
}
