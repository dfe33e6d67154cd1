using System.CommandLine;
using System.Globalization;
using Vim.Core;
using Vim.Core.Checkpoints;
using static TorchSharp.torch;

namespace Vim.Tools.Commands;

/// <summary>`vim checkpoint inspect|convert|publish`: look into .pth / safetensors files without PyTorch; release trained weights.</summary>
public static class CheckpointCommand
{
    public static Command Create()
    {
        var command = new Command("checkpoint", "Inspect and convert PyTorch (.pth zip) and safetensors checkpoints.");
        command.Subcommands.Add(CreateInspect());
        command.Subcommands.Add(CreateConvert());
        command.Subcommands.Add(CreatePublish());
        return command;
    }

    private static Command CreateInspect()
    {
        var file = new Argument<string>("file") { Description = "A torch.save .pth file or a .safetensors file." };
        var inspect = new Command("inspect", "Print one line per tensor: name<TAB>dtype<TAB>[shape]<TAB>sum of elements (float64, 6 decimals), in file order.");
        inspect.Arguments.Add(file);
        inspect.SetAction(parse => ReportErrors(() =>
        {
            using var checkpoint = CheckpointFile.Load(parse.GetValue(file)!);
            var output = Console.Out;
            foreach (var line in InspectLines(checkpoint))
                output.WriteLine(line);
        }));
        return inspect;
    }

    private static Command CreateConvert()
    {
        var input = new Argument<string>("input") { Description = "The checkpoint to read (.pth or .safetensors)." };
        var output = new Argument<string>("output") { Description = "The .safetensors file to write." };
        var key = new Option<string?>("--key")
        {
            Description = "Convert only the tensors under this dotted key (e.g. model, model_ema), renamed relative to it. Default: every tensor, full names.",
        };
        var convert = new Command("convert", "Write a checkpoint's tensors (or one sub-dict of them) to safetensors.");
        convert.Arguments.Add(input);
        convert.Arguments.Add(output);
        convert.Options.Add(key);
        convert.SetAction(parse => ReportErrors(() =>
        {
            var inputPath = parse.GetValue(input)!;
            var outputPath = parse.GetValue(output)!;
            var selected = parse.GetValue(key);
            OutputFolder.CheckFile(outputPath, "OUT");
            using var checkpoint = CheckpointFile.Load(inputPath);
            var tensors = checkpoint.StateDict(selected);
            var metadata = new Dictionary<string, string> { ["format"] = "pt", ["source"] = Path.GetFileName(inputPath) };
            if (!string.IsNullOrEmpty(selected))
                metadata["key"] = selected;
            SafeTensorsFormat.Write(outputPath, tensors, metadata);
            var bytes = tensors.Values.Sum(t => t.NumberOfElements * t.ElementSize);
            Console.WriteLine($"wrote {tensors.Count} tensors ({bytes / 1e6:F1} MB) to {outputPath}");
        }));
        return convert;
    }

    private static Command CreatePublish()
    {
        var input = new Argument<string>("input") { Description = "A training checkpoint `vim train` wrote (iter_*.safetensors, best.safetensors)." };
        var output = new Argument<string>("output") { Description = "Where to write, e.g. release/upernet_vim_tiny.safetensors: the file is named <name>-<first 8 hex digits of its SHA-256>.safetensors beside it." };
        var ema = new Option<bool>("--ema") { Description = "Publish the checkpoint's EMA weights (train.ema_momentum) instead of its trained ones." };
        var publish = new Command("publish", "Keep a training checkpoint's weights alone, for release (mmdet's publish_model.py): the optimiser state and training " +
            "position dropped, the config kept, the checksums verified; `vim test`, `vim infer` and load_from read the result, --resume refuses it.");
        publish.Arguments.Add(input);
        publish.Arguments.Add(output);
        publish.Options.Add(ema);
        publish.SetAction(parse => ReportErrors(() =>
        {
            var inputPath = parse.GetValue(input)!;
            CheckpointFile.RequireFile(inputPath);
            OutputFolder.CheckFile(parse.GetValue(output)!, "OUT");
            var written = Vim.Core.Engine.TrainingCheckpoint.Publish(inputPath, parse.GetValue(output)!, parse.GetValue(ema));
            Console.WriteLine($"published {written} ({new FileInfo(written).Length / 1e6:F1} MB; {inputPath} is {new FileInfo(inputPath).Length / 1e6:F1} MB)");
            if (Vim.Core.Engine.TrainingCheckpoint.EvaluatedWeightsNote(inputPath, parse.GetValue(ema)) is { } weightsNote) Console.WriteLine(weightsNote);
        }));
        return publish;
    }

