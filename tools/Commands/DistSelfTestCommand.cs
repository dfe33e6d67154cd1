using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Distributed;
using Vim.Core.Models;
using static TorchSharp.torch;

namespace Vim.Tools.Commands;

/// <summary>
/// Hidden `vim dist-selftest`: checks a multi-process setup from inside the processes mpirun starts
/// (`mpirun -np K dotnet VimDense.dll dist-selftest collectives`), measures all-reduce bandwidth,
/// shows the collective timeout at work, and hosts the test suite's multi-process workers.
/// </summary>
public static class DistSelfTestCommand
{
    public static Command Create()
    {
        var command = new Command("dist-selftest", "Check the MPI setup under mpirun: collectives, all-reduce bandwidth, collective timeouts.") { Hidden = true };
        var timeout = new Option<double>("--timeout-s") { Description = "Collective timeout in seconds.", DefaultValueFactory = _ => 60 };

        var collectives = new Command("collectives", "All-reduce, broadcast, all-gather and barrier against known results, then all-reduce bandwidth.");
        var megabytes = new Option<double>("--megabytes") { Description = "All-reduce size for the bandwidth measurement (MiB).", DefaultValueFactory = _ => 25 };
        var repeats = new Option<int>("--repeats") { Description = "Timed all-reduces (after one warm-up).", DefaultValueFactory = _ => 10 };
        var device = new Option<string>("--device") { Description = "runtime.device the backend is chosen for (cpu or cuda).", DefaultValueFactory = _ => "cpu" };
        var backend = new Option<DistBackend>("--backend") { Description = "runtime.dist_backend: Auto, Mpi or Nccl.", DefaultValueFactory = _ => DistBackend.Auto };
        collectives.Options.Add(timeout);
        collectives.Options.Add(megabytes);
        collectives.Options.Add(repeats);
        collectives.Options.Add(device);
        collectives.Options.Add(backend);
        collectives.SetAction(parse =>
        {
            using var world = Communicators.FromEnvironment(new RuntimeConfig
            {
                CollectiveTimeoutS = parse.GetValue(timeout), Device = parse.GetValue(device)!, DistBackend = parse.GetValue(backend),
            });
            if (world.Rank == 0) Console.WriteLine($"communicator: {world.GetType().Name}, world {world.WorldSize}");
            return CheckCollectives(world, parse.GetValue(megabytes), parse.GetValue(repeats));
        });

        var stall = new Command("stall", "Every rank but 0 stops taking part (sleeps, or exits); rank 0 all-reduces and must end the job with a timeout message.");
        var exit = new Option<bool>("--exit") { Description = "The other ranks exit at once instead of sleeping." };
        stall.Options.Add(timeout);
        stall.Options.Add(exit);
        stall.SetAction(parse =>
        {
            // Not disposed: the job is meant to end by abort, and a rank that finalised would not model a stuck or dead one.
            var world = Open(parse.GetValue(timeout));
            if (world.Rank != 0)
            {
                // Exit without MPI_Finalize, as a crashed rank would.
                if (parse.GetValue(exit)) Environment.Exit(7);
                Thread.Sleep(world.Timeout * 20);
                return 0;
            }
            Console.WriteLine($"rank 0: all-reducing while the other {world.WorldSize - 1} rank(s) stay away");
            using var value = ones(4);
            world.AllReduceSum(value);
            Console.WriteLine("rank 0: the all-reduce completed, which it must not");
            return 1;
        });

        var gradients = new Command("gradients", "Average a registered model's gradients over the ranks as the trainer does (buckets), check the result and time it.");
        var model = new Option<string>("--model") { Description = "A model from `vim model list`.", DefaultValueFactory = _ => "vimseg_tiny" };
        var bucketMb = new Option<double>("--bucket-mb") { Description = "Gradient bucket size (runtime.bucket_mb).", DefaultValueFactory = _ => 25 };
        gradients.Options.Add(timeout);
        gradients.Options.Add(model);
        gradients.Options.Add(bucketMb);
        gradients.Options.Add(repeats);
        gradients.SetAction(parse =>
        {
            using var world = Open(parse.GetValue(timeout));
            return TimeGradientAveraging(world, parse.GetValue(model)!, parse.GetValue(bucketMb), parse.GetValue(repeats));
        });

        var host = new Command("host", "Internal (test suite): runs `public static int Run(ICommunicator, string[])` of TYPE from ASSEMBLY on every rank.");
        var assembly = new Option<string>("--assembly") { Required = true };
        var type = new Option<string>("--type") { Required = true };
        var rest = new Argument<string[]>("args") { Arity = ArgumentArity.ZeroOrMore };
        host.Options.Add(timeout);
        host.Options.Add(assembly);
        host.Options.Add(type);
        host.Arguments.Add(rest);
        host.SetAction(parse =>
        {
            var path = Path.GetFullPath(parse.GetValue(assembly)!);
            if (!File.Exists(path)) throw new VimException($"--assembly: {path} does not exist");
            var entry = Assembly.LoadFrom(path).GetType(parse.GetValue(type)!)?.GetMethod("Run", BindingFlags.Public | BindingFlags.Static, [typeof(ICommunicator), typeof(string[])])
                ?? throw new VimException($"--type: {parse.GetValue(type)} in {path} has no public static int Run(ICommunicator, string[])");
            using var world = Open(parse.GetValue(timeout));
            try
            {
                // As `vim train`: an error on one rank ends the job at once rather than leaving the others in a collective.
                return world.AbortJobOnError(() => (int)entry.Invoke(null, [world, parse.GetValue(rest) ?? []])!);
            }
            catch (TargetInvocationException e) when (e.InnerException is not null)
            {
                Console.Error.WriteLine($"rank {world.Rank}: {e.InnerException.GetType().Name}: {e.InnerException.Message}");
                return 2;
            }
        });

        command.Subcommands.Add(collectives);
        command.Subcommands.Add(stall);
        command.Subcommands.Add(gradients);
        command.Subcommands.Add(host);
        return command;
    }

