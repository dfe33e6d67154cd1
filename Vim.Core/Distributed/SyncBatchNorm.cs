using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Vim.Core.Distributed;

/// <summary>
/// Batch normalisation whose training-mode statistics are those of the global batch (every rank's
/// samples together), as torch's SyncBatchNorm: per-channel sums are all-reduced in the forward, and
/// the backward all-reduces the two gradient sums the input gradient needs. The running statistics
/// are updated with the global mean and unbiased variance, so they are identical on every rank.
/// In eval mode, and in a single process, it is exactly <c>nn.BatchNorm2d</c> (the same code runs);
/// parameter and buffer names (weight, bias, running_mean, running_var, num_batches_tracked) are
/// BatchNorm's, so checkpoints interchange. The communicator is attached after construction
/// (<see cref="Connect"/>; the trainer does it), because models are built before the job is known.
/// </summary>
public sealed class SyncBatchNorm : BatchNorm
{
    public SyncBatchNorm(long numFeatures, double eps = 1e-5, double momentum = 0.1)
        : base(numFeatures, eps, momentum, affine: true, track_running_stats: true, device: null, dtype: null, name: nameof(SyncBatchNorm))
    {
    }

    /// <summary>The ranks whose batches are normalised together; a single process by default.</summary>
    public ICommunicator Communicator { get; set; } = SingleProcessCommunicator.Instance;

    /// <summary>Attaches <paramref name="communicator"/> to every SyncBatchNorm in <paramref name="model"/>; returns how many.</summary>
    public static int Connect(nn.Module model, ICommunicator communicator)
    {
        int count = 0;
        foreach (var module in model.modules().OfType<SyncBatchNorm>())
        {
            module.Communicator = communicator;
            count++;
        }
        return count;
    }

    /// <summary>
    /// Refuses SyncBN layers on CUDA in a multi-process job whose communicator cannot reduce GPU tensors (MPI): for CUDA
    /// tensors libtorch runs the backward on its GPU worker thread, and MPI, initialised funnelled, may only be called from
    /// the main thread, so the first backward would fail.
    /// </summary>
    public static void RequireReducibleBackward(int syncLayers, DeviceType device, ICommunicator communicator)
    {
        if (syncLayers == 0 || communicator.WorldSize == 1 || device != DeviceType.CUDA || communicator.CanReduceOn(DeviceType.CUDA)) return;
        throw new VimException($"model.seg_head.norm: syncbn ({syncLayers} layers) on CUDA needs the NCCL backend (runtime.dist_backend: nccl, " +
            "or auto where libnccl.so.2 loads): SyncBN's backward runs on libtorch's GPU thread, from which MPI cannot be called. " +
            "Install NCCL, or set model.seg_head.norm: bn");
    }

    public override Tensor forward(Tensor input)
    {
        if (!training || Communicator.WorldSize == 1) return base.forward(input);
        ValidateInputDimensions(input);
        double factor = momentum ?? 0.1;
        using (no_grad())
        {
            // BatchNorm's convention: momentum 0 means a cumulative average over the batches seen.
            num_batches_tracked!.add_(1);
            if (factor == 0) factor = 1.0 / num_batches_tracked.item<long>();
        }
        var (output, mean, variance, count) = NormalizeWithGlobalStatistics(input, weight, bias, eps, Communicator);
        using (no_grad())
        using (var unbiased = variance * (count / (double)(count - 1)))
        {
            // The running variance is the unbiased one, as BatchNorm's.
            running_mean!.mul_(1 - factor).add_(mean, alpha: factor);
            running_var!.mul_(1 - factor).add_(unbiased, alpha: factor);
        }
        mean.Dispose();
        variance.Dispose();
        return output;
    }

