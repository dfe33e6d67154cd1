using System.CommandLine;
using System.Globalization;
using Vim.Core;
using Vim.Core.Checkpoints;
using static TorchSharp.torch;

namespace Vim.Tools.Commands;

/// <summary>`vim checkpoint inspect|convert`: look into .pth / safetensors files without PyTorch.</summary>
public static class CheckpointCommand
{
    public static Command Create()
    {
        var command = new Command("checkpoint", "Inspect and convert PyTorch (.pth zip) and safetensors checkpoints.");
        command.Subcommands.Add(CreateInspect());
        command.Subcommands.Add(CreateConvert());
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

    /// <summary>The `inspect` lines of a loaded checkpoint, one per tensor in file order.</summary>
    public static IEnumerable<string> InspectLines(CheckpointFile checkpoint) =>
        checkpoint.Tensors.Select(t => FormatInspectLine(t.Key, t.Value));

    /// <summary>name TAB dtype TAB [d0, d1, ...] TAB sum, the sum taken in float64 and printed with 6 decimals.</summary>
    public static string FormatInspectLine(string name, Tensor tensor)
    {
        using var scope = NewDisposeScope();
        var sum = tensor.to_type(ScalarType.Float64).sum().item<double>();
        return $"{name}\t{CheckpointDTypes.TorchName(tensor.dtype)}\t[{string.Join(", ", tensor.shape)}]\t{sum.ToString("F6", CultureInfo.InvariantCulture)}";
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
