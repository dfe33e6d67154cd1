using System.Globalization;
using System.Text;
using System.Text.Json;
using Vim.Core.IO;
using Vim.Core.Models;
using static TorchSharp.torch;

namespace Vim.Core.Diagnostics;

/// <summary>One module's row: its parameters and the FLOPs of it and its descendants per forward.</summary>
/// <param name="Path">Dotted module path as in the state dict; "" is the whole model.</param>
/// <param name="Depth">Number of path components (0 for the model).</param>
public sealed record ModuleComplexity(string Path, int Depth, long Parameters, double Flops);

/// <summary>
/// Parameters and FLOPs of a model by module, what fvcore's flop_count_table and mmengine's complexity table show:
/// counted by a <see cref="FlopCounter"/> over one or more real forwards (FLOPs are the mean per forward) and
/// written as a table or as JSON.
/// </summary>
/// <param name="Target">What was counted (a model name or a config file).</param>
/// <param name="Input">What the forwards were given, in words (shape and source).</param>
/// <param name="Forwards">How many forwards (or images) were counted; every FLOP figure is their mean.</param>
/// <param name="Modules">Every module that has parameters or FLOPs, in module order (the model first).</param>
/// <param name="ByOperator">FLOPs per forward of each operator kind, largest first.</param>
/// <param name="NotRun">The largest subtrees owning parameters that no counted forward ran (fvcore's "uncalled modules"):
/// their FLOPs are missing from the count, e.g. a mask head with no detection to run on, or a training-only auxiliary head.</param>
public sealed record ModelComplexity(string Target, string Input, int Forwards, IReadOnlyList<ModuleComplexity> Modules,
    IReadOnlyDictionary<string, double> ByOperator, IReadOnlyList<string> NotRun)
{
    public const string Convention = "one fused multiply-add = one FLOP (fvcore and mmcv count MACs; the DeiT and ViTDet papers report these)";

    public long Parameters => Modules[0].Parameters;

    public double Flops => Modules[0].Flops;

    /// <summary>
    /// The complexity of <paramref name="model"/> from what <paramref name="counter"/> saw over
    /// <paramref name="forwards"/> forwards.
    /// </summary>
    public static ModelComplexity From(nn.Module model, FlopCounter counter, int forwards, string target, string input)
    {
        if (forwards < 1) throw new ArgumentOutOfRangeException(nameof(forwards), forwards, "at least one forward must have been counted");
        var parameters = new Dictionary<string, long>();
        foreach (var (path, module) in counter.Modules)
        {
            long own = module.named_parameters(recurse: false).Sum(p => p.parameter.numel());
            if (own == 0) continue;
            foreach (var ancestor in SelfAndAncestors(path))
                parameters[ancestor] = parameters.GetValueOrDefault(ancestor) + own;
        }
        var flops = new Dictionary<string, long>();
        foreach (var (module, count) in counter.ByModule)
            foreach (var path in SelfAndAncestors(module))
                flops[path] = flops.GetValueOrDefault(path) + count;

        var rows = new List<ModuleComplexity>();
        foreach (var (path, _) in counter.Modules)
        {
            long ownParameters = parameters.GetValueOrDefault(path);
            long ownFlops = flops.GetValueOrDefault(path);
            if (path.Length > 0 && ownParameters == 0 && ownFlops == 0) continue;
            rows.Add(new ModuleComplexity(path, Depth(path), ownParameters, ownFlops / (double)forwards));
        }
        var byOperator = counter.ByOperator.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key, StringComparer.Ordinal)
            .ToDictionary(kv => kv.Key, kv => kv.Value / (double)forwards);
        return new ModelComplexity(target, input, forwards, rows, byOperator, LargestSubtreesNotRun(counter, parameters));
    }

    /// <summary>
    /// The largest subtrees holding parameters in which no module ran (a module's scope never opened): a whole
    /// auxiliary head is named once rather than each of its layers.
    /// </summary>
    private static List<string> LargestSubtreesNotRun(FlopCounter counter, IReadOnlyDictionary<string, long> parameters)
    {
        // The model itself is what was run.
        var ranInside = new HashSet<string> { "" };
        foreach (var path in counter.EnteredModules)
            foreach (var ancestor in SelfAndAncestors(path))
                ranInside.Add(ancestor);
        return counter.Modules.Select(m => m.Path)
            .Where(path => path.Length > 0 && parameters.ContainsKey(path) && !ranInside.Contains(path) && ranInside.Contains(Parent(path)))
            .ToList();
    }

    /// <summary>
    /// Counts one forward of <paramref name="model"/> on <paramref name="images"/> in eval mode without autograd: a
    /// classifier, a backbone or a feature pyramid of the registry (any module taking one image batch).
    /// </summary>
    public static ModelComplexity OfForward(nn.Module model, Tensor images, string target, string input)
    {
        bool wasTraining = model.training;
        model.eval();
        try
        {
            using var noGrad = no_grad();
            using var counter = FlopCounter.Start(model);
            using (var scope = NewDisposeScope())
            {
                switch (model)
                {
                    case nn.Module<Tensor, Tensor> single:
                        single.call(images);
                        break;
                    case nn.Module<Tensor, IReadOnlyList<FeatureMap>> pyramid:
                        pyramid.call(images);
                        break;
                    default:
                        throw new VimException($"{target}: a {model.GetType().Name} does not take an image batch; count it from a config instead");
                }
            }
            return From(model, counter, forwards: 1, target, input);
        }
        finally
        {
            if (wasTraining) model.train();
        }
    }

    /// <summary>The table down to <paramref name="maxDepth"/>, with totals, operators and modules that did not run.</summary>
    public string Table(int maxDepth)
    {
        var rows = Shown(maxDepth).ToList();
        var names = rows.Select(r => new string(' ', r.Depth) + (r.Depth == 0 ? "model" : r.Path)).ToList();
        var parameterCells = rows.Select(r => Human(r.Parameters)).ToList();
        var flopCells = rows.Select(r => Human(r.Flops)).ToList();
        var shareCells = rows.Select(r => Share(r.Flops)).ToList();
        int nameWidth = Math.Max("module".Length, names.Max(n => n.Length));
        int parameterWidth = Math.Max("#parameters".Length, parameterCells.Max(c => c.Length));
        int flopWidth = Math.Max("#FLOPs".Length, flopCells.Max(c => c.Length));
        int shareWidth = Math.Max("share".Length, shareCells.Max(c => c.Length));
        var text = new StringBuilder();
        text.AppendLine($"| {"module".PadRight(nameWidth)} | {"#parameters".PadLeft(parameterWidth)} | {"#FLOPs".PadLeft(flopWidth)} | {"share".PadLeft(shareWidth)} |");
        text.AppendLine($"|:{new string('-', nameWidth + 1)}|{new string('-', parameterWidth + 1)}:|{new string('-', flopWidth + 1)}:|{new string('-', shareWidth + 1)}:|");
        for (int i = 0; i < rows.Count; i++)
            text.AppendLine($"| {names[i].PadRight(nameWidth)} | {parameterCells[i].PadLeft(parameterWidth)} | {flopCells[i].PadLeft(flopWidth)} | {shareCells[i].PadLeft(shareWidth)} |");
        text.AppendLine();
        var perForward = Forwards == 1 ? "per forward" : $"per forward, mean of {Forwards} forwards";
        text.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"total: {Parameters:N0} parameters, {Flops:N0} FLOPs {perForward} ({Flops / 1e9:0.###} GFLOPs); input {Input}"));
        text.AppendLine("by operator: " + string.Join(", ", ByOperator.Select(kv => $"{kv.Key} {Human(kv.Value)} ({Share(kv.Value)})")));
        text.AppendLine($"convention: {Convention}.");
        if (NotRun.Count > 0)
            text.AppendLine($"not run (their FLOPs are missing): {string.Join(", ", NotRun)}");
        return text.ToString();
    }

    /// <summary>Writes the rows down to <paramref name="maxDepth"/> and the totals as JSON, atomically.</summary>
    public void WriteJson(string path, int maxDepth)
    {
        var document = new
        {
            target = Target,
            input = Input,
            forwards = Forwards,
            convention = Convention,
            parameters = Parameters,
            flops = Flops,
            by_operator = ByOperator,
            modules = Shown(maxDepth).Select(r => new { path = r.Path, depth = r.Depth, parameters = r.Parameters, flops = r.Flops, share = Flops > 0 ? r.Flops / Flops : double.NaN }),
            not_run = NotRun,
        };
        AtomicFile.WriteText(path, JsonSerializer.Serialize(document, MetricJson.Indented) + "\n");
    }

    private IEnumerable<ModuleComplexity> Shown(int maxDepth) => Modules.Where(r => r.Depth <= maxDepth);

    private string Share(double flops) => Flops > 0 ? (100 * flops / Flops).ToString("0.0", CultureInfo.InvariantCulture) + "%" : "-";

    /// <summary>fvcore's style: 3 decimals with K, M or G.</summary>
    private static string Human(double value) => value switch
    {
        >= 1e9 => (value / 1e9).ToString("0.###", CultureInfo.InvariantCulture) + "G",
        >= 1e6 => (value / 1e6).ToString("0.###", CultureInfo.InvariantCulture) + "M",
        >= 1e3 => (value / 1e3).ToString("0.###", CultureInfo.InvariantCulture) + "K",
        _ => value.ToString("0.#", CultureInfo.InvariantCulture),
    };

    private static string Parent(string path)
    {
        int dot = path.LastIndexOf('.');
        return dot < 0 ? "" : path[..dot];
    }

    private static int Depth(string path) => path.Length == 0 ? 0 : path.Count(c => c == '.') + 1;

    private static IEnumerable<string> SelfAndAncestors(string path)
    {
        yield return path;
        while (path.Length > 0)
        {
            path = Parent(path);
            yield return path;
        }
    }
}
