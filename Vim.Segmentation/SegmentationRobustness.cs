using Vim.Data.Datasets;
using Vim.Data.Evaluation.Robustness;

namespace Vim.Segmentation;

/// <summary>
/// A segmentor under the robustness grid (`vim test --corruptions`): each cell evaluates the validation split read through
/// the cell's wrapper (<see cref="SegmentationTask.EvaluateCounts"/>: mIoU, mAcc, aAcc) and draws the first image's
/// prediction blended on that image as the cell read it. The task's weights must be loaded.
/// </summary>
public sealed class SegmentationRobustness(SegmentationTask task) : IRobustnessSubject
{
    private const int SampleIndex = 0;

    public string Task => "segmentation";

    public int ImageCount => task.ValSet.Count;

    public IReadOnlyList<string> SummaryMetrics => ["mIoU"];

    public IReadOnlyDictionary<string, double> Evaluate(Func<ISampleSource, ISampleSource> images, string samplePath, Action onImage)
    {
        var source = images(task.ValSet.ImagesOnly);
        ushort[]? samplePrediction = null;
        var counts = task.EvaluateCounts((index, prediction, _, _) =>
        {
            // Over several ranks the sample (image 0) is rank 0's, which alone writes files.
            if (index == SampleIndex) samplePrediction = prediction;
            onImage();
        }, source);
        if (samplePrediction is not null)
        {
            var sample = source.Load(SampleIndex);
            using var bgr = ImageEncoder.ToBgr(sample.Image, sample.Height, sample.Width);
            using var overlay = SegmentationVisualizer.Overlay(bgr, samplePrediction, ignoreIndex: null);
            ImageEncoder.WritePng(samplePath, overlay);
        }
        return SegmentationTask.Metrics(counts.Compute());
    }
}
