using OpenCvSharp;
using Vim.Core;

namespace Vim.Data.Evaluation;

/// <summary>Evaluates folders of PNG label maps (prediction and ground truth matched by file stem).</summary>
public static class SegmentationLabelMaps
{
    /// <summary>Reads a single-channel 8- or 16-bit PNG label map as row-major ints.</summary>
    public static int[] Read(string path, out int height, out int width)
    {
        using var mat = Cv2.ImRead(path, ImreadModes.Unchanged);
        if (mat.Empty()) throw new VimException($"{path}: cannot be read as an image.");
        if (mat.Channels() != 1) throw new VimException($"{path}: a label map must have one channel, found {mat.Channels()}.");
        height = mat.Rows;
        width = mat.Cols;
        var values = new int[height * width];
        if (mat.Depth() == MatType.CV_8U)
        {
            mat.GetArray(out byte[] data);
            for (int i = 0; i < values.Length; i++) values[i] = data[i];
        }
        else if (mat.Depth() == MatType.CV_16U)
        {
            mat.GetArray(out ushort[] data);
            for (int i = 0; i < values.Length; i++) values[i] = data[i];
        }
        else throw new VimException($"{path}: a label map must be 8- or 16-bit unsigned, found depth {mat.Depth()}.");
        return values;
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
        try
        {
            // One metric per worker thread, summed at the end: the counts are additive.
            Parallel.For(0, gts.Count, () => new SegmentationMetric(numClasses, ignoreIndex), (i, _, local) =>
            {
                string predPath = preds[Path.GetFileNameWithoutExtension(gts[i])];
                var label = Read(gts[i], out int h, out int w);
                var pred = Read(predPath, out int ph, out int pw);
                if (h != ph || w != pw)
                    throw new VimException($"{predPath}: size {pw}x{ph} differs from ground truth {gts[i]} ({w}x{h}).");
                if (reduceZeroLabel) ReduceZeroLabel(label);
                local.Update(pred, label);
                return local;
            }, local => { lock (total) total.Add(local); });
        }
        catch (AggregateException e) when (e.InnerExceptions.OfType<VimException>().Any())
        {
            throw e.InnerExceptions.OfType<VimException>().First();
        }
        return (total, gts.Count);
    }

    /// <summary>reduce_zero_label on int labels: 0 → 255, others − 1, and 254 (from 255) back to 255.</summary>
    public static void ReduceZeroLabel(Span<int> label)
    {
        for (int i = 0; i < label.Length; i++)
        {
            int v = label[i] == 0 ? 255 : label[i];
            v -= 1;
            label[i] = v == 254 ? 255 : v;
        }
    }
}
