using System.Globalization;
using System.Text.Json;
using TorchSharp;
using Vim.Core.Distributed;
using static TorchSharp.torch;

namespace Vim.Tests.Distributed;

/// <summary>
/// Runs on every rank under mpirun, hosted by `vim dist-selftest host`: a 1×1 conv followed by
/// SyncBatchNorm, two training steps on this rank's block of a fixed global batch (2 ranks × --batch),
/// gradients averaged as the trainer does; writes to --out.rank&lt;R&gt;.json what the test compares with
/// BatchNorm2d on the whole batch in one process (<see cref="Reference"/>).
/// </summary>
public static class DistributedSyncBnWorker
{
    public const int Channels = 3;
    public const int Steps = 2;

    public sealed record Outcome(List<float[]> Outputs, List<float[]> InputGrads, Dictionary<string, float[]> ParameterGrads,
        Dictionary<string, float[]> Buffers, long BatchesTracked, float[] EvalOutput);

    public static int Run(ICommunicator world, string[] args)
    {
        var options = new Dictionary<string, string>();
        args = args.SkipWhile(a => a == "--").ToArray();
        for (int i = 0; i + 1 < args.Length; i += 2) options[args[i]] = args[i + 1];
        int batch = int.Parse(options["--batch"], CultureInfo.InvariantCulture);
        set_num_threads(1);
        var outcome = Train(world, batch, sync: true);
        var path = $"{options["--out"]}.rank{world.Rank.ToString(CultureInfo.InvariantCulture)}.json";
        File.WriteAllBytes(path + ".tmp", JsonSerializer.SerializeToUtf8Bytes(outcome));
        File.Move(path + ".tmp", path, overwrite: true);
        return 0;
    }

    /// <summary>BatchNorm2d on the whole global batch in this process; its loss is the sum of the ranks' losses.</summary>
    public static Outcome Reference(int ranks, int perRankBatch) => Train(SingleProcessCommunicator.Instance, perRankBatch * ranks, sync: false, ranks);

    /// <summary>Global batch step s: inputs with a channel-dependent offset and scale, and fixed upstream gradients.</summary>
    public static (Tensor Inputs, Tensor Upstream) GlobalBatch(int step, int globalBatch)
    {
        var generator = new torch.Generator(100 + (ulong)step);
        var scale = tensor(new[] { 1f, 3f, 0.5f }).view(1, Channels, 1, 1);
        var offset = tensor(new[] { 2f, -1f, 0.25f }).view(1, Channels, 1, 1);
        var inputs = randn(new long[] { globalBatch, Channels, 5, 4 }, generator: generator) * scale + offset;
        var upstream = randn(new long[] { globalBatch, Channels, 5, 4 }, generator: generator);
        return (inputs, upstream);
    }

    private static Outcome Train(ICommunicator world, int batch, bool sync, int referenceRanks = 1)
    {
        using var scope = NewDisposeScope();
        int globalBatch = batch * (sync ? world.WorldSize : 1);
        var conv = nn.Conv2d(Channels, Channels, 1, bias: false);
        nn.Module<Tensor, Tensor> norm = sync ? new SyncBatchNorm(Channels) : nn.BatchNorm2d(Channels);
        using var model = nn.Sequential(("conv", conv), ("bn", norm));
        using (no_grad())
        {
            conv.weight!.copy_(tensor(new[] { 1f, 0.2f, -0.3f, 0.1f, 0.9f, 0.4f, -0.2f, 0.3f, 1.1f }).view(Channels, Channels, 1, 1));
            model.named_parameters().Single(p => p.name == "bn.weight").parameter.copy_(tensor(new[] { 0.8f, 1.2f, -0.5f }));
            model.named_parameters().Single(p => p.name == "bn.bias").parameter.copy_(tensor(new[] { 0.1f, 0f, -0.3f }));
        }
        SyncBatchNorm.Connect(model, world);
        using var reducer = new GradientReducer(world, model.named_parameters().ToList(), 1 << 20);
        model.train();
        var outputs = new List<float[]>();
        var inputGrads = new List<float[]>();
        var parameterGrads = new Dictionary<string, float[]>();
        for (int step = 0; step < Steps; step++)
        {
            foreach (var p in model.parameters()) p.grad = null;
            var (all, upstreamAll) = GlobalBatch(step, sync ? globalBatch : batch);
            // This rank's block of the global batch (the reference takes it all).
            var inputs = (sync ? all.narrow(0, world.Rank * batch, batch) : all).clone().requires_grad_();
            var upstream = sync ? upstreamAll.narrow(0, world.Rank * batch, batch) : upstreamAll;
            var output = model.forward(inputs);
            var loss = (output * upstream).sum();
            // The reference's loss is the ranks' losses summed; gradient averaging divides parameter
            // gradients by the world size, so divide the reference's the same way.
            loss.backward();
            reducer.AverageGradients();
            if (!sync)
                using (no_grad())
                    foreach (var p in model.parameters()) p.grad!.div_(referenceRanks);
            outputs.Add(output.detach().contiguous().data<float>().ToArray());
            inputGrads.Add(inputs.grad!.contiguous().data<float>().ToArray());
            foreach (var (name, p) in model.named_parameters()) parameterGrads[$"{name}@{step}"] = p.grad!.contiguous().data<float>().ToArray();
        }
        var state = model.state_dict();
        model.eval();
        var (probe, _) = GlobalBatch(7, 2);
        float[] evalOutput;
        using (no_grad()) evalOutput = model.forward(probe).contiguous().data<float>().ToArray();
        return new Outcome(outputs, inputGrads, parameterGrads,
            new Dictionary<string, float[]>
            {
                ["bn.running_mean"] = state["bn.running_mean"].data<float>().ToArray(),
                ["bn.running_var"] = state["bn.running_var"].data<float>().ToArray(),
            },
            state["bn.num_batches_tracked"].item<long>(), evalOutput);
    }
}
