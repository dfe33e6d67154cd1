using System.Globalization;
using Vim.Core;
using Vim.Core.Config;
using Vim.Data.Datasets;

namespace Vim.Data.Transforms;

/// <summary>
/// MMDetection's Mosaic (YOLOv4): the sample and three partners, each resized keeping its aspect ratio to fit one tile
/// (img_scale), are placed around a centre drawn from center_ratio_range × img_scale on a canvas of 2 × img_scale filled
/// with pad_val: the sample's bottom-right corner at the centre (top left), then the partners' bottom-left (top right),
/// top-right (bottom left) and top-left (bottom right) corners, each cut where it leaves the canvas, which is where its
/// quadrant ends. Boxes move with their tiles; with bbox_clip_border they are clipped to the canvas; a box that then lies
/// outside it (mmdet's is_inside: no part of it to the right of 0 and left of the width, likewise vertically) is dropped.
/// RLE masks move with the pixels; polygon outlines are scaled and moved exactly and cut to the canvas.
/// </summary>
/// <remarks>
/// Departures from mmdet: boxes and outlines are scaled by the tile's own resize ratio on each axis, int(w·r)/w and
/// int(h·r)/h, as the pixels are (mmdet scales boxes by r: less than a pixel apart), and an object whose mask has nothing
/// left on the canvas is dropped (mmdet keeps it, to a later FilterAnnotations), as every crop of ours drops it.
/// </remarks>
public sealed class Mosaic : ISampleMixer
{
    private readonly MosaicConfig _settings;

    public Mosaic(MosaicConfig settings)
    {
        CheckSettings(settings);
        _settings = settings;
    }

    public int PartnerCount => 3;

    /// <summary>CachedMosaic mixes once more than 4 samples are cached, the sample itself among them.</summary>
    public const int CachedToMix = 5;

    public PartnerCacheSettings? Cache =>
        _settings.Cached ? new PartnerCacheSettings(_settings.MaxCachedImages, _settings.RandomPop, CachedToMix, _settings.Prob) : null;

    /// <summary>
    /// Refuses settings mmdet could not run with or that mean nothing, naming <paramref name="key"/> (data.mosaic, or
    /// data.pipeline_switch.mosaic) and, from <paramref name="written"/>, the file and line of the key at fault.
    /// </summary>
    public static void CheckSettings(MosaicConfig settings, string key = "data.mosaic", WrittenKeys? written = null)
    {
        written ??= WrittenKeys.None;
        if (settings.ImgScale.Count != 2 || settings.ImgScale.Any(v => v < 1))
            throw written.Refuse($"{key}.img_scale", $"{key}.img_scale must be [width, height] of one tile, two positive pixel counts (the canvas is twice that), got {List(settings.ImgScale)}");
        if (!FitsOneImage(2.0 * settings.ImgScale[1], 2.0 * settings.ImgScale[0]))
            throw written.Refuse($"{key}.img_scale", $"{key}.img_scale {List(settings.ImgScale)} makes a canvas of {2L * settings.ImgScale[0]}x{2L * settings.ImgScale[1]} pixels, " +
                $"more than one 8-bit RGB image can hold ({Array.MaxLength} bytes); lower it");
        var range = settings.CenterRatioRange;
        if (range.Count != 2 || !(range[0] >= 0 && range[0] <= range[1] && range[1] <= 2))
            throw written.Refuse($"{key}.center_ratio_range", $"{key}.center_ratio_range must be [min, max] with 0 ≤ min ≤ max ≤ 2 (the centre, in tile sizes, must lie on the " +
                $"canvas of two tiles), got {List(range)}");
        CheckPadValue($"{key}.pad_val", settings.PadVal, written);
        if (!(settings.Prob >= 0 && settings.Prob <= 1))
            throw written.Refuse($"{key}.prob", $"{key}.prob must be a probability in [0, 1], got {settings.Prob.ToString(CultureInfo.InvariantCulture)}");
        if (settings.Cached && settings.MaxCachedImages < CachedToMix)
            throw written.Refuse($"{key}.max_cached_images", $"{key}.max_cached_images must be at least {CachedToMix} with cached: true (a cached mosaic mixes only once more than 4 " +
                $"samples are cached; mmdet accepts 4, which never mixes), got {settings.MaxCachedImages}");
    }

