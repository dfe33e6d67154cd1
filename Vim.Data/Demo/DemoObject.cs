namespace Vim.Data.Demo;

/// <summary>
/// One drawn object of a demo scene: its class, its outline (null for crowd regions), and the pixels
/// that stay visible once everything drawn later is on top (row-major 0/1).
/// </summary>
internal sealed class DemoObject(int classIndex, bool isCrowd, double[]? polygon, byte[] fullMask)
{
    public int ClassIndex { get; } = classIndex;
    public bool IsCrowd { get; } = isCrowd;
    public double[]? Polygon { get; } = polygon;
    public byte[] FullMask { get; } = fullMask;
    public byte[] VisibleMask { get; } = (byte[])fullMask.Clone();
    public int FullArea { get; } = fullMask.Count(p => p != 0);
    public bool Occluded => !VisibleMask.AsSpan().SequenceEqual(FullMask);
}
