using System.Diagnostics;
using System.Globalization;
using Vim.Core;
using Vim.Data.Coco;

namespace Vim.Data.Evaluation;

/// <summary>
/// The stages of the error analysis, in order: each forgives one more kind of error than the one before, so its
/// precision–recall curve lies on or above the previous one.
/// </summary>
public enum CocoErrorStage
{
    /// <summary>AP at IoU 0.75.</summary>
    C75,
    /// <summary>AP at IoU 0.5.</summary>
    C50,
    /// <summary>AP at IoU 0.1: localisation errors forgiven.</summary>
    Loc,
    /// <summary>Loc with detections on objects of another category of the same supercategory ignored.</summary>
    Sim,
    /// <summary>Loc with detections on objects of any other category ignored.</summary>
    Oth,
    /// <summary>Oth with false positives on background removed: precision 1 up to Oth's recall.</summary>
    BG,
    /// <summary>Every remaining error removed, missed objects included: precision 1 at every recall.</summary>
    FN,
}

/// <summary>
/// The Hoiem-style breakdown of COCO AP that mmdet's tools/analysis_tools/coco_error_analysis.py draws (from
/// Detectron's analysis): per category and area range, the precision–recall curve at each <see cref="CocoErrorStage"/>,
/// at maxDets 100, from our COCOeval (<see cref="CocoEvaluator"/>).
/// </summary>
/// <remarks>
/// The rules, as mmdet's script (its analyze_individual_category keeps Detectron's supercategory rule):
/// C75, C50 and Loc are one evaluation at IoU thresholds 0.75, 0.5 and 0.1. Sim and Oth evaluate each category k alone
/// at IoU 0.1 against ground truth in which the annotations of the other categories of k's supercategory (Sim; none when
/// k has no supercategory) or of every other category (Oth) become crowd regions of k: a detection of k on one of them
/// matches it as a crowd (intersection over the detection's area) and is ignored instead of counted as a false positive,
/// while it still takes a real object of k first. BG is 1 wherever Oth's precision is above 0 (all errors but misses
/// gone), FN is 1 everywhere. One departure: a category with no non-ignored ground truth in an area range is undefined
/// in every stage (pycocotools' −1) and left out of the overall mean, as COCOeval's summary leaves it out; mmdet turns
/// −1 into 0 before averaging, so its overall curves fall with every category that lacks objects of a size.
/// </remarks>
public sealed class CocoErrorAnalysis
{
    /// <summary>Detections per image and category, as mmdet's script sets maxDets.</summary>
    public const int MaxDetections = 100;

    /// <summary>The IoU thresholds of C75, C50 and Loc (mmdet's iouThrs = [0.75, 0.5, 0.1]), in the stages' order: threshold t is stage t.</summary>
    private static readonly double[] MatchThresholds = [0.75, 0.5, 0.1];

    private const double LocThreshold = 0.1;

    public static readonly IReadOnlyList<CocoErrorStage> Stages = Enum.GetValues<CocoErrorStage>();

    private readonly double[] _precision; // [stage, category, area, recall]; −1 where the category has no objects in the range

    private CocoErrorAnalysis(CocoIouType iouType, long[] categoryIds, string[] names, string?[] supercategories, AreaRange[] areas,
        double[] recallThresholds, double[] precision, TimeSpan elapsed)
    {
        IouType = iouType;
        CategoryIds = categoryIds;
        CategoryNames = names;
        Supercategories = supercategories;
        AreaRanges = areas;
        RecallThresholds = recallThresholds;
        _precision = precision;
        Elapsed = elapsed;
    }

    public CocoIouType IouType { get; }
    public IReadOnlyList<long> CategoryIds { get; }
    public IReadOnlyList<string> CategoryNames { get; }
    public IReadOnlyList<string?> Supercategories { get; }
    public IReadOnlyList<AreaRange> AreaRanges { get; }
    public IReadOnlyList<double> RecallThresholds { get; }
    /// <summary>How long <see cref="Run"/> took.</summary>
    public TimeSpan Elapsed { get; }

    private int K => CategoryIds.Count;
    private int A => AreaRanges.Count;
    private int R => RecallThresholds.Count;

