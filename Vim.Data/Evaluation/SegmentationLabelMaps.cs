using OpenCvSharp;
using Vim.Core;

namespace Vim.Data.Evaluation;

/// <summary>Evaluates folders of PNG label maps (prediction and ground truth matched by file stem).</summary>
public static class SegmentationLabelMaps
{
    /// <summary>Reads a PNG label map as row-major ints (<see cref="Datasets.ImageDecoder.ReadLabelMap"/>: the values mmseg reads).</summary>
    public static int[] Read(string path, out int height, out int width)
    {
        var (labels, h, w) = Datasets.ImageDecoder.ReadLabelMap(path);
        height = h;
        width = w;
        return Array.ConvertAll(labels, l => (int)l);
    }

    /// <summary>
    /// Accumulates every ground-truth map in <paramref name="gtDir"/> with the prediction of the same
    /// file stem in <paramref name="predDir"/>. reduce_zero_label is applied to the labels only.
    /// </summary>
    public static (SegmentationMetric Metric, int Images) Evaluate(string predDir, string gtDir, int numClasses, int ignoreIndex = 255, bool reduceZeroLabel = false)
    {
        if (!Directory.Exists(predDir)) throw new VimException($"--pred-dir {predDir}: directory not found.");
        if (!Directory.Exists(gtDir)) throw new VimException($"--gt-dir {gtDir}: directory not found.");
        var preds = Directory.EnumerateFiles(predDir, "*.png").ToDictionary(p => Path.GetFileNameWithoutExtension(p), p => p);
        var gts = Directory.EnumerateFiles(gtDir, "*.png").OrderBy(p => p, StringComparer.Ordinal).ToList();
        if (gts.Count == 0) throw new VimException($"--gt-dir {gtDir}: no .png label maps found.");
        foreach (var gt in gts)
        {
            if (!preds.ContainsKey(Path.GetFileNameWithoutExtension(gt)))
                throw new VimException($"--pred-dir {predDir}: no prediction {Path.GetFileNameWithoutExtension(gt)}.png for ground truth {gt}.");
        }
        var total = new SegmentationMetric(numClasses, ignoreIndex);
        // One metric per worker thread, summed at the end: the counts are additive.
        ParallelErrors.For(gts.Count, () => new SegmentationMetric(numClasses, ignoreIndex), (i, local) =>
        {
            string predPath = preds[Path.GetFileNameWithoutExtension(gts[i])];
            var label = Read(gts[i], out int h, out int w);
            var pred = Read(predPath, out int ph, out int pw);
            if (h != ph || w != pw)
                throw new VimException($"{predPath}: size {pw}x{ph} differs from ground truth {gts[i]} ({w}x{h}).");
            if (reduceZeroLabel) ReduceZeroLabel(label, ignoreIndex);
            local.Update(pred, label);
            return local;
        }, local => { lock (total) total.Add(local); });
        return (total, gts.Count);
    }

    /// <summary>
    /// mmseg's reduce_zero_label: 0 (background) becomes the ignore index, which stays itself, and every other class
    /// shifts down by one; with ignore index 255 exactly mmseg's 0 → 255, v → v − 1, 254 (from 255) back to 255. As the
    /// dataset does it for vim test, so vim eval seg agrees with it for any ignore index.
    /// </summary>
    public static void ReduceZeroLabel(Span<int> label, int ignoreIndex)
    {
        for (int i = 0; i < label.Length; i++)
            label[i] = label[i] == 0 || label[i] == ignoreIndex ? ignoreIndex : label[i] - 1;
    }
}
