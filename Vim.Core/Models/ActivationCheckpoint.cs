using TorchSharp;
using Vim.Core.Engine;
using static TorchSharp.torch;

namespace Vim.Core.Models;

/// <summary>
/// Activation checkpointing (model.backbone.with_cp; mmdet/mmseg's <c>with_cp</c>, torch.utils.checkpoint with its
/// RNG state preserved, Vim's and ViTDet's <c>use_checkpoint</c>): a block runs without autograd and keeps only its
/// inputs; backward runs it again, with autograd, from those inputs and back-propagates through that second run. The
/// block's intermediate activations then live for one block at a time instead of for the whole network, at the cost of
/// a second forward of every block in each backward.
/// </summary>
/// <remarks>
/// The second run must compute what the first one did, bit for bit:
/// <list type="bullet">
/// <item>Random draws (drop path): the CPU generator's state before the first run is restored for the second and the
/// caller's state put back afterwards. TorchSharp can neither read nor restore the CUDA generator, so for CUDA inputs
/// the block's CUDA generator is seeded from a number drawn from the CPU generator before the first run, and seeded
/// again with it before the second: the same masks in both runs, though not the masks of a run without checkpointing.</item>
/// <item>Autocast: the second run happens in backward, outside the training step's autocast region and possibly on the
/// autograd engine's thread; it runs under the first run's settings (<see cref="Autocast.Reproduce"/>).</item>
/// <item>Parameters are passed to the autograd function as inputs, so the gradients the second run finds for them are
/// returned through the function's graph edges into their .grad, as for any other leaf.</item>
/// </list>
/// Only in training mode with autograd on and something to differentiate; evaluation and inference are untouched.
/// </remarks>
public static class ActivationCheckpoint
{
    /// <summary>
    /// <paramref name="forward"/>(<paramref name="inputs"/>), checkpointed when <paramref name="enabled"/> and
    /// <see cref="Applies"/>, else as is. <paramref name="forward"/> runs <paramref name="block"/> (through its <c>call</c>)
    /// on the inputs, any of which may be null, and returns its output tensors; it must use no tensor that requires grad
    /// other than the inputs and <paramref name="block"/>'s parameters (the gradient of anything else would be lost).
    /// </summary>
    public static Tensor[] Call(bool enabled, nn.Module block, Func<Tensor?[], Tensor[]> forward, params Tensor?[] inputs)
    {
        if (!enabled || !Applies(block, inputs)) return forward(inputs);
        // Its own scope: the function's forward outputs and TorchSharp's per-output placeholders (an empty_like of
        // each output, read only to materialise missing gradients, which BlockFunction does not ask for) go at once.
        using var scope = NewDisposeScope();
        var parameters = block.parameters().Cast<Tensor>().ToArray();
        var run = new BlockRun(forward, inputs.Length, parameters);
        var arguments = new object[1 + inputs.Length + parameters.Length];
        arguments[0] = run;
        for (int i = 0; i < inputs.Length; i++) arguments[1 + i] = inputs[i]!;
        for (int i = 0; i < parameters.Length; i++) arguments[1 + inputs.Length + i] = parameters[i];
        var outputs = BlockFunction.apply(arguments);
        return outputs.Select(o => o.MoveToOuterDisposeScope()).ToArray();
    }

    /// <summary>Whether checkpointing has anything to save: the block in training mode, autograd on, and an input or a parameter requiring grad.</summary>
    public static bool Applies(nn.Module block, params Tensor?[] inputs) =>
        block.training && is_grad_enabled() &&
        (inputs.Any(t => t is not null && t.requires_grad) || block.parameters().Any(p => p.requires_grad));

    /// <summary>What one checkpointed call needs again in backward: the forward, the random state and autocast settings it ran under.</summary>
    private sealed class BlockRun(Func<Tensor?[], Tensor[]> forward, int inputCount, Tensor[] parameters)
    {
        public Func<Tensor?[], Tensor[]> Forward { get; } = forward;
        public int InputCount { get; } = inputCount;
        public Tensor[] Parameters { get; } = parameters;
        public byte[] CpuGeneratorState { get; private set; } = [];
        public long? CudaSeed { get; private set; }
        public Autocast.Settings AutocastSettings { get; private set; }