    /// <summary>The `inspect` lines of a loaded checkpoint, one per tensor in file order.</summary>
    public static IEnumerable<string> InspectLines(CheckpointFile checkpoint) =>
        checkpoint.Tensors.Select(t => FormatInspectLine(t.Key, t.Value));

    /// <summary>name TAB dtype TAB [d0, d1, ...] TAB sum, the sum taken in float64 and printed with 6 decimals.</summary>
    public static string FormatInspectLine(string name, Tensor tensor)
    {
        using var scope = NewDisposeScope();
        var sum = RepeatsStorageElements(tensor, out var span)
            ? SumOfRepeatingView(tensor, span)
            : tensor.to_type(ScalarType.Float64).sum().item<double>();
        return $"{name}\t{CheckpointDTypes.TorchName(tensor.dtype)}\t[{string.Join(", ", tensor.shape)}]\t{sum.ToString("F6", CultureInfo.InvariantCulture)}";
    }

    /// <summary>
    /// True for a view with more elements than the storage it spans (expand(), stride 0), which a .pth may hold; the
    /// span is the number of storage elements from the view's first to its last.
    /// </summary>
    private static bool RepeatsStorageElements(Tensor tensor, out long span)
    {
        span = 1;
        if (tensor.NumberOfElements == 0)
            return false;
        var shape = tensor.shape;
        var stride = tensor.stride();
        for (var i = 0; i < shape.Length; i++)
            span += (shape[i] - 1) * stride[i];
        return tensor.NumberOfElements > span;
    }

    /// <summary>
    /// The float64 sum of a view that repeats storage elements, without copying it out (an expanded 4-byte storage can
    /// stand for terabytes): each storage element in the span times how many of the view's indices reach it. The counts
    /// start at 1 on the first element; a dimension of size n and stride s spreads them over the n steps of s, a running
    /// sum along each residue class mod s.
    /// </summary>
    private static double SumOfRepeatingView(Tensor view, long span)
    {
        var shape = view.shape;
        var stride = view.stride();
        var counts = zeros(span, dtype: ScalarType.Int64);
        counts[0] = 1;
        double repeats = 1;
        for (var i = 0; i < shape.Length; i++)
        {
            var (size, step) = (shape[i], stride[i]);
            if (size == 1)
                continue;
            if (step == 0)
            {
                repeats *= size;
                continue;
            }
            var rows = (span + step - 1) / step;
            var byResidue = nn.functional.pad(counts, [0, rows * step - span]).reshape(rows, step).cumsum(0);
            // Row r of the running sum minus row r - size: the counts of the last `size` rows of each residue class.
            var dropped = nn.functional.pad(byResidue, [0, 0, size, 0]).narrow(0, 0, rows);
            counts = (byResidue - dropped).reshape(-1).narrow(0, 0, span);
        }
        var values = view.as_strided([span], [1], view.storage_offset()).to_type(ScalarType.Float64);
        return (counts.to_type(ScalarType.Float64) * values).sum().item<double>() * repeats;
    }

    private static int ReportErrors(Action action)
    {
        try
        {
            action();
            return 0;
        }
        catch (VimException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }
}
