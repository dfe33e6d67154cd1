using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Vim.Data.Coco;
using Vim.Data.Masks;

namespace Vim.Data.Evaluation;

/// <summary>
/// The RLE masks of COCO segmentations (ground-truth polygons rasterised, results' RLE strings decoded), with each mask's
/// own box, converted once and then shared by every <see cref="CocoEvaluator"/> handed this cache. The error analysis
/// evaluates the same annotations and detections up to 1 + 2·K times (C75/C50/Loc, then Sim and Oth per category), and
/// without it each evaluation converted every mask it read again.
/// </summary>
/// <remarks>
/// An entry is keyed by the segmentation object itself and the image size it is read at (a polygon's mask depends on it),
/// so an annotation copied with <c>with</c> (a relabelled crowd region) finds the mask of its original. A segmentation's
/// mask never changes (the type is immutable), so a hit is what a conversion would return, to the bit. Safe for the
/// evaluators' parallel loops; two threads asking for one segmentation at the same moment may both convert it.
/// </remarks>
public sealed class CocoMaskCache
{
    /// <summary>A converted mask and its tight box [x, y, w, h] (<see cref="Rle.ToBbox"/>), which mask IoU pre-checks overlap with.</summary>
    internal sealed record Entry(Rle Mask, double[] Box);

    private readonly ConcurrentDictionary<Key, Entry> _entries = new(new KeyComparer());
    private int _conversions;
    private long _hits;

    /// <summary>How many masks were converted (rasterised or decoded).</summary>
    public int Conversions => Volatile.Read(ref _conversions);

    /// <summary>How many requests were answered from the cache, without a conversion.</summary>
    public long Hits => Interlocked.Read(ref _hits);

    /// <summary>The mask of <paramref name="segmentation"/> in an image of the given size, converted by <paramref name="convert"/> on first use.</summary>
    internal Entry Get(CocoSegmentation segmentation, int imageHeight, int imageWidth, Func<Rle> convert)
    {
        var key = new Key(segmentation, imageHeight, imageWidth);
        if (_entries.TryGetValue(key, out var cached))
        {
            Interlocked.Increment(ref _hits);
            return cached;
        }
        return _entries.GetOrAdd(key, _ =>
        {
            var mask = convert();
            Interlocked.Increment(ref _conversions);
            return new Entry(mask, mask.ToBbox());
        });
    }

    private readonly record struct Key(CocoSegmentation Segmentation, int Height, int Width);

    /// <summary>By the segmentation's identity: two equal outlines of different annotations stay two entries, as two conversions would.</summary>
    private sealed class KeyComparer : IEqualityComparer<Key>
    {
        public bool Equals(Key a, Key b) => ReferenceEquals(a.Segmentation, b.Segmentation) && a.Height == b.Height && a.Width == b.Width;

        public int GetHashCode(Key key) => HashCode.Combine(RuntimeHelpers.GetHashCode(key.Segmentation), key.Height, key.Width);
    }
}
