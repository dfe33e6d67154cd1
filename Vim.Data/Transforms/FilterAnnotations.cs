using Vim.Data.Datasets;

namespace Vim.Data.Transforms;

/// <summary>
/// mmdet's FilterAnnotations: an object stays while it passes every filter switched on (its box wider and taller than
/// min_gt_bbox_wh; its mask's area at least min_gt_mask_area), crowd regions alike. When none would stay and keep_empty is
/// set, the sample is given up (<see cref="SampleRejectedException"/>; the loader fetches another, as mmdet's dataset does
/// for a transform returning None) and left as it came; a sample that comes without objects passes unchanged.
/// </summary>
public sealed class FilterAnnotations : ISampleTransform
{
    private readonly FilterAnnotationsOptions _options;

    public FilterAnnotations(FilterAnnotationsOptions options)
    {
        if (!options.ByBox && !options.ByMask)
            throw new ArgumentException("FilterAnnotations needs by_box or by_mask (or both) true; with neither it would filter nothing.");
        if (options.MinGtBboxWh is not [var w, var h] || !double.IsFinite(w) || !double.IsFinite(h) || w < 0 || h < 0)
            throw new ArgumentException($"FilterAnnotations min_gt_bbox_wh must be [width, height], two finite numbers >= 0, got [{string.Join(", ", options.MinGtBboxWh ?? [])}].");
        if (!double.IsFinite(options.MinGtMaskArea) || options.MinGtMaskArea < 0)
            throw new ArgumentException($"FilterAnnotations min_gt_mask_area {options.MinGtMaskArea} must be a finite number >= 0.");
        _options = options;
    }

    public void Apply(DataSample sample, Random random)
    {
        int count = sample.InstanceCount;
        if (count == 0) return;
        if (_options.ByMask && sample.Masks is null)
            throw new InvalidOperationException($"{sample.FilePath}: filter_annotations by_mask reads the objects' masks, but the sample carries none " +
                "(a box-only detector, model.det_head.mask_on: false); set by_mask: false");
        var keep = new bool[count];
        var boxes = sample.Boxes;
        // In single precision, as mmdet's float32 box tensor compares with a Python number: a 0.1f-wide box is not wider than 0.1.
        float minWidth = (float)_options.MinGtBboxWh[0], minHeight = (float)_options.MinGtBboxWh[1];
        for (int i = 0; i < count; i++)
        {
            int k = 4 * i;
            bool kept = true;
            if (_options.ByBox)
                kept = boxes[k + 2] - boxes[k] > minWidth && boxes[k + 3] - boxes[k + 1] > minHeight;
            if (kept && _options.ByMask) kept = Area(sample.Masks![i]) >= _options.MinGtMaskArea;
            keep[i] = kept;
        }
        if (_options.KeepEmpty && !keep.Contains(true))
            throw new SampleRejectedException($"{sample.FilePath}: filter_annotations leaves none of its {count} object(s) (keep_empty: true)");
        sample.KeepInstances(keep);
    }

    /// <summary>mmdet's mask areas: a polygon mask's enclosed area (no pixels are drawn for it), an RLE mask's set pixels.</summary>
    private static double Area(InstanceMask mask) => mask.Outlines is { } outlines ? Outlines.Area(outlines) : mask.Area();
}
