using Vim.Data.Coco;

namespace Vim.Data.Evaluation;

/// <summary>
/// Average recall of region proposals, as mmdet's CocoMetric(metric='proposal', proposal_nums=(100, 300, 1000)): the
/// proposals as COCO box results, evaluated by <see cref="CocoEvaluator"/> with useCats = 0 and maxDets = proposal_nums.
/// Without categories any proposal may match any ground truth (crowds stay ignored regions), and each image's best 100,
/// 300 or 1000 proposals by score take part in AR@100, AR@300 or AR@1000. With those maxDets, COCOeval's summary holds
/// mmdet's items at stats 6–11: AR@100, AR@300, AR@1000 (area all), then AR_s@1000, AR_m@1000, AR_l@1000 (the small,
/// medium and large ranges at the largest maxDets).
/// </summary>
public static class ProposalRecall
{
    /// <summary>mmdet's proposal_nums: the maxDets of the evaluation, ascending.</summary>
    public static IReadOnlyList<int> ProposalNums { get; } = [100, 300, 1000];

    /// <summary>The prefix of the items in metrics.json, where they sit beside the box and mask AP.</summary>
    public const string MetricPrefix = "proposal_";

    /// <summary>COCOeval's settings for proposals: class-agnostic, maxDets = <see cref="ProposalNums"/>, the default IoU thresholds.</summary>
    public static CocoEvalParams Params() => new() { MaxDetections = [.. ProposalNums], UseCategories = false };

    /// <summary>The evaluation of <paramref name="proposals"/> (box results; their categories are ignored) against every image and category of the ground truth.</summary>
    public static CocoSummary Evaluate(CocoDataset groundTruth, IReadOnlyList<CocoDetection> proposals) =>
        new CocoEvaluator(groundTruth, proposals, CocoIouType.Bbox, Params()).Run();

    /// <summary>mmdet's item names with the <see cref="CocoSummary.Stats"/> index each reads (6–11).</summary>
    public static IReadOnlyList<(string Name, int Stat)> Items { get; } =
    [
        ($"AR@{ProposalNums[0]}", 6), ($"AR@{ProposalNums[1]}", 7), ($"AR@{ProposalNums[2]}", 8),
        ($"AR_s@{ProposalNums[2]}", 9), ($"AR_m@{ProposalNums[2]}", 10), ($"AR_l@{ProposalNums[2]}", 11),
    ];

    /// <summary>
    /// The items as metrics.json holds them: <see cref="MetricPrefix"/> + mmdet's name, in percent like the box AP beside
    /// them (mmdet's values are fractions rounded to 3 decimals); −1 (no ground truth in the range) stays −1.
    /// </summary>
    public static IReadOnlyDictionary<string, double> Metrics(CocoSummary summary)
    {
        var acc = summary.Accumulation;
        if (!acc.MaxDetections.SequenceEqual(ProposalNums) || acc.Params.UseCategories)
            throw new ArgumentException($"ProposalRecall.Metrics reads a class-agnostic evaluation at maxDets [{string.Join(", ", ProposalNums)}] ({nameof(Evaluate)}), " +
                $"got {(acc.Params.UseCategories ? "one by category" : "a class-agnostic one")} at maxDets [{string.Join(", ", acc.MaxDetections)}]", nameof(summary));
        return Items.ToDictionary(item => MetricPrefix + item.Name, item => summary.Stats[item.Stat] < 0 ? summary.Stats[item.Stat] : 100 * summary.Stats[item.Stat]);
    }
}
