using TorchSharp;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Distributed;
using Vim.Core.Engine;
using Vim.Core.Models;
using Vim.Data.Coco;
using Vim.Data.Datasets;
using Vim.Data.Evaluation;
using Vim.Data.Loading;
using Vim.Data.Masks;
using Vim.Data.Transforms;
using Vim.Detection.Modeling;
using Vim.Detection.Ops;
using Vim.Detection.Structures;
using static TorchSharp.torch;

namespace Vim.Detection;

/// <summary>
/// COCO instance detection for the shared trainer: a COCO-layout dataset and its loaders (<see cref="DetectionData"/>:
/// the LSJ training pipeline at data.crop_size), <see cref="CascadeMaskRcnn"/>, and COCO box and mask AP on the
/// validation split computed at the original image sizes.
/// </summary>
public sealed class DetectionTask : ITrainingTask<Batch>, IPretrainedInitialised
{
    private readonly ExperimentConfig _config;
    private readonly CascadeMaskRcnn _model;

    /// <param name="modelFactory">Builds the model instead of the config's registered backbone (tests use small ones).</param>
    /// <param name="weightsFromCheckpoint">The caller loads a checkpoint holding every weight next (a resumed run):
    /// model.backbone.pretrained is not read.</param>
    /// <param name="training">The shard this process will train on, when the task is built to train (`vim train`): the
    /// training split is checked to fill one batch on it, and its images to be on disk, before the model is built or
    /// model.backbone.pretrained read. Null for evaluation-only uses, which accept any training split (only its
    /// categories are read); <see cref="OpenTrainingData"/> checks it then.</param>
    /// <param name="data">The data to predict instead of the config's training and validation splits
    /// (<see cref="DetectionData.ForUnlabelledSplit"/> for `vim test --format-only`).</param>
    public DetectionTask(ExperimentConfig config, TextWriter? log = null, Func<CascadeMaskRcnn>? modelFactory = null, bool weightsFromCheckpoint = false,
        DataShard? training = null, DetectionData? data = null)
    {
        _config = config;
        Data = data ?? new DetectionData(config);
        if (training is not null) Data.CheckTrainingData(training);
        _model = modelFactory?.Invoke() ?? FromConfig(config);
        try
        {
            PretrainedReport = PretrainedWeights.LoadConfigured(_model, config.Model.Backbone, log ?? TextWriter.Null, weightsFromCheckpoint);
            NumBackboneLayers = ParameterGroupRules.CountBlocks(_model.named_parameters().Select(p => p.name));
            // The task owns its model's placement, so every user (trainer, test, demo) gets it on runtime.device.
            DeviceSelection.MoveModel(_model, DeviceSelection.Resolve(config.Runtime));
            (log ?? TextWriter.Null).WriteLine($"detection: {Data.Summary}");
        }
        catch
        {
            // No caller holds a task that failed to construct, so none could dispose the model's native tensors.
            _model.Dispose();
            throw;
        }
    }

    /// <summary>The splits and the loaders training and evaluation read them with.</summary>
    public DetectionData Data { get; }

    public ConcatenatedSource<CocoInstanceDataset> TrainSet => Data.TrainSet;

    public Vim.Core.Checkpoints.StateDictLoadReport? PretrainedReport { get; }

    public CocoInstanceDataset ValSet => Data.ValSet;

    public CascadeMaskRcnn Detector => _model;

    public nn.Module Model => _model;

    public int NumBackboneLayers { get; }

    /// <inheritdoc cref="DetectionData.TestSize"/>
    public int TestSize => Data.TestSize;

    public string PrimaryMetric => "bbox_mAP";

    public IReadOnlyList<string>? MetricNames => (Detector.MaskOn ? new[] { "bbox", "segm" } : ["bbox"])
        .SelectMany(prefix => MetricItems.Select(item => $"{prefix}_{item}")).ToList();

    /// <summary>mmdet's COCO metric items, COCO stats 0–5.</summary>
    private static readonly string[] MetricItems = ["mAP", "mAP_50", "mAP_75", "mAP_s", "mAP_m", "mAP_l"];

    /// <summary>The ranks that share evaluation: each runs inference on images i with i mod K = rank and the COCO results are gathered.</summary>
    public ICommunicator Communicator { get; init; } = SingleProcessCommunicator.Instance;