        /// <summary>Records the state the first run starts from (and, for CUDA, seeds the generator the block will draw from).</summary>
        public void Capture(IEnumerable<Tensor?> inputs)
        {
            if (inputs.Any(t => t is not null && t.device.type == DeviceType.CUDA))
            {
                using var draw = randint(long.MaxValue, [1], dtype: ScalarType.Int64);
                CudaSeed = draw.item<long>();
                torch.cuda.manual_seed_all(CudaSeed.Value);
            }
            using var state = torch.random.get_rng_state();
            CpuGeneratorState = state.data<byte>().ToArray();
            AutocastSettings = Autocast.Current();
        }

        /// <summary>Puts the captured random state in force until disposed; the state found then is restored afterwards.</summary>
        public IDisposable ReplayRandomState() => new RandomStateReplay(this);

        private sealed class RandomStateReplay : IDisposable
        {
            private readonly Tensor _callerState = torch.random.get_rng_state();

            public RandomStateReplay(BlockRun run)
            {
                using (var state = tensor(run.CpuGeneratorState, dtype: ScalarType.Byte)) torch.random.set_rng_state(state);
                if (run.CudaSeed is { } seed) torch.cuda.manual_seed_all(seed);
            }

            public void Dispose()
            {
                torch.random.set_rng_state(_callerState);
                _callerState.Dispose();
            }
        }
    }

    /// <summary>
    /// Arguments: the <see cref="BlockRun"/>, its inputs (null allowed), the block's parameters. Outputs: the block's.
    /// Saves the inputs; backward reruns the block from them with autograd and differentiates that run.
    /// </summary>
    private sealed class BlockFunction : torch.autograd.MultiTensorFunction<BlockFunction>
    {
        public override string Name => "VimDenseActivationCheckpoint";

        public override List<Tensor> forward(torch.autograd.AutogradContext ctx, params object[] vars)
        {
            var run = (BlockRun)vars[0];
            var inputs = Inputs(vars, run);
            run.Capture(inputs);
            // Autograd is off here (the function's forward): the block keeps no intermediate tensor.
            var outputs = run.Forward(inputs);
            ctx.save_for_backward(inputs.ToList()!);
            ctx.save_data("run", run);
            ctx.save_data("needs", inputs.Select(t => t is not null && t.requires_grad).ToArray());
            // An output without a gradient (a block output nothing downstream reads) arrives as undefined and is left out
            // of the differentiation, rather than materialised from TorchSharp's per-output placeholders, which Call frees.
            ctx.set_materialize_grads(false);
            return outputs.ToList();
        }

        public override List<Tensor> backward(torch.autograd.AutogradContext ctx, List<Tensor> grad_outputs)
        {
            // Backward may run on the autograd engine's thread, which the caller's dispose scopes do not reach.
            using var scope = BackwardGradients.Begin();
            var run = (BlockRun)ctx.get_data("run");
            var needs = (bool[])ctx.get_data("needs");
            var saved = ctx.get_saved_variables();
            var inputs = new Tensor?[run.InputCount];
            for (int i = 0; i < inputs.Length; i++)
                inputs[i] = saved[i] is null || saved[i].IsInvalid ? null : saved[i].detach().requires_grad_(needs[i]);

            Tensor[] outputs;
            using (enable_grad())
            using (run.ReplayRandomState())
            using (Autocast.Reproduce(run.AutocastSettings))
                outputs = run.Forward(inputs);

            var differentiated = Enumerable.Range(0, outputs.Length)
                .Where(i => i < grad_outputs.Count && grad_outputs[i] is { IsInvalid: false } && outputs[i].requires_grad).ToList();
            var targets = inputs.Select((t, i) => (Tensor: t!, Slot: 1 + i)).Where(x => x.Tensor is { requires_grad: true })
                .Concat(run.Parameters.Select((p, i) => (Tensor: p, Slot: 1 + run.InputCount + i)).Where(x => x.Tensor.requires_grad))
                .ToList();
            var gradients = new Tensor?[1 + run.InputCount + run.Parameters.Length];
            BackwardGradients.DifferentiateInto(gradients, differentiated.Select(i => outputs[i]).ToList(),
                differentiated.Select(i => grad_outputs[i]).ToList(), targets);
            return BackwardGradients.Return(gradients, [.. grad_outputs]);
        }

        private static Tensor?[] Inputs(object[] vars, BlockRun run) =>
            Enumerable.Range(1, run.InputCount).Select(i => vars[i] as Tensor).ToArray();
    }
}
