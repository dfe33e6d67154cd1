using Vim.Data.Datasets;

namespace Vim.Data.Transforms;

/// <summary>
/// Pads image, label map (with the ignore value) and masks (with 0) at the bottom/right. Boxes need no
/// change; <see cref="DataSample.ContentHeight"/>/<see cref="DataSample.ContentWidth"/> keep the unpadded size.
/// </summary>
public sealed class Pad : ISampleTransform
{
    private readonly PadOptions _options;

    public Pad(PadOptions options)
    {
        if ((options.Size is null) == (options.SizeDivisor is null))
            throw new ArgumentException("Pad needs exactly one of size [h, w] or size_divisor.");
        if (options.Size is { } s && (s.Length != 2 || s[0] <= 0 || s[1] <= 0))
            throw new ArgumentException($"Pad size [{string.Join(", ", s)}] must be two positive numbers [height, width].");
        if (options.SizeDivisor is <= 0) throw new ArgumentException($"Pad size_divisor {options.SizeDivisor} must be positive.");
        if (options.PadValue is < 0 or > 255 || options.SegPadValue is < 0 or > ushort.MaxValue)
            throw new ArgumentException($"Pad pad_value {options.PadValue} must be 0..255 and seg_pad_value {options.SegPadValue} 0..{ushort.MaxValue}.");
        _options = options;
    }

    public void Apply(DataSample sample, Random random)
    {
        int h = sample.Height, w = sample.Width;
        int newH, newW;
        if (_options.Size is { } size)
        {
            if (h > size[0] || w > size[1])
                throw new InvalidOperationException($"Pad to {size[1]}x{size[0]}: the image is already {w}x{h} (crop first).");
            (newH, newW) = (size[0], size[1]);
        }
        else
        {
            int d = _options.SizeDivisor!.Value;
            newH = (h + d - 1) / d * d;
            newW = (w + d - 1) / d * d;
        }
        if (newH == h && newW == w) return;
        if (sample.NormalizedImage is { } chw) sample.NormalizedImage = ImageOps.PadChw(chw, 3, h, w, newH, newW, _options.PadValue);
        sample.Image = ImageOps.Pad(sample.Image, h, w, 3, newH, newW, (byte)_options.PadValue);
        if (sample.LabelMap is not null) sample.LabelMap = ImageOps.Pad(sample.LabelMap, h, w, 1, newH, newW, (ushort)_options.SegPadValue);
        if (sample.Masks is not null)
            for (int i = 0; i < sample.Masks.Count; i++)
                sample.Masks[i] = SampleGeometry.Moved(sample.Masks[i], newH, newW, sample.Masks[i].Outlines, pixels => ImageOps.Pad(pixels, h, w, 1, newH, newW, (byte)0));
        sample.Height = newH;
        sample.Width = newW;
    }
}
