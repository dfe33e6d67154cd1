namespace Vim.Data.Evaluation;

/// <summary>
/// Per-category numbers at area "all" (what pycocotools gives with params.catIds = [id]): AP over the
/// IoU thresholds and at 0.50/0.75, and AR, all at the largest maxDets (<see cref="CocoSummary.PerCategoryMaxDets"/>,
/// 100 by default); −1 where undefined.
/// </summary>
public sealed record CocoCategoryResult(long CategoryId, string Name, double Ap, double Ap50, double Ap75, double Ar);