    /// <summary>
    /// Training-mode batch normalisation of <paramref name="input"/> (N, C, …) with the statistics of the
    /// global batch: returns the output (differentiable in input, weight and bias; its backward takes part
    /// in a collective, so every rank must run it), the global per-channel mean and biased variance, and
    /// the global number of values per channel. With a single-process communicator this is
    /// <c>F.batch_norm(training: true)</c> computed another way (the tests compare the two).
    /// </summary>
    public static (Tensor Output, Tensor Mean, Tensor Variance, long Count) NormalizeWithGlobalStatistics(
        Tensor input, Tensor weight, Tensor? bias, double eps, ICommunicator communicator)
    {
        using var scope = NewDisposeScope();
        // Under autocast the input may be bf16/fp16: the statistics and the normalisation are computed in float32, as
        // torch's SyncBN (batch_norm_stats, batch_norm_elemt) and BatchNorm's own kernels do; a mean rounded to bf16 would
        // shift each channel by up to half its spacing (0.25 at 100). The output keeps the input's type.
        var x = Vim.Core.Engine.Autocast.WidenHalf(input);
        var (mean, variance, count) = GlobalStatistics(x, communicator);
        var invstd = (variance + eps).rsqrt();
        var output = SyncBatchNormFunction.apply(x, weight, bias!, mean, invstd, count, communicator);
        if (output.dtype != input.dtype) output = output.to_type(input.dtype);
        return (output.MoveToOuterDisposeScope(), mean.MoveToOuterDisposeScope(), variance.MoveToOuterDisposeScope(), count);
    }

    protected override void ValidateInputDimensions(Tensor input)
    {
        if (input.dim() < 2)
            throw new ArgumentException($"SyncBatchNorm expects (N, C, …) input, got shape [{string.Join(", ", input.shape)}]");
        if (input.shape[1] != num_features)
            throw new ArgumentException($"SyncBatchNorm has {num_features} channels, the input has {input.shape[1]}");
    }

    /// <summary>
    /// Per-channel mean and biased variance over every rank's values. Each rank reduces its own values
    /// in two passes (var_mean, accurate) and contributes n·mean and n·(var + mean²) in float64, so the
    /// global E[x²] − mean² loses nothing to float32 cancellation.
    /// </summary>
    private static (Tensor Mean, Tensor Variance, long Count) GlobalStatistics(Tensor input, ICommunicator communicator)
    {
        using var noGrad = no_grad();
        long channels = input.shape[1];
        long local = input.NumberOfElements / Math.Max(1, channels);
        var dims = Enumerable.Range(0, (int)input.dim()).Where(d => d != 1).Select(d => (long)d).ToArray();
        Tensor sums;
        if (local > 0)
        {
            var (localVariance, localMean) = var_mean(input, dims, unbiased: false);
            // The sums stay on the GPU under NCCL (which may call from autograd's device thread), else go through host memory.
            var where = communicator.CanReduceOn(input.device_type) ? input.device : CPU;
            var mean64 = localMean.to(ScalarType.Float64).to(where);
            var variance64 = localVariance.to(ScalarType.Float64).to(where);
            sums = cat([mean64 * local, (variance64 + mean64.square()) * local, tensor(new[] { (double)local }, device: where)]);
        }
        else
        {
            // A rank without values still takes part in the all-reduce, with nothing to add.
            sums = zeros(2 * channels + 1, dtype: ScalarType.Float64, device: communicator.CanReduceOn(input.device_type) ? input.device : CPU);
        }
        communicator.AllReduceSum(sums);
        long count = (long)sums[-1].item<double>();
        if (count < 2)
            throw new VimException($"SyncBatchNorm: expected more than 1 value per channel over all ranks when training, got {count} " +
                $"(input shape [{string.Join(", ", input.shape)}] on rank {communicator.Rank})");
        var globalMean = sums[..(int)channels] / count;
        var globalVariance = (sums[(int)channels..(int)(2 * channels)] / count - globalMean.square()).clamp_min(0);
        return (globalMean.to(input.dtype).to(input.device), globalVariance.to(input.dtype).to(input.device), count);
    }
}
