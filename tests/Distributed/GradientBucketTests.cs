using NUnit.Framework;
using TorchSharp;
using TorchSharp.Modules;
using Vim.Core;
using Vim.Core.Distributed;
using static TorchSharp.torch;

namespace Vim.Tests.Distributed;

public class GradientBucketTests
{
    private static (string, Parameter)[] Parameters(params long[][] shapes) =>
        shapes.Select((s, i) => ($"p{i}", new Parameter(randn(s)))).ToArray();

    [Test]
    public void FlattenLaysGradientsEndToEndAndUnflattenRestoresThem()
    {
        using var scope = NewDisposeScope();
        var parameters = Parameters([2, 3], [4], [1, 2, 2]);
        var grads = new[] { arange(6f).reshape(2, 3), tensor(new[] { -1f, -2f, -3f, -4f }), full(new long[] { 1, 2, 2 }, 0.5f) };
        for (int i = 0; i < 3; i++) parameters[i].Item2.grad = grads[i].clone();
        using var bucket = new GradientBucket(parameters);
        Assert.That(bucket.Bytes, Is.EqualTo((14 + 3) * 4), "the gradients and one used-flag per parameter");

        bucket.Flatten();
        Assert.That(bucket.Flat.data<float>().ToArray(), Is.EqualTo(new float[] { 0, 1, 2, 3, 4, 5, -1, -2, -3, -4, 0.5f, 0.5f, 0.5f, 0.5f, 1, 1, 1 }));

        foreach (var (_, p) in parameters) p.grad!.zero_();
        bucket.Flat.mul_(2);
        bucket.Unflatten();
        for (int i = 0; i < 3; i++)
        {
            Assert.That(parameters[i].Item2.grad!.shape, Is.EqualTo(grads[i].shape));
            Assert.That(parameters[i].Item2.grad!.data<float>().ToArray(), Is.EqualTo((grads[i] * 2).data<float>().ToArray()));
        }
    }

    [Test]
    public void AParameterWithoutGradientSendsZerosAndReceivesTheAverage()
    {
        using var scope = NewDisposeScope();
        var parameters = Parameters([2], [3]);
        parameters[0].Item2.grad = tensor(new[] { 7f, 8f });
        using var bucket = new GradientBucket(parameters);
        bucket.Flatten();
        Assert.That(bucket.Flat.data<float>().ToArray(), Is.EqualTo(new float[] { 7, 8, 0, 0, 0, 1, 0 }));
        // Another rank used the parameter: the reduced (averaged over 2 ranks) buffer holds its contribution and flag.
        bucket.Flat.copy_(tensor(new[] { 1f, 2f, 3f, 4f, 5f, 1f, 0.5f }));
        bucket.Unflatten();
        Assert.That(parameters[1].Item2.grad!.data<float>().ToArray(), Is.EqualTo(new float[] { 3, 4, 5 }));
    }

    [Test]
    public void AParameterNoRankUsedKeepsNoGradient()
    {
        // torch DDP leaves a globally unused parameter's gradient untouched: with a gradient of zeros, AdamW's weight
        // decay would shrink it on K ranks but not in one process.
        using var scope = NewDisposeScope();
        var parameters = Parameters([2], [3]);
        parameters[0].Item2.grad = tensor(new[] { 7f, 8f });
        using var bucket = new GradientBucket(parameters);
        bucket.Flatten();
        bucket.Flat.copy_(tensor(new[] { 5f, 6f, 0f, 0f, 0f, 1f, 0f }));
        bucket.Unflatten();
        Assert.That(parameters[0].Item2.grad!.data<float>().ToArray(), Is.EqualTo(new float[] { 5, 6 }));
        Assert.That(parameters[1].Item2.grad, Is.Null);
    }

    [Test]
    public void BucketsCloseBeforeTheLimitAndOversizedItemsStandAlone()
    {
        Assert.That(GradientReducer.PlanBuckets([400, 400, 400], 1000), Is.EqualTo(new[] { new[] { 0, 1 }, new[] { 2 } }));
        Assert.That(GradientReducer.PlanBuckets([100, 5000, 100, 100], 1000), Is.EqualTo(new[] { new[] { 0 }, new[] { 1 }, new[] { 2, 3 } }));
        Assert.That(GradientReducer.PlanBuckets([500, 500], 1000), Is.EqualTo(new[] { new[] { 0, 1 } }), "exactly the limit fits");
        Assert.That(GradientReducer.PlanBuckets([], 1000), Is.Empty);
        Assert.That(() => GradientReducer.PlanBuckets([1], 0), Throws.InstanceOf<VimException>().With.Message.Contains("bucket_mb"));
    }

    [Test]
    public void ReducerSkipsFrozenParametersAndIsANoOpInOneProcess()
    {
        using var scope = NewDisposeScope();
        var parameters = Parameters([10], [10], [10]);
        parameters[1].Item2.requires_grad = false;
        foreach (var (_, p) in parameters.Where(p => p.Item2.requires_grad)) p.grad = ones(10);
        using var reducer = new GradientReducer(SingleProcessCommunicator.Instance, parameters, bucketBytes: 40);
        Assert.That(reducer.Buckets.Select(b => b.Names), Is.EqualTo(new[] { new[] { "p0" }, new[] { "p2" } }));
        reducer.AverageGradients();
        Assert.That(parameters[0].Item2.grad!.sum().item<float>(), Is.EqualTo(10f));
    }

    [Test]
    public void NonFloatParametersAreRefusedByName()
    {
        using var scope = NewDisposeScope();
        var half = new Parameter(ones(new long[] { 2 }, dtype: ScalarType.Float64));
        Assert.That(() => new GradientBucket([("head.weight", half)]), Throws.InstanceOf<VimException>().With.Message.Contains("head.weight").And.Message.Contains("Float64"));
    }
}
