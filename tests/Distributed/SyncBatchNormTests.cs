using NUnit.Framework;
using TorchSharp;
using Vim.Core.Config;
using Vim.Core.Distributed;
using Vim.Segmentation.Heads;
using static TorchSharp.torch;

namespace Vim.Tests.Distributed;

/// <summary>SyncBN in one process: BatchNorm exactly, and the global-statistics path against F.batch_norm.</summary>
public class SyncBatchNormTests
{
    [Test]
    public void InOneProcessItIsBatchNormInTrainingAndEval()
    {
        using var scope = NewDisposeScope();
        manual_seed(5);
        using var sync = new SyncBatchNorm(3);
        using var plain = nn.BatchNorm2d(3);
        Assert.That(sync.state_dict().Select(kv => (kv.Key, kv.Value.dtype, string.Join("x", kv.Value.shape))),
            Is.EqualTo(plain.state_dict().Select(kv => (kv.Key, kv.Value.dtype, string.Join("x", kv.Value.shape)))),
            "weight, bias, running_mean, running_var, num_batches_tracked: checkpoints interchange");
        using (no_grad())
        {
            var weight = tensor(new[] { 0.5f, 1.5f, -1f });
            var bias = tensor(new[] { 0.1f, -0.2f, 0.3f });
            sync.weight.copy_(weight);
            plain.weight.copy_(weight);
            sync.bias!.copy_(bias);
            plain.bias!.copy_(bias);
        }
        for (int step = 0; step < 3; step++)
        {
            var x = (randn(4, 3, 5, 6) * 2 + 1).requires_grad_();
            var xPlain = x.detach().clone().requires_grad_();
            var upstream = randn(4, 3, 5, 6);
            var y = sync.forward(x);
            var yPlain = plain.forward(xPlain);
            Assert.That(y.data<float>().ToArray(), Is.EqualTo(yPlain.data<float>().ToArray()), $"output, step {step}");
            (y * upstream).sum().backward();
            (yPlain * upstream).sum().backward();
            Assert.That(x.grad!.data<float>().ToArray(), Is.EqualTo(xPlain.grad!.data<float>().ToArray()), $"input gradient, step {step}");
        }
        Assert.That(sync.weight.grad!.data<float>().ToArray(), Is.EqualTo(plain.weight.grad!.data<float>().ToArray()));
        Assert.That(sync.bias!.grad!.data<float>().ToArray(), Is.EqualTo(plain.bias!.grad!.data<float>().ToArray()));
        foreach (var key in new[] { "running_mean", "running_var" })
            Assert.That(sync.state_dict()[key].data<float>().ToArray(), Is.EqualTo(plain.state_dict()[key].data<float>().ToArray()), key);
        Assert.That(sync.state_dict()["num_batches_tracked"].item<long>(), Is.EqualTo(3));
        Assert.That(plain.state_dict()["num_batches_tracked"].item<long>(), Is.EqualTo(3));

        sync.eval();
        plain.eval();
        var probe = randn(2, 3, 4, 4);
        Assert.That(sync.forward(probe).data<float>().ToArray(), Is.EqualTo(plain.forward(probe).data<float>().ToArray()), "eval uses the running statistics");
    }

    [Test]
    public void GlobalStatisticsPathMatchesBatchNormAndItsGradients()
    {
        // With one rank the collective path's sums are this process's: the forward and the hand-written
        // SyncBN backward must agree with libtorch's batch norm (float64, so to round-off).
        using var scope = NewDisposeScope();
        manual_seed(9);
        var x = (randn(new long[] { 3, 4, 5, 2 }, ScalarType.Float64) * 3 + 2).requires_grad_();
        var weight = (randn(new long[] { 4 }, ScalarType.Float64) + 1).requires_grad_();
        var bias = randn(new long[] { 4 }, ScalarType.Float64).requires_grad_();
        var upstream = randn(new long[] { 3, 4, 5, 2 }, ScalarType.Float64);
        var (output, mean, variance, count) = SyncBatchNorm.NormalizeWithGlobalStatistics(x, weight, bias, 1e-5, SingleProcessCommunicator.Instance);
        (output * upstream).sum().backward();
        var grads = new[] { x.grad!.clone(), weight.grad!.clone(), bias.grad!.clone() };

        var x2 = x.detach().clone().requires_grad_();
        var w2 = weight.detach().clone().requires_grad_();
        var b2 = bias.detach().clone().requires_grad_();
        var expected = nn.functional.batch_norm(x2, null, null, w2, b2, training: true, momentum: 0.1, eps: 1e-5);
        (expected * upstream).sum().backward();

        Assert.That(count, Is.EqualTo(3 * 5 * 2));
        Assert.That(mean.allclose(x.detach().mean([0, 2, 3]), rtol: 0, atol: 1e-12), Is.True, "global mean");
        Assert.That(variance.allclose(x.detach().var([0, 2, 3], unbiased: false), rtol: 0, atol: 1e-12), Is.True, "global biased variance");
        Assert.That(output.allclose(expected, rtol: 0, atol: 1e-10), Is.True, "output");
        Assert.That(grads[0].allclose(x2.grad!, rtol: 0, atol: 1e-10), Is.True, "input gradient");
        Assert.That(grads[1].allclose(w2.grad!, rtol: 0, atol: 1e-10), Is.True, "weight gradient");
        Assert.That(grads[2].allclose(b2.grad!, rtol: 0, atol: 1e-10), Is.True, "bias gradient");
    }

