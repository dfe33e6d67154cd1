using Vim.Data.Coco;
using Vim.Data.Evaluation;

namespace Vim.Data.Statistics;

/// <summary>
/// Instances of one COCO area range (<see cref="CocoEvalParams.AreaRanges"/>: small, medium, large). Both ends are
/// inclusive as COCOeval compares them (<see cref="AreaRange.Contains"/>), so an area exactly on a threshold (32², 96²)
/// counts in both neighbouring ranges, and the shares of the three ranges can add up to more than 1.
/// </summary>
/// <param name="Share">Of the instances with an area; NaN when none has one.</param>
public sealed record AreaRangeCount(string Label, double Min, double Max, int Instances, double Share);

/// <summary>One category of a COCO annotation file. Instances are the non-crowd annotations; crowd regions are counted apart.</summary>
/// <param name="Images">Images holding at least one instance of the category.</param>
/// <param name="WithoutArea">Instances whose annotation has no "area", which no area range can hold.</param>
/// <param name="MedianWidth">Median box width (pixels) of the instances with a box of positive size; NaN without any.</param>
/// <param name="MedianAspectRatio">Median of box width / height.</param>
public sealed record CocoCategoryStatistics(
    long Id, string Name, string? Supercategory, int Instances, int Images, int Crowd,
    IReadOnlyList<AreaRangeCount> AreaRanges, int WithoutArea,
    double MedianWidth, double MedianHeight, double MedianAspectRatio);

