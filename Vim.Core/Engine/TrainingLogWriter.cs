using System.Globalization;
using Vim.Core.Config;
using Vim.Core.IO.TensorBoard;

namespace Vim.Core.Engine;

/// <summary>
/// Where the trainer's records go (runtime.vis_backends, MMEngine's visualizer backends): always work_dir/log.jsonl
/// (local), and with tensorboard the same numbers in a TensorBoard event file of work_dir/tensorboard/, one file per
/// launch (a resumed run adds one; TensorBoard merges a folder's files into one run). Tags follow MMEngine's
/// <c>log_with_hierarchy</c>: a training record's fields as <c>train/KEY</c> (train/loss, train/lr, train/time,
/// train/data_time, train/memory_mb, train/decode.loss_ce, …), an evaluation's metrics as <c>val/KEY</c> (val/mIoU,
/// val/bbox_mAP, …), each at the record's iteration as its step. The merged config is the text summary <c>config</c>
/// at the launch's first step; an early stop (train.early_stopping) is the text summary <c>early_stop</c>, its reason, at its iteration.
/// </summary>
public sealed class TrainingLogWriter : IDisposable
{
    public const string LocalFileName = "log.jsonl";
    public const string TensorBoardFolder = "tensorboard";
    public const string TrainingTagPrefix = "train/";
    public const string EvaluationTagPrefix = "val/";
    public const string ConfigTag = "config";
    public const string EarlyStopTag = "early_stop";

    private readonly JsonLinesLog _local;
    private readonly TensorBoardEventFile? _tensorBoard;

    /// <param name="startIteration">The iteration the launch starts from (the resumed checkpoint's, or 0): the config's step.</param>
    public TrainingLogWriter(string workDir, IReadOnlyCollection<VisBackend> backends, string configYaml, int startIteration)
    {
        _local = new JsonLinesLog(Path.Combine(workDir, LocalFileName));
        if (!backends.Contains(VisBackend.Tensorboard)) return;
        try
        {
            _tensorBoard = TensorBoardEventFile.Create(Path.Combine(workDir, TensorBoardFolder));
            _tensorBoard.WriteText(startIteration, ConfigTag, AsCodeBlock(configYaml));
        }
        catch
        {
            _tensorBoard?.Dispose();
            _local.Dispose();
            throw;
        }
    }

    /// <summary>This launch's event file, or null without the tensorboard backend.</summary>
    public string? TensorBoardFile => _tensorBoard?.FilePath;

    /// <summary>
    /// Writes one record to every backend. TensorBoard takes its numbers (as float32, its scalars' type; an undefined
    /// metric stays NaN, which log.jsonl writes as null); a "resume" record at checkpoint iteration N becomes a session
    /// START at step N + 1, so TensorBoard drops what the abandoned launch logged after the checkpoint, as
    /// <see cref="TrainingLogHistory"/> does.
    /// </summary>
    public void Write(IReadOnlyDictionary<string, object?> record)
    {
        _local.Write(record);
        if (_tensorBoard is null) return;
        long step = Convert.ToInt64(record["iter"], CultureInfo.InvariantCulture);
        switch (record.GetValueOrDefault("mode"))
        {
            case null:
                _tensorBoard.WriteScalars(step, Scalars(record, TrainingTagPrefix));
                break;
            case TrainingLogModes.Evaluation:
                _tensorBoard.WriteScalars(step, Scalars(record, EvaluationTagPrefix));
                break;
            case TrainingLogModes.Resume:
                _tensorBoard.WriteSessionStart(step + 1);
                break;
            case TrainingLogModes.EarlyStop:
                _tensorBoard.WriteText(step, EarlyStopTag, record.GetValueOrDefault("message") as string ?? "stopped early");
                break;
            case TrainingLogModes.PipelineSwitch:
                _tensorBoard.WriteText(step, TrainingLogModes.PipelineSwitch, record.GetValueOrDefault("message") as string ?? "pipeline switched");
                break;
        }
    }

    private static List<(string Tag, float Value)> Scalars(IReadOnlyDictionary<string, object?> record, string prefix) =>
        record.Where(field => field.Key != "iter")
            .Select(field => (Tag: prefix + field.Key, Value: field.Value switch
            {
                double d => (float?)d,
                float f => f,
                int i => i,
                long l => l,
                _ => null,
            }))
            .Where(scalar => scalar.Value is not null)
            .Select(scalar => (scalar.Tag, scalar.Value!.Value))
            .ToList();

    /// <summary>The text plugin renders Markdown; indented four spaces, YAML shows as written (its # comments would be headings).</summary>
    private static string AsCodeBlock(string text) =>
        string.Join('\n', text.ReplaceLineEndings("\n").TrimEnd('\n').Split('\n').Select(line => "    " + line));

    public void Dispose()
    {
        _tensorBoard?.Dispose();
        _local.Dispose();
    }
}
