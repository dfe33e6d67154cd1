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

    /// <summary>True on the rank that owns files, logs and the console.</summary>
    public static bool IsRoot(this ICommunicator communicator) => communicator.Rank == 0;
}
