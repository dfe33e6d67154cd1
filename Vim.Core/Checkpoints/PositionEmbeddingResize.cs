using TorchSharp;
using static TorchSharp.torch;

namespace Vim.Core.Checkpoints;

/// <summary>
/// Adapts a checkpoint's absolute position embedding (1, M [+1], D) to another patch grid: the patch
/// rows are bicubically interpolated (align_corners false) as a 2-D grid, the class-token row is
/// taken out first and put back at its slot for the new grid. The official Vim code assumes the class
/// row is row 0 even for the middle class token; here the slot is explicit, so the class row is never
/// interpolated as if it were a patch.
/// </summary>
public static class PositionEmbeddingResize
{
    /// <param name="positionEmbedding">(1, rows, D); rows = gridH·gridW, plus one with a class token.</param>
    /// <param name="target">The new patch grid (height, width).</param>
    /// <param name="slot">Where the class-token row sits, before and after.</param>
    /// <param name="source">The stored grid; by default the square grid the patch rows form.</param>
    public static Tensor Resize(Tensor positionEmbedding, (int Height, int Width) target, ClassTokenSlot slot,
        (int Height, int Width)? source = null, string name = "pos_embed")
    {
        if (positionEmbedding.dim() != 3 || positionEmbedding.shape[0] != 1)
            throw new VimException($"{name}: expected shape [1, tokens, dim], got [{string.Join(", ", positionEmbedding.shape)}]");
        if (target.Height <= 0 || target.Width <= 0)
            throw new VimException($"{name}: target grid {target.Height}x{target.Width} must be positive");
        var rows = positionEmbedding.shape[1];
        var dim = positionEmbedding.shape[2];
        var extra = slot == ClassTokenSlot.None ? 0 : 1;
        var patches = rows - extra;
        var grid = source ?? SquareGrid(patches, name, slot);
        if ((long)grid.Height * grid.Width != patches)
            throw new VimException($"{name}: source grid {grid.Height}x{grid.Width} needs {grid.Height * grid.Width} patch rows, the table has {patches} (+{extra} class row)");

        using var scope = NewDisposeScope();
        var classRow = ClassRowIndex(slot, patches);
        Tensor patchRows = positionEmbedding;
        Tensor? classEmbedding = null;
        if (classRow >= 0)
        {
            classEmbedding = positionEmbedding.narrow(1, classRow, 1);
            patchRows = cat([positionEmbedding.narrow(1, 0, classRow), positionEmbedding.narrow(1, classRow + 1, patches - classRow)], 1);
        }

        Tensor resized;
        if (grid == target)
            resized = patchRows.clone();
        else
        {
            // Interpolate in float32 whatever the stored dtype, then return to it.
            var image = patchRows.to_type(ScalarType.Float32).reshape(1, grid.Height, grid.Width, dim).permute(0, 3, 1, 2);
            var scaled = nn.functional.interpolate(image, size: [target.Height, target.Width], mode: InterpolationMode.Bicubic, align_corners: false);
            resized = scaled.permute(0, 2, 3, 1).reshape(1, (long)target.Height * target.Width, dim).to_type(positionEmbedding.dtype);
        }

        if (classEmbedding is null)
            return resized.MoveToOuterDisposeScope();
        var newClassRow = ClassRowIndex(slot, (long)target.Height * target.Width);
        var newPatches = resized.shape[1];
        return cat([resized.narrow(1, 0, newClassRow), classEmbedding, resized.narrow(1, newClassRow, newPatches - newClassRow)], 1)
            .MoveToOuterDisposeScope();
    }

    private static long ClassRowIndex(ClassTokenSlot slot, long patches) => slot switch
    {
        ClassTokenSlot.Head => 0,
        ClassTokenSlot.Middle => patches / 2,
        _ => -1,
    };

    private static (int Height, int Width) SquareGrid(long patches, string name, ClassTokenSlot slot)
    {
        var side = (int)Math.Round(Math.Sqrt(patches));
        if ((long)side * side != patches)
            throw new VimException($"{name}: {patches} patch rows (class token slot {slot}) do not form a square grid; pass the source grid explicitly");
        return (side, side);
    }
}
