using NUnit.Framework;
using TorchSharp;
using Vim.Core.Engine;
using static TorchSharp.torch;

namespace Vim.Tests.Engine;

/// <summary>Training checkpoints of runs with runtime.diff_rank_seed: every rank's torch generator state, each restored to its rank.</summary>
public class RankGeneratorCheckpointTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("vimdense-rankrng-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private static AdamWOptimizer Optimizer(nn.Module model) =>
        new([new ParameterGroup("all", model.named_parameters().ToList(), 0.0, 1.0)]);

    /// <summary>The first draws of a generator seeded <paramref name="seed"/>.</summary>
    private static float[] DrawsOfSeed(long seed)
    {
        torch.manual_seed(seed);
        return rand(6).data<float>().ToArray();
    }

    private static TrainingState LoadAs(string path, int rank)
    {
        var model = nn.Linear(3, 2);
        return TrainingCheckpoint.Load(path, model, Optimizer(model), null, rank);
    }

    [Test]
    public void EachRankRestoresItsOwnStateAndRanksBeyondTheCheckpointTakeRankZeros()
    {
        using var scope = NewDisposeScope();
        var states = new List<Tensor>();
        foreach (long seed in new long[] { 40, 41, 42 })
        {
            torch.manual_seed(seed);
            states.Add(torch.random.get_rng_state());
        }
        var path = Path.Combine(_dir, "ranks.safetensors");
        var model = nn.Linear(3, 2);
        torch.manual_seed(7);
        TrainingCheckpoint.Save(path, model, Optimizer(model), null, new TrainingState(5, 5, DataPosition.Start, null, "cfg", GeneratorRanks: 3), states);

        for (int rank = 0; rank < 3; rank++)
        {
            torch.manual_seed(99);
            Assert.That(LoadAs(path, rank).GeneratorRanks, Is.EqualTo(3));
            Assert.That(rand(6).data<float>().ToArray(), Is.EqualTo(DrawsOfSeed(40 + rank)), $"rank {rank} continues its own stream");
        }
        LoadAs(path, rank: 5);
        Assert.That(rand(6).data<float>().ToArray(), Is.EqualTo(DrawsOfSeed(40)), "a rank the checkpoint has no state for gets rank 0's");

        var shared = Path.Combine(_dir, "shared.safetensors");
        torch.manual_seed(43);
        TrainingCheckpoint.Save(shared, model, Optimizer(model), null, new TrainingState(5, 5, DataPosition.Start, null, "cfg"));
        torch.manual_seed(99);
        Assert.That(LoadAs(shared, rank: 1).GeneratorRanks, Is.EqualTo(1));
        Assert.That(rand(6).data<float>().ToArray(), Is.EqualTo(DrawsOfSeed(43)), "shared seeds: the caller's state, for every rank");
    }

    [Test]
    public void StatesMustMatchTheAnnouncedRankCount()
    {
        using var scope = NewDisposeScope();
        var model = nn.Linear(3, 2);
        var state = torch.random.get_rng_state();
        Assert.That(() => TrainingCheckpoint.Save(Path.Combine(_dir, "x.safetensors"), model, Optimizer(model), null,
            new TrainingState(1, 1, DataPosition.Start, null, "cfg", GeneratorRanks: 2), [state]), Throws.ArgumentException.With.Message.Contains("2 generator ranks announced, 1 states given"));
        Assert.That(File.Exists(Path.Combine(_dir, "x.safetensors")), Is.False);
    }
}
