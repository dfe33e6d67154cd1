using NUnit.Framework;
using Vim.Core;
using Vim.Data.Prediction;

namespace Vim.Tests.Data;

/// <summary>
/// <see cref="SameShapeBatches{TItem, TShape}"/>: batches of one shape, full ones at once, the oldest image's bucket
/// first when too many wait or at the end; and <see cref="BatchShape"/>'s value equality. Expected batches worked out by hand.
/// </summary>
public class SameShapeBatchesTests
{
    private static List<List<int>> Feed(int batchSize, string shapes)
    {
        var batches = new SameShapeBatches<int, char>(batchSize);
        var emitted = new List<List<int>>();
        for (int i = 0; i < shapes.Length; i++) emitted.AddRange(batches.Add(i, shapes[i]).Select(b => b.ToList()));
        emitted.AddRange(batches.Flush().Select(b => b.ToList()));
        return emitted;
    }

    [Test]
    public void FullBatchesGoAtOnceAndTheRestByTheirOldestImage()
    {
        // A B A C A B, batches of 2: A fills at image 2, B at image 5; C and the last A remain, C's the older.
        Assert.That(Feed(2, "ABACAB"), Is.EqualTo(new[] { new[] { 0, 2 }, new[] { 1, 5 }, new[] { 3 }, new[] { 4 } }));
        // Batches of 3 over the same: nothing fills; at the end A (from image 0), B (1), C (3).
        Assert.That(Feed(3, "ABACAB"), Is.EqualTo(new[] { new[] { 0, 2, 4 }, new[] { 1, 5 }, new[] { 3 } }));
        // Batch size 1: every image alone, in order.
        Assert.That(Feed(1, "ABA"), Is.EqualTo(new[] { new[] { 0 }, new[] { 1 }, new[] { 2 } }));
        Assert.That(Feed(4, ""), Is.Empty);
    }

    [Test]
    public void AtMostFourBatchesWorthWaitAndTheOldestBucketGoesFirst()
    {
        // Batches of 2 let 8 images wait; the 9th distinct shape starts image 0's bucket, the 10th image 1's.
        var emitted = Feed(2, "ABCDEFGHIJ");
        Assert.That(emitted.Take(2), Is.EqualTo(new[] { new[] { 0 }, new[] { 1 } }));
        Assert.That(emitted.Skip(2).Select(b => b.Single()), Is.EqualTo(Enumerable.Range(2, 8)), "the rest at the end, oldest first");
        // A bucket started early keeps its place: A A waits with B..H (8 waiting), I makes 9: A's bucket, the oldest, goes.
        Assert.That(Feed(3, "AABCDEFGHIJKLM").First(), Is.EqualTo(new[] { 0, 1 }));
        Assert.That(new SameShapeBatches<int, char>(5).PendingLimit, Is.EqualTo(20));
    }

    [Test]
    public void BatchSizesBelowOneAreRefusedNamingTheOption()
    {
        Assert.That(Assert.Throws<VimException>(() => _ = new SameShapeBatches<int, char>(0))!.Message,
            Is.EqualTo("batchSize must be at least 1 (images predicted per batch), got 0"));
        Assert.That(Assert.Throws<VimException>(() => SameShapeBatches<int, char>.RequireBatchSize(-1, "--batch-size"))!.Message,
            Does.StartWith("--batch-size must be at least 1"));
    }

    [Test]
    public void ShapesAreEqualByTheirViewsInOrder()
    {
        var shape = new BatchShape([(64, 38), (48, 28)]);
        Assert.That(shape, Is.EqualTo(new BatchShape([(64, 38), (48, 28)])));
        Assert.That(shape.GetHashCode(), Is.EqualTo(new BatchShape([(64, 38), (48, 28)]).GetHashCode()));
        Assert.That(shape, Is.Not.EqualTo(new BatchShape([(48, 28), (64, 38)])));
        Assert.That(shape, Is.Not.EqualTo(new BatchShape([(64, 38)])));
        Assert.That(shape.ToString(), Is.EqualTo("38x64, 28x48"));
    }
}
