using System.Globalization;
using Vim.Core;
using Vim.Core.Config;

namespace Vim.Segmentation.Losses;

/// <summary>One of the decode head's losses and its weight.</summary>
public sealed record WeightedLoss(SegmentationLossKind Kind, double Weight)
{
    /// <summary>mmseg's loss_name of each loss (CrossEntropyLoss: loss_ce, DiceLoss: loss_dice, LovaszLoss: loss_lovasz).</summary>
    public string Name => Kind switch
    {
        SegmentationLossKind.CrossEntropy => "loss_ce",
        SegmentationLossKind.Dice => "loss_dice",
        SegmentationLossKind.Lovasz => "loss_lovasz",
        _ => throw new VimException($"model.seg_head loss {Kind} is not supported"),
    };
}

/// <summary>
/// The decode head's losses a config asks for: model.seg_head.losses (mmseg's loss_decode list), or the one loss of its
/// shorthand loss / loss_weight (cross_entropy with weight 1 when neither form is set), checked by key.
/// </summary>
public static class DecodeLosses
{
    public static IReadOnlyList<WeightedLoss> Resolve(SegmentationHeadConfig heads)
    {
        if (heads.Losses is null)
        {
            double weight = heads.LossWeight ?? 1.0;
            RequireWeight(weight, "model.seg_head.loss_weight");
            return [new WeightedLoss(heads.Loss ?? SegmentationLossKind.CrossEntropy, weight)];
        }
        var shorthand = new[] { heads.Loss is null ? null : "model.seg_head.loss", heads.LossWeight is null ? null : "model.seg_head.loss_weight" }
            .OfType<string>().ToList();
        if (shorthand.Count > 0)
            throw new VimException($"{string.Join(", ", shorthand)} and model.seg_head.losses are {(shorthand.Count == 1 ? "both" : "all")} set; loss / loss_weight is the one-loss " +
                "shorthand of losses, so set one form: losses: [{type: cross_entropy, weight: 1.0}, {type: dice, weight: 3.0}], or loss and loss_weight alone");
        if (heads.Losses.Count == 0)
            throw new VimException($"model.seg_head.losses is empty; list at least one loss, e.g. [{{type: cross_entropy, weight: 1.0}}] (types: {Types}), " +
                "or leave it null for loss / loss_weight");
        var resolved = new List<WeightedLoss>();
        for (int i = 0; i < heads.Losses.Count; i++)
        {
            var entry = heads.Losses[i];
            var at = $"model.seg_head.losses[{i}]";
            if (entry.Type is not { } kind) throw new VimException($"{at}.type is not set; expected one of {Types}");
            RequireWeight(entry.Weight, $"{at}.weight");
            int earlier = resolved.FindIndex(loss => loss.Kind == kind);
            if (earlier >= 0)
                throw new VimException($"{at}.type {ConfigBinder.KeyOf(kind)} is listed twice (also model.seg_head.losses[{earlier}]); each loss is " +
                    $"logged under its own name (decode.{resolved[earlier].Name}), so list it once with the sum of the weights");
            resolved.Add(new WeightedLoss(kind, entry.Weight));
        }
        return resolved;
    }

    private static string Types => string.Join(", ", Enum.GetValues<SegmentationLossKind>().Select(kind => ConfigBinder.KeyOf(kind)));

    private static void RequireWeight(double weight, string key)
    {
        if (!(double.IsFinite(weight) && weight >= 0))
            throw new VimException($"{key} must be a finite number ≥ 0 (the loss's multiplier), got {weight.ToString(CultureInfo.InvariantCulture)}");
    }
}
