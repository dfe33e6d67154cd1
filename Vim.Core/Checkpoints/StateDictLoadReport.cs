using System.Text;

namespace Vim.Core.Checkpoints;

/// <summary>What a state-dict load did; <see cref="ToString"/> gives a readable summary.</summary>
public sealed record StateDictLoadReport(
    string Source,
    IReadOnlyList<string> Loaded,
    IReadOnlyList<string> Missing,
    IReadOnlyList<string> Unexpected,
    IReadOnlyList<ShapeMismatch> Mismatched,
    IReadOnlyList<string> Ignored)
{
    /// <summary>True when every module key was loaded and every checkpoint key used.</summary>
    public bool IsComplete => Missing.Count == 0 && Unexpected.Count == 0 && Mismatched.Count == 0;

    /// <summary>Checkpoint tensors changed before loading (e.g. "pos_embed: [1, 197, 192] → [1, 4096, 192], …").</summary>
    public IReadOnlyList<string> Adapted { get; init; } = [];

    public override string ToString()
    {
        var text = new StringBuilder();
        text.Append($"{Source}: {Loaded.Count} tensor(s) matched");
        text.Append(IsComplete ? ", nothing missing, unexpected or mismatched" : "");
        if (Ignored.Count > 0)
            text.Append($", ignored {Ignored.Count}");
        text.AppendLine();
        Section(text, "missing in checkpoint (module keeps its values)", Missing);
        Section(text, "unexpected in checkpoint (not in module)", Unexpected);
        Section(text, "shape mismatch (not loaded)", Mismatched.Select(m => m.ToString()).ToList());
        Section(text, "ignored (dropped before loading)", Ignored);
        Section(text, "adapted before loading", Adapted);
        return text.ToString().TrimEnd();
    }

    private static void Section(StringBuilder text, string title, IReadOnlyList<string> keys)
    {
        if (keys.Count == 0)
            return;
        text.AppendLine($"  {title}: {keys.Count}");
        foreach (var key in keys)
            text.AppendLine($"    {key}");
    }
}