    private static int TimeGradientAveraging(ICommunicator world, string modelName, double bucketMb, int repeats)
    {
        using var model = ModelRegistry.Create(modelName);
        var parameters = model.named_parameters().Where(p => p.parameter.requires_grad).ToList();
        using var reducer = new GradientReducer(world, parameters, (long)(bucketMb * (1 << 20)));
        // Rank r's gradient is (r+1)·g for a fixed g, so the average must be (K+1)/2·g everywhere.
        using (no_grad())
            foreach (var (_, p) in parameters)
                p.grad = full_like(p, 1f) * (world.Rank + 1);
        reducer.AverageGradients();
        float expected = (world.WorldSize + 1) / 2f;
        var wrong = parameters.Where(p => !p.parameter.grad!.eq(expected).all().item<bool>()).Select(p => p.name).ToList();
        foreach (var name in wrong.Take(5)) Console.Error.WriteLine($"rank {world.Rank}: the averaged gradient of {name} is wrong");
        using (var failed = tensor((float)wrong.Count))
        {
            world.AllReduceSum(failed);
            if (failed.item<float>() > 0) return 1;
        }

        world.Barrier();
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < repeats; i++) reducer.AverageGradients();
        double seconds = clock.Elapsed.TotalSeconds / Math.Max(1, repeats);
        long elements = reducer.Buckets.Sum(b => b.GradientElements);
        if (world.Rank == 0)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{modelName}: {elements:N0} trainable parameters ({elements * 4 / 1048576.0:0.0} MiB) in {reducer.Buckets.Count} bucket(s) of ≤ {bucketMb} MiB; " +
                $"averaging over {world.WorldSize} rank(s) correct, {seconds * 1e3:0.0} ms per iteration (flatten, all-reduce, copy back)"));
        return 0;
    }

    private static ICommunicator Open(double timeoutSeconds) => Communicators.FromEnvironment(new RuntimeConfig { CollectiveTimeoutS = timeoutSeconds });

    private static int CheckCollectives(ICommunicator world, double megabytes, int repeats)
    {
        int rank = world.Rank, size = world.WorldSize;
        var failures = new List<string>();
        void Expect(bool ok, string what)
        {
            if (!ok) failures.Add(what);
        }

        using (NewDisposeScope())
        {
            // Rank r contributes (r+1)·(i mod 7): the sum is K(K+1)/2·(i mod 7), exact in float32.
            const int n = 1000;
            var pattern = arange(n, dtype: ScalarType.Float32).remainder(7);
            var sum = pattern * (rank + 1);
            world.AllReduceSum(sum);
            Expect(sum.eq(pattern * (size * (size + 1) / 2f)).all().item<bool>(), "all-reduce sum");
            var mean = pattern * (rank + 1);
            world.AllReduceAverage(mean);
            Expect(mean.allclose(pattern * ((size + 1) / 2f)), "all-reduce average");

            // Counts past float32's 2^24 must stay exact: rank r adds 2^40 + r (int64) and 2^30 + r + 0.25 (float64).
            var counts = tensor(new long[] { (1L << 40) + rank, rank });
            world.AllReduceSum(counts);
            long rankSum = size * (size - 1L) / 2;
            Expect(counts[0].item<long>() == size * (1L << 40) + rankSum && counts[1].item<long>() == rankSum, "all-reduce sum of int64");
            var doubles = tensor(new[] { (1 << 30) + rank + 0.25 });
            world.AllReduceSum(doubles);
            Expect(doubles.item<double>() == size * ((1 << 30) + 0.25) + rankSum, "all-reduce sum of float64");

            int root = size - 1;
            var payload = rank == root ? arange(12, dtype: ScalarType.Int64).reshape(3, 4) * 11 : zeros(new long[] { 3, 4 }, dtype: ScalarType.Int64);
            world.Broadcast(payload, root);
            Expect(payload.eq(arange(12, dtype: ScalarType.Int64).reshape(3, 4) * 11).all().item<bool>(), $"broadcast from rank {root}");

            // Sizes differ per rank on purpose (rank r sends r+1 bytes of value r).
            var gathered = world.AllGather(Enumerable.Repeat((byte)rank, rank + 1).ToArray());
            Expect(gathered.Count == size && gathered.Select((g, r) => g.Length == r + 1 && g.All(b => b == r)).All(ok => ok), "all-gather of bytes");
            var records = world.AllGatherJson(new Dictionary<string, double> { ["rank"] = rank, ["square"] = rank * rank });
            Expect(records.Select((d, r) => d["rank"] == r && d["square"] == r * r).All(ok => ok), "all-gather of JSON");
            var atRoot = world.Gather(Enumerable.Repeat((byte)(rank + 1), 2 * rank).ToArray(), root);
            Expect(rank == root
                ? atRoot.Count == size && atRoot.Select((g, r) => g.Length == 2 * r && g.All(b => b == r + 1)).All(ok => ok)
                : atRoot.Count == 0, $"gather of bytes to rank {root}");
            var rootValue = world.BroadcastJson(rank == root ? new[] { root * 1.5, double.NaN } : null, root);
            Expect(rootValue.Length == 2 && rootValue[0] == root * 1.5 && double.IsNaN(rootValue[1]), $"broadcast of JSON from rank {root}");
            world.Barrier();
        }

        foreach (var failure in failures) Console.Error.WriteLine($"rank {rank}: {failure} gave a wrong result");
        using (var failed = tensor((float)failures.Count))
        {
            world.AllReduceSum(failed);
            if (failed.item<float>() > 0) return 1;
        }
        if (rank == 0) Console.WriteLine($"collectives: world {size}, all-reduce, broadcast, all-gather, gather and barrier correct");

        using var buffer = ones((long)(megabytes * (1 << 20) / 4));
        world.AllReduceSum(buffer);
        world.Barrier();
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < repeats; i++) world.AllReduceSum(buffer);
        double seconds = clock.Elapsed.TotalSeconds / Math.Max(1, repeats);
        double bytes = buffer.NumberOfElements * 4.0;
        if (rank == 0)
            // Bus bandwidth (nccl-tests' convention) counts the 2(K−1)/K of the buffer each rank must move in a ring all-reduce.
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"all-reduce {bytes / (1 << 20):0.0} MiB float32 × {repeats}: {seconds * 1e3:0.00} ms each, algorithm bandwidth {bytes / seconds / 1e9:0.00} GB/s, bus bandwidth {bytes / seconds / 1e9 * 2 * (size - 1) / size:0.00} GB/s"));
        return 0;
    }
}