    /// <summary>The detector a config describes (model.backbone.name must be a detection backbone, e.g. vimdet_tiny).</summary>
    public static CascadeMaskRcnn FromConfig(ExperimentConfig config)
    {
        CheckHead(config.Model.DetHead);
        var name = config.Model.Backbone.Name;
        var module = ModelRegistry.Create(name, config.Runtime.Seed, BackboneOverrides.From(config.Model.Backbone));
        if (module is not SimpleFeaturePyramid pyramid)
        {
            module.Dispose();
            var detection = ModelRegistry.All.Where(e => e.Name.Contains("det", StringComparison.Ordinal)).Select(e => e.Name);
            throw new VimException($"model.backbone.name '{name}' is not a detection backbone; use one of {string.Join(", ", detection)}");
        }
        try
        {
            var head = config.Model.DetHead;
            var roi = new CascadeRoiHeadsSettings
            {
                NumClasses = config.Model.NumClasses, BatchSizePerImage = head.RoiBatchSizePerImage,
                StageIouThresholds = head.StageIouThresholds.ToArray(),
                StageBoxWeights = head.StageBoxWeights.Select(w => (w[0], w[1], w[2], w[3])).ToArray(),
                ClassAgnosticBoxRegression = head.ClsAgnosticBboxReg,
                BoxHeadConvDims = head.BoxHeadConvDims.Select(d => (long)d).ToArray(), BoxHeadFcDims = head.BoxHeadFcDims.Select(d => (long)d).ToArray(),
                MaskOn = head.MaskOn, MaskHeadConvDims = head.MaskHeadConvDims.Select(d => (long)d).ToArray(),
                TestScoreThreshold = head.TestScoreThreshold, TestNmsThreshold = head.TestNmsThreshold, DetectionsPerImage = head.DetectionsPerImage,
                TestSoftNms = FinalSoftNms(head),
                PositiveFraction = head.RoiPositiveFraction, ProposalAppendGt = head.RoiProposalAppendGt,
                BoxPoolerResolution = head.BoxPoolerResolution, MaskPoolerResolution = head.MaskPoolerResolution,
                PoolerSamplingRatio = head.PoolerSamplingRatio, BoxRegressionLoss = head.RoiBboxRegLossType, SmoothL1Beta = head.RoiSmoothL1Beta,
                ClassificationLossWeight = head.RoiLossClsWeight, BoxLossWeight = head.RoiLossBboxWeight, MaskLossWeight = head.MaskLossWeight,
                StageLossWeights = head.StageLossWeights?.ToArray(),
            };
            var rpn = new RpnSettings
            {
                BatchSizePerImage = head.RpnBatchSizePerImage, PreNmsTopKTrain = head.RpnPreNmsTopkTrain, PostNmsTopKTrain = head.RpnPostNmsTopkTrain,
                PreNmsTopKTest = head.RpnPreNmsTopkTest, PostNmsTopKTest = head.RpnPostNmsTopkTest,
                IouThresholds = head.RpnIouThresholds.ToArray(), PositiveFraction = head.RpnPositiveFraction, NmsThreshold = head.RpnNmsThreshold,
                MinBoxSize = head.RpnMinBoxSize, BoxRegressionLoss = head.RpnBboxRegLossType, SmoothL1Beta = head.RpnSmoothL1Beta,
                ObjectnessLossWeight = head.RpnLossClsWeight, BoxLossWeight = head.RpnLossBboxWeight,
                AnchorSizes = head.RpnAnchorSizes.Select(level => (IReadOnlyList<double>)level.ToArray()).ToArray(),
                AnchorAspectRatios = head.RpnAnchorAspectRatios.ToArray(),
            };
            return new CascadeMaskRcnn(pyramid, roi, rpn, config.Runtime.Seed + 10);
        }
        catch (Exception e)
        {
            // The detector was not built, so nothing else owns the pyramid: its tensors would outlive the error.
            pyramid.Dispose();
            // A head refused a setting CheckHead does not cover (e.g. model.num_classes): the user's error, with the head's reason.
            if (e is ArgumentException)
                throw new VimException($"the detection heads cannot be built from model.det_head and model.num_classes: {e.Message}", e);
            throw;
        }
    }

