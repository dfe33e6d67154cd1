using TorchSharp;
using static TorchSharp.torch;

namespace Vim.Core.Models;

/// <summary>
/// Resizes an absolute position embedding (1, extra + rows·cols, D) to another token grid with
/// bicubic interpolation (align_corners false), keeping the class slot where the model expects it.
/// </summary>
public static class PositionEmbeddingResizer
{
    /// <summary>Index of the class token in a sequence of <paramref name="patchCount"/> patches, or −1.</summary>
    public static int ClassIndex(ClassTokenPosition position, int patchCount) => position switch
    {
        ClassTokenPosition.None => -1,
        ClassTokenPosition.Head => 0,
        ClassTokenPosition.Middle => patchCount / 2,
        _ => throw new ArgumentOutOfRangeException(nameof(position)),
    };

    /// <summary>
    /// Resizes <paramref name="posEmbed"/> from the (oldRows × oldCols) grid to (newRows × newCols).
    /// With <see cref="PosEmbedResizeRule.OfficialFirstSlot"/> the official quirk is reproduced
    /// bit for bit (slot 0 taken as the class slot; nothing done when the grid is unchanged).
    /// </summary>
    public static Tensor Resize(Tensor posEmbed, (int Rows, int Cols) oldGrid, (int Rows, int Cols) newGrid,
        ClassTokenPosition classToken, PosEmbedResizeRule rule = PosEmbedResizeRule.ClassSlotAware)
    {
        int extra = classToken == ClassTokenPosition.None ? 0 : 1;
        int oldCount = oldGrid.Rows * oldGrid.Cols;
        if (posEmbed.dim() != 3 || posEmbed.shape[0] != 1 || posEmbed.shape[1] != oldCount + extra)
            throw new VimException($"pos_embed: expected shape [1, {oldCount + extra}, D] for a {oldGrid.Rows}×{oldGrid.Cols} grid with {extra} class slot(s), got [{string.Join(", ", posEmbed.shape)}].");
        if (newGrid.Rows <= 0 || newGrid.Cols <= 0)
            throw new VimException($"pos_embed resize: target grid must be positive, got {newGrid.Rows}×{newGrid.Cols}.");

        using var scope = NewDisposeScope();
        int newCount = newGrid.Rows * newGrid.Cols;
        if (rule == PosEmbedResizeRule.OfficialFirstSlot || extra == 0)
        {
            if (oldGrid == newGrid) return posEmbed.clone().MoveToOuterDisposeScope();
            var head = posEmbed.narrow(1, 0, extra);
            var grid = ResizeGrid(posEmbed.narrow(1, extra, oldCount), oldGrid, newGrid);
            return cat(new[] { head, grid }, 1).MoveToOuterDisposeScope();
        }

        int oldIndex = ClassIndex(classToken, oldCount);
        int newIndex = ClassIndex(classToken, newCount);
        var cls = posEmbed.narrow(1, oldIndex, 1);
        var patches = cat(new[] { posEmbed.narrow(1, 0, oldIndex), posEmbed.narrow(1, oldIndex + 1, oldCount - oldIndex) }, 1);
        var resized = ResizeGrid(patches, oldGrid, newGrid);
        return InsertAt(resized, cls, newIndex).MoveToOuterDisposeScope();
    }

    /// <summary>Inserts (1 or B, 1, D) <paramref name="token"/> before position <paramref name="index"/> of (B, M, D).</summary>
    public static Tensor InsertAt(Tensor sequence, Tensor token, int index)
    {
        using var scope = NewDisposeScope();
        long count = sequence.shape[1];
        var tokenB = token.expand(sequence.shape[0], 1, sequence.shape[2]);
        return cat(new[] { sequence.narrow(1, 0, index), tokenB, sequence.narrow(1, index, count - index) }, 1).MoveToOuterDisposeScope();
    }

    /// <summary>Removes position <paramref name="index"/> from (B, L, D).</summary>
    public static Tensor RemoveAt(Tensor sequence, int index)
    {
        using var scope = NewDisposeScope();
        long count = sequence.shape[1];
        return cat(new[] { sequence.narrow(1, 0, index), sequence.narrow(1, index + 1, count - index - 1) }, 1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The square grid an official checkpoint's table implies (the official code assumes square
    /// pretraining grids): rows = cols = √(entries − class slots).
    /// </summary>
    public static (int Rows, int Cols) SquareGridOf(Tensor posEmbed, ClassTokenPosition classToken)
    {
        int extra = classToken == ClassTokenPosition.None ? 0 : 1;
        long patches = posEmbed.shape[1] - extra;
        int side = (int)Math.Round(Math.Sqrt(patches));
        if ((long)side * side != patches)
            throw new VimException($"pos_embed: {patches} patch rows (class token {classToken}) do not form a square grid; the source grid must be given explicitly");
        return (side, side);
    }

    private static Tensor ResizeGrid(Tensor patches, (int Rows, int Cols) oldGrid, (int Rows, int Cols) newGrid)
    {
        long dim = patches.shape[2];
        // Bicubic interpolation is computed in float32 (half types lack CPU kernels) and cast back.
        var image = patches.to_type(ScalarType.Float32).reshape(1, oldGrid.Rows, oldGrid.Cols, dim).permute(0, 3, 1, 2);
        var resized = nn.functional.interpolate(image, size: new long[] { newGrid.Rows, newGrid.Cols },
            mode: InterpolationMode.Bicubic, align_corners: false);
        return resized.permute(0, 2, 3, 1).reshape(1, (long)newGrid.Rows * newGrid.Cols, dim).to_type(patches.dtype);
    }
}
