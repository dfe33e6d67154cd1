using Vim.Core;

namespace Vim.Data.Datasets;

/// <summary>
/// Decoded pixels handed to a predictor: 8-bit RGB, row-major, channels interleaved (index (y·Width + x)·3 + c, c = 0 red),
/// e.g. a camera frame or a bitmap a program already holds. The array is not copied; do not change it while a prediction
/// reads it.
/// </summary>
public sealed class RgbImage
{
    public RgbImage(int height, int width, byte[] pixels)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        if (height <= 0 || width <= 0)
            throw new VimException($"RGB pixels: the size must be positive, got height {height}, width {width}");
        if (pixels.Length != 3L * height * width)
            throw new VimException($"RGB pixels: {pixels.Length} bytes for a {width}x{height} image; expected 3 x {height} x {width} = {3L * height * width} " +
                "(8-bit RGB, row-major, channels interleaved)");
        (Height, Width, Pixels) = (height, width, pixels);
    }

    public int Height { get; }
    public int Width { get; }
    public byte[] Pixels { get; }
}