    /// <summary>The detector's final per-class NMS as model.det_head's test_nms_type and test_soft_nms_* keys say (null: hard NMS).</summary>
    private static SoftNmsSettings? FinalSoftNms(DetectionHeadConfig head) =>
        SoftNmsSettings.FromConfig(head.TestNmsType, head.TestSoftNmsMethod, head.TestSoftNmsSigma, head.TestSoftNmsMinScore, "model.det_head.test_");

    /// <summary>
    /// The head settings the detector would reject, or that would leave it without proposals or detections (found only
    /// after training, as an AP of 0), named by their config keys; checked before anything is built.
    /// </summary>
    private static void CheckHead(DetectionHeadConfig head)
    {
        static string List(IEnumerable<int> widths) => $"[{string.Join(", ", widths)}]";
        foreach (var (key, value) in new[]
        {
            ("rpn_batch_size_per_image", head.RpnBatchSizePerImage), ("rpn_pre_nms_topk_train", head.RpnPreNmsTopkTrain),
            ("rpn_post_nms_topk_train", head.RpnPostNmsTopkTrain), ("rpn_pre_nms_topk_test", head.RpnPreNmsTopkTest),
            ("rpn_post_nms_topk_test", head.RpnPostNmsTopkTest), ("roi_batch_size_per_image", head.RoiBatchSizePerImage),
            ("detections_per_image", head.DetectionsPerImage),
        })
            if (value < 1) throw new VimException($"model.det_head.{key} must be at least 1, got {value}");
        foreach (var (key, value) in new[] { ("test_score_threshold", head.TestScoreThreshold), ("test_nms_threshold", head.TestNmsThreshold) })
            if (!(value >= 0 && value <= 1))
                throw new VimException($"model.det_head.{key} must be within [0, 1], got {Invariant(value)}");
        _ = FinalSoftNms(head);
        CheckStages(head);
        head.CheckHyperParameters();
        if (head.BoxHeadConvDims.Concat(head.BoxHeadFcDims).Any(d => d < 1))
            throw new VimException($"model.det_head.box_head_conv_dims and box_head_fc_dims must hold positive layer widths, got {List(head.BoxHeadConvDims)} and {List(head.BoxHeadFcDims)}");
        if (head.BoxHeadConvDims.Count + head.BoxHeadFcDims.Count == 0)
            throw new VimException("model.det_head.box_head_conv_dims and box_head_fc_dims are both empty; the box head needs at least one conv or FC layer (e.g. box_head_fc_dims: [1024])");
        if (head.MaskOn && (head.MaskHeadConvDims.Count == 0 || head.MaskHeadConvDims.Any(d => d < 1)))
            throw new VimException($"model.det_head.mask_head_conv_dims must be a non-empty list of positive widths (the 3×3 convs, then the deconv; e.g. [256, 256, 256, 256, 256]), got {List(head.MaskHeadConvDims)}; set model.det_head.mask_on: false for boxes only");
    }

    /// <summary>A number as a config spells it, whatever the machine's culture.</summary>
    private static string Invariant(double value) => value.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The box stages: one IoU threshold in (0, 1] and one row of four positive box weights per stage, at least one stage.</summary>
    private static void CheckStages(DetectionHeadConfig head)
    {
        const string Example = "e.g. [0.5] for Mask R-CNN, [0.5, 0.6, 0.7] for Cascade Mask R-CNN";
        static string List(IEnumerable<double> values) => $"[{string.Join(", ", values.Select(Invariant))}]";
        var thresholds = head.StageIouThresholds;
        var weights = head.StageBoxWeights;
        if (thresholds.Count == 0)
            throw new VimException($"model.det_head.stage_iou_thresholds is empty; the box head needs one IoU threshold per stage and at least one stage ({Example})");
        if (thresholds.Any(t => !(t > 0 && t <= 1)))
            throw new VimException($"model.det_head.stage_iou_thresholds must hold IoUs within (0, 1] ({Example}), got {List(thresholds)}");
        if (weights.Count != thresholds.Count)
            throw new VimException($"model.det_head.stage_box_weights has {weights.Count} row(s) and model.det_head.stage_iou_thresholds {thresholds.Count} stage(s); " +
                "give one row of box weights [wx, wy, ww, wh] per stage (e.g. [[10, 10, 5, 5]] for one stage)");
        for (int k = 0; k < weights.Count; k++)
            if (weights[k] is not { Count: 4 } row || row.Any(w => !(w > 0) || double.IsPositiveInfinity(w)))
                throw new VimException($"model.det_head.stage_box_weights[{k}] must be four positive numbers [wx, wy, ww, wh] (e.g. [10, 10, 5, 5]), got {List(weights[k])}");
    }