    private long Index(CocoErrorStage stage, int k, int a, int r) => (((long)stage * K + k) * A + a) * R + r;

    /// <summary>Interpolated precision at one recall threshold; −1 where category k has no objects in area range a.</summary>
    public double PrecisionAt(CocoErrorStage stage, int k, int a, int r) => _precision[Index(stage, k, a, r)];

    /// <summary>Whether category k has non-ignored ground truth in area range a (otherwise every stage is undefined).</summary>
    public bool IsDefined(int k, int a) => _precision[Index(CocoErrorStage.C75, k, a, 0)] > -1;

    /// <summary>The precision–recall curve of one category (all −1 where undefined).</summary>
    public double[] Curve(CocoErrorStage stage, int k, int a) => _precision.AsSpan((int)Index(stage, k, a, 0), R).ToArray();

    /// <summary>A category's AP at one stage (a fraction): the mean of its curve, −1 where undefined.</summary>
    public double Ap(CocoErrorStage stage, int k, int a) => IsDefined(k, a) ? Curve(stage, k, a).Average() : -1;

    /// <summary>The curve averaged over the categories defined in the range at each recall threshold; NaN where none is.</summary>
    public double[] OverallCurve(CocoErrorStage stage, int a)
    {
        var curve = new double[R];
        int defined = 0;
        for (int k = 0; k < K; k++)
        {
            if (!IsDefined(k, a)) continue;
            defined++;
            for (int r = 0; r < R; r++) curve[r] += PrecisionAt(stage, k, a, r);
        }
        for (int r = 0; r < R; r++) curve[r] = defined == 0 ? double.NaN : curve[r] / defined;
        return curve;
    }

    /// <summary>The mean AP of the categories defined in the range (COCOeval's mean at one IoU threshold); −1 where none is.</summary>
    public double OverallAp(CocoErrorStage stage, int a)
    {
        var curve = OverallCurve(stage, a);
        return double.IsNaN(curve[0]) ? -1 : curve.Average();
    }

    /// <summary>
    /// COCO's area ranges (all, small, medium, large) named in a comma-separated list, in the list's order; an unknown or
    /// repeated name is refused naming <paramref name="option"/>.
    /// </summary>
    public static AreaRange[] AreaRangesNamed(string list, string option)
    {
        var known = new CocoEvalParams().AreaRanges;
        var names = list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        string expected = $"expected a comma-separated list of {string.Join(", ", known.Select(r => r.Label))}";
        if (names.Length == 0) throw new VimException($"{option}: no area range given; {expected}.");
        var chosen = new List<AreaRange>();
        foreach (var name in names)
        {
            var range = known.FirstOrDefault(r => r.Label == name)
                ?? throw new VimException($"{option}: '{name}' is not an area range; {expected}.");
            if (chosen.Contains(range)) throw new VimException($"{option}: '{name}' is named twice; {expected}.");
            chosen.Add(range);
        }
        return chosen.ToArray();
    }

