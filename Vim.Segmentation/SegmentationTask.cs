using TorchSharp;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Distributed;
using Vim.Core.Engine;
using Vim.Core.Models;
using Vim.Data.Datasets;
using Vim.Data.Evaluation;
using Vim.Data.Evaluation.Reports;
using Vim.Data.Loading;
using Vim.Data.Transforms;
using Vim.Segmentation.Losses;
using static TorchSharp.torch;

namespace Vim.Segmentation;

/// <summary>
/// Semantic segmentation for the shared trainer: an ADE-layout dataset (ADE20k or the demo data) and its loaders
/// through the official mmseg pipelines (<see cref="SegmentationData"/>), the UperNet <see cref="EncoderDecoder"/>, and mIoU evaluation
/// against the original-resolution label maps.
/// </summary>
public sealed class SegmentationTask : ITrainingTask<Batch>, IPretrainedInitialised
{
    private readonly ExperimentConfig _config;
    private readonly TextWriter _log;
    private readonly EncoderDecoder _model;

    /// <param name="modelFactory">Builds the model instead of the config's registered backbone (tests use small ones).</param>
    /// <param name="weightsFromCheckpoint">The caller loads a checkpoint holding every weight next (a resumed run):
    /// model.backbone.pretrained is not read.</param>
    /// <param name="training">The shard this process will train on, when the task is built to train (`vim train`): the
    /// training settings and split are checked (one full batch on it) before the model is built or
    /// model.backbone.pretrained read. Null for evaluation-only uses, which accept any training split;
    /// <see cref="OpenTrainingData"/> checks it then.</param>
    /// <param name="data">The data to predict instead of the config's training and validation splits
    /// (<see cref="SegmentationData.ForUnlabelledSplit"/> for `vim test --format-only`).</param>
    public SegmentationTask(ExperimentConfig config, TextWriter? log = null, Func<EncoderDecoder>? modelFactory = null, bool weightsFromCheckpoint = false,
        DataShard? training = null, SegmentationData? data = null)
    {
        _config = config;
        _log = log ?? Console.Out;
        Data = data ?? new SegmentationData(config);
        if (training is not null) Data.CheckTrainingData(training);
        // The loss settings are refused before the backbone is built or model.backbone.pretrained read; the model checks them again.
        OhemPixelSampler.FromConfig(config.Model.SegHead, DecodeLosses.Resolve(config.Model.SegHead));

        _model = modelFactory?.Invoke() ?? EncoderDecoder.FromConfig(config, config.Runtime.Seed);
        try
        {
            PretrainedReport = PretrainedWeights.LoadConfigured(_model.Backbone, config.Model.Backbone, _log, weightsFromCheckpoint);
            NumBackboneLayers = ParameterGroupRules.CountBlocks(_model.named_parameters().Select(p => p.name));
            // The task owns its model's placement, so every user (trainer, test, demo) gets it on runtime.device.
            DeviceSelection.MoveModel(_model, DeviceSelection.Resolve(config.Runtime));
        }
        catch
        {
            // No caller holds a task that failed to construct, so none could dispose the model's native tensors.
            _model.Dispose();
            throw;
        }
    }

    /// <summary>The splits, their classes, and the loaders training and evaluation read them with.</summary>
    public SegmentationData Data { get; }

    public IReadOnlyList<string> ClassNames => Data.ClassNames;

    public Vim.Core.Checkpoints.StateDictLoadReport? PretrainedReport { get; }

    public ConcatenatedSource<SegmentationFolderDataset> TrainSet => Data.TrainSet;

    public SegmentationFolderDataset ValSet => Data.ValSet;

    public EncoderDecoder Segmentor => _model;

    public nn.Module Model => _model;

    public int NumBackboneLayers { get; }

    public string PrimaryMetric => "mIoU";

    public IReadOnlyList<string>? MetricNames => ["mIoU", "mAcc", "aAcc"];

    /// <summary>The ranks that share evaluation: each evaluates images i with i mod K = rank and the counts are summed.</summary>
    public ICommunicator Communicator { get; init; } = SingleProcessCommunicator.Instance;

    public IBatchSource<Batch> OpenTrainingData(int seed, DataPosition start, DataShard shard) =>
        new LoaderBatchSource(Data.TrainingLoader(seed, shard), start, shard.GlobalBatch(_config.Data.BatchSize),
            Data.PipelineSwitch is null ? null : () => Data.SwitchedTrainingLoader(seed, shard));

    public IReadOnlyDictionary<string, Tensor> Losses(Batch batch)
    {
        // The loader builds batches in host memory; they follow the model (runtime.device, moved by the trainer).
        var device = DeviceSelection.Of(_model);
        return _model.Losses(batch.Images.to(device), batch.Labels!.to(device));
    }

    /// <summary>The metrics the trainer logs; the per-class table goes to the task's log, as mmseg prints it at each evaluation.</summary>
    public IReadOnlyDictionary<string, double> Evaluate()
    {
        var result = EvaluateFull(null);
        _log.WriteLine(SegmentationReport.PerClassTable(result, ClassNames));
        return Metrics(result);
    }

    /// <summary>
    /// Runs the validation split; <paramref name="onPrediction"/> sees each prediction at original size.
    /// Over several ranks (<see cref="Communicator"/>) each evaluates images i with i mod K = rank, so
    /// <paramref name="onPrediction"/> sees this rank's share only, and the confusion counts are summed
    /// exactly (int64): every rank returns the single-process result.
    /// </summary>
    public SegmentationResult EvaluateFull(Action<int, ushort[], int, int>? onPrediction) => EvaluateCounts(onPrediction).Compute();