    public IBatchSource<Batch> OpenTrainingData(int seed, DataPosition start, DataShard shard) =>
        new LoaderBatchSource(Data.TrainingLoader(seed, shard), start, shard.GlobalBatch(_config.Data.BatchSize),
            Data.PipelineSwitch is null ? null : () => Data.SwitchedTrainingLoader(seed, shard));

    public IReadOnlyDictionary<string, Tensor> Losses(Batch batch)
    {
        // The loader builds batches in host memory; they follow the model (runtime.device, moved by the trainer).
        var device = DeviceSelection.Of(_model);
        var sizes = batch.Metas.Select(m => ((long)m.ContentHeight, (long)m.ContentWidth)).ToList();
        var targets = batch.Targets!.Select((t, i) => GroundTruth(t, sizes[i].Item1, sizes[i].Item2, device)).ToList();
        // The sampling draws from torch's global generator, which checkpoints save and restore.
        return _model.Losses(batch.Images.to(device), sizes, targets);
    }

    /// <summary>
    /// The validation metrics (<see cref="Metrics"/>), equal on every rank. Over several ranks COCOeval runs on rank 0 alone,
    /// as detectron2's COCOEvaluator and mmengine's CocoMetric do, and the others receive its numbers: evaluating on every
    /// rank would cost K times the CPU time and memory (COCOeval's per-image tables of val2017 take gigabytes).
    /// </summary>
    public IReadOnlyDictionary<string, double> Evaluate() => MetricsOnEveryRank(PredictValidation());

    /// <summary>
    /// <see cref="Metrics"/> of detections <see cref="PredictSplit(ISampleSource, Action{int, int}?)"/> returned for the validation
    /// images (rank 0 holds them all, the other ranks none), scored on rank 0 and sent to the others.
    /// </summary>
    public IReadOnlyDictionary<string, double> MetricsOnEveryRank(IReadOnlyList<CocoDetection> detections)
    {
        var metrics = Communicator.IsRoot() ? Metrics(Score(detections)) : null;
        return Communicator.WorldSize == 1 ? metrics! : Communicator.BroadcastJson(metrics);
    }

    /// <summary>
    /// Box (and mask) COCO evaluation of the validation split in one process (`vim test`, the demo); the detections in
    /// COCO results form. A distributed run evaluates through <see cref="Evaluate"/>.
    /// </summary>
    public (CocoSummary Box, CocoSummary? Mask, IReadOnlyList<CocoDetection> Detections) EvaluateFull()
    {
        if (Communicator.WorldSize > 1)
            throw new InvalidOperationException($"{nameof(EvaluateFull)} evaluates in one process; over {Communicator.WorldSize} ranks use {nameof(Evaluate)} (COCOeval on rank 0)");
        var detections = PredictValidation();
        var (box, mask) = Score(detections);
        return (box, mask, detections);
    }

    /// <summary>Box AP, and mask AP where the model has a mask head, of detections covering the whole validation split.</summary>
    /// <param name="masks">Where mask AP converts its masks (<see cref="EvaluateMasks"/>); null: its own.</param>
    public (CocoSummary Box, CocoSummary? Mask) Score(IReadOnlyList<CocoDetection> detections, CocoMaskCache? masks = null) =>
        (new CocoEvaluator(ValSet.Coco, detections, CocoIouType.Bbox).Run(), _config.Model.DetHead.MaskOn ? EvaluateMasks(ValSet.Coco, detections, masks) : null);

    /// <summary>
    /// The detections of the validation split in dataset order. Over several ranks each runs inference on images i with
    /// i mod K = rank, and rank 0 receives them all, in the order one process would produce them (the evaluator breaks
    /// ties between equal scores by input order); the other ranks return an empty list.
    /// </summary>
    public IReadOnlyList<CocoDetection> PredictValidation() => PredictSplit(ValSet);

