using TorchSharp.Modules;

namespace Vim.Core.Distributed;

/// <summary>
/// Averages gradients over the ranks after backward, so every rank takes the same optimiser step:
/// the trainable parameters are packed into buckets of about <c>bucketBytes</c> (model order), and
/// each bucket is flattened, all-reduced, divided by the world size and copied back.
/// </summary>
public sealed class GradientReducer : IDisposable
{
    private readonly ICommunicator _communicator;
    private readonly List<GradientBucket> _buckets = [];

    public GradientReducer(ICommunicator communicator, IEnumerable<(string Name, Parameter Parameter)> parameters, long bucketBytes)
    {
        _communicator = communicator;
        var trainable = parameters.Where(p => p.Parameter.requires_grad).ToList();
        // Buckets live where the communicator reduces: beside GPU parameters under NCCL, in host memory under MPI.
        var device = trainable.Count > 0 && communicator.CanReduceOn(trainable[0].Parameter.device_type) ? trainable[0].Parameter.device : TorchSharp.torch.CPU;
        foreach (var group in PlanBuckets(trainable.Select(p => p.Parameter.NumberOfElements * 4).ToList(), bucketBytes))
            _buckets.Add(new GradientBucket(group.Select(i => trainable[i]).ToList(), device));
    }

    public IReadOnlyList<GradientBucket> Buckets => _buckets;

    /// <summary>
    /// Splits items (sizes in bytes) into consecutive groups: a group closes once adding the next item
    /// would exceed <paramref name="bucketBytes"/>; an item larger than that forms a group of its own.
    /// </summary>
    public static IReadOnlyList<IReadOnlyList<int>> PlanBuckets(IReadOnlyList<long> sizes, long bucketBytes)
    {
        if (bucketBytes <= 0) throw new VimException($"runtime.bucket_mb must be > 0 (got {bucketBytes} bytes)");
        var groups = new List<IReadOnlyList<int>>();
        var current = new List<int>();
        long currentBytes = 0;
        for (int i = 0; i < sizes.Count; i++)
        {
            if (current.Count > 0 && currentBytes + sizes[i] > bucketBytes)
            {
                groups.Add(current);
                current = [];
                currentBytes = 0;
            }
            current.Add(i);
            currentBytes += sizes[i];
        }
        if (current.Count > 0) groups.Add(current);
        return groups;
    }

    /// <summary>Replaces every trainable parameter's gradient by its mean over the ranks (no-op in a single process).</summary>
    public void AverageGradients()
    {
        if (_communicator.WorldSize == 1) return;
        foreach (var bucket in _buckets)
        {
            bucket.Flatten();
            _communicator.AllReduceAverage(bucket.Flat);
            bucket.Unflatten();
        }
    }

    public void Dispose()
    {
        foreach (var bucket in _buckets) bucket.Dispose();
    }
}
