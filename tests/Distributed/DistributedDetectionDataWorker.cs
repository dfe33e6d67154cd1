using System.Text.Json;
using TorchSharp;
using Vim.Core.Config;
using Vim.Core.Distributed;
using Vim.Core.Engine;
using Vim.Data.Loading;
using Vim.Detection;
using static TorchSharp.torch;

namespace Vim.Tests.Distributed;

/// <summary>
/// Runs on every rank under mpirun, hosted by `vim dist-selftest host` (and in the test's own process for the one-process
/// reference): trains a detection config's real training data — its loader, train_pipeline, data.pipeline_switch, epoch
/// length and schedule.param_scheduler — through the trainer, with a four-weight linear fit in place of the detector.
/// The detector's losses do not split over ranks (per-rank loss normalisation, sampling from the global generator,
/// batches padded to the largest image of each rank), so only a model whose loss is a mean of per-image terms can show
/// that N ranks of batch b train exactly what one process of batch N·b does.
/// Arguments: --config FILE --batch B --work DIR --out FILE; rank r writes FILE.rank&lt;r&gt;.json.
/// </summary>
public static class DistributedDetectionDataWorker
{
    /// <summary>The final weights, and per iteration the image ids of the rank's batch, in batch order.</summary>
    public sealed record Outcome(float[] Weights, List<long[]> ImageIds);

    public static int Run(ICommunicator world, string[] args)
    {
        args = args.SkipWhile(a => a == "--").ToArray();
        string Option(string key) => args[Array.IndexOf(args, key) + 1];
        set_num_threads(1);
        var outcome = Train(Option("--config"), int.Parse(Option("--batch"), System.Globalization.CultureInfo.InvariantCulture), Option("--work"), world);
        var path = $"{Option("--out")}.rank{world.Rank.ToString(System.Globalization.CultureInfo.InvariantCulture)}.json";
        File.WriteAllBytes(path + ".tmp", JsonSerializer.SerializeToUtf8Bytes(outcome));
        File.Move(path + ".tmp", path, overwrite: true);
        return 0;
    }

    public static Outcome Train(string configFile, int batchSize, string workDir, ICommunicator world)
    {
        var config = ExperimentConfig.Load(configFile, [$"data.batch_size={batchSize.ToString(System.Globalization.CultureInfo.InvariantCulture)}"]).Config;
        using var task = new LinearFitTask(config);
        // Rank 1 starts from other weights: the run is only right if the trainer's start-up broadcast gives it rank 0's.
        if (world.Rank == 1)
            using (no_grad())
                foreach (var p in task.Model.parameters()) p.add_(0.5f);
        new Trainer<Batch>(task, config, workDir, configFile, Console.Out, world).Run(null);
        return new Outcome(task.Model.parameters().SelectMany(p => p.data<float>().ToArray()).ToArray(), task.ImageIds);
    }

    /// <summary>
    /// Fits, per image, the fraction of its (cropped) area its boxes cover from its three channel means and its box
    /// count: the loss is the mean of per-image squared errors, so ranks' averaged gradients are the global batch's.
    /// </summary>
    private sealed class LinearFitTask : ITrainingTask<Batch>
    {
        private readonly ExperimentConfig _config;
        private readonly DetectionData _data;
        private readonly nn.Module<Tensor, Tensor> _fit;

        public LinearFitTask(ExperimentConfig config)
        {
            _config = config;
            _data = new DetectionData(config);
            torch.manual_seed(11);
            _fit = nn.Linear(4, 1);
        }

        public List<long[]> ImageIds { get; } = [];

        public nn.Module Model => _fit;

        public int NumBackboneLayers => 1;

        public string PrimaryMetric => "neg_weight_norm";

        public IBatchSource<Batch> OpenTrainingData(int seed, DataPosition start, DataShard shard) =>
            new LoaderBatchSource(_data.TrainingLoader(seed, shard), start, shard.GlobalBatch(_config.Data.BatchSize),
                _data.PipelineSwitch is null ? null : () => _data.SwitchedTrainingLoader(seed, shard));

        public IReadOnlyDictionary<string, Tensor> Losses(Batch batch)
        {
            using (batch)
            {
                ImageIds.Add([.. batch.Metas.Select(m => m.ImageId)]);
                var features = new float[batch.Count * 4];
                var covered = new float[batch.Count];
                for (int i = 0; i < batch.Count; i++)
                {
                    var (height, width) = (batch.Metas[i].ContentHeight, batch.Metas[i].ContentWidth);
                    using var scope = torch.NewDisposeScope();
                    var content = batch.Images[i].narrow(1, 0, height).narrow(2, 0, width);
                    var means = content.mean([1, 2]).data<float>().ToArray();
                    means.CopyTo(features, i * 4);
                    var boxes = batch.Targets![i].Boxes;
                    features[i * 4 + 3] = boxes.shape[0] / 4f;
                    covered[i] = boxes.shape[0] == 0 ? 0
                        : ((boxes[.., 2] - boxes[.., 0]) * (boxes[.., 3] - boxes[.., 1])).sum().item<float>() / (height * width);
                }
                var device = _fit.parameters().First().device;
                var prediction = _fit.call(tensor(features, [batch.Count, 4], device: device)).squeeze(1);
                var loss = (prediction - tensor(covered, device: device)).square().mean();
                return new Dictionary<string, Tensor> { ["loss_fit"] = loss };
            }
        }

        public IReadOnlyDictionary<string, double> Evaluate()
        {
            using var noGrad = no_grad();
            double norm = Math.Sqrt(_fit.parameters().Sum(p => p.square().sum().item<float>()));
            return new Dictionary<string, double> { [PrimaryMetric] = -norm };
        }

        public void Dispose() => _fit.Dispose();
    }
}