    /// <summary>
    /// <see cref="PredictValidation"/> and, from the same forward of each image (one backbone run), the RPN's test-time
    /// proposals as mmdet's proposal metric reads an RPN's results: class-agnostic COCO box results (xywh in the original
    /// image, as the detections), every one labelled class 0 as mmdet's RPN head labels its proposals (so the category is
    /// <see cref="CategoryMap.ToCategoryId"/>(0), 1 on COCO), scored by objectness probability
    /// (<see cref="CascadeMaskRcnn.PredictWithProposals"/>). Needs a plain test pass (<see cref="RequirePlainTestPass"/>).
    /// </summary>
    public (IReadOnlyList<CocoDetection> Detections, IReadOnlyList<CocoDetection> Proposals) PredictValidationWithProposals()
    {
        var (detections, proposals) = PredictSplit(ValSet, null, withProposals: true);
        return (detections, proposals!);
    }

    /// <summary>
    /// Refuses proposal evaluation under test-time augmentation: every pass (flip, scale) runs the RPN on its own view, so
    /// the box heads see several proposal sets and none is the detector's; mmdet's proposal metric evaluates one.
    /// </summary>
    public static void RequirePlainTestPass(DetectionTestConfig test)
    {
        if (!DetectionTestTimeAugmentation.IsPlain(test))
            throw new VimException($"--proposals: proposal recall evaluates the RPN's proposals of one plain test pass, and model.det_test asks for " +
                $"test-time augmentation (flip: {(test.Flip ? "true" : "false")}, scales: [{string.Join(", ", test.Scales.Select(s => s.ToString(System.Globalization.CultureInfo.InvariantCulture)))}]), " +
                "whose passes each propose their own boxes; run it without --tta, with model.det_test.flip=false and model.det_test.scales=[1.0].");
    }

    /// <summary>
    /// <see cref="PredictValidation"/> on any COCO split, annotated or not (`vim test --format-only` runs it on test-dev),
    /// or on a split's images read through a wrapper (`vim test --corruptions`: <see cref="Vim.Data.Transforms.Corruptions.CorruptedImages"/>
    /// over <see cref="ValSet"/>, scored by <see cref="Score"/>): the detections of <paramref name="images"/> in dataset
    /// order, categories as the training file's ids.
    /// </summary>
    /// <param name="onImage">Called after each image with (images done, images of this rank's share).</param>
    public IReadOnlyList<CocoDetection> PredictSplit(ISampleSource images, Action<int, int>? onImage = null) =>
        PredictSplit(images, onImage, withProposals: false).Detections;

    private (IReadOnlyList<CocoDetection> Detections, IReadOnlyList<CocoDetection>? Proposals) PredictSplit(ISampleSource images,
        Action<int, int>? onImage, bool withProposals)
    {
        if (withProposals) RequirePlainTestPass(TestAugmentation);
        var share = new StridedSubset(images, Communicator.Rank, Communicator.WorldSize);
        // A rank with no image (more ranks than images) still takes part in the gather.
        // One loader per model.det_test.scales ratio, read in lockstep (one with the defaults).
        IEnumerable<Batch[]> views = share.Count == 0 ? [] : Data.EvaluationViews(share);
        bool wasTraining = _model.training;
        _model.eval();
        var device = DeviceSelection.Of(_model);
        var perImage = new List<(int Index, List<CocoDetection> Detections)>();
        var perImageProposals = new List<(int Index, List<CocoDetection> Proposals)>();
        // A failed prediction (a damaged image) must not leave a training model in eval mode.
        try
        {
            foreach (var batches in views)
            {
                using var scope = NewDisposeScope();
                try
                {
                    int index = share.SourceIndex(perImage.Count);
                    var meta = batches[0].Metas[0];
                    Instances found;
                    if (withProposals)
                    {
                        // RequirePlainTestPass: one view, which DetectionTestTimeAugmentation.Predict would give the detector's plain Predict.
                        var (detections, proposals) = _model.PredictWithProposals(batches[0].Images.to(device), [(meta.ContentHeight, meta.ContentWidth)],
                            [(meta.OriginalHeight, meta.OriginalWidth)]);
                        found = detections[0];
                        var proposed = proposals[0];
                        var classZero = zeros(proposed.Count, ScalarType.Int64, proposed.Boxes.Tensor.device);
                        perImageProposals.Add((index, ToCoco(new Instances(proposed.ImageHeight, proposed.ImageWidth, proposed.Boxes, classZero, proposed.Scores),
                            meta.ImageId).ToList()));
                    }
                    else found = Predict(batches.Select(batch => batch.Images.to(device)).ToList(), batches.Select(batch => batch.Metas[0]).ToList());
                    perImage.Add((index, ToCoco(found, meta.ImageId).ToList()));
                }
                finally
                {
                    foreach (var batch in batches) batch.Dispose();
                }
                onImage?.Invoke(perImage.Count, share.Count);
            }
        }
        finally
        {
            if (wasTraining) _model.train();
        }
        IReadOnlyList<CocoDetection> InDatasetOrder(List<(int Index, List<CocoDetection> Found)> mine) =>
            Communicator.WorldSize == 1 ? mine.SelectMany(p => p.Found).ToList() : GatherInDatasetOrder(mine);
        return (InDatasetOrder(perImage), withProposals ? InDatasetOrder(perImageProposals) : null);
    }

