namespace Vim.Data.Transforms;

/// <summary>Checks shared by the options of several pipeline steps; messages name the step as YAML spells it.</summary>
internal static class StepOptions
{
    /// <summary>A probability mmseg requires (no default): present and in [0, 1].</summary>
    public static double RequiredProbability(double? prob, string step, string meaning) => prob switch
    {
        null => throw new ArgumentException($"{step} needs prob (the probability of {meaning}, 0..1)."),
        < 0 or > 1 or double.NaN => throw new ArgumentException($"{step} prob {prob} must be in [0, 1]."),
        { } p => p,
    };
}
