using Vim.Core;

namespace Vim.Data.Prediction;

/// <summary>
/// Gathers a stream of images into batches of images that share one shape (<typeparamref name="TShape"/>, compared by
/// value), at most <see cref="BatchSize"/> each. An image waits in its shape's bucket; a bucket that fills is a batch
/// at once. At most <see cref="PendingLimit"/> images wait: one more starts the bucket holding the oldest waiting image,
/// however full, so memory stays bounded when few images share a shape. <see cref="Flush"/> empties the rest, oldest
/// first. The caller puts each batch's results back at the images' own positions.
/// <para>
/// Why shapes are never mixed: Vim is a sequence model (a scan over every token of the image), so padding images of
/// different sizes to one batch shape would add tokens to the shorter ones and change every token's result, not only
/// those of the padding; a batch of one shape gives each image what it gets alone.
/// </para>
/// </summary>
public sealed class SameShapeBatches<TItem, TShape> where TShape : notnull
{
    private readonly List<(TShape Shape, List<TItem> Items)> _buckets = [];
    private readonly IEqualityComparer<TShape> _comparer;
    private int _pending;

    public SameShapeBatches(int batchSize, IEqualityComparer<TShape>? comparer = null)
    {
        RequireBatchSize(batchSize, "batchSize");
        BatchSize = batchSize;
        _comparer = comparer ?? EqualityComparer<TShape>.Default;
    }

    public int BatchSize { get; }

    /// <summary>How many images may wait for their batch to fill: four batches' worth, room for four shapes in turn.</summary>
    public int PendingLimit => PendingLimitFor(BatchSize);

    /// <summary><see cref="PendingLimit"/> for a batch size (callers that read inputs in windows use it as the window).</summary>
    public static int PendingLimitFor(int batchSize) => 4 * batchSize;

    /// <summary>Refuses a batch size below 1, naming <paramref name="option"/> (the API's parameter or the command's option).</summary>
    public static void RequireBatchSize(int batchSize, string option)
    {
        if (batchSize < 1) throw new VimException($"{option} must be at least 1 (images predicted per batch), got {batchSize}");
    }

    /// <summary>Adds one image of <paramref name="shape"/>; returns the batches that are ready now (none, one or two), in order.</summary>
    public IReadOnlyList<IReadOnlyList<TItem>> Add(TItem item, TShape shape)
    {
        var ready = new List<IReadOnlyList<TItem>>();
        int at = _buckets.FindIndex(b => _comparer.Equals(b.Shape, shape));
        if (at < 0)
        {
            _buckets.Add((shape, []));
            at = _buckets.Count - 1;
        }
        _buckets[at].Items.Add(item);
        _pending++;
        if (_buckets[at].Items.Count == BatchSize) ready.Add(Take(at));
        // Buckets are kept in the order of their oldest image (a new bucket's image is the newest), so the first is the oldest.
        if (_pending > PendingLimit) ready.Add(Take(0));
        return ready;
    }

    /// <summary>Every waiting image, as batches of one shape each, the bucket of the oldest image first.</summary>
    public IReadOnlyList<IReadOnlyList<TItem>> Flush()
    {
        var ready = new List<IReadOnlyList<TItem>>();
        while (_buckets.Count > 0) ready.Add(Take(0));
        return ready;
    }

    private List<TItem> Take(int at)
    {
        var items = _buckets[at].Items;
        _buckets.RemoveAt(at);
        _pending -= items.Count;
        return items;
    }
}