/// <summary>
/// What a COCO instances file holds (mmyolo's dataset_analysis.py, mmdet's analysis tools): per category and overall,
/// every image and annotation of the file, as the COCO evaluation reads it. Instances are non-crowd annotations, the
/// objects a detector is trained and scored on; crowd regions are counted apart. Box sizes come from "bbox" (a box
/// whose width or height is not positive is left out of them, as training skips it); area ranges from "area", which
/// COCOeval uses (for COCO's own files the mask area, not w·h).
/// </summary>
/// <param name="ImagesWithoutAnnotations">Images with no annotation at all.</param>
/// <param name="ImagesWithoutInstances">Images with no instance (none, or crowd regions only): what training skips.</param>
/// <param name="InstancesPerImageHistogram">Entry n: how many images hold exactly n instances.</param>
/// <param name="ImagesWithoutSize">Images whose entry has no width/height, left out of the size statistics.</param>
public sealed record CocoDatasetStatistics(
    string Source, int Images, int ImagesWithoutAnnotations, int ImagesWithoutInstances,
    int Instances, int Crowd, int InstancesWithoutArea, int InstancesWithoutBox,
    ValueSummary InstancesPerImage, IReadOnlyList<int> InstancesPerImageHistogram,
    IReadOnlyList<AreaRangeCount> AreaRanges,
    ValueSummary BoxWidth, ValueSummary BoxHeight, ValueSummary BoxAspectRatio,
    ValueSummary ImageWidth, ValueSummary ImageHeight, int ImagesWithoutSize, IReadOnlyList<ImageSizeCount> ImageSizes,
    IReadOnlyList<CocoCategoryStatistics> Categories)
{
    /// <summary>
    /// The statistics of <paramref name="coco"/>, whose annotations must name its images and categories (as
    /// <see cref="Datasets.CocoInstanceDataset"/> checks when it is built). Categories in ascending id, the class order.
    /// </summary>
    public static CocoDatasetStatistics Compute(CocoDataset coco, string source)
    {
        var categories = new CategoryMap(coco.Categories);
        var ranges = ObjectSizeRanges();
        int k = categories.Count;
        var instances = new int[k];
        var crowd = new int[k];
        var withoutArea = new int[k];
        var inRange = new int[k, ranges.Count];
        var boxes = Enumerable.Range(0, k).Select(_ => new List<(double W, double H)>()).ToArray();
        var imagesOfCategory = Enumerable.Range(0, k).Select(_ => new HashSet<long>()).ToArray();
        var annotationsOfImage = new Dictionary<long, int>();
        var instancesOfImage = new Dictionary<long, int>();
        int instancesWithoutBox = 0;
        foreach (var a in coco.Annotations)
        {
            int c = categories.ToClassIndex(a.CategoryId);
            annotationsOfImage[a.ImageId] = annotationsOfImage.GetValueOrDefault(a.ImageId) + 1;
            if (a.IsCrowd)
            {
                crowd[c]++;
                continue;
            }
            instances[c]++;
            instancesOfImage[a.ImageId] = instancesOfImage.GetValueOrDefault(a.ImageId) + 1;
            imagesOfCategory[c].Add(a.ImageId);
            if (a.Area is double area)
            {
                for (int r = 0; r < ranges.Count; r++)
                    if (ranges[r].Contains(area)) inRange[c, r]++;
            }
            else withoutArea[c]++;
            if (MeasurableBox(a) is { } box) boxes[c].Add(box);
            else instancesWithoutBox++;
        }

        var perCategory = new CocoCategoryStatistics[k];
        for (int c = 0; c < k; c++)
        {
            var category = coco.Categories.First(x => x.Id == categories.CategoryIds[c]);
            int c1 = c;
            perCategory[c] = new CocoCategoryStatistics(category.Id, category.Name, category.Supercategory, instances[c], imagesOfCategory[c].Count, crowd[c],
                RangeCounts(ranges, r => inRange[c1, r], instances[c] - withoutArea[c]), withoutArea[c],
                ValueSummary.Of(boxes[c].Select(b => b.W)).Median, ValueSummary.Of(boxes[c].Select(b => b.H)).Median,
                ValueSummary.Of(boxes[c].Select(b => b.W / b.H)).Median);
        }

        var perImage = coco.Images.Select(i => instancesOfImage.GetValueOrDefault(i.Id)).ToArray();
        var histogram = new int[perImage.DefaultIfEmpty(0).Max() + 1];
        foreach (int n in perImage) histogram[n]++;
        var allBoxes = boxes.SelectMany(b => b).ToArray();
        var sized = coco.Images.Where(i => i.Width > 0 && i.Height > 0).ToArray();
        int totalInstances = instances.Sum(), totalWithoutArea = withoutArea.Sum();
        return new CocoDatasetStatistics(
            source, coco.Images.Count,
            coco.Images.Count(i => !annotationsOfImage.ContainsKey(i.Id)), coco.Images.Count(i => !instancesOfImage.ContainsKey(i.Id)),
            totalInstances, crowd.Sum(), totalWithoutArea, instancesWithoutBox,
            ValueSummary.Of(perImage.Select(n => (double)n)), histogram,
            RangeCounts(ranges, r => Enumerable.Range(0, k).Sum(c => inRange[c, r]), totalInstances - totalWithoutArea),
            ValueSummary.Of(allBoxes.Select(b => b.W)), ValueSummary.Of(allBoxes.Select(b => b.H)), ValueSummary.Of(allBoxes.Select(b => b.W / b.H)),
            ValueSummary.Of(sized.Select(i => (double)i.Width)), ValueSummary.Of(sized.Select(i => (double)i.Height)), coco.Images.Count - sized.Length,
            ImageSizeCount.Tally(sized.Select(i => (i.Width, i.Height))),
            perCategory);
    }

    /// <summary>The evaluator's own small, medium and large ranges ("all" is every area).</summary>
    public static IReadOnlyList<AreaRange> ObjectSizeRanges() => new CocoEvalParams().AreaRanges.Where(r => r.Label != "all").ToArray();

    /// <summary>
    /// The width and height of an instance's box when both are finite and positive; null otherwise (no bbox, or one
    /// that training skips as degenerate).
    /// </summary>
    public static (double Width, double Height)? MeasurableBox(CocoAnnotation annotation) =>
        annotation.Bbox is [_, _, var w, var h, ..] && double.IsFinite(w) && double.IsFinite(h) && w > 0 && h > 0 ? (w, h) : null;

    private static AreaRangeCount[] RangeCounts(IReadOnlyList<AreaRange> ranges, Func<int, int> count, int withArea) =>
        ranges.Select((range, r) => new AreaRangeCount(range.Label, range.Min, range.Max, count(r), withArea > 0 ? (double)count(r) / withArea : double.NaN)).ToArray();
}
