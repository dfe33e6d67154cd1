using System.Text.Json;
using System.Text.Json.Serialization;

namespace Vim.Core.Distributed;

public static class CommunicatorExtensions
{
    /// <summary>Rank-to-rank transport, not a file: NaN and ±∞ (an undefined metric) travel as they are.</summary>
    private static readonly JsonSerializerOptions Transport = new() { NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals };

    /// <summary>Gathers one JSON-serialisable value from every rank, indexed by rank (metrics, evaluation results).</summary>
    public static IReadOnlyList<T> AllGatherJson<T>(this ICommunicator communicator, T value)
    {
        var parts = communicator.AllGather(JsonSerializer.SerializeToUtf8Bytes(value, Transport));
        return parts.Select((bytes, rank) => JsonSerializer.Deserialize<T>(bytes, Transport)
            ?? throw new VimException($"all-gather: rank {rank} sent null for a {typeof(T).Name}")).ToList();
    }

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
