using Vim.Core.Distributed;
using Vim.Data.Datasets;
using Vim.Data.Evaluation.Robustness;
using static TorchSharp.torch;

namespace Vim.Detection;

/// <summary>
/// A detector under the robustness grid (`vim test --corruptions`): each cell predicts the validation split read through
/// the cell's wrapper (<see cref="DetectionTask.PredictSplit(ISampleSource, Action{int, int}?)"/>), scores it as `vim test` does
/// (box AP, and mask AP with a mask head) and draws the detections scoring at least <paramref name="scoreThreshold"/> of the
/// first image holding an object on that image as the cell read it. The task's weights must be loaded.
/// </summary>
public sealed class DetectionRobustness(DetectionTask task, double scoreThreshold) : IRobustnessSubject
{
    private readonly int _sampleIndex = SampleIndex(task.ValSet);

    public string Task => "detection";

    public int ImageCount => task.ValSet.Count;

    public IReadOnlyList<string> SummaryMetrics => task.Detector.MaskOn ? ["bbox_mAP", "segm_mAP"] : ["bbox_mAP"];

    public IReadOnlyDictionary<string, double> Evaluate(Func<ISampleSource, ISampleSource> images, string samplePath, Action onImage)
    {
        var source = images(task.ValSet);
        // Over several ranks rank 0 alone receives the detections, scores them and draws.
        var detections = task.PredictSplit(source, (_, _) => onImage());
        var metrics = task.MetricsOnEveryRank(detections);
        if (ImageCount > 0 && task.Communicator.IsRoot()) DrawSample(source, detections, samplePath);
        return metrics;
    }

    private void DrawSample(ISampleSource source, IReadOnlyList<Vim.Data.Coco.CocoDetection> detections, string path)
    {
        using var scope = NewDisposeScope();
        var sample = source.Load(_sampleIndex);
        var found = detections.Select((detection, index) => (detection, index)).Where(d => d.detection.ImageId == sample.ImageId).ToList();
        var instances = DetectionResultAnalysis.ToInstances(found, sample.Height, sample.Width, task.Data.Categories, withMasks: task.Detector.MaskOn, path);
        using var bgr = ImageEncoder.ToBgr(sample.Image, sample.Height, sample.Width);
        DetectionVisualizer.Draw(bgr, instances, task.Data.Categories.Names, scoreThreshold);
        ImageEncoder.WritePng(path, bgr);
    }

    /// <summary>The first validation image holding a non-crowd object (as `vim test --overlays` picks them), else the first.</summary>
    private static int SampleIndex(CocoInstanceDataset set)
    {
        for (int i = 0; i < set.Images.Count; i++) if (set.HoldsObject(set.Images[i])) return i;
        return 0;
    }
}
