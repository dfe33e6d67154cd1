using NUnit.Framework;
using TorchSharp;
using Vim.Core.Config;
using Vim.Core.Engine;
using static TorchSharp.torch;

namespace Vim.Tests.Engine;

/// <summary>
/// A checkpoint whose weights no fresh build of the model reproduces, for tests that a resume restores weights from
/// the checkpoint (and from nowhere else): the task's parameters are scrambled, then a trainer stopped before its
/// first iteration saves them.
/// </summary>
internal sealed class ScrambledCheckpoint : IDisposable
{
    private ScrambledCheckpoint(string path, Dictionary<string, Tensor> weights)
    {
        Path = path;
        Weights = weights;
    }

    /// <summary>The checkpoint file the trainer wrote.</summary>
    public string Path { get; }

    /// <summary>Copies of the model's state dict as saved.</summary>
    public IReadOnlyDictionary<string, Tensor> Weights { get; }

    public static ScrambledCheckpoint Save<TBatch>(ITrainingTask<TBatch> task, ExperimentConfig config, string workDir)
    {
        using (no_grad())
            foreach (var p in task.Model.parameters()) p.mul_(-1.5).add_(0.25);
        using var stopAtOnce = new CancellationTokenSource();
        stopAtOnce.Cancel();
        var stopped = new Trainer<TBatch>(task, config, workDir, "cfg", TextWriter.Null).Run(null, stopAtOnce.Token);
        Assert.That(stopped.Interrupted, Is.True);
        var weights = task.Model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        return new ScrambledCheckpoint(stopped.LastCheckpoint!, weights);
    }

    /// <summary>True when some saved weight is missing from <paramref name="model"/> or differs there (name, shape, dtype or value).</summary>
    public bool DiffersFrom(nn.Module model) => !MatchedBy(model, out _);

    /// <summary>Asserts that <paramref name="model"/> holds exactly the saved weights.</summary>
    public void AssertRestoredIn(nn.Module model)
    {
        var state = model.state_dict();
        Assert.That(state.Keys, Is.EquivalentTo(Weights.Keys));
        Assert.That(MatchedBy(model, out var first), Is.True, $"{first} restored exactly from the checkpoint");
    }

    private bool MatchedBy(nn.Module model, out string? firstMismatch)
    {
        var state = model.state_dict();
        foreach (var (name, value) in Weights)
        {
            using var scope = NewDisposeScope();
            if (!state.TryGetValue(name, out var actual) || !actual.shape.SequenceEqual(value.shape) ||
                actual.dtype != value.dtype || !actual.eq(value).all().item<bool>())
            {
                firstMismatch = name;
                return false;
            }
        }
        firstMismatch = null;
        return true;
    }

    public void Dispose()
    {
        foreach (var value in Weights.Values) value.Dispose();
    }
}
