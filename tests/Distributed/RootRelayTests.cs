using NUnit.Framework;
using Vim.Core.Distributed;
using static TorchSharp.torch;

namespace Vim.Tests.Distributed;

/// <summary>
/// <see cref="RootRelay{T}"/>: every rank's items reach rank 0's handler once, in item order, in gathers that every rank
/// issues at the same points and that hold at most K × batchPerRank items; in one process the handler runs inside Add.
/// </summary>
public class RootRelayTests
{
    /// <summary>
    /// 11 items over 3 ranks, 2 items per rank per gather: shares of 4, 4 and 3 items, ⌊11 / 3⌋ = 3 common to all, so each
    /// rank gathers after its 2nd item (items 0–5 reach rank 0) and once in Finish (items 6–10).
    /// </summary>
    [Test]
    public void EveryRanksItemsReachRankZeroInItemOrderInMatchingGathers()
    {
        const int items = 11, ranks = 3;
        var world = new ThreadRanks(ranks);
        var handled = Enumerable.Range(0, ranks).Select(_ => new List<(int Index, int[] Item)>()).ToArray();
        var threads = Enumerable.Range(0, ranks).Select(rank => new Thread(() =>
        {
            var relay = new RootRelay<int[]>(world.Rank(rank), items, Encode, Decode, (index, item) => handled[rank].Add((index, item)), batchPerRank: 2);
            for (int index = rank; index < items; index += ranks) relay.Add(index, [index * 10, -index]);
            relay.Finish();
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => Assert.That(t.Join(TimeSpan.FromSeconds(30)), Is.True, "a rank waits in a gather the others never issued"));

        Assert.That(world.Failure, Is.Null);
        Assert.That(handled[0].Select(h => h.Index), Is.EqualTo(Enumerable.Range(0, items)));
        Assert.That(handled[0].Select(h => h.Item), Is.EqualTo(Enumerable.Range(0, items).Select(i => new[] { i * 10, -i })), "decoded as encoded");
        Assert.That(handled[1].Concat(handled[2]), Is.Empty, "only rank 0 handles items");
        Assert.That(world.ItemsPerGather, Is.EqualTo(new[] { 6, 5 }));
    }

    [Test]
    public void InOneProcessTheHandlerRunsInsideAddWithoutEncoding()
    {
        var handled = new List<int>();
        var relay = new RootRelay<int[]>(SingleProcessCommunicator.Instance, 3, _ => throw new AssertionException("encoded"), _ => throw new AssertionException("decoded"),
            (index, _) => handled.Add(index));
        relay.Add(0, [1]);
        Assert.That(handled, Is.EqualTo(new[] { 0 }), "handled before the next item is predicted");
        relay.Add(1, [2]);
        relay.Add(2, [3]);
        relay.Finish();
        Assert.That(handled, Is.EqualTo(new[] { 0, 1, 2 }));
    }

    [Test]
    public void ItemsOutsideTheRanksShareAreRefusedBeforeAnyCollective()
    {
        var world = new ThreadRanks(2);
        var relay = new RootRelay<int[]>(world.Rank(1), 5, Encode, Decode, (_, _) => { });
        Assert.That(() => relay.Add(2, [0]), Throws.ArgumentException.With.Message.Contains("item 2 belongs to rank 0, not to rank 1 of 2"));
        relay.Add(1, [0]);
        Assert.That(() => relay.Finish(), Throws.InvalidOperationException.With.Message.Contains("handed over 1 items; its share is 2"),
            "stopping short would leave rank 0's last gather unmatched");
        Assert.That(world.ItemsPerGather, Is.Empty);
    }

    private static byte[] Encode(int[] item) => item.SelectMany(BitConverter.GetBytes).ToArray();

    private static int[] Decode(byte[] bytes) => Enumerable.Range(0, bytes.Length / 4).Select(i => BitConverter.ToInt32(bytes, 4 * i)).ToArray();

    /// <summary>K ranks as threads of this process, for <see cref="ICommunicator.Gather"/> alone: every gather is a meeting of all K.</summary>
    private sealed class ThreadRanks(int ranks)
    {
        private readonly Barrier _arrived = new(ranks);
        private readonly Barrier _collected = new(ranks);
        private readonly byte[][] _slots = new byte[ranks][];

        /// <summary>How many items each gather brought to rank 0 (read from the relay's framing: a count, then the items).</summary>
        public List<int> ItemsPerGather { get; } = [];

        public Exception? Failure { get; private set; }

        public ICommunicator Rank(int rank) => new View(this, rank);

        private IReadOnlyList<byte[]> Gather(int rank, byte[] data)
        {
            _slots[rank] = data;
            // Past a broken meeting the other threads would wait forever; the test's Join limit reports it.
            if (!_arrived.SignalAndWait(TimeSpan.FromSeconds(20))) Failure = new TimeoutException($"rank {rank}: gather not met");
            List<byte[]> all = rank == 0 ? [.. _slots.Select(s => s.ToArray())] : [];
            if (rank == 0) ItemsPerGather.Add(all.Sum(part => BitConverter.ToInt32(part, 0)));
            _collected.SignalAndWait(TimeSpan.FromSeconds(20));
            return all;
        }

        private sealed class View(ThreadRanks world, int rank) : ICommunicator
        {
            public int Rank => rank;
            public int WorldSize => world._slots.Length;
            public TimeSpan Timeout => TimeSpan.FromSeconds(20);
            public IReadOnlyList<byte[]> Gather(byte[] data, int root = 0) => root == 0 ? world.Gather(rank, data) : throw new ArgumentOutOfRangeException(nameof(root));
            public void AllReduceSum(Tensor tensor) => throw new InvalidOperationException("no other collective expected");
            public void Broadcast(Tensor tensor, int root = 0) => throw new InvalidOperationException("no other collective expected");
            public void Barrier() => throw new InvalidOperationException("no other collective expected");
            public IReadOnlyList<byte[]> AllGather(byte[] data) => throw new InvalidOperationException("no other collective expected");
            public void Dispose() { }
        }
    }
}
