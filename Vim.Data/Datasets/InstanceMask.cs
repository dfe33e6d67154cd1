namespace Vim.Data.Datasets;

/// <summary>
/// One instance's binary mask (row-major, 0/1 bytes, index y·Width + x), and for a polygon annotation its outlines
/// in the same pixel coordinates, which every transform moves with the pixels (detectron2 keeps polygons through its
/// transforms and rasterises them inside each RoI for the mask targets). Masks read from a dataset are decoded on first
/// access only, so samples whose masks are never looked at (box-only training, or instances a crop removes) never pay
/// for rasterising polygons or expanding RLE.
/// </summary>
public sealed class InstanceMask
{
    private Func<byte[]>? _decode;
    private byte[]? _pixels;
    private object? _decodeLock;

    public InstanceMask(int height, int width, byte[] pixels, IReadOnlyList<double[]>? outlines = null)
    {
        if (pixels.Length != height * width)
            throw new ArgumentException($"mask has {pixels.Length} pixels, expected {height}x{width}.", nameof(pixels));
        Height = height;
        Width = width;
        _pixels = pixels;
        Outlines = outlines;
    }

    public InstanceMask(int height, int width, Func<byte[]> decode, IReadOnlyList<double[]>? outlines = null)
    {
        Height = height;
        Width = width;
        _decode = decode;
        Outlines = outlines;
    }

    public int Height { get; }
    public int Width { get; }

    /// <summary>
    /// The polygon outlines (x0, y0, x1, y1, … in pixels, each of at least 3 points) the mask was drawn from, moved with
    /// it; null for an RLE annotation. Empty once a crop has cut every outline away.
    /// </summary>
    public IReadOnlyList<double[]>? Outlines { get; }

    /// <summary>True once the pixels exist (given, or decoded by an earlier access).</summary>
    public bool IsDecoded => _pixels is not null;

    /// <remarks>Decoded once even when several threads ask at once: copies of a sample (<see cref="DataSample.Copy"/>, the
    /// test views of one image) share its masks and are transformed on different loader threads.</remarks>
    public byte[] Pixels => Volatile.Read(ref _pixels) ?? LazyInitializer.EnsureInitialized(ref _pixels, ref _decodeLock, Decode);

    private byte[] Decode()
    {
        var decoded = _decode!();
        if (decoded.Length != Height * Width)
            throw new InvalidOperationException($"decoded mask has {decoded.Length} pixels, expected {Height}x{Width}.");
        _decode = null;
        return decoded;
    }

    /// <summary>Number of foreground pixels.</summary>
    public int Area()
    {
        int n = 0;
        foreach (var p in Pixels) if (p != 0) n++;
        return n;
    }
}