    [Test]
    public void TooFewValuesPerChannelIsRefused()
    {
        using var scope = NewDisposeScope();
        var e = Assert.Throws<Vim.Core.VimException>(() =>
            SyncBatchNorm.NormalizeWithGlobalStatistics(ones(1, 2, 1, 1), ones(2), zeros(2), 1e-5, SingleProcessCommunicator.Instance))!;
        Assert.That(e.Message, Does.Contain("expected more than 1 value per channel").And.Contain("[1, 2, 1, 1]"));
    }

    [Test]
    public void SyncBnHeadsHaveTheBatchNormHeadsStateDict()
    {
        using var plain = new UperHead([8, 8, 8, 8], channels: 4, numClasses: 3);
        using var sync = new UperHead([8, 8, 8, 8], channels: 4, numClasses: 3, norm: NormKind.SyncBatchNorm);
        using var aux = new FcnHead(8, 4, 3, norm: NormKind.SyncBatchNorm);
        Assert.That(sync.state_dict().Select(kv => (kv.Key, string.Join("x", kv.Value.shape))),
            Is.EqualTo(plain.state_dict().Select(kv => (kv.Key, string.Join("x", kv.Value.shape)))));
        Assert.That(sync.modules().OfType<SyncBatchNorm>().Count(), Is.EqualTo(4 + 1 + 3 + 3 + 1), "PPM 4, bottleneck, laterals 3, FPN convs 3, fusion");
        Assert.That(plain.modules().OfType<SyncBatchNorm>(), Is.Empty);
        Assert.That(SyncBatchNorm.Connect(aux, SingleProcessCommunicator.Instance), Is.EqualTo(1));
    }

    [Test]
    public void TheOfficialConfigsAskForSyncBnAndTheDefaultIsBn()
    {
        var (official, _) = ExperimentConfig.Load(Path.Combine(RepositoryPaths.Root, "configs", "seg", "upernet_vim_tiny_512_60k_ade20k.yaml"), []);
        Assert.That(official.Model.SegHead.Norm, Is.EqualTo(NormKind.SyncBatchNorm));
        var (demo, _) = ExperimentConfig.Load(Path.Combine(RepositoryPaths.Root, "configs", "seg", "upernet_vim_tiny_demo_ade.yaml"), ["model.seg_head.norm=bn"]);
        Assert.That(demo.Model.SegHead.Norm, Is.EqualTo(NormKind.BatchNorm));
        var e = Assert.Throws<Vim.Core.VimException>(() => ExperimentConfig.Load(
            Path.Combine(RepositoryPaths.Root, "configs", "seg", "upernet_vim_tiny_demo_ade.yaml"), ["model.seg_head.norm=gn"]))!;
        Assert.That(e.Message, Does.Contain("norm").And.Contain("syncbn"));
    }

