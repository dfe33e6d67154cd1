using System.Text.RegularExpressions;
using TorchSharp.Modules;
using Vim.Core.Config;
using static TorchSharp.torch;

namespace Vim.Core.Engine;

/// <summary>
/// Splits a model's parameters into optimiser groups, as the official recipes do: weight decay exemptions by
/// <see cref="NoDecayRule"/> (Vim's: biases, norm weights (any 1-D parameter), position embeddings, the class token
/// and the SSM parameters A_log/D and their backward-branch twins; detectron2's; BEiT's); layer-wise learning-rate
/// decay where layer id 0 is the embedding (patch_embed, pos_embed, cls_token), block i of the backbone is i + 1
/// (or, with <see cref="LayerDecayScope.Embeddings"/>, num_layers + 1 like the rest), and everything else (necks,
/// heads) is num_layers + 1, scaled by rate^(num_layers + 1 − id).
/// </summary>
public static partial class ParameterGroupRules
{
    private static readonly string[] NoDecayNames = ["pos_embed", "cls_token", "A_log", "A_b_log", "absolute_pos_embed", "rel_pos"];

    // Backbone blocks are "layers.i." in Vim and "blocks.i." in DeiT; a prefix (backbone.) may precede them.
    [GeneratedRegex(@"(?:^|\.)(?:layers|blocks)\.(\d+)\.")]
    private static partial Regex BlockIndex();

    [GeneratedRegex(@"(?:^|\.)(?:patch_embed|pos_embed|cls_token)(?:\.|$)")]
    private static partial Regex Embedding();

    [GeneratedRegex(@"(?:^|\.)(?:D|D_b)$")]
    private static partial Regex SsmSkip();

    /// <param name="torchNormParameters">For <see cref="NoDecayRule.Detectron2"/>: the names of the parameters of torch's
    /// own norm layers (<see cref="TorchNormParameters"/>).</param>
    public static bool IsNoDecay(string name, Tensor parameter, NoDecayRule rule = NoDecayRule.Vim, IReadOnlySet<string>? torchNormParameters = null) => rule switch
    {
        NoDecayRule.Detectron2 => (torchNormParameters?.Contains(name) ?? false) || name == "pos_embed" || name.EndsWith(".pos_embed", StringComparison.Ordinal),
        NoDecayRule.Beit => parameter.dim() <= 1 || name.EndsWith(".bias", StringComparison.Ordinal) || name is "pos_embed" or "cls_token",
        _ => parameter.dim() <= 1
             || SsmSkip().IsMatch(name)
             || NoDecayNames.Any(n => name.EndsWith(n, StringComparison.Ordinal) || name.Contains(n + ".", StringComparison.Ordinal)),
    };

