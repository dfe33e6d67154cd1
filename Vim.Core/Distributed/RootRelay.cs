namespace Vim.Core.Distributed;

/// <summary>
/// Brings the per-item results of a strided pass (rank r handles the items i with i mod K = r, as Vim.Data's
/// <c>StridedSubset</c> shares an evaluation) to rank 0, which alone writes files: every rank hands each item of its share
/// to <see cref="Add"/> in order, and rank 0's handler sees every item of the job, in item order. In one process the
/// handler runs inside <see cref="Add"/>, as a plain loop would call it.
/// <para>
/// Over K ranks the items travel as bytes (encoded where they were produced, decoded on rank 0) in gathers that every rank
/// issues at the same points, so that their collectives match: after each <c>batchPerRank</c>-th item of the first ⌊N / K⌋
/// (the share every rank has), then once in <see cref="Finish"/> for the rest. Rank 0 therefore holds at most
/// K × batchPerRank items at a time, not the whole split (ADE20k's 2,000 label maps would be gigabytes). Another collective
/// may come between the last <see cref="Add"/> and <see cref="Finish"/> (the evaluation's count all-reduce), as long as every
/// rank issues it there.
/// </para>
/// </summary>
public sealed class RootRelay<T>
{
    private readonly ICommunicator _communicator;
    private readonly Func<T, byte[]> _encode;
    private readonly Func<byte[], T> _decode;
    private readonly Action<int, T> _onRoot;
    private readonly int _batchPerRank;
    private readonly int _commonShare;
    private readonly int _share;
    private readonly List<(int Index, byte[] Bytes)> _pending = [];
    private int _added;
    private bool _finished;

    /// <param name="itemCount">The items of the whole job (N), shared over the ranks by index.</param>
    /// <param name="onRoot">Rank 0's handler: (the item's index among the N, the item).</param>
    /// <param name="batchPerRank">How many items each rank sends per gather.</param>
    public RootRelay(ICommunicator communicator, int itemCount, Func<T, byte[]> encode, Func<byte[], T> decode, Action<int, T> onRoot, int batchPerRank = 16)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(itemCount);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchPerRank, 1);
        _communicator = communicator;
        _encode = encode;
        _decode = decode;
        _onRoot = onRoot;
        _batchPerRank = batchPerRank;
        int rank = communicator.Rank, ranks = communicator.WorldSize;
        _commonShare = itemCount / ranks;
        _share = itemCount <= rank ? 0 : (itemCount - rank + ranks - 1) / ranks;
    }

    /// <summary>Hands over this rank's next item, <paramref name="index"/> among all N (i mod K = this rank).</summary>
    public void Add(int index, T item)
    {
        if (_finished) throw new InvalidOperationException($"{nameof(RootRelay<T>)}: item {index} added after {nameof(Finish)}");
        int ranks = _communicator.WorldSize;
        if (index % ranks != _communicator.Rank)
            throw new ArgumentException($"item {index} belongs to rank {index % ranks}, not to rank {_communicator.Rank} of {ranks}", nameof(index));
        if (++_added > _share)
            throw new InvalidOperationException($"{nameof(RootRelay<T>)}: rank {_communicator.Rank} of {ranks} was given {_added} items; its share is {_share}");
        if (ranks == 1)
        {
            _onRoot(index, item);
            return;
        }
        _pending.Add((index, _encode(item)));
        if (_added <= _commonShare && _added % _batchPerRank == 0) Flush();
    }

    /// <summary>After this rank's last item: sends what is left; on rank 0 every item has been handled when it returns.</summary>
    public void Finish()
    {
        if (_finished) throw new InvalidOperationException($"{nameof(RootRelay<T>)}: {nameof(Finish)} called twice");
        _finished = true;
        // A rank stopping short would leave the others' gathers unmatched: the job would hang until the collective timeout.
        if (_added != _share)
            throw new InvalidOperationException($"{nameof(RootRelay<T>)}: rank {_communicator.Rank} of {_communicator.WorldSize} handed over {_added} items; its share is {_share}");
        if (_communicator.WorldSize > 1) Flush();
    }

    private void Flush()
    {
        using var buffer = new MemoryStream();
        using (var writer = new BinaryWriter(buffer, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(_pending.Count);
            foreach (var (index, bytes) in _pending)
            {
                writer.Write(index);
                writer.Write(bytes.Length);
                writer.Write(bytes);
            }
        }
        _pending.Clear();
        var parts = _communicator.Gather(buffer.ToArray());
        var received = new List<(int Index, byte[] Bytes)>();
        foreach (var part in parts)
        {
            using var reader = new BinaryReader(new MemoryStream(part));
            int count = reader.ReadInt32();
            for (int i = 0; i < count; i++)
            {
                int index = reader.ReadInt32();
                received.Add((index, reader.ReadBytes(reader.ReadInt32())));
            }
        }
        // Each gather holds the items of the same positions in every share, so sorting it keeps the whole job in item order.
        foreach (var (index, bytes) in received.OrderBy(item => item.Index)) _onRoot(index, _decode(bytes));
    }
}