    [Test]
    public void TheConfigsNormAlsoSetsTheSegmentationNeck()
    {
        var path = Path.Combine(RepositoryPaths.Root, "configs", "seg", "upernet_vim_tiny_demo_ade.yaml");
        var (bnConfig, _) = ExperimentConfig.Load(path, ["model.seg_head.norm=bn"]);
        var (syncConfig, _) = ExperimentConfig.Load(path, ["model.seg_head.norm=syncbn"]);
        using var plain = Vim.Segmentation.EncoderDecoder.FromConfig(bnConfig, seed: 0);
        using var sync = Vim.Segmentation.EncoderDecoder.FromConfig(syncConfig, seed: 0);
        Assert.That(plain.Backbone.NeckNorm, Is.EqualTo(NormKind.BatchNorm));
        Assert.That(sync.Backbone.NeckNorm, Is.EqualTo(NormKind.SyncBatchNorm));
        Assert.That(sync.Backbone.modules().OfType<SyncBatchNorm>().Count(), Is.EqualTo(1), "fpn1's norm is the neck's only norm");
        Assert.That(plain.modules().OfType<SyncBatchNorm>(), Is.Empty);
        Assert.That(sync.state_dict().Select(kv => (kv.Key, string.Join("x", kv.Value.shape))),
            Is.EqualTo(plain.state_dict().Select(kv => (kv.Key, string.Join("x", kv.Value.shape)))), "checkpoints interchange between bn and syncbn");
    }

    [Test]
    public void HalfInputsAreNormalisedWithFloat32Statistics()
    {
        using var scope = NewDisposeScope();
        // Values around 100, where bf16's spacing is 0.5: a mean rounded to bf16 would be off by up to 0.25 standard deviations.
        var input = (randn(new long[] { 4, 3, 6, 6 }, generator: new Generator(11)) * 0.8 + 100.3).to_type(ScalarType.BFloat16);
        var weight = ones(3);
        var bias = zeros(3);
        var (output, mean, _, _) = SyncBatchNorm.NormalizeWithGlobalStatistics(input, weight, bias, 1e-5, SingleProcessCommunicator.Instance);
        Assert.That(output.dtype, Is.EqualTo(ScalarType.BFloat16), "the output keeps the input's type, as torch's SyncBN");
        Assert.That(mean.dtype, Is.EqualTo(ScalarType.Float32));
        // The reference: float32 batch norm of exactly the bf16 values.
        var expected = nn.functional.batch_norm(input.to_type(ScalarType.Float32), zeros(3), ones(3), weight, bias, training: true, eps: 1e-5);
        double error = (output.to_type(ScalarType.Float32) - expected).abs().max().item<float>();
        Assert.That(error, Is.LessThan(0.03), "bf16 rounding of the output only (2^-8 of values up to ~3)");
    }

    [Test]
    public void SyncBnOnCudaOverMpiIsRefusedBeforeTraining()
    {
        var mpiLike = new TwoRanksOnTheHost();
        var e = Assert.Throws<Vim.Core.VimException>(() => SyncBatchNorm.RequireReducibleBackward(5, DeviceType.CUDA, mpiLike))!;
        Assert.That(e.Message, Does.StartWith("model.seg_head.norm: syncbn (5 layers) on CUDA needs the NCCL backend").And.Contain("runtime.dist_backend"));
        Assert.DoesNotThrow(() => SyncBatchNorm.RequireReducibleBackward(5, DeviceType.CPU, mpiLike), "CPU tensors reduce from any thread we call on");
        Assert.DoesNotThrow(() => SyncBatchNorm.RequireReducibleBackward(0, DeviceType.CUDA, mpiLike), "no SyncBN layer");
        Assert.DoesNotThrow(() => SyncBatchNorm.RequireReducibleBackward(5, DeviceType.CUDA, SingleProcessCommunicator.Instance), "one process is plain BatchNorm");
    }

    /// <summary>Two ranks whose communicator reduces host tensors only, as MPI's.</summary>
    private sealed class TwoRanksOnTheHost : ICommunicator
    {
        public int Rank => 0;
        public int WorldSize => 2;
        public TimeSpan Timeout => TimeSpan.FromSeconds(1);
        public void AllReduceSum(Tensor tensor) => throw new InvalidOperationException("no collective expected");
        public void Broadcast(Tensor tensor, int root = 0) => throw new InvalidOperationException("no collective expected");
        public void Barrier() => throw new InvalidOperationException("no collective expected");
        public IReadOnlyList<byte[]> AllGather(byte[] data) => throw new InvalidOperationException("no collective expected");
        public IReadOnlyList<byte[]> Gather(byte[] data, int root = 0) => throw new InvalidOperationException("no collective expected");
        public void Dispose() { }
    }
}