    /// <summary>
    /// The parameters of torch's norm layer types (detectron2's norm_module_types: BatchNorm, SyncBatchNorm, GroupNorm,
    /// InstanceNorm, LayerNorm, LocalResponseNorm); our RMSNorm and channel LayerNorm2d are not among them, as Mamba's
    /// RMSNorm and detectron2's own channel LayerNorm are not.
    /// </summary>
    public static IReadOnlySet<string> TorchNormParameters(nn.Module model)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (moduleName, module) in model.named_modules())
        {
            if (module is not (BatchNorm1d or BatchNorm2d or BatchNorm3d or GroupNorm or InstanceNorm1d or InstanceNorm2d or InstanceNorm3d
                or LayerNorm or LocalResponseNorm or Vim.Core.Distributed.SyncBatchNorm)) continue;
            foreach (var (parameterName, _) in module.named_parameters(recurse: false))
                names.Add(moduleName.Length == 0 ? parameterName : $"{moduleName}.{parameterName}");
        }
        return names;
    }

    /// <summary>The layer id of a parameter for layer-wise decay (see the class remarks).</summary>
    public static int LayerId(string name, int numLayers, LayerDecayScope scope = LayerDecayScope.Blocks)
    {
        var block = BlockIndex().Match(name);
        if (block.Success) return scope == LayerDecayScope.Blocks ? int.Parse(block.Groups[1].Value) + 1 : numLayers + 1;
        if (Embedding().IsMatch(name)) return 0;
        return numLayers + 1;
    }

    /// <summary>Backbone depth as the parameter names show it (highest block index + 1; 0 without blocks).</summary>
    public static int CountBlocks(IEnumerable<string> parameterNames) =>
        parameterNames.Select(n => BlockIndex().Match(n)).Where(m => m.Success).Select(m => int.Parse(m.Groups[1].Value) + 1).DefaultIfEmpty(0).Max();

    /// <summary>
    /// Builds a model's groups keyed by (decay, layer, optimizer.custom_keys entry); parameters that do not require grad,
    /// and those a custom key gives lr_mult 0 (<see cref="Freeze"/>), are left out.
    /// </summary>
    public static IReadOnlyList<ParameterGroup> Build(nn.Module model, OptimizerConfig config, int numLayers) =>
        Build(model.named_parameters(), config, numLayers, config.NoDecay == NoDecayRule.Detectron2 ? TorchNormParameters(model) : null);

    /// <summary>
    /// The optimizer.custom_keys entry a parameter takes, as mmengine's DefaultOptimWrapperConstructor picks it: the
    /// longest key the name contains, ties to the first in ordinal order; null when none does.
    /// </summary>
    public static string? CustomKeyOf(string name, OptimizerConfig config) =>
        config.CustomKeys.Keys
            .Where(key => name.Contains(key, StringComparison.Ordinal))
            .OrderByDescending(key => key.Length).ThenBy(key => key, StringComparer.Ordinal)
            .FirstOrDefault();

    /// <summary>Whether optimizer.custom_keys freezes the parameter: the key it takes gives lr_mult 0.</summary>
    public static bool IsFrozen(string name, OptimizerConfig config) =>
        CustomKeyOf(name, config) is { } key && config.CustomKeys[key].LrMult == 0;

    /// <summary>
    /// Turns off the gradient of every parameter a custom key gives lr_mult 0 (mmdet's frozen stages: no gradient is
    /// computed, reduced across processes, clipped or applied) and returns their names. Run before the optimiser and the
    /// gradient reducer are built. Every custom key must match a parameter: a typo would otherwise change nothing.
    /// </summary>
    public static IReadOnlyList<string> Freeze(nn.Module model, OptimizerConfig config)
    {
        var named = model.named_parameters().ToList();
        RequireEveryCustomKeyMatches(named.Select(p => p.name).ToList(), config);
        var frozen = new List<string>();
        foreach (var (name, parameter) in named)
        {
            if (!IsFrozen(name, config)) continue;
            parameter.requires_grad_(false);
            frozen.Add(name);
        }
        return frozen;
    }

    private static void RequireEveryCustomKeyMatches(IReadOnlyList<string> names, OptimizerConfig config)
    {
        foreach (var key in config.CustomKeys.Keys)
            if (!names.Any(name => name.Contains(key, StringComparison.Ordinal)))
                throw new VimException($"optimizer.custom_keys.{key} matches no parameter of the model; keys are parts of parameter names " +
                    $"(e.g. {string.Join(", ", names.Take(3))}; `vim config lr` lists the groups)");
    }

    /// <param name="torchNorms">For <see cref="NoDecayRule.Detectron2"/>: which of the parameters belong to torch norm layers.</param>
    public static IReadOnlyList<ParameterGroup> Build(IEnumerable<(string Name, Parameter Parameter)> parameters, OptimizerConfig config, int numLayers,
        IReadOnlySet<string>? torchNorms = null)
    {
        var named = parameters.ToList();
        if (config.CustomKeys.Count > 0) RequireEveryCustomKeyMatches(named.Select(p => p.Name).ToList(), config);
        var groups = new Dictionary<(bool NoDecay, int LayerId, string CustomKey), List<(string, Parameter)>>();
        bool layerDecay = config.LayerDecayRate != 1.0;
        foreach (var (name, parameter) in named)
        {
            if (!parameter.requires_grad) continue;
            if (IsFrozen(name, config)) continue;
            var customKey = CustomKeyOf(name, config);
            var key = (IsNoDecay(name, parameter, config.NoDecay, torchNorms), layerDecay ? LayerId(name, numLayers, config.LayerDecayScope) : 0, customKey ?? "");
            if (!groups.TryGetValue(key, out var list)) groups[key] = list = [];
            list.Add((name, parameter));
        }
        return groups
            .OrderBy(g => g.Key.LayerId).ThenBy(g => g.Key.NoDecay).ThenBy(g => g.Key.CustomKey, StringComparer.Ordinal)
            .Select(g =>
            {
                var multipliers = g.Key.CustomKey.Length == 0 ? null : config.CustomKeys[g.Key.CustomKey];
                return new ParameterGroup(
                    $"layer{g.Key.LayerId}_{(g.Key.NoDecay ? "no_decay" : "decay")}{(multipliers is null ? "" : $"_{g.Key.CustomKey}")}",
                    g.Value,
                    (g.Key.NoDecay ? 0.0 : config.WeightDecay) * (multipliers?.DecayMult ?? 1.0),
                    (layerDecay ? Math.Pow(config.LayerDecayRate, numLayers + 1 - g.Key.LayerId) : 1.0) * (multipliers?.LrMult ?? 1.0));
            })
            .ToList();
    }
}
