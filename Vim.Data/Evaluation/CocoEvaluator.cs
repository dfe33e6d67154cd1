using Vim.Core;
using Vim.Data.Coco;
using Vim.Data.Masks;

namespace Vim.Data.Evaluation;

/// <summary>
/// COCO detection / instance-segmentation evaluation with pycocotools' COCOeval semantics, in three
/// stages: <see cref="Evaluate"/> (per image and category: IoUs and greedy matching at every IoU
/// threshold and area range), <see cref="Accumulate"/> (precision/recall tables over the dataset) and
/// <see cref="Summarize"/> (the 12 standard numbers, plus per-category AP).
/// </summary>
/// <remarks>
/// Detections are treated as pycocotools' <c>loadRes</c> does: ids 1..N in file order, not crowd; if
/// the first detection has a box, every detection's area is w·h (a given mask is kept for segm, a
/// missing one becomes the box polygon), otherwise area is the mask area and the box is the mask's.
/// Ground-truth <c>area</c> comes from the file. One deliberate difference: pycocotools records matches
/// by annotation id, so a ground truth with id 0 can never count as matched; here it can.
/// Data is held in flat arrays grouped by (category, image) cell; cells are evaluated in parallel.
/// </remarks>
public sealed class CocoEvaluator
{
    private readonly CocoEvalParams _p;
    private readonly CocoIouType _iouType;
    private readonly long[] _imageIds;
    private readonly long[] _categoryIds;
    private readonly string[] _categoryNames;
    private readonly int[] _maxDets;
    private readonly int _maxDetLast;

    // Ground truth, one entry per evaluated annotation.
    private readonly double[] _gtArea;
    private readonly bool[] _gtCrowd;
    private readonly double[] _gtBox;
    private readonly Rle[]? _gtMask;

    // Detections, one entry per evaluated detection (index + 1 is pycocotools' detection id).
    private readonly double[] _dtScore;
    private readonly double[] _dtArea;
    private readonly double[] _dtBox;
    private readonly Rle[]? _dtMask;

    // Cells: (category, image) pairs with any ground truth or detection, ordered by category then image.
    private readonly int[] _cellCategory;
    private readonly int[] _cellImage;
    private readonly int[] _cellGtStart, _cellGtCount;
    private readonly int[] _cellDtStart, _cellDtUsed;
    private readonly int[] _gtOrder; // annotation indices grouped by cell (file order inside a cell)
    private readonly int[] _dtOrder; // detection indices grouped by cell, sorted by score (stable)
    private readonly int[] _categoryCellStart; // K + 1 offsets into the cell arrays

    // Evaluate output.
    private int[]? _cellFlagStart;
    private byte[]? _flags;   // per cell: [area][threshold][detection] of Matched | Ignored
    private int[]? _npig;     // per cell and area: ground truths that are not ignored

    private const byte Matched = 1;
    private const byte Ignored = 2;

