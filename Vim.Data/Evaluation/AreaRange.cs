namespace Vim.Data.Evaluation;

/// <summary>An object-area range with both ends inclusive, as pycocotools compares them.</summary>
public sealed record AreaRange(string Label, double Min, double Max)
{
    public bool Contains(double area) => !(area < Min || area > Max);
}