    /// <summary>
    /// <see cref="EvaluateFull"/>'s pass, returning the summed counts themselves: its numbers (<see cref="SegmentationMetric.Compute"/>)
    /// and the confusion matrix they come from (<see cref="SegmentationMetric.ToConfusionMatrix"/>).
    /// </summary>
    /// <param name="images">The validation images as read (default <see cref="SegmentationFolderDataset.ImagesOnly"/>), e.g. corrupted
    /// for `vim test --corruptions`: a wrapper of ImagesOnly keeping its order and sizes, whose samples' ImageId is the image's index.</param>
    public SegmentationMetric EvaluateCounts(Action<int, ushort[], int, int>? onPrediction, ISampleSource? images = null)
    {
        var metric = new SegmentationMetric(ClassNames.Count, _config.Model.SegHead.IgnoreIndex);
        // A rank with no image (more ranks than images) still takes part in the sum.
        // The loaders read the images alone: each label map is read once, here, at its original size.
        PredictEach(new StridedSubset(images ?? ValSet.ImagesOnly, Communicator.Rank, Communicator.WorldSize), (meta, prediction) =>
        {
            var (labels, height, width) = ValSet.LoadLabelMap((int)meta.ImageId);
            if (height != meta.OriginalHeight || width != meta.OriginalWidth)
                throw new VimException($"{meta.FilePath}: label map {width}x{height} differs from the image {meta.OriginalWidth}x{meta.OriginalHeight}");
            metric.Update(prediction, labels);
            onPrediction?.Invoke((int)meta.ImageId, prediction, height, width);
        });
        if (Communicator.WorldSize > 1)
        {
            using var counts = tensor(metric.ExportCounts());
            Communicator.AllReduceSum(counts);
            metric.ImportCounts(counts.data<long>().ToArray());
        }
        return metric;
    }

    /// <summary>
    /// Predicts every image of <paramref name="images"/> in order, as evaluation does (<see cref="EvaluationViews"/>, then
    /// <see cref="Predict"/>); <paramref name="onPrediction"/> sees each image's meta (ImageId: its index in the source the
    /// samples come from) and its label map at the original size. Needs no labels: `vim test --format-only` runs it on
    /// a test split.
    /// </summary>
    public void PredictEach(ISampleSource images, Action<SampleMeta, ushort[]> onPrediction)
    {
        // One loader per test scale, read in lockstep: mmseg resizes the original image for each scale (decoded once).
        IEnumerable<Batch[]> views = images.Count == 0 ? [] : EvaluationViews(images);
        bool wasTraining = _model.training;
        _model.eval();
        var device = DeviceSelection.Of(_model);
        try
        {
            using var noGrad = no_grad();
            foreach (var batches in views)
            {
                using var scope = NewDisposeScope();
                try
                {
                    var meta = batches[0].Metas[0];
                    onPrediction(meta, Predict(batches.Select(batch => batch.Images.to(device)).ToList(), meta));
                }
                finally
                {
                    foreach (var batch in batches) batch.Dispose();
                }
            }
        }
        finally
        {
            if (wasTraining) _model.train();
        }
    }

    /// <summary>
    /// The test views of <paramref name="images"/> as evaluation reads them: per image, one batch per model.seg_test.scales
    /// ratio (the original image, decoded once, resized for each), in order. The caller disposes the batches.
    /// </summary>
    public IEnumerable<Batch[]> EvaluationViews(ISampleSource images) => LockstepBatches.Views(images, Data.TestPipelines(), Data.EvaluationLoader);

    /// <summary>
    /// One image's label map (row-major class indices at the original size) from the images of its
    /// <see cref="EvaluationViews"/> (one per model.seg_test.scales ratio, already on the model's device) and its meta, as
    /// evaluation computes it: whole-image or sliding-window passes as model.seg_test says. The model must be in eval mode.
    /// </summary>
    public ushort[] Predict(IReadOnlyList<Tensor> views, SampleMeta meta) =>
        SegmentationInference.Labels(SegmentationInference.Scores(_model, views, _config.Model.SegTest, meta.OriginalHeight, meta.OriginalWidth));

    /// <summary>
    /// The floor a model must beat: predict the most frequent training class (over the pixels of every split of
    /// data.train_split, each image once: data.train_repeat repeats them all alike) for every pixel of every validation image.
    /// </summary>
    public (int ClassIndex, SegmentationResult Result) ConstantPredictorBaseline()
    {
        var counts = new long[ClassNames.Count];
        foreach (var split in TrainSet.Parts)
            for (int i = 0; i < split.Count; i++)
                foreach (var label in split.LoadLabelMap(i).Labels)
                    if (label < counts.Length) counts[label]++;
        int majority = Array.IndexOf(counts, counts.Max());
        var metric = new SegmentationMetric(ClassNames.Count, _config.Model.SegHead.IgnoreIndex);
        for (int i = 0; i < ValSet.Count; i++)
        {
            var (labels, _, _) = ValSet.LoadLabelMap(i);
            var constant = new ushort[labels.Length];
            Array.Fill(constant, (ushort)majority);
            metric.Update(constant, labels);
        }
        return (majority, metric.Compute());
    }

    /// <summary>mIoU, mAcc and aAcc in percent, as mmseg prints them.</summary>
    public static IReadOnlyDictionary<string, double> Metrics(SegmentationResult result) => new Dictionary<string, double>
    {
        ["mIoU"] = 100 * result.MIoU,
        ["mAcc"] = 100 * result.MAcc,
        ["aAcc"] = 100 * result.AAcc,
    };

    public void Dispose() => _model.Dispose();
}