    internal static void CheckPadValue(string key, double value, WrittenKeys written)
    {
        if (!(value >= 0 && value <= 255) || value != Math.Floor(value))
            throw written.Refuse(key, $"{key} must be a whole colour value in [0, 255] (every channel of the 8-bit image), got {value.ToString(CultureInfo.InvariantCulture)}");
    }

    /// <summary>Whether an RGB byte image of <paramref name="height"/>×<paramref name="width"/> pixels fits in one .NET array (checked in doubles, which cannot overflow).</summary>
    internal static bool FitsOneImage(double height, double width) => height * width * 3 <= Array.MaxLength;

    internal static string List<T>(IEnumerable<T> values) where T : IFormattable =>
        $"[{string.Join(", ", values.Select(v => v.ToString(null, CultureInfo.InvariantCulture)))}]";

    public void Mix(DataSample destination, IReadOnlyList<DataSample> partners, Random random)
    {
        if (random.NextDouble() > _settings.Prob) return;
        MixChosen(destination, partners, random);
    }

    /// <summary>The mosaic after the prob test (the cache's, with cached: true): the centre's draws, then the placement.</summary>
    public void MixChosen(DataSample destination, IReadOnlyList<DataSample> partners, Random random)
    {
        if (partners.Count != PartnerCount) throw new ArgumentException($"Mosaic takes {PartnerCount} partners, got {partners.Count}.", nameof(partners));
        var range = _settings.CenterRatioRange;
        int centerX = (int)(RandomDraws.Uniform(random, range[0], range[1]) * _settings.ImgScale[0]);
        int centerY = (int)(RandomDraws.Uniform(random, range[0], range[1]) * _settings.ImgScale[1]);
        Place(destination, partners, centerX, centerY);
    }

    /// <summary>The mosaic around (<paramref name="centerX"/>, <paramref name="centerY"/>) on the canvas, into <paramref name="destination"/>.</summary>
    internal void Place(DataSample destination, IReadOnlyList<DataSample> partners, int centerX, int centerY)
    {
        int tileW = _settings.ImgScale[0], tileH = _settings.ImgScale[1], canvasW = 2 * tileW, canvasH = 2 * tileH;
        DataSample[] tiles = [destination, .. partners];
        foreach (var tile in tiles)
        {
            SampleGeometry.RequireBytes(tile, "Mosaic");
            if ((tile.Masks is null) != (destination.Masks is null))
                throw new InvalidOperationException($"{destination.FilePath} and {tile.FilePath}: one sample has masks and the other not; Mosaic needs all alike.");
        }
        var canvas = new byte[canvasH * canvasW * 3];
        Array.Fill(canvas, (byte)_settings.PadVal);
        for (int k = 0; k < tiles.Length; k++)
        {
            var tile = tiles[k];
            double ratio = Math.Min((double)tileH / tile.Height, (double)tileW / tile.Width);
            SampleGeometry.ResizeTo(tile, Math.Max(1, (int)(tile.Height * ratio)), Math.Max(1, (int)(tile.Width * ratio)), ImageResampling.OpenCvBilinear);
            // Tiles 0 and 2 end at the centre horizontally, 0 and 1 vertically; the others start there.
            int dx = k % 2 == 0 ? centerX - tile.Width : centerX;
            int dy = k < 2 ? centerY - tile.Height : centerY;
            SampleGeometry.Translate(tile, dx, dy, canvasH, canvasW, (byte)_settings.PadVal, canvas);
        }
        foreach (var partner in partners) destination.AppendInstances(partner);
        destination.KeepInstances(SampleGeometry.KeepInside(destination, _settings.BboxClipBorder));
    }
}
