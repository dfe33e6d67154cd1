using System.Globalization;
using System.Text.Json;
using Vim.Core.Distributed;
using static TorchSharp.torch;

namespace Vim.Tests.Distributed;

/// <summary>
/// Runs on every rank under mpirun: a BatchNorm whose running statistics (and a Linear whose weight) differ per rank,
/// then <see cref="ModelBroadcast.BuffersFromRoot"/>; writes to --out.rank&lt;R&gt;.json what each rank then holds.
/// </summary>
public static class DistributedBufferWorker
{
    public sealed record Outcome(float[] RunningMean, float[] RunningVar, long BatchesTracked, float[] LinearWeight);

    public static int Run(ICommunicator world, string[] args)
    {
        args = args.SkipWhile(a => a == "--").ToArray();
        var output = args[Array.IndexOf(args, "--out") + 1];
        using var model = nn.Sequential(("linear", nn.Linear(2, 2)), ("norm", nn.BatchNorm1d(2)));
        using (no_grad())
        {
            float offset = world.Rank + 1;
            model.get_buffer("norm.running_mean")!.fill_(offset);
            model.get_buffer("norm.running_var")!.fill_(10 * offset);
            model.get_buffer("norm.num_batches_tracked")!.fill_(100 * (long)offset);
            model.get_parameter("linear.weight")!.fill_(offset);
        }
        ModelBroadcast.BuffersFromRoot(world, model);
        var outcome = new Outcome(model.get_buffer("norm.running_mean")!.data<float>().ToArray(), model.get_buffer("norm.running_var")!.data<float>().ToArray(),
            model.get_buffer("norm.num_batches_tracked")!.item<long>(), model.get_parameter("linear.weight")!.data<float>().ToArray());
        var path = $"{output}.rank{world.Rank.ToString(CultureInfo.InvariantCulture)}.json";
        File.WriteAllBytes(path + ".tmp", JsonSerializer.SerializeToUtf8Bytes(outcome));
        File.Move(path + ".tmp", path, overwrite: true);
        return 0;
    }
}