    /// <param name="masks">Where masks are converted, once each, for every evaluator sharing it (the error analysis's many
    /// evaluations of one ground truth and one results list); null converts each mask this evaluator reads.</param>
    public CocoEvaluator(CocoDataset groundTruth, IReadOnlyList<CocoDetection> detections, CocoIouType iouType, CocoEvalParams? parameters = null,
        CocoMaskCache? masks = null)
    {
        _p = parameters ?? new CocoEvalParams();
        _p.Validate();
        _iouType = iouType;
        _maxDets = _p.MaxDetections.Order().ToArray();
        _maxDetLast = _maxDets[^1];

        _imageIds = (_p.ImageIds ?? groundTruth.Images.Select(i => i.Id).ToArray())
            .Where(groundTruth.ImagesById.ContainsKey).Distinct().Order().ToArray();
        var categories = groundTruth.Categories.Count > 0
            ? groundTruth.Categories
            : groundTruth.Annotations.Select(a => a.CategoryId).Distinct().Select(id => new CocoCategory(id, id.ToString(System.Globalization.CultureInfo.InvariantCulture), null)).ToList();
        var selectedCategories = (_p.CategoryIds ?? categories.Select(c => c.Id).ToArray()).Distinct().Order().ToArray();
        var nameById = new Dictionary<long, string>();
        foreach (var c in categories) nameById.TryAdd(c.Id, c.Name);
        bool useCats = _p.UseCategories;
        // pycocotools with useCats = 0 evaluates one pseudo-category -1 holding every selected category.
        _categoryIds = useCats ? selectedCategories : [-1];
        _categoryNames = useCats
            ? _categoryIds.Select(id => nameById.TryGetValue(id, out var n) ? n : id.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray()
            : ["all"];

        var imageIndex = new Dictionary<long, int>(_imageIds.Length);
        for (int i = 0; i < _imageIds.Length; i++) imageIndex[_imageIds[i]] = i;
        var categoryIndex = new Dictionary<long, int>(selectedCategories.Length);
        for (int k = 0; k < selectedCategories.Length; k++) categoryIndex[selectedCategories[k]] = k;
        long numImages = _imageIds.Length, numCategories = selectedCategories.Length;
        // Sort key of an annotation or detection. With categories: cells are (category, image), ordered
        // by category then image. Without: cells are images, and inside one the ground truths and
        // detections are ordered by category, then file order, as pycocotools concatenates them.
        long SortKey(int k, int img) => useCats ? k * numImages + img : img * numCategories + k;
        long CellKey(long sortKey) => useCats ? sortKey : sortKey / numCategories;

        // Ground truth of the evaluated images and categories, in file order.
        var gtSource = new List<int>();
        var gtKey = new List<long>();
        for (int a = 0; a < groundTruth.Annotations.Count; a++)
        {
            var ann = groundTruth.Annotations[a];
            if (!imageIndex.TryGetValue(ann.ImageId, out int img) || !categoryIndex.TryGetValue(ann.CategoryId, out int k)) continue;
            gtSource.Add(a);
            gtKey.Add(SortKey(k, img));
        }
        int nGt = gtSource.Count;
        _gtArea = new double[nGt];
        _gtCrowd = new bool[nGt];
        _gtBox = new double[4 * nGt];
        _gtMask = iouType == CocoIouType.Segm ? new Rle[nGt] : null;
        var gtMask = _gtMask;
        for (int g = 0; g < nGt; g++)
        {
            var ann = groundTruth.Annotations[gtSource[g]];
            string where = $"ground truth annotation id {ann.Id}";
            _gtArea[g] = ann.Area ?? throw new VimException($"{where}: missing \"area\" (it decides the small/medium/large range).");
            _gtCrowd[g] = ann.IsCrowd;
            if (iouType == CocoIouType.Bbox)
            {
                var box = ann.Bbox ?? throw new VimException($"{where}: missing \"bbox\", needed for bbox evaluation.");
                box.CopyTo(_gtBox, 4 * g);
            }
        }
        if (gtMask is not null)
        {
            ParallelErrors.For(nGt, g =>
            {
                var ann = groundTruth.Annotations[gtSource[g]];
                var seg = ann.Segmentation ?? throw new VimException($"ground truth annotation id {ann.Id}: missing \"segmentation\", needed for segm evaluation.");
                var (mask, box) = MaskOf(seg, groundTruth.ImagesById[ann.ImageId], $"ground truth annotation id {ann.Id}", masks);
                gtMask[g] = mask;
                box.CopyTo(_gtBox, 4 * g);
            });
        }

        // Detections, as loadRes prepares them.
        bool boxBranch = detections.Count > 0 && detections[0].Bbox is not null;
        var dtSource = new List<int>();
        var dtKey = new List<long>();
        for (int d = 0; d < detections.Count; d++)
        {
            var det = detections[d];
            if (!groundTruth.ImagesById.ContainsKey(det.ImageId))
                throw new VimException($"results[{d}]: image_id {det.ImageId} is not an image of the ground truth.");
            if (!double.IsFinite(det.Score)) throw new VimException($"results[{d}]: score must be a finite number.");
            if (!imageIndex.TryGetValue(det.ImageId, out int img) || !categoryIndex.TryGetValue(det.CategoryId, out int k)) continue;
            dtSource.Add(d);
            dtKey.Add(SortKey(k, img));
        }
        int nDt = dtSource.Count;
        _dtScore = new double[nDt];
        _dtArea = new double[nDt];
        _dtBox = new double[4 * nDt];
        _dtMask = iouType == CocoIouType.Segm ? new Rle[nDt] : null;
        var dtMask = _dtMask;
        var dtScore = _dtScore; var dtArea = _dtArea; var dtBox = _dtBox;
        ParallelErrors.For(nDt, d =>
        {
            int src = dtSource[d];
            var det = detections[src];
            string where = $"results[{src}]";
            dtScore[d] = det.Score;
            Rle? mask = null;
            double[]? maskBox = null;
            if (boxBranch)
            {
                var box = det.Bbox ?? throw new VimException($"{where}: missing \"bbox\" (the first detection has one, so all must).");
                dtArea[d] = box[2] * box[3];
                if (dtMask is null) box.CopyTo(dtBox, 4 * d);
                else
                {
                    var image = groundTruth.ImagesById[det.ImageId];
                    double x1 = box[0], y1 = box[1], x2 = box[0] + box[2], y2 = box[1] + box[3];
                    // The box's own outline is made here, so no other evaluator could find it in the cache.
                    (mask, maskBox) = det.Segmentation is { } seg
                        ? MaskOf(seg, image, where, masks)
                        : MaskOf(CocoSegmentation.FromPolygons([[x1, y1, x1, y2, x2, y2, x2, y1]]), image, where, null);
                }
            }
            else
            {
                var seg = det.Segmentation ?? throw new VimException($"{where}: missing \"segmentation\" (the first detection has no bbox, so all need a mask).");
                (mask, maskBox) = MaskOf(seg, groundTruth.ImagesById[det.ImageId], where, masks);
                dtArea[d] = mask.Area;
                if (dtMask is null) (det.Bbox ?? maskBox).CopyTo(dtBox, 4 * d);
            }
            if (dtMask is not null)
            {
                // Mask IoU pre-checks overlap with the mask's own box (pycocotools' rleIou), whatever box the file gave.
                dtMask[d] = mask!;
                maskBox!.CopyTo(dtBox, 4 * d);
            }
        });

        // Group into cells: stable sorts by (cell key, original order).
        var gtSorted = SortByKeyStable(gtKey);
        var dtSorted = SortByKeyStable(dtKey);
        var cellCategory = new List<int>();
        var cellImage = new List<int>();
        var cellGtStart = new List<int>(); var cellGtCount = new List<int>();
        var cellDtStart = new List<int>(); var cellDtCount = new List<int>();
        int gi = 0, di = 0;
        while (gi < nGt || di < nDt)
        {
            long key = Math.Min(gi < nGt ? CellKey(gtKey[gtSorted[gi]]) : long.MaxValue, di < nDt ? CellKey(dtKey[dtSorted[di]]) : long.MaxValue);
            int g0 = gi, d0 = di;
            while (gi < nGt && CellKey(gtKey[gtSorted[gi]]) == key) gi++;
            while (di < nDt && CellKey(dtKey[dtSorted[di]]) == key) di++;
            cellCategory.Add(useCats ? (int)(key / numImages) : 0);
            cellImage.Add(useCats ? (int)(key % numImages) : (int)key);
            cellGtStart.Add(g0); cellGtCount.Add(gi - g0);
            cellDtStart.Add(d0); cellDtCount.Add(di - d0);
        }
        _gtOrder = gtSorted;
        _dtOrder = dtSorted;
        _cellCategory = cellCategory.ToArray();
        _cellImage = cellImage.ToArray();
        _cellGtStart = cellGtStart.ToArray();
        _cellGtCount = cellGtCount.ToArray();
        _cellDtStart = cellDtStart.ToArray();
        _cellDtUsed = new int[_cellCategory.Length];
        var dtOrder = _dtOrder;
        var used = _cellDtUsed;
        var counts = cellDtCount.ToArray();
        Parallel.For(0, _cellCategory.Length, c =>
        {
            StableSortByScoreDescending(dtOrder, _cellDtStart[c], counts[c], dtScore);
            used[c] = Math.Min(counts[c], _maxDetLast);
        });
        _categoryCellStart = new int[_categoryIds.Length + 1];
        for (int c = 0, k = 0; k <= _categoryIds.Length; k++)
        {
            while (c < _cellCategory.Length && _cellCategory[c] < k) c++;
            _categoryCellStart[k] = c;
        }
    }

    public CocoEvalParams Params => _p;
    public CocoIouType IouType => _iouType;
    public IReadOnlyList<long> ImageIds => _imageIds;
    public IReadOnlyList<long> CategoryIds => _categoryIds;
    public IReadOnlyList<string> CategoryNames => _categoryNames;
    /// <summary>maxDets in ascending order, as the tables are indexed.</summary>
    public IReadOnlyList<int> MaxDetections => _maxDets;

    /// <summary>Evaluate + Accumulate + Summarize.</summary>
    public CocoSummary Run()
    {
        Evaluate();
        return Summarize(Accumulate());
    }

    /// <summary>A segmentation's mask in its image and the mask's own box, from <paramref name="masks"/> where given.</summary>
    private static (Rle Mask, double[] Box) MaskOf(CocoSegmentation seg, CocoImage image, string where, CocoMaskCache? masks)
    {
        if (masks is null)
        {
            var mask = ToRle(seg, image, where);
            return (mask, mask.ToBbox());
        }
        var entry = masks.Get(seg, image.Height, image.Width, () => ToRle(seg, image, where));
        return (entry.Mask, entry.Box);
    }

    private static Rle ToRle(CocoSegmentation seg, CocoImage image, string where)
    {
        try
        {
            return seg.ToRle(image.Height, image.Width);
        }
        catch (Exception e) when (e is FormatException or ArgumentException or InvalidOperationException)
        {
            throw new VimException($"{where}: bad \"segmentation\" for image {image.Id} ({e.Message}).", e);
        }
    }

    private static int[] SortByKeyStable(List<long> keys)
    {
        int n = keys.Count;
        var composite = new long[n];
        var order = new int[n];
        for (int i = 0; i < n; i++) { composite[i] = keys[i] * n + i; order[i] = i; }
        Array.Sort(composite, order);
        return order;
    }

    /// <summary>Sorts a segment of indices by descending score; equal scores keep ascending index order (like a mergesort).</summary>
    internal static void StableSortByScoreDescending(int[] idx, int start, int count, double[] score)
    {
        if (count < 2) return;
        if (count <= 24)
        {
            for (int i = start + 1; i < start + count; i++)
            {
                int v = idx[i];
                double s = score[v];
                int j = i - 1;
                while (j >= start && (score[idx[j]] < s || (score[idx[j]] == s && idx[j] > v))) { idx[j + 1] = idx[j]; j--; }
                idx[j + 1] = v;
            }
            return;
        }
        var keys = new double[count];
        var items = new int[count];
        for (int i = 0; i < count; i++)
        {
            items[i] = idx[start + i];
            keys[i] = -score[items[i]];
        }
        Array.Sort(keys, items);
        // Array.Sort is not stable: restore ascending index order inside each run of equal scores.
        for (int i = 0; i < count;)
        {
            int j = i + 1;
            while (j < count && keys[j] == keys[i]) j++;
            if (j - i > 1) Array.Sort(items, i, j - i);
            i = j;
        }
        items.CopyTo(idx, start);
    }

    /// <summary>
    /// IoU matrix of one image and category: rows are detections sorted by score (stable) and cut at
    /// the largest maxDets, columns are ground truths in file order. Empty when either side is empty.
    /// Without categories (<see cref="CocoEvalParams.UseCategories"/> false) the category id is −1.
    /// </summary>
    public double[,] ComputeIou(long imageId, long categoryId)
    {
        int img = Array.BinarySearch(_imageIds, imageId);
        int k = Array.BinarySearch(_categoryIds, categoryId);
        if (img < 0 || k < 0) return new double[0, 0];
        for (int c = _categoryCellStart[k]; c < _categoryCellStart[k + 1]; c++)
        {
            if (_cellImage[c] != img) continue;
            int d = _cellDtUsed[c], g = _cellGtCount[c];
            var flat = new double[d * g];
            CellIou(c, flat);
            var m = new double[d, g];
            for (int i = 0; i < d; i++) for (int j = 0; j < g; j++) m[i, j] = flat[i * g + j];
            return m;
        }
        return new double[0, 0];
    }

    private void CellIou(int c, double[] iou)
    {
        int D = _cellDtUsed[c], G = _cellGtCount[c];
        int dtStart = _cellDtStart[c], gtStart = _cellGtStart[c];
        for (int i = 0; i < D; i++)
        {
            int d = _dtOrder[dtStart + i];
            var dBox = new ReadOnlySpan<double>(_dtBox, 4 * d, 4);
            for (int j = 0; j < G; j++)
            {
                int g = _gtOrder[gtStart + j];
                var gBox = new ReadOnlySpan<double>(_gtBox, 4 * g, 4);
                iou[i * G + j] = _iouType == CocoIouType.Bbox
                    ? MaskIou.BoxIou(dBox, gBox, _gtCrowd[g])
                    : MaskIou.Iou(_dtMask![d], dBox, _gtMask![g], gBox, _gtCrowd[g]);
            }
        }
    }

    /// <summary>
    /// Per image and category: IoUs, then for each area range and IoU threshold the greedy matching of
    /// score-sorted detections to the best still-free ground truth (non-ignored ground truth preferred,
    /// crowd ground truth reusable), marking detections as matched and/or ignored.
    /// </summary>
    public void Evaluate()
    {
        int A = _p.AreaRanges.Length, T = _p.IouThresholds.Length, cells = _cellCategory.Length;
        var flagStart = new int[cells + 1];
        long total = 0;
        for (int c = 0; c < cells; c++)
        {
            flagStart[c] = checked((int)total);
            total += (long)A * T * _cellDtUsed[c];
        }
        flagStart[cells] = checked((int)total);
        var flags = new byte[total];
        var npig = new int[cells * A];
        var thresholds = new double[T];
        for (int t = 0; t < T; t++) thresholds[t] = Math.Min(_p.IouThresholds[t], 1 - 1e-10);

        Parallel.For(0, cells, () => new CellScratch(), (c, _, s) =>
        {
            EvaluateCell(c, s, thresholds, flags, flagStart[c], npig);
            return s;
        }, _ => { });
        _cellFlagStart = flagStart;
        _flags = flags;
        _npig = npig;
    }

    private sealed class CellScratch
    {
        public double[] Iou = new double[64];
        public int[] GtSorted = new int[16];
        public bool[] GtIgnore = new bool[16];
        public bool[] GtCrowd = new bool[16];
        public bool[] GtUsed = new bool[16];

        public void Ensure(int d, int g)
        {
            if (Iou.Length < d * g) Iou = new double[Math.Max(d * g, 2 * Iou.Length)];
            if (GtSorted.Length < g)
            {
                int n = Math.Max(g, 2 * GtSorted.Length);
                GtSorted = new int[n]; GtIgnore = new bool[n]; GtCrowd = new bool[n]; GtUsed = new bool[n];
            }
        }
    }

    private void EvaluateCell(int c, CellScratch s, double[] thresholds, byte[] flags, int flagBase, int[] npig)
    {
        int D = _cellDtUsed[c], G = _cellGtCount[c];
        int A = _p.AreaRanges.Length, T = thresholds.Length;
        s.Ensure(D, G);
        var iou = s.Iou;
        if (D > 0 && G > 0) CellIou(c, iou);
        int gtStart = _cellGtStart[c], dtStart = _cellDtStart[c];
        for (int a = 0; a < A; a++)
        {
            var range = _p.AreaRanges[a];
            // Non-ignored ground truth first, ignored after, each group in file order.
            int n = 0, kept = 0;
            for (int pass = 0; pass < 2; pass++)
            {
                for (int j = 0; j < G; j++)
                {
                    int g = _gtOrder[gtStart + j];
                    bool ignore = _gtCrowd[g] || !range.Contains(_gtArea[g]);
                    if (ignore != (pass == 1)) continue;
                    s.GtSorted[n] = j;
                    s.GtIgnore[n] = ignore;
                    s.GtCrowd[n] = _gtCrowd[g];
                    n++;
                }
                if (pass == 0) kept = n;
            }
            npig[c * A + a] = kept;
            for (int t = 0; t < T; t++)
            {
                int rowBase = flagBase + (a * T + t) * D;
                Array.Clear(s.GtUsed, 0, G);
                for (int i = 0; i < D; i++)
                {
                    double best = thresholds[t];
                    int m = -1;
                    for (int q = 0; q < G; q++)
                    {
                        if (s.GtUsed[q] && !s.GtCrowd[q]) continue;
                        if (m > -1 && !s.GtIgnore[m] && s.GtIgnore[q]) break;
                        double v = iou[i * G + s.GtSorted[q]];
                        if (v < best) continue;
                        best = v;
                        m = q;
                    }
                    byte f = 0;
                    if (m >= 0)
                    {
                        f = Matched;
                        if (s.GtIgnore[m]) f |= Ignored;
                        s.GtUsed[m] = true;
                    }
                    else if (!range.Contains(_dtArea[_dtOrder[dtStart + i]]))
                    {
                        f = Ignored;
                    }
                    flags[rowBase + i] = f;
                }
            }
        }
    }

    /// <summary>
    /// Precision at every recall threshold (interpolated: the best precision at that recall or beyond)
    /// and final recall, per IoU threshold, category, area range and maxDets. −1 marks combinations with
    /// no data or no non-ignored ground truth.
    /// </summary>
    public CocoAccumulation Accumulate()
    {
        if (_flags is null) throw new InvalidOperationException("call Evaluate() before Accumulate().");
        int T = _p.IouThresholds.Length, R = _p.RecallThresholds.Length, K = _categoryIds.Length;
        int A = _p.AreaRanges.Length, M = _maxDets.Length;
        var precision = new double[(long)T * R * K * A * M];
        var scores = new double[precision.Length];
        var recall = new double[T * K * A * M];
        Array.Fill(precision, -1.0);
        Array.Fill(scores, -1.0);
        Array.Fill(recall, -1.0);
        var recThrs = _p.RecallThresholds;
        var flags = _flags;

        Parallel.For(0, K, k =>
        {
            int c0 = _categoryCellStart[k], c1 = _categoryCellStart[k + 1];
            if (c0 == c1) return;
            int n = 0;
            for (int c = c0; c < c1; c++) n += _cellDtUsed[c];
            // Concatenate in image order; each cell's detections are already score-sorted.
            var score = new double[n];
            var cellOf = new int[n];
            var rank = new int[n];
            for (int c = c0, p = 0; c < c1; c++)
            {
                int start = _cellDtStart[c];
                for (int r = 0; r < _cellDtUsed[c]; r++, p++)
                {
                    score[p] = _dtScore[_dtOrder[start + r]];
                    cellOf[p] = c;
                    rank[p] = r;
                }
            }
            var order = new int[n];
            for (int i = 0; i < n; i++) order[i] = i;
            StableSortByScoreDescending(order, 0, n, score);

            var selected = new int[n];
            var flagBase = new int[n];   // flag index of (area 0, threshold 0) for each selected detection
            var flagStride = new int[n]; // its cell's detection count: the step between (area, threshold) rows
            var rc = new double[n];
            var pr = new double[n];
            for (int m = 0; m < M; m++)
            {
                int maxDet = _maxDets[m];
                int nd = 0;
                for (int i = 0; i < n; i++)
                {
                    int p = order[i];
                    if (rank[p] >= maxDet) continue;
                    int c = cellOf[p];
                    selected[nd] = p;
                    flagBase[nd] = _cellFlagStart![c] + rank[p];
                    flagStride[nd] = _cellDtUsed[c];
                    nd++;
                }
                for (int a = 0; a < A; a++)
                {
                    int npig = 0;
                    for (int c = c0; c < c1; c++) npig += _npig![c * A + a];
                    if (npig == 0) continue;
                    for (int t = 0; t < T; t++)
                    {
                        recall[((t * K + k) * A + a) * M + m] = InterpolatedPrecisionRecall(flags, flagBase, flagStride, nd, a * T + t, npig, rc, pr);
                        for (int r = 0; r < R; r++)
                        {
                            int pi = LowerBound(rc, nd, recThrs[r]);
                            long idx = ((((long)t * R + r) * K + k) * A + a) * M + m;
                            if (pi >= nd)
                            {
                                // pycocotools stops filling at the first unreachable recall; the rest stay 0.
                                for (int r2 = r; r2 < R; r2++)
                                {
                                    long idx2 = ((((long)t * R + r2) * K + k) * A + a) * M + m;
                                    precision[idx2] = 0;
                                    scores[idx2] = 0;
                                }
                                break;
                            }
                            precision[idx] = pr[pi];
                            scores[idx] = score[selected[pi]];
                        }
                    }
                }
            }
        });
        return new CocoAccumulation(_p, _categoryIds, _categoryNames, _maxDets, precision, recall, scores);
    }

    /// <summary>
    /// Each image's AP alone, in <see cref="ImageIds"/> order: what pycocotools' stats[0] (AP at IoU .50:.95, area "all",
    /// maxDets 100) is when <c>params.imgIds</c> holds that one image, read from the tables <see cref="Evaluate"/> made for
    /// all images at once. Evaluation is per (image, category) cell, so restricting the images changes nothing before
    /// accumulation; accumulating one image's cells alone gives, per category, its precision at every IoU and recall
    /// threshold, and the image's AP is their mean over the categories with non-ignored ground truth in it (a category it
    /// has only detections of is −1 in COCOeval and left out, as a class without ground truth is in mmdet's eval_map).
    /// NaN where no category has any: the image has no non-crowd ground truth, and its AP is undefined (−1 in COCOeval).
    /// The values are gathered and summed as <see cref="CocoAccumulation.Mean"/> sums them, so each equals the restricted
    /// evaluation's stats[0] to the bit.
    /// </summary>
    public double[] ImageAps()
    {
        if (_flags is null) throw new InvalidOperationException("call Evaluate() before ImageAps().");
        const int summaryMaxDets = 100;
        int a = Array.FindIndex(_p.AreaRanges, r => r.Label == "all");
        if (a < 0 || Array.IndexOf(_maxDets, summaryMaxDets) < 0)
            throw new InvalidOperationException("per-image AP is stats[0]'s: it needs the area range \"all\" and maxDets 100.");
        int T = _p.IouThresholds.Length, R = _p.RecallThresholds.Length, A = _p.AreaRanges.Length;
        // Each image's cells in category order: a counting sort over the cells, which run by category then image.
        var imageCellStart = new int[_imageIds.Length + 1];
        foreach (int img in _cellImage) imageCellStart[img + 1]++;
        for (int i = 0; i < _imageIds.Length; i++) imageCellStart[i + 1] += imageCellStart[i];
        var cellsByImage = new int[_cellImage.Length];
        var next = imageCellStart[..^1];
        for (int c = 0; c < _cellImage.Length; c++) cellsByImage[next[_cellImage[c]]++] = c;

        var aps = new double[_imageIds.Length];
        var flags = _flags;
        var recThrs = _p.RecallThresholds;
        Parallel.For(0, _imageIds.Length, img =>
        {
            var defined = new List<int>();
            for (int j = imageCellStart[img]; j < imageCellStart[img + 1]; j++)
            {
                int c = cellsByImage[j];
                if (_npig![c * A + a] > 0) defined.Add(c);
            }
            if (defined.Count == 0)
            {
                aps[img] = double.NaN;
                return;
            }
            int n = defined.Count;
            // [t, r, k] as numpy's C order of precision[:, :, :, a, m], the order the summary's mean sums in.
            var table = new double[T * R * n];
            // One cell's first nd ≤ maxDets entries are used; the buffers serve every category of the image.
            var flagBase = new int[summaryMaxDets];
            var flagStride = new int[summaryMaxDets];
            var rc = new double[summaryMaxDets];
            var pr = new double[summaryMaxDets];
            for (int k = 0; k < n; k++)
            {
                int c = defined[k];
                int nd = Math.Min(_cellDtUsed[c], summaryMaxDets);
                for (int i = 0; i < nd; i++)
                {
                    flagBase[i] = _cellFlagStart![c] + i;
                    flagStride[i] = _cellDtUsed[c];
                }
                for (int t = 0; t < T; t++)
                {
                    InterpolatedPrecisionRecall(flags, flagBase, flagStride, nd, a * T + t, _npig![c * A + a], rc, pr);
                    for (int r = 0; r < R; r++)
                    {
                        // Recall thresholds past the last detection's recall stay 0, as in Accumulate.
                        int pi = LowerBound(rc, nd, recThrs[r]);
                        table[(t * R + r) * n + k] = pi < nd ? pr[pi] : 0;
                    }
                }
            }
            aps[img] = CocoAccumulation.NumpySum(table) / table.Length;
        });
        return aps;
    }

    /// <summary>
    /// COCOeval's accumulate for one (area range, IoU threshold) row of <paramref name="nd"/> score-ordered detections, the
    /// i-th of which has its flag at <c>flagBase[i] + row · flagStride[i]</c>: cumulative recall (true positives over the
    /// <paramref name="npig"/> non-ignored ground truths) in <paramref name="rc"/> and precision in <paramref name="pr"/>, each
    /// precision then raised to the best at its recall or beyond (the interpolation); ignored detections count as neither.
    /// Returns the final recall, 0 without detections.
    /// </summary>
    private static double InterpolatedPrecisionRecall(byte[] flags, int[] flagBase, int[] flagStride, int nd, int row, int npig, double[] rc, double[] pr)
    {
        double tp = 0, fp = 0;
        for (int i = 0; i < nd; i++)
        {
            byte f = flags[flagBase[i] + row * flagStride[i]];
            if ((f & Ignored) == 0)
            {
                if ((f & Matched) != 0) tp++;
                else fp++;
            }
            rc[i] = tp / npig;
            pr[i] = tp / (fp + tp + Eps);
        }
        for (int i = nd - 1; i > 0; i--)
        {
            if (pr[i] > pr[i - 1]) pr[i - 1] = pr[i];
        }
        return nd > 0 ? rc[nd - 1] : 0;
    }

    // numpy's np.spacing(1): keeps precision defined when a prefix has no true or false positives.
    private const double Eps = 2.220446049250313e-16;

    private static int LowerBound(double[] values, int count, double x)
    {
        int lo = 0, hi = count;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (values[mid] < x) lo = mid + 1;
            else hi = mid;
        }
        return lo;
    }

    /// <summary>The 12 standard numbers and per-category AP/AR from the accumulated tables.</summary>
    public static CocoSummary Summarize(CocoAccumulation acc) => CocoSummary.From(acc);
}
