using NUnit.Framework;
using TorchSharp;
using Vim.Core.Distributed;
using static TorchSharp.torch;

namespace Vim.Tests.Distributed;

public class SingleProcessCommunicatorTests
{
    private static readonly ICommunicator World = SingleProcessCommunicator.Instance;

    [Test]
    public void IsRankZeroOfOne()
    {
        Assert.That(World.Rank, Is.EqualTo(0));
        Assert.That(World.WorldSize, Is.EqualTo(1));
        Assert.That(World.IsRoot(), Is.True);
    }

    [Test]
    public void ReductionsAndBroadcastLeaveTheTensorAsItIs()
    {
        using var scope = NewDisposeScope();
        var values = tensor(new[] { 1.5f, -2f, 3.25f });
        World.AllReduceSum(values);
        Assert.That(values.data<float>().ToArray(), Is.EqualTo(new[] { 1.5f, -2f, 3.25f }));
        World.AllReduceAverage(values);
        Assert.That(values.data<float>().ToArray(), Is.EqualTo(new[] { 1.5f, -2f, 3.25f }));
        var counts = tensor(new long[] { (1L << 40) + 1, 3 });
        World.AllReduceSum(counts);
        Assert.That(counts.data<long>().ToArray(), Is.EqualTo(new long[] { (1L << 40) + 1, 3 }));
        var ints = tensor(new long[] { 4, 5 });
        World.Broadcast(ints);
        Assert.That(ints.data<long>().ToArray(), Is.EqualTo(new long[] { 4, 5 }));
        World.Barrier();
    }

    [Test]
    public void AllGatherReturnsACopyOfTheOwnPayload()
    {
        var payload = new byte[] { 1, 2, 3 };
        var gathered = World.AllGather(payload);
        payload[0] = 9;
        Assert.That(gathered, Has.Count.EqualTo(1));
        Assert.That(gathered[0], Is.EqualTo(new byte[] { 1, 2, 3 }));
        var records = World.AllGatherJson(new[] { 2.5, 4.0, double.NaN, double.NegativeInfinity });
        Assert.That(records.Single(), Is.EqualTo(new[] { 2.5, 4.0, double.NaN, double.NegativeInfinity }), "undefined metrics travel as they are");
    }

    [Test]
    public void GatherAndBroadcastToTheOnlyRankReturnItsOwnPayload()
    {
        var payload = new byte[] { 7, 8 };
        var gathered = World.Gather(payload);
        payload[1] = 0;
        Assert.That(gathered.Single(), Is.EqualTo(new byte[] { 7, 8 }));
        Assert.That(World.GatherJson(new[] { 1.0, double.PositiveInfinity }).Single(), Is.EqualTo(new[] { 1.0, double.PositiveInfinity }));
        Assert.That(World.BroadcastJson(new Dictionary<string, double> { ["bbox_mAP"] = -1 }), Is.EqualTo(new Dictionary<string, double> { ["bbox_mAP"] = -1 }));
        Assert.That(() => World.Gather(payload, root: 1), Throws.InstanceOf<ArgumentOutOfRangeException>());
    }

    [Test]
    public void RefusesWhatAnMpiWorldCouldNotMove()
    {
        using var scope = NewDisposeScope();
        Assert.That(() => World.AllReduceSum(tensor(new byte[] { 1, 2 })), Throws.ArgumentException.With.Message.Contains("float32, float64, int64 or int32").And.Message.Contains("Byte"));
        Assert.That(() => World.AllReduceAverage(tensor(new long[] { 1, 2 })), Throws.ArgumentException.With.Message.Contains("floating-point").And.Message.Contains("Int64"));
        Assert.That(() => World.AllReduceSum(ones(3, 4).t()), Throws.ArgumentException.With.Message.Contains("not contiguous"));
        Assert.That(() => World.Broadcast(ones(2), root: 1), Throws.InstanceOf<ArgumentOutOfRangeException>());
    }

    [Test]
    public void FromEnvironmentIsSingleProcessOutsideMpirun()
    {
        Assume.That(Communicators.LaunchedByMpirun, Is.False, "this test process was itself started by mpirun");
        Assert.That(Communicators.FromEnvironment(new Vim.Core.Config.RuntimeConfig()), Is.SameAs(SingleProcessCommunicator.Instance));
    }
}
