using System.Text.Json;
using System.Text.Json.Serialization;
using TorchSharp;

namespace Vim.Core.Distributed;

public static class CommunicatorExtensions
{
    /// <summary>Rank-to-rank transport, not a file: NaN and ±∞ (an undefined metric) travel as they are.</summary>
    private static readonly JsonSerializerOptions Transport = new() { NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };

    /// <summary>Gathers one JSON-serialisable value from every rank, indexed by rank (metrics, evaluation results).</summary>
    public static IReadOnlyList<T> AllGatherJson<T>(this ICommunicator communicator, T value) =>
        Deserialize<T>(communicator.AllGather(JsonSerializer.SerializeToUtf8Bytes(value, Transport)), "all-gather");

    /// <summary>One JSON-serialisable value from every rank, indexed by rank, on <paramref name="root"/>; an empty list on the others.</summary>
    public static IReadOnlyList<T> GatherJson<T>(this ICommunicator communicator, T value, int root = 0) =>
        Deserialize<T>(communicator.Gather(JsonSerializer.SerializeToUtf8Bytes(value, Transport), root), "gather");

    /// <summary><paramref name="root"/>'s value on every rank (what the others pass is ignored): a result one rank computed for all.</summary>
    public static T BroadcastJson<T>(this ICommunicator communicator, T? value, int root = 0)
    {
        // Two broadcasts, the length and then the bytes: the other ranks send nothing, as they would in an all-gather.
        var payload = communicator.Rank == root ? JsonSerializer.SerializeToUtf8Bytes(value, Transport) : [];
        using var scope = torch.NewDisposeScope();
        var length = torch.tensor(new long[] { payload.Length });
        communicator.Broadcast(length, root);
        var bytes = communicator.Rank == root ? torch.tensor(payload) : torch.zeros(length.item<long>(), torch.ScalarType.Byte);
        communicator.Broadcast(bytes, root);
        return Deserialize<T>(bytes.data<byte>().ToArray(), root, "broadcast");
    }

    private static List<T> Deserialize<T>(IReadOnlyList<byte[]> parts, string collective) =>
        parts.Select((bytes, rank) => Deserialize<T>(bytes, rank, collective)).ToList();

    private static T Deserialize<T>(byte[] bytes, int rank, string collective) =>
        JsonSerializer.Deserialize<T>(bytes, Transport) ?? throw new VimException($"{collective}: rank {rank} sent null for a {typeof(T).Name}");

    /// <summary>
    /// Runs <paramref name="work"/>; in a job of several processes, an exception it throws ends the whole job at once with
    /// its message. Unwinding would dispose the communicator, and MPI_Finalize waits for every rank while the others wait
    /// in their next collective: the job would hang for runtime.collective_timeout_s, and this rank's error would never be
    /// printed (a full disk at a checkpoint, a damaged image in one rank's shard).
    /// </summary>
    public static T AbortJobOnError<T>(this ICommunicator communicator, Func<T> work)
    {
        if (communicator.WorldSize == 1) return work();
        try
        {
            return work();
        }
        catch (Exception e)
        {
            var cause = e is System.Reflection.TargetInvocationException { InnerException: { } inner } ? inner : e;
            communicator.AbortJob(cause is VimException or IOException or UnauthorizedAccessException
                ? $"error: {cause.Message}"
                : $"{cause.GetType().Name}: {cause.Message}{Environment.NewLine}{cause.StackTrace}");
            throw;
        }
    }

    /// <summary>True on the rank that owns files, logs and the console.</summary>
    public static bool IsRoot(this ICommunicator communicator) => communicator.Rank == 0;
}