    /// <summary>
    /// The detections of one image as evaluation computes them, from the images of its <see cref="DetectionData.EvaluationViews"/>
    /// (one per model.det_test.scales ratio, already on the model's device) and their metas: the whole predict path with
    /// model.det_test's augmentation (<see cref="DetectionTestTimeAugmentation.Predict"/>), boxes and pasted masks at the
    /// original image size. The model must be in eval mode.
    /// </summary>
    public Instances Predict(IReadOnlyList<Tensor> views, IReadOnlyList<SampleMeta> metas)
    {
        if (views.Count != metas.Count) throw new ArgumentException($"{views.Count} test views with {metas.Count} metas", nameof(metas));
        var detectionViews = views.Select((image, i) => new DetectionView(image, metas[i].ContentHeight, metas[i].ContentWidth)).ToList();
        return DetectionTestTimeAugmentation.Predict(_model, detectionViews, metas[0].OriginalHeight, metas[0].OriginalWidth, _config.Model.DetTest);
    }

    /// <summary><see cref="Predict(IReadOnlyList{Tensor}, IReadOnlyList{SampleMeta})"/> of an image's one test view (model.det_test with one scale).</summary>
    public Instances Predict(Tensor images, SampleMeta meta) => Predict([images], [meta]);

    /// <summary>The most proposals the RPN passes to the box heads per image at test (model.det_head.rpn_post_nms_topk_test): what AR@1000 can see.</summary>
    public long ProposalsPerImage => _model.ProposalsPerImage;

    /// <summary>The test-time augmentation this task predicts with (model.det_test).</summary>
    public DetectionTestConfig TestAugmentation => _config.Model.DetTest;

    /// <summary>
    /// Mask AP as detectron2's COCOEvaluator computes it: the detections go to the evaluator without their boxes, so
    /// each one's area (which decides the small/medium/large range an unmatched detection counts in) is its mask's.
    /// With a box, pycocotools' loadRes takes the box area, and AP_S/M/L and AR_S/M/L would not compare with
    /// detectron2's (and the Vim paper's) numbers. The results file keeps the boxes.
    /// </summary>
    /// <param name="masks">Where the ground-truth polygons are rasterised and the detections' RLE decoded, once each: a cache
    /// the error analysis of the same detections then reads (`vim test --error-analysis`), the numbers unchanged to the bit;
    /// null converts them for this evaluation alone.</param>
    public static CocoSummary EvaluateMasks(CocoDataset groundTruth, IReadOnlyList<CocoDetection> detections, CocoMaskCache? masks = null) =>
        new CocoEvaluator(groundTruth, AsMaskResults(detections), CocoIouType.Segm, masks: masks).Run();

    /// <summary>The detections as mask AP reads them: without their boxes (see <see cref="EvaluateMasks"/>).</summary>
    public static List<CocoDetection> AsMaskResults(IReadOnlyList<CocoDetection> detections) => detections.Select(d => d with { Bbox = null }).ToList();

    /// <summary>
    /// mmdet's metric items (mAP, mAP_50, mAP_75, mAP_s, mAP_m, mAP_l: COCO stats 0–5) for boxes and masks, in percent as
    /// detectron2 reports them (mmdet's coco/bbox_mAP is a fraction); −1 where undefined stays −1.
    /// </summary>
    public static IReadOnlyDictionary<string, double> Metrics((CocoSummary Box, CocoSummary? Mask) result)
    {
        var items = MetricItems;
        var metrics = new Dictionary<string, double>();
        foreach (var (prefix, summary) in new[] { ("bbox", result.Box), ("segm", result.Mask) })
        {
            if (summary is null) continue;
            for (int i = 0; i < items.Length; i++)
                metrics[$"{prefix}_{items[i]}"] = summary.Stats[i] < 0 ? summary.Stats[i] : 100 * summary.Stats[i];
        }
        return metrics;
    }

