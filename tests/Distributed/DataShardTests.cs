using NUnit.Framework;
using Vim.Core;
using Vim.Core.Distributed;
using Vim.Core.Engine;
using Vim.Tests.Engine;
using static TorchSharp.torch;

namespace Vim.Tests.Distributed;

public class DataShardTests
{
    [Test]
    public void RanksTakeConsecutiveBlocksOfTheGlobalBatch()
    {
        Assert.That(new DataShard(0, 3).FirstSample(24, 4), Is.EqualTo(24));
        Assert.That(new DataShard(2, 3).FirstSample(24, 4), Is.EqualTo(32));
        Assert.That(new DataShard(2, 3).GlobalBatch(4), Is.EqualTo(12));
        Assert.That(() => new DataShard(2, 2), Throws.InstanceOf<VimException>().With.Message.Contains("rank 2"));
    }

    [Test]
    public void TwoShardsOfBatchTwoReadExactlyTheSamplesOfOneProcessWithBatchFour()
    {
        // Over two epochs, and starting mid-epoch as after a resume on another world size.
        using var task = new ToyRegressionTask(dropout: 0, batchSize: 2);
        using var whole = new ToyRegressionTask(dropout: 0, batchSize: 4);
        var start = new DataPosition(0, 8);
        using var single = whole.OpenTrainingData(5, start, DataShard.Whole);
        using var rank0 = task.OpenTrainingData(5, start, new DataShard(0, 2));
        using var rank1 = task.OpenTrainingData(5, start, new DataShard(1, 2));
        for (int step = 0; step < 12; step++)
        {
            using var scope = NewDisposeScope();
            var expected = single.Next();
            var a = rank0.Next();
            var b = rank1.Next();
            Assert.That(cat([a.X, b.X]).data<float>().ToArray(), Is.EqualTo(expected.X.data<float>().ToArray()), $"step {step}");
            Assert.That(cat([a.Y, b.Y]).data<float>().ToArray(), Is.EqualTo(expected.Y.data<float>().ToArray()), $"step {step}");
            Assert.That(rank0.Position, Is.EqualTo(single.Position), "positions are global");
            Assert.That(rank1.Position, Is.EqualTo(single.Position));
        }
    }
}