    /// <summary>
    /// Runs the analysis over every category of the ground truth. Detections are read as <see cref="CocoEvaluator"/>
    /// reads them (pycocotools' loadRes); <paramref name="progress"/> gets a line per category with the time left.
    /// </summary>
    /// <param name="masks">Where every evaluation of the analysis takes its masks: each ground-truth polygon is rasterised and
    /// each result's RLE decoded once for all of them (a new cache when null; pass one to share it further).</param>
    public static CocoErrorAnalysis Run(CocoDataset groundTruth, IReadOnlyList<CocoDetection> detections, CocoIouType iouType,
        IReadOnlyList<AreaRange>? areaRanges = null, TextWriter? progress = null, CocoMaskCache? masks = null)
    {
        var clock = Stopwatch.StartNew();
        var areas = (areaRanges ?? new CocoEvalParams().AreaRanges).ToArray();
        masks ??= new CocoMaskCache();
        // C75, C50 and Loc: one evaluation of every category (every area range at once), which also checks every input
        // before the long part and fills the mask cache the per-category evaluations read.
        var main = new CocoEvaluator(groundTruth, detections, iouType,
            new CocoEvalParams { IouThresholds = MatchThresholds, MaxDetections = [MaxDetections], AreaRanges = areas }, masks);
        main.Evaluate();
        var accumulation = main.Accumulate();
        var categoryIds = main.CategoryIds.ToArray();
        int K = categoryIds.Length, A = areas.Length, R = accumulation.R;
        var precision = new double[(long)Stages.Count * K * A * R];
        long At(CocoErrorStage stage, int k, int a) => (((long)stage * K + k) * A + a) * R;
        for (int k = 0; k < K; k++)
            for (int a = 0; a < A; a++)
                for (int t = 0; t < MatchThresholds.Length; t++)
                    for (int r = 0; r < R; r++)
                        precision[At((CocoErrorStage)t, k, a) + r] = accumulation.PrecisionAt(t, r, k, a, 0);

        var supercategoryOf = new Dictionary<long, string?>();
        foreach (var c in groundTruth.Categories) supercategoryOf.TryAdd(c.Id, c.Supercategory);
        var supercategories = categoryIds.Select(id => supercategoryOf.GetValueOrDefault(id)).ToArray();
        var relabelling = new CrowdRelabelling(groundTruth, detections, iouType, masks);
        progress?.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"error analysis ({Describe(iouType)}): C75, C50 and Loc of {K} categories in {clock.Elapsed.TotalSeconds:0.0} s; Sim and Oth per category:"));
        var perCategoryClock = Stopwatch.StartNew();
        for (int k = 0; k < K; k++)
        {
            long id = categoryIds[k];
            string? super = supercategories[k];
            // Sim: the other categories of k's supercategory; Oth: every other category.
            var siblings = string.IsNullOrEmpty(super)
                ? []
                : categoryIds.Where((other, j) => other != id && supercategories[j] == super).ToHashSet();
            var everyOther = categoryIds.Where(other => other != id).ToHashSet();
            // Oth relabels every region Sim does (the siblings are among every other category): the same count, the same regions.
            int simCrowds = relabelling.CountCrowds(id, siblings);
            double[]? sim = simCrowds == 0 ? null : relabelling.Evaluate(id, siblings, areas);
            double[]? oth = relabelling.CountCrowds(id, everyOther) == simCrowds ? sim : relabelling.Evaluate(id, everyOther, areas);
            for (int a = 0; a < A; a++)
            {
                for (int r = 0; r < R; r++)
                {
                    // No region relabelled means nothing to forgive: the stage equals Loc.
                    double loc = precision[At(CocoErrorStage.Loc, k, a) + r];
                    double simValue = sim is null ? loc : sim[a * R + r];
                    double othValue = oth is null ? loc : oth[a * R + r];
                    bool defined = loc > -1;
                    precision[At(CocoErrorStage.Sim, k, a) + r] = simValue;
                    precision[At(CocoErrorStage.Oth, k, a) + r] = othValue;
                    precision[At(CocoErrorStage.BG, k, a) + r] = defined ? (othValue > 0 ? 1 : 0) : -1;
                    precision[At(CocoErrorStage.FN, k, a) + r] = defined ? 1 : -1;
                }
            }
            if (progress is not null)
            {
                double done = perCategoryClock.Elapsed.TotalSeconds;
                double left = done / (k + 1) * (K - k - 1);
                progress.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  [{k + 1}/{K}] {main.CategoryNames[k]}: {Durations.Clock(clock.Elapsed.TotalSeconds)} elapsed, about {Durations.Clock(left)} left"));
            }
        }
        var recall = accumulation.Params.RecallThresholds.ToArray();
        progress?.WriteLine($"error analysis ({Describe(iouType)}) done in {Durations.Clock(clock.Elapsed.TotalSeconds)}");
        return new CocoErrorAnalysis(iouType, categoryIds, main.CategoryNames.ToArray(), supercategories, areas, recall, precision, clock.Elapsed);
    }

    public static string Describe(CocoIouType iouType) => iouType == CocoIouType.Bbox ? "bbox" : "segm";

    /// <summary>
    /// The Sim and Oth evaluations of one category: ground truth in which annotations of chosen other categories are
    /// crowd regions of that category. Only images holding a detection of the category get them: elsewhere an ignored
    /// region changes nothing (it adds no object to find and no detection meets it). A relabelled copy keeps its original's
    /// segmentation, so every evaluation takes the masks the main one converted from the shared cache: no polygon is
    /// rasterised, and no result's RLE decoded, a second time.
    /// </summary>
    private sealed class CrowdRelabelling
    {
        private readonly CocoDataset _groundTruth;
        private readonly IReadOnlyList<CocoDetection> _detections;
        // Each category's detections in file order, where handing an evaluation only those reads them as the whole list does.
        private readonly Dictionary<long, List<CocoDetection>>? _detectionsOf;
        private readonly CocoIouType _iouType;
        private readonly CocoMaskCache _masks;
        private readonly IReadOnlyList<CocoAnnotation> _annotations;
        private readonly Dictionary<long, HashSet<long>> _imagesWithDetections = new();

        public CrowdRelabelling(CocoDataset groundTruth, IReadOnlyList<CocoDetection> detections, CocoIouType iouType, CocoMaskCache masks)
        {
            _groundTruth = groundTruth;
            _detections = detections;
            _iouType = iouType;
            _masks = masks;
            foreach (var d in detections)
            {
                if (!_imagesWithDetections.TryGetValue(d.CategoryId, out var images)) _imagesWithDetections[d.CategoryId] = images = [];
                images.Add(d.ImageId);
            }
            // loadRes decides boxes or masks by the list's first detection. The main evaluation has accepted the list, so
            // when that one has a box every detection has one; any subset then decides alike, and so it does when none has.
            // Otherwise (masks first, boxes further on) each evaluation reads the whole list, as the main one did.
            if (detections.Count == 0 || detections[0].Bbox is not null || detections.All(d => d.Bbox is null))
            {
                _detectionsOf = new Dictionary<long, List<CocoDetection>>();
                foreach (var d in detections)
                {
                    if (!_detectionsOf.TryGetValue(d.CategoryId, out var own)) _detectionsOf[d.CategoryId] = own = [];
                    own.Add(d);
                }
            }
            _annotations = groundTruth.Annotations;
        }

        /// <summary>How many annotations <see cref="Evaluate"/> would turn into crowd regions of category <paramref name="id"/>.</summary>
        public int CountCrowds(long id, HashSet<long> relabelled)
        {
            if (relabelled.Count == 0 || !_imagesWithDetections.TryGetValue(id, out var images)) return 0;
            int n = 0;
            foreach (var ann in _annotations)
                if (relabelled.Contains(ann.CategoryId) && images.Contains(ann.ImageId)) n++;
            return n;
        }

        /// <summary>
        /// Precision [area, recall] of category <paramref name="id"/> at IoU 0.1 with the annotations of the
        /// <paramref name="relabelled"/> categories as its crowd regions; only where <see cref="CountCrowds"/> finds
        /// some to relabel (otherwise the result is Loc's).
        /// </summary>
        public double[] Evaluate(long id, HashSet<long> relabelled, AreaRange[] areas)
        {
            var images = _imagesWithDetections[id];
            var annotations = new List<CocoAnnotation>();
            foreach (var ann in _annotations)
            {
                // File order kept: the evaluator breaks ties between equal IoUs by it.
                if (ann.CategoryId == id) annotations.Add(ann);
                else if (relabelled.Contains(ann.CategoryId) && images.Contains(ann.ImageId))
                    annotations.Add(ann with { CategoryId = id, IsCrowd = true });
            }
            // A category's evaluation reads only its own detections: file order kept, so equal scores rank as in the whole list.
            var detections = _detectionsOf?[id] ?? _detections;
            var evaluator = new CocoEvaluator(new CocoDataset(_groundTruth.Images, annotations, _groundTruth.Categories), detections, _iouType,
                new CocoEvalParams { IouThresholds = [LocThreshold], MaxDetections = [MaxDetections], AreaRanges = areas, CategoryIds = [id] }, _masks);
            evaluator.Evaluate();
            var accumulation = evaluator.Accumulate();
            var precision = new double[areas.Length * accumulation.R];
            for (int a = 0; a < areas.Length; a++)
                for (int r = 0; r < accumulation.R; r++)
                    precision[a * accumulation.R + r] = accumulation.PrecisionAt(0, r, 0, a, 0);
            return precision;
        }
    }
}