    public void Dispose() => _model.Dispose();

    /// <summary>One detection as it travels between ranks (our masks are always compressed RLE).</summary>
    private sealed record SharedDetection(long ImageId, long CategoryId, double Score, double[]? Bbox, string? Rle, int RleHeight, int RleWidth);

    private sealed record SharedImage(int Index, SharedDetection[] Detections);

    /// <summary>Every rank's detections, on rank 0, in dataset order (empty on the others). JSON keeps doubles exact (shortest round-trip form).</summary>
    private List<CocoDetection> GatherInDatasetOrder(List<(int Index, List<CocoDetection> Detections)> mine)
    {
        var shared = mine.Select(image => new SharedImage(image.Index, image.Detections.Select(d =>
        {
            if (d.Segmentation is { Kind: not CocoSegmentationKind.CompressedRle })
                throw new InvalidOperationException($"detection of image {d.ImageId}: expected a compressed-RLE mask, got {d.Segmentation.Kind}");
            return new SharedDetection(d.ImageId, d.CategoryId, d.Score, d.Bbox, d.Segmentation?.CompressedCounts,
                d.Segmentation?.RleHeight ?? 0, d.Segmentation?.RleWidth ?? 0);
        }).ToArray())).ToArray();
        return Communicator.GatherJson(shared)
            .SelectMany(images => images)
            .OrderBy(image => image.Index)
            .SelectMany(image => image.Detections)
            .Select(d => new CocoDetection(d.ImageId, d.CategoryId, d.Score, d.Bbox,
                d.Rle is null ? null : CocoSegmentation.FromCompressed(d.Rle, d.RleHeight, d.RleWidth)))
            .ToList();
    }

    private static Instances GroundTruth(DetectionTarget target, long height, long width, Device device)
    {
        // Crowd regions are ignored by the losses (evaluation honours them through the ground-truth json).
        // Selected in host memory, where the loader put them; only what the losses use travels to the device.
        var keep = target.IsCrowd.logical_not().nonzero().flatten();
        var boxes = new Boxes(target.Boxes.index_select(0, keep).to(device));
        var classes = target.Labels.index_select(0, keep).to(device);
        var masks = target.Masks?.index_select(0, keep)[.., ..(int)height, ..(int)width].to(device);
        var outlines = target.Outlines is null ? null : keep.cpu().data<long>().ToArray().Select(i => target.Outlines[(int)i]).ToArray();
        return new Instances(height, width, boxes, classes, masks: masks, outlines: outlines);
    }

    private IEnumerable<CocoDetection> ToCoco(Instances found, long imageId)
    {
        if (found.Count == 0) yield break;
        // Reading through data<T>() needs contiguous host memory (post-processing can return strided views, on the model's device).
        var boxes = found.Boxes.Tensor.to_type(ScalarType.Float64).cpu().contiguous().data<double>().ToArray();
        var classes = found.Classes!.to_type(ScalarType.Int64).cpu().contiguous().data<long>().ToArray();
        var scores = found.Scores!.to_type(ScalarType.Float64).cpu().contiguous().data<double>().ToArray();
        // One transfer for all masks rather than one per detection.
        var masks = found.Masks?.to_type(ScalarType.Byte).cpu();
        int height = (int)found.ImageHeight, width = (int)found.ImageWidth;
        for (int i = 0; i < classes.Length; i++)
        {
            double x0 = boxes[4 * i], y0 = boxes[4 * i + 1], x1 = boxes[4 * i + 2], y1 = boxes[4 * i + 3];
            CocoSegmentation? segmentation = null;
            if (masks is not null)
            {
                var bitmap = masks[i].contiguous().flatten().data<byte>().ToArray();
                var rle = Rle.Encode(bitmap, height, width);
                segmentation = CocoSegmentation.FromCompressed(rle.ToCompressedString(), height, width);
            }
            yield return new CocoDetection(imageId, Data.Categories.ToCategoryId((int)classes[i]), scores[i],
                [x0, y0, x1 - x0, y1 - y0], segmentation);
        }
    }
}
