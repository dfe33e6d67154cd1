namespace Vim.Data.Masks;

/// <summary>
/// Box and mask IoU with COCO's crowd rule: against a crowd ground truth the denominator is the
/// detection's own area (intersection over detection), so detections inside a crowd region score high.
/// Arithmetic follows pycocotools operation by operation so thresholds compare identically.
/// </summary>
public static class MaskIou
{
    /// <summary>IoU of two [x, y, w, h] boxes; 0 when they do not overlap with positive extent.</summary>
    public static double BoxIou(ReadOnlySpan<double> dt, ReadOnlySpan<double> gt, bool gtIsCrowd)
    {
        double w = Math.Min(dt[2] + dt[0], gt[2] + gt[0]) - Math.Max(dt[0], gt[0]);
        if (w <= 0) return 0;
        double h = Math.Min(dt[3] + dt[1], gt[3] + gt[1]) - Math.Max(dt[1], gt[1]);
        if (h <= 0) return 0;
        double i = w * h;
        double da = dt[2] * dt[3];
        double u = gtIsCrowd ? da : da + gt[2] * gt[3] - i;
        return i / u;
    }

    /// <summary>
    /// Mask IoU. Masks of different sizes give −1 (pycocotools' convention: never a match). The
    /// box pre-check skips the run walk for masks whose bounding boxes do not overlap.
    /// </summary>
    public static double Iou(Rle dt, Rle gt, bool gtIsCrowd) =>
        Iou(dt, dt.ToBbox(), gt, gt.ToBbox(), gtIsCrowd);

    /// <summary>Mask IoU with precomputed <see cref="Rle.ToBbox"/> boxes (the hot path in evaluation).</summary>
    public static double Iou(Rle dt, ReadOnlySpan<double> dtBox, Rle gt, ReadOnlySpan<double> gtBox, bool gtIsCrowd)
    {
        if (BoxIou(dtBox, gtBox, gtIsCrowd) <= 0) return 0;
        if (dt.Height != gt.Height || dt.Width != gt.Width) return -1;
        var a = dt.Counts; var b = gt.Counts;
        int ka = a.Length, kb = b.Length;
        uint ca = a[0], cb = b[0];
        bool va = false, vb = false;
        int ia = 1, ib = 1;
        ulong inter = 0, union = 0;
        uint remaining = 1;
        while (remaining > 0)
        {
            uint c = Math.Min(ca, cb);
            if (va || vb)
            {
                union += c;
                if (va && vb) inter += c;
            }
            remaining = 0;
            ca -= c;
            if (ca == 0 && ia < ka) { ca = a[ia++]; va = !va; }
            remaining += ca;
            cb -= c;
            if (cb == 0 && ib < kb) { cb = b[ib++]; vb = !vb; }
            remaining += cb;
        }
        if (inter == 0) union = 1;
        else if (gtIsCrowd) union = (ulong)dt.Area;
        return (double)inter / union;
    }
}
