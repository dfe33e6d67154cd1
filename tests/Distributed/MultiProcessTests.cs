using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using JsonNodes = System.Text.Json.Nodes;
using NUnit.Framework;
using Vim.Core.Engine;
using Vim.Data.Demo;
using Vim.Tests.Engine;
using static TorchSharp.torch;

namespace Vim.Tests.Distributed;

/// <summary>
/// Real two-process jobs on loopback: `mpirun -np 2 dotnet VimDense.dll dist-selftest …`. Skipped only
/// where Open MPI's mpirun is not installed.
/// </summary>
[NonParallelizable]
public class MultiProcessTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(120);
    private string _root = null!;

    [SetUp]
    public void SetUp()
    {
        if (CliProcess.Mpirun is null)
            Assert.Ignore("mpirun (Open MPI) is not installed: apt-get install openmpi-bin libopenmpi-dev (scripts/setup.sh does)");
        _root = Directory.CreateTempSubdirectory("vimdense-dist-").FullName;
    }

    [TearDown]
    public void TearDown()
    {
        if (_root is not null && Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    [Test]
    public void CollectivesGiveTheExpectedResultsOnTwoRanks()
    {
        // Asking for NCCL on CUDA where libnccl.so.2 is absent (as here) runs on MPI and says why.
        var run = Mpirun(2, "collectives", "--megabytes", "4", "--repeats", "3", "--device", "cuda", "--backend", "Nccl");
        Assert.That(run.ExitCode, Is.EqualTo(0), run.Output);
        if (!System.Runtime.InteropServices.NativeLibrary.TryLoad("libnccl.so.2", out _))
        {
            Assert.That(run.Output, Does.Contain("distributed: runtime.device is cuda and runtime.dist_backend is nccl, but libnccl.so.2 cannot be loaded"));
            Assert.That(run.Output, Does.Contain("communicator: MpiCommunicator, world 2"));
        }
        Assert.That(run.Output, Does.Contain("collectives: world 2, all-reduce, broadcast, all-gather, gather and barrier correct"));
        Assert.That(run.Output, Does.Contain("all-reduce 4.0 MiB float32"));
    }

    [Test]
    public void AModelsGradientsAreAveragedCorrectlyAcrossManyBuckets()
    {
        var run = Mpirun(2, "gradients", "--model", "vimseg_tiny", "--bucket-mb", "2", "--repeats", "1");
        Assert.That(run.ExitCode, Is.EqualTo(0), run.Output);
        Assert.That(run.Output, Does.Contain("vimseg_tiny: 7,556,928 trainable parameters (28.8 MiB)").And.Contain("averaging over 2 rank(s) correct"));
        var buckets = int.Parse(System.Text.RegularExpressions.Regex.Match(run.Output, @"in (\d+) bucket\(s\)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.That(buckets, Is.GreaterThanOrEqualTo(15), "28.8 MiB in buckets of at most 2 MiB");
    }

    [Test]
    public void ARankThatStopsTakingPartEndsTheJobWithATimeoutMessage()
    {
        var run = Mpirun(2, "stall", "--timeout-s", "2");
        Assert.That(run.ExitCode, Is.Not.EqualTo(0), run.Output);
        Assert.That(run.Output, Does.Contain("vimdense rank 0/2: collective #1 (all-reduce of 16 B) has not completed after 2.")
            .And.Contain("runtime.collective_timeout_s = 2"), run.Output);
        Assert.That(run.Output, Does.Not.Contain("the all-reduce completed"));
    }

    [Test]
    public void ARankThatExitsEndsTheWholeJob()
    {
        // Open MPI itself ends a job one of whose processes exited without MPI_Finalize; rank 0 must
        // not be left in its all-reduce until the (long) collective timeout.
        var clock = Stopwatch.StartNew();
        var run = Mpirun(2, "stall", "--exit", "--timeout-s", "100");
        Assert.That(run.ExitCode, Is.Not.EqualTo(0), run.Output);
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(90)), run.Output);
        Assert.That(run.Output, Does.Not.Contain("the all-reduce completed"));
    }

    [Test]
    public void TwoRanksWithBatchTwoEndWithTheWeightsOfOneProcessWithBatchFour()
    {
        var reference = SingleProcess(Path.Combine(_root, "single"), resume: null);
        var work = Path.Combine(_root, "dist");
        var run = Mpirun(2, Worker("--work", work, "--iters", "16", "--batch", "2", "--out", Path.Combine(_root, "dist.json")));
        Assert.That(run.ExitCode, Is.EqualTo(0), run.Output);
        var outcome = Read(Path.Combine(_root, "dist.json"));

        Assert.That(outcome.Weights, Is.EqualTo(reference.Weights).Within(2e-5), "same samples, averaged gradients: same weights");
        Assert.That(outcome.NegMse, Is.EqualTo(reference.NegMse).Within(1e-5), "the rank-split evaluation equals the single-process one");

        // Rank 0 alone wrote the log: one record per interval, losses averaged over the ranks.
        var single = JsonLinesLog.Read(Path.Combine(_root, "single", "log.jsonl")).ToList();
        var dist = JsonLinesLog.Read(Path.Combine(work, "log.jsonl")).ToList();
        Assert.That(dist.Select(r => r.Iteration), Is.EqualTo(single.Select(r => r.Iteration)));
        foreach (var (a, b) in dist.Zip(single).Where(p => p.First.Has("loss")))
            Assert.That(a.Number("loss"), Is.EqualTo(b.Number("loss")).Within(1e-5));
        Assert.That(new CheckpointDirectory(work, 2).Latest(), Does.EndWith("iter_0000016.safetensors"));
    }

    /// <summary>
    /// load_from under mpirun (the worker's rank 1 starts from other weights): both ranks end with the same weights, those of
    /// one process with the global batch trained from the same checkpoint.
    /// </summary>
    [Test]
    public void LoadFromOnTwoRanksEndsWithTheSameWeightsOnEveryRank()
    {
        var source = SingleProcess(Path.Combine(_root, "source"), resume: null);
        var checkpoint = Path.Combine(_root, "source", "iter_0000016.safetensors");
        var reference = SingleProcess(Path.Combine(_root, "single"), resume: null, loadFrom: checkpoint);
        Assert.That(reference.Weights, Is.Not.EqualTo(source.Weights).Within(1e-3), "16 more iterations from the checkpoint");

        var output = Path.Combine(_root, "dist.json");
        var run = Mpirun(2, Worker("--work", Path.Combine(_root, "dist"), "--iters", "16", "--batch", "2", "--load-from", checkpoint, "--every-rank", "--out", output));
        Assert.That(run.ExitCode, Is.EqualTo(0), run.Output);
        var ranks = Enumerable.Range(0, 2).Select(r => Read($"{output}.rank{r}")).ToArray();
        Assert.That(ranks[1].Weights, Is.EqualTo(ranks[0].Weights), "bit for bit the same on both ranks");
        Assert.That(ranks[0].Weights, Is.EqualTo(reference.Weights).Within(2e-5));
        Assert.That(run.Output, Does.Contain($"load_from: {checkpoint}[model]: 4 tensor(s) matched"));
    }

    [Test]
    public void ATwoRankCheckpointResumesOnOneProcess()
    {
        var reference = SingleProcess(Path.Combine(_root, "single"), resume: null);
        var work = Path.Combine(_root, "dist");
        // Both ranks fail on their 11th batch (iteration 10): checkpoints 4 and 8 exist.
        var run = Mpirun(2, Worker("--work", work, "--iters", "16", "--batch", "2", "--fail-at-call", "11", "--out", Path.Combine(_root, "unused.json")));
        Assert.That(run.ExitCode, Is.Not.EqualTo(0), run.Output);
        Assert.That(run.Output, Does.Contain("simulated crash"));
        var latest = new CheckpointDirectory(work, 2).Latest();
        Assert.That(latest, Does.EndWith("iter_0000008.safetensors"));

        var resumed = SingleProcess(work, latest);
        Assert.That(resumed.Weights, Is.EqualTo(reference.Weights).Within(2e-5), "the global data position continues on one process");
    }

    /// <summary>
    /// train.early_stopping with patience 1 where rank 1's metric stays at −1 (its second evaluation, at 16, is no improvement)
    /// while rank 0's rises: rank 1's stop stops rank 0 too, at the same iteration (a rank training on alone would wait in
    /// its next gradient all-reduce until the collective timeout). Rank 0 logs the stop as another rank's.
    /// </summary>
    [Test]
    public void OneRanksEarlyStopStopsEveryRankAtTheSameIteration()
    {
        var work = Path.Combine(_root, "early");
        var output = Path.Combine(_root, "early.json");
        var run = Mpirun(2, Worker("--work", work, "--iters", "32", "--batch", "2", "--early-stop-patience", "1", "--plateau-on-rank", "1",
            "--every-rank", "--out", output));
        Assert.That(run.ExitCode, Is.EqualTo(0), run.Output);
        var ranks = Enumerable.Range(0, 2).Select(r => Read($"{output}.rank{r}")).ToArray();
        Assert.That(ranks.Select(r => (r.Iteration, r.EarlyStopReason)),
            Is.EqualTo(new[] { (16, nameof(EarlyStopReason.AnotherRank)), (16, nameof(EarlyStopReason.NoImprovement)) }));
        Assert.That(ranks[1].Weights, Is.EqualTo(ranks[0].Weights), "both trained the same 16 iterations");
        Assert.That(new CheckpointDirectory(work, 2).Latest(), Does.EndWith("iter_0000016.safetensors"));
        var stop = JsonLinesLog.Read(Path.Combine(work, TrainingLogWriter.LocalFileName)).Last();
        Assert.That((stop.Iteration, stop.Mode, stop.Text("reason")), Is.EqualTo((16, TrainingLogModes.EarlyStop, "another_rank")));
    }

    [Test]
    public void WithDiffRankSeedEachRankKeepsItsOwnGeneratorAcrossAResume()
    {
        string[] Run(string work, string output, params string[] more) =>
            Worker(["--work", work, "--iters", "16", "--batch", "2", "--dropout", "0.3", "--out", Path.Combine(_root, output), .. more]);
        var shared = Mpirun(2, Run(Path.Combine(_root, "shared"), "shared.json"));
        Assert.That(shared.ExitCode, Is.EqualTo(0), shared.Output);
        var own = Path.Combine(_root, "own");
        var uninterrupted = Mpirun(2, Run(own, "own.json", "--diff-rank-seed"));
        Assert.That(uninterrupted.ExitCode, Is.EqualTo(0), uninterrupted.Output);
        Assert.That(Read(Path.Combine(_root, "own.json")).Weights, Is.Not.EqualTo(Read(Path.Combine(_root, "shared.json")).Weights),
            "rank 1's dropout masks differ from rank 0's");

        using (var checkpoint = Vim.Core.Checkpoints.CheckpointFile.Load(Path.Combine(own, "iter_0000016.safetensors")))
        {
            Assert.That(checkpoint.Metadata["rng_ranks"], Is.EqualTo("2"));
            var generators = checkpoint.StateDict("rng");
            Assert.That(generators.Keys, Is.EquivalentTo(new[] { "torch", "torch_rank1" }));
            Assert.That(generators["torch"].eq(generators["torch_rank1"]).all().item<bool>(), Is.False, "two streams");
        }
        using (var best = Vim.Core.Checkpoints.CheckpointFile.Load(Path.Combine(own, "best.safetensors")))
            Assert.That(best.StateDict("rng").Keys, Is.EquivalentTo(new[] { "torch", "torch_rank1" }), "best.safetensors resumes every rank's stream too");

        var crashed = Path.Combine(_root, "crashed");
        var crash = Mpirun(2, Run(crashed, "unused.json", "--diff-rank-seed", "--fail-at-call", "11"));
        Assert.That(crash.Output, Does.Contain("simulated crash"));
        var resume = Mpirun(2, Run(crashed, "resumed.json", "--diff-rank-seed", "--resume", Path.Combine(crashed, "iter_0000008.safetensors")));
        Assert.That(resume.ExitCode, Is.EqualTo(0), resume.Output);
        Assert.That(resume.Output, Does.Not.Contain("continue from runtime.seed + rank"));
        Assert.That(Read(Path.Combine(_root, "resumed.json")).Weights, Is.EqualTo(Read(Path.Combine(_root, "own.json")).Weights),
            "each rank continues its own stream: the resumed run ends bit-equal to the uninterrupted one");

        // A checkpoint of shared seeds holds one stream: rank 1 starts its own, and says so.
        var fromShared = Mpirun(2, Run(Path.Combine(_root, "shared"), "from-shared.json", "--diff-rank-seed", "--resume",
            Path.Combine(_root, "shared", "iter_0000012.safetensors")));
        Assert.That(fromShared.ExitCode, Is.EqualTo(0), fromShared.Output);
        Assert.That(fromShared.Output, Does.Contain("the checkpoint holds the torch generator state of 1 rank(s); ranks 1..1 continue from runtime.seed + rank + iteration"));
    }

    [Test]
    public void ANonFiniteLossOnOneRankStopsEveryRank()
    {
        var run = Mpirun(2, Worker("--work", Path.Combine(_root, "nan"), "--iters", "16", "--batch", "2", "--nan-on-rank", "1", "--nan-at-call", "7",
            "--out", Path.Combine(_root, "unused.json")));
        Assert.That(run.ExitCode, Is.Not.EqualTo(0), run.Output);
        // Both ranks refuse the step together; whichever aborts the job first prints its reason (the other may be ended first).
        Assert.That(run.Output, Does.Contain("rank 1/2: error: iteration 6: the loss is NaN (loss_mse=NaN")
            .Or.Contain("rank 0/2: error: iteration 6: the loss is"), run.Output);
        Assert.That(run.Output, Does.Contain("iter_0000004.safetensors"), "the message names the last good checkpoint");
    }

    [Test]
    public void BuffersAreBroadcastFromRankZeroAndParametersLeftAlone()
    {
        var output = Path.Combine(_root, "buffers");
        var run = Mpirun(2, ["host", "--assembly", typeof(DistributedBufferWorker).Assembly.Location, "--type", typeof(DistributedBufferWorker).FullName!,
            "--", "--out", output]);
        Assert.That(run.ExitCode, Is.EqualTo(0), run.Output);
        for (int rank = 0; rank < 2; rank++)
        {
            var outcome = JsonSerializer.Deserialize<DistributedBufferWorker.Outcome>(File.ReadAllBytes($"{output}.rank{rank}.json"))!;
            Assert.That(outcome.RunningMean, Is.EqualTo(new[] { 1f, 1f }), $"rank {rank}: rank 0's running mean");
            Assert.That(outcome.RunningVar, Is.EqualTo(new[] { 10f, 10f }), $"rank {rank}");
            Assert.That(outcome.BatchesTracked, Is.EqualTo(100), $"rank {rank}");
            Assert.That(outcome.LinearWeight, Is.All.EqualTo(rank + 1f), $"rank {rank}: parameters are not buffers");
        }
    }

    [Test]
    public void AnErrorOnOneRankEndsTheJobAtOnceWithItsMessage()
    {
        // Rank 1 alone fails; rank 0 goes on to its next collective. Unwinding would finalise MPI on rank 1, which waits for
        // rank 0, which waits for rank 1: the job would end only at the collective timeout, with rank 1's message lost.
        var run = Mpirun(2, ["host", "--timeout-s", "100", .. Worker("--work", Path.Combine(_root, "one"), "--iters", "16", "--batch", "2",
            "--fail-at-call", "3", "--fail-on-rank", "1", "--out", Path.Combine(_root, "unused.json")).Skip(1)]);
        Assert.That(run.ExitCode, Is.Not.EqualTo(0), run.Output);
        Assert.That(run.Output, Does.Contain("rank 1/2: InvalidOperationException: simulated crash"), run.Output);
        Assert.That(run.Output, Does.Not.Contain("has not completed after"), "the job ended before any collective timed out");
    }

    [Test]
    public void AStopRequestOnOneRankStopsEveryRankAtTheSameIteration()
    {
        var work = Path.Combine(_root, "stop");
        var run = Mpirun(2, Worker("--work", work, "--iters", "16", "--batch", "2", "--stop-on-rank", "1", "--out", Path.Combine(_root, "stop.json")));
        Assert.That(run.ExitCode, Is.EqualTo(0), run.Output);
        // Rank 0 was never asked to stop, yet it writes the interruption checkpoint (it alone prints).
        Assert.That(run.Output, Does.Contain("interrupted at iteration 0; checkpoint"), run.Output);
        Assert.That(Read(Path.Combine(_root, "stop.json")).LastCheckpoint, Does.EndWith("iter_0000000.safetensors"));
        Assert.That(File.Exists(Path.Combine(work, "iter_0000000.safetensors")), Is.True);
    }

    [Test]
    public void ASegmentationEvaluationSplitOverTwoRanksEqualsTheSingleProcessOne()
    {
        DistributedEvalWorker.GenerateData(_root);
        set_num_threads(1);
        var reference = DistributedEvalWorker.Segmentation(_root, Vim.Core.Distributed.SingleProcessCommunicator.Instance);
        Assert.That(reference.InferredImages, Is.EqualTo(new[] { 0, 1, 2, 3, 4 }));

        var ranks = EvaluateOnTwoRanks("seg");
        Assert.That(ranks[0].InferredImages, Is.EqualTo(new[] { 0, 2, 4 }), "rank 0 runs images i with i mod 2 = 0");
        Assert.That(ranks[1].InferredImages, Is.EqualTo(new[] { 1, 3 }));
        foreach (var rank in ranks)
            Assert.That(rank.Metrics, Is.EqualTo(reference.Metrics), "summed confusion counts give exactly the single-process mIoU, mAcc, aAcc");
        Assert.That(reference.Metrics["aAcc"], Is.GreaterThan(0).And.LessThan(100), "a non-trivial confusion matrix");
    }

    [Test]
    public void ADetectionEvaluationSplitOverTwoRanksIsGatheredAndScoredOnRankZero()
    {
        DistributedEvalWorker.GenerateData(_root);
        set_num_threads(1);
        var untrained = DistributedEvalWorker.Detection(_root, Vim.Core.Distributed.SingleProcessCommunicator.Instance);
        Assert.That(untrained.Detections.Select(d => d.Split('|')[0]).Distinct().Count(), Is.GreaterThan(1), "detections on several images");
        // An untrained detector scores 0 AP on the demo objects, which an empty detection list would score too.
        GroundTruthFromTopDetections(Path.Combine(_root, "coco", "annotations", "instances_val.json"), untrained.Detections.Select(d => d.Split('|')).Select(f =>
            (long.Parse(f[0], CultureInfo.InvariantCulture), long.Parse(f[1], CultureInfo.InvariantCulture), double.Parse(f[2], CultureInfo.InvariantCulture),
                f[3].Split(',').Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray())));
        var reference = DistributedEvalWorker.Detection(_root, Vim.Core.Distributed.SingleProcessCommunicator.Instance);
        Assert.That(reference.Detections, Is.EqualTo(untrained.Detections), "the ground truth does not change the predictions");
        Assert.That(reference.Metrics["bbox_mAP_50"], Is.GreaterThan(0), "metrics an empty detection list would not give");

        var ranks = EvaluateOnTwoRanks("det");
        Assert.That(ranks[0].Detections, Is.EqualTo(reference.Detections), "rank 0 holds all detections, in the single-process order, bit for bit");
        Assert.That(ranks[1].Detections, Is.Empty, "only rank 0 receives the detections (and runs COCOeval)");
        foreach (var rank in ranks)
            Assert.That(rank.Metrics, Is.EqualTo(reference.Metrics), "box and mask AP equal the single-process ones on every rank: rank 1 holds rank 0's");
    }

    /// <summary>
    /// Makes each validation image's ground truth one object exactly where its top-scoring detection (COCO box x, y, w, h)
    /// lies, with that category; other images keep none. An untrained detector then scores an AP above 0.
    /// </summary>
    internal static void GroundTruthFromTopDetections(string annotationFile, IEnumerable<(long ImageId, long CategoryId, double Score, double[] Bbox)> detections)
    {
        var root = JsonNodes.JsonNode.Parse(File.ReadAllText(annotationFile))!;
        var annotations = new JsonNodes.JsonArray();
        var top = detections.GroupBy(d => d.ImageId).Select(image => image.MaxBy(d => d.Score));
        foreach (var detection in top)
        {
            var (x, y, w, h) = (detection.Bbox[0], detection.Bbox[1], detection.Bbox[2], detection.Bbox[3]);
            annotations.Add(new JsonNodes.JsonObject
            {
                ["id"] = annotations.Count + 1, ["image_id"] = detection.ImageId,
                ["category_id"] = detection.CategoryId, ["iscrowd"] = 0, ["area"] = w * h,
                ["bbox"] = new JsonNodes.JsonArray(x, y, w, h),
                ["segmentation"] = new JsonNodes.JsonArray(new JsonNodes.JsonArray(x, y, x + w, y, x + w, y + h, x, y + h)),
            });
        }
        root["annotations"] = annotations;
        File.WriteAllText(annotationFile, root.ToJsonString());
    }

    [Test]
    public void SyncBnOverTwoRanksEqualsBatchNormOnTheConcatenatedBatch()
    {
        const int batch = 3;
        var output = Path.Combine(_root, "syncbn");
        var run = Mpirun(2, ["host", "--assembly", typeof(DistributedSyncBnWorker).Assembly.Location, "--type", typeof(DistributedSyncBnWorker).FullName!,
            "--", "--batch", batch.ToString(System.Globalization.CultureInfo.InvariantCulture), "--out", output]);
        Assert.That(run.ExitCode, Is.EqualTo(0), run.Output);
        var ranks = Enumerable.Range(0, 2).Select(r => JsonSerializer.Deserialize<DistributedSyncBnWorker.Outcome>(File.ReadAllBytes($"{output}.rank{r}.json"))!).ToArray();
        set_num_threads(1);
        var reference = DistributedSyncBnWorker.Reference(ranks: 2, perRankBatch: batch);
        int perRank = reference.Outputs[0].Length / 2;

        for (int step = 0; step < DistributedSyncBnWorker.Steps; step++)
        {
            // Rank r holds rows [r·b, (r+1)·b) of the global batch: its outputs and input gradients are that block of the reference's.
            for (int r = 0; r < 2; r++)
            {
                Assert.That(ranks[r].Outputs[step], Is.EqualTo(reference.Outputs[step].Skip(r * perRank).Take(perRank)).Within(1e-5), $"output, rank {r}, step {step}");
                Assert.That(ranks[r].InputGrads[step], Is.EqualTo(reference.InputGrads[step].Skip(r * perRank).Take(perRank)).Within(1e-5), $"input gradient, rank {r}, step {step}");
            }
        }
        foreach (var rank in ranks)
        {
            Assert.That(rank.ParameterGrads.Keys, Is.EquivalentTo(reference.ParameterGrads.Keys));
            foreach (var (name, grad) in reference.ParameterGrads)
                Assert.That(rank.ParameterGrads[name], Is.EqualTo(grad).Within(2e-4), $"averaged gradient of {name}");
            foreach (var (name, buffer) in reference.Buffers)
                Assert.That(rank.Buffers[name], Is.EqualTo(buffer).Within(1e-5), $"{name}: global mean and unbiased variance of the global batch");
            Assert.That(rank.BatchesTracked, Is.EqualTo(DistributedSyncBnWorker.Steps));
            Assert.That(rank.EvalOutput, Is.EqualTo(reference.EvalOutput).Within(1e-5), "eval mode uses the (synchronised) running statistics");
        }
        // Not vacuous: BatchNorm on rank 0's block alone would centre each output channel of the block on
        // its bias (0.1, 0, −0.3); with the global statistics the block's channel means are elsewhere.
        var block = ranks[0].Outputs[0];
        int plane = block.Length / batch / DistributedSyncBnWorker.Channels;
        var channelMeans = Enumerable.Range(0, DistributedSyncBnWorker.Channels).Select(c => Enumerable.Range(0, batch)
            .SelectMany(n => block.Skip((n * DistributedSyncBnWorker.Channels + c) * plane).Take(plane)).Average()).ToArray();
        Assert.That(channelMeans.Zip(new[] { 0.1, 0, -0.3 }, (m, b) => Math.Abs(m - b)).Max(), Is.GreaterThan(0.05), string.Join(", ", channelMeans));
    }

    [Test]
    public void TrainingWithSyncBnHeadsKeepsTheRanksRunningStatisticsIdentical()
    {
        // The trainer connects the heads' SyncBN layers to the job: their running statistics come from
        // the global batch, hence equal on both ranks; plain BN sees each rank's own images, and the evaluation
        // gives every rank rank 0's statistics (so each share is evaluated by the model rank 0 checkpoints).
        DistributedEvalWorker.GenerateData(_root);
        var ranks = EvaluateOnTwoRanks("seg-train");
        string Stats(int rank, string norm) => ranks[rank].Detections.Single(s => s.StartsWith(norm + ":", StringComparison.Ordinal));
        Assert.That(Stats(0, "syncbn"), Is.EqualTo(Stats(1, "syncbn")), "syncbn: identical running means on both ranks");
        Assert.That(Stats(0, "bn"), Is.EqualTo(Stats(1, "bn")), "bn: rank 0's statistics, broadcast before the evaluation");
        Assert.That(Stats(0, "bn")[3..], Is.Not.EqualTo(Stats(0, "syncbn")[7..]), "not vacuous: rank 0's own batches are not the global batch");
        Assert.That(ranks[0].Metrics, Is.EqualTo(ranks[1].Metrics), "the distributed evaluation after training agrees on both ranks");
    }

    /// <summary>
    /// An epoch-counted detection run (the 11 of 12 demo images that hold objects: 2 iterations an epoch of global batch 4)
    /// with today's data and schedule features at once, on two processes of batch 2 against one process of batch 4: a
    /// param_scheduler list (an iteration LinearLR warmup over 4 iterations, then MultiStepLR at epochs 1 and 3), a
    /// data.pipeline_switch after epoch 2 (iteration 4) from a small absolute_range random_crop that gives samples up
    /// (allow_negative_crop: false) to a flip alone. The lrs are MMEngine's chained closed form, worked out by hand; each
    /// iteration the two ranks read, together, the one process's images; the weights agree to 2e-5 (as the toy run's: the
    /// all-reduce averages two per-rank means where one process takes one mean of four, in float32).
    /// </summary>
    [Test]
    public void AnEpochRunWithParamSchedulerPipelineSwitchAndGivenUpCropsOnTwoRanksEqualsOneProcess()
    {
        DemoDatasetGenerator.Generate(new DemoOptions
        {
            Kind = DemoKind.Coco, OutputDir = Path.Combine(_root, "coco"), TrainImages = 12, ValImages = 2, Width = 64, Height = 64, Seed = 3,
        });
        var config = Path.Combine(_root, "det.yaml");
        File.WriteAllText(config, $$"""
            task: detection
            data:
              type: coco
              root: {{Path.Combine(_root, "coco")}}
              train_split: train
              val_split: val
              num_workers: 0
              crop_size: [64, 64]
              train_pipeline:
                - random_crop: {crop_type: absolute_range, size_range: [8, 16], allow_negative_crop: false}
                - normalize: {}
              pipeline_switch:
                at: 2
                train_pipeline:
                  - random_flip: {prob: 0.5}
                  - normalize: {}
            model: {num_classes: {{DemoDatasetGenerator.ClassNames.Count}}}
            optimizer: {lr: 0.1, weight_decay: 0}
            schedule:
              max_iters: null
              max_epochs: 4
              param_scheduler:
                - {type: LinearLR, start_factor: 0.25, by_epoch: false, begin: 0, end: 4}
                - {type: MultiStepLR, by_epoch: true, begin: 0, end: 4, milestones: [1, 3], gamma: 0.5}
            train: {log_interval: 1, eval_interval: 4, checkpoint_interval: 4}
            runtime: {seed: 3}
            """);
        set_num_threads(1);
        var single = DistributedDetectionDataWorker.Train(config, batchSize: 4, Path.Combine(_root, "single"), Vim.Core.Distributed.SingleProcessCommunicator.Instance);

        var work = Path.Combine(_root, "dist");
        var output = Path.Combine(_root, "dist");
        var run = Mpirun(2, ["host", "--assembly", typeof(DistributedDetectionDataWorker).Assembly.Location, "--type", typeof(DistributedDetectionDataWorker).FullName!,
            "--", "--config", config, "--batch", "2", "--work", work, "--out", output]);
        Assert.That(run.ExitCode, Is.EqualTo(0), run.Output);
        var ranks = Enumerable.Range(0, 2).Select(r => JsonSerializer.Deserialize<DistributedDetectionDataWorker.Outcome>(File.ReadAllBytes($"{output}.rank{r}.json"))!).ToArray();

        // MMEngine's LinearLR: factor 0.25 + 0.75·i/(end − begin − 1) at iterations i < 4, then 1; MultiStepLR halves the lr
        // from epoch 1 (iteration 2) and again from epoch 3 (iteration 6).
        double[] expectedLrs = [0.1 * 0.25, 0.1 * 0.5, 0.1 * 0.75 * 0.5, 0.1 * 0.5, 0.05, 0.05, 0.1 * 0.25, 0.1 * 0.25];
        double[] Lrs(string dir) => [.. JsonLinesLog.Read(Path.Combine(dir, "log.jsonl")).Where(r => r.Mode is null).Select(r => r.Number("lr"))];
        Assert.That(Lrs(Path.Combine(_root, "single")), Is.EqualTo(expectedLrs).Within(1e-12), "MMEngine's chained lrs");
        Assert.That(Lrs(work), Is.EqualTo(Lrs(Path.Combine(_root, "single"))), "the same lr each iteration, bit for bit");

        int[] Switches(string dir) => [.. JsonLinesLog.Read(Path.Combine(dir, "log.jsonl")).Where(r => r.Mode == TrainingLogModes.PipelineSwitch).Select(r => r.Iteration)];
        Assert.That(Switches(Path.Combine(_root, "single")), Is.EqualTo(new[] { 4 }), "after 2 epochs of 2 iterations");
        Assert.That(Switches(work), Is.EqualTo(new[] { 4 }));

        Assert.That(single.ImageIds, Has.Count.EqualTo(8));
        for (int iteration = 0; iteration < 8; iteration++)
            Assert.That(ranks[0].ImageIds[iteration].Concat(ranks[1].ImageIds[iteration]).Order(), Is.EqualTo(single.ImageIds[iteration].Order()),
                $"iteration {iteration}: the two ranks read the one process's images");
        // Not vacuous: the crop gave samples up before the switch (an epoch without refetches reads 8 different images of the
        // 11; image 8 holds no object, so training never reads it), and after it no more.
        long[][] Epoch(int epoch) => [.. single.ImageIds.Skip(2 * epoch).Take(2)];
        Assert.That(Enumerable.Range(0, 2).Any(epoch => Epoch(epoch).SelectMany(ids => ids).Distinct().Count() < 8), "some image stood in for a given-up one");
        foreach (int epoch in new[] { 2, 3 })
            Assert.That(Epoch(epoch).SelectMany(ids => ids).Distinct().Count(), Is.EqualTo(8), $"epoch {epoch}: 8 different images");
        Assert.That(single.ImageIds.SelectMany(ids => ids), Has.No.Member(8L));

        Assert.That(ranks[1].Weights, Is.EqualTo(ranks[0].Weights), "bit for bit the same on both ranks");
        Assert.That(ranks[0].Weights, Is.EqualTo(single.Weights).Within(2e-5));
    }

    private DistributedEvalWorker.Outcome[] EvaluateOnTwoRanks(string kind)
    {
        var output = Path.Combine(_root, kind);
        var run = Mpirun(2, ["host", "--assembly", typeof(DistributedEvalWorker).Assembly.Location, "--type", typeof(DistributedEvalWorker).FullName!,
            "--", "--kind", kind, "--root", _root, "--out", output]);
        Assert.That(run.ExitCode, Is.EqualTo(0), run.Output);
        return [.. Enumerable.Range(0, 2).Select(r => JsonSerializer.Deserialize<DistributedEvalWorker.Outcome>(
            File.ReadAllBytes($"{output}.rank{r}.json"), DistributedEvalWorker.Json)!)];
    }

    private static DistributedToyWorker.Outcome SingleProcess(string work, string? resume, string? loadFrom = null)
    {
        set_num_threads(1);
        using var task = new ToyRegressionTask(dropout: 0, batchSize: 4);
        var config = DistributedToyWorker.Config(16);
        config.LoadFrom = loadFrom;
        new Trainer<(Tensor, Tensor)>(task, config, work, "cfg", TextWriter.Null).Run(resume);
        task.Model.eval();
        using var noGrad = no_grad();
        return new DistributedToyWorker.Outcome(task.Weights(), task.Evaluate()["neg_mse"], null);
    }

    private static string[] Worker(params string[] args) =>
        ["host", "--assembly", typeof(DistributedToyWorker).Assembly.Location, "--type", typeof(DistributedToyWorker).FullName!, "--", .. args];

    private static DistributedToyWorker.Outcome Read(string path) =>
        JsonSerializer.Deserialize<DistributedToyWorker.Outcome>(File.ReadAllBytes(path))!;

    private sealed record Result(int ExitCode, string Output);

    private static Result Mpirun(int processes, params string[] selfTestArgs)
    {
        var run = CliProcess.RunUnderMpirun(processes, Limit, ["dist-selftest", .. selfTestArgs]);
        return new Result(run.ExitCode, run.Output);
    }
}
