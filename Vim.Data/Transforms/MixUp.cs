using System.Globalization;
using Vim.Core;
using Vim.Core.Config;
using Vim.Data.Datasets;

namespace Vim.Data.Transforms;

/// <summary>
/// MMDetection's MixUp (YOLOX): a partner with objects (drawn up to max_iters times; one without objects mixes nothing) is
/// resized keeping its aspect ratio to fit img_scale, placed at the top left of an img_scale canvas of pad_val, the canvas
/// resized by a factor drawn from ratio_range, mirrored when a uniform draw exceeds flip_ratio, padded (pad_val, bottom and
/// right) to at least the sample's size and cut to it at a uniformly drawn offset; the sample's pixels become the floor of
/// the two images' mean (mmdet's 0.5·a + 0.5·b cast to uint8). The partner's boxes move with its pixels, clipped to its
/// jittered canvas and then to the sample with bbox_clip_border; with skip_filter: false mmdet 2.x's
/// _filter_box_candidates keeps a partner box only while, cut to the sample, it is wider and taller than min_bbox_size,
/// keeps more than min_area_ratio of its area before the cut and its sides' ratio (either way) is below
/// max_aspect_ratio. Every box that then lies outside the sample (mmdet's is_inside) goes, the sample's own included; the
/// partner's objects follow the sample's. RLE masks move with the pixels, polygon outlines exactly.
/// </summary>
/// <remarks>
/// Departures from mmdet: its MixUp carries no masks (ours move with the partner, since our detectors train a mask head on
/// them); boxes and outlines are scaled by each resize's own ratio per axis, as the pixels are (mmdet multiplies the boxes
/// by the fit ratio times the jitter: less than a pixel apart); and an object whose mask has nothing left in the sample
/// is dropped, as every crop of ours drops it.
/// </remarks>
public sealed class MixUp : ISampleMixer
{
    private readonly MixUpConfig _settings;

    public MixUp(MixUpConfig settings)
    {
        CheckSettings(settings);
        _settings = settings;
    }

    public int PartnerCount => 1;
    public int MaxPartnerDraws => _settings.MaxIters;
    public bool Accepts(DataSample partner) => partner.InstanceCount > 0;

    /// <summary>mmdet's YOLOX recipe mixes the affine's img_scale output (Mosaic → RandomAffine → MixUp), not the 2·img_scale mosaic.</summary>
    public bool FollowsRandomAffine => true;

    /// <summary>CachedMixUp mixes once more than 1 sample is cached, the sample itself among them.</summary>
    public const int CachedToMix = 2;

    public PartnerCacheSettings? Cache =>
        _settings.Cached ? new PartnerCacheSettings(_settings.MaxCachedImages, _settings.RandomPop, CachedToMix, _settings.Prob) : null;

    /// <summary>
    /// Refuses settings mmdet could not run with or that mean nothing, naming <paramref name="key"/> (data.mixup, or
    /// data.pipeline_switch.mixup) and, from <paramref name="written"/>, the file and line of the key at fault.
    /// </summary>
    public static void CheckSettings(MixUpConfig settings, string key = "data.mixup", WrittenKeys? written = null)
    {
        written ??= WrittenKeys.None;
        static string Text(double value) => value.ToString(CultureInfo.InvariantCulture);
        if (settings.ImgScale.Count != 2 || settings.ImgScale.Any(v => v < 1))
            throw written.Refuse($"{key}.img_scale", $"{key}.img_scale must be [width, height] the partner is fitted into, two positive pixel counts, got {Mosaic.List(settings.ImgScale)}");
        var range = settings.RatioRange;
        if (range.Count != 2 || !(range[0] > 0 && range[0] <= range[1]))
            throw written.Refuse($"{key}.ratio_range", $"{key}.ratio_range must be [min, max] scale factors with 0 < min ≤ max, got {Mosaic.List(range)}");
        if ((int)(settings.ImgScale.Min() * range[0]) < 1)
            throw written.Refuse($"{key}.ratio_range", $"{key}.ratio_range's minimum {Text(range[0])} shrinks the img_scale canvas {Mosaic.List(settings.ImgScale)} to nothing; " +
                "raise it or img_scale");
        // The partner's img_scale canvas, and that canvas resized by the maximum, must each fit one image: a factor like 1e10
        // would overflow the resize.
        if (!FitsAfterJitter(settings.ImgScale, Math.Max(1, range[1])))
            throw written.Refuse($"{key}.ratio_range", $"{key}.ratio_range's maximum {Text(range[1])} with img_scale {Mosaic.List(settings.ImgScale)} makes a partner canvas " +
                $"larger than one 8-bit RGB image can hold ({Array.MaxLength} bytes); lower it or img_scale");
        if (!(settings.FlipRatio >= 0 && settings.FlipRatio <= 1))
            throw written.Refuse($"{key}.flip_ratio", $"{key}.flip_ratio must be in [0, 1] (the partner is mirrored when a uniform draw exceeds it), got {Text(settings.FlipRatio)}");
        Mosaic.CheckPadValue($"{key}.pad_val", settings.PadVal, written);
        if (settings.MaxIters < 1)
            throw written.Refuse($"{key}.max_iters", $"{key}.max_iters must be at least 1 (draws of a partner with objects), got {settings.MaxIters}");
        if (!(settings.MinBboxSize >= 0))
            throw written.Refuse($"{key}.min_bbox_size", $"{key}.min_bbox_size must be 0 or more pixels, got {Text(settings.MinBboxSize)}");
        if (!(settings.MinAreaRatio >= 0))
            throw written.Refuse($"{key}.min_area_ratio", $"{key}.min_area_ratio must be 0 or more, got {Text(settings.MinAreaRatio)}");
        if (!(settings.MaxAspectRatio > 0))
            throw written.Refuse($"{key}.max_aspect_ratio", $"{key}.max_aspect_ratio must be positive, got {Text(settings.MaxAspectRatio)}");
        if (!(settings.Prob >= 0 && settings.Prob <= 1))
            throw written.Refuse($"{key}.prob", $"{key}.prob must be a probability in [0, 1], got {Text(settings.Prob)}");
        if (!settings.Cached && settings.Prob != 1)
            throw written.Refuse($"{key}.prob", $"{key}.prob is CachedMixUp's (mmdet's MixUp mixes every sample); set {key}.cached: true or leave prob at 1, got {Text(settings.Prob)}");
        if (settings.Cached && settings.MaxCachedImages < CachedToMix)
            throw written.Refuse($"{key}.max_cached_images", $"{key}.max_cached_images must be at least {CachedToMix} with cached: true (a cached mixup mixes only once more than 1 " +
                $"sample is cached, as mmdet asserts), got {settings.MaxCachedImages}");
    }

    private static bool FitsAfterJitter(IReadOnlyList<int> imgScale, double jitter) =>
        double.IsFinite(jitter) && Mosaic.FitsOneImage(Math.Floor(imgScale[1] * jitter), Math.Floor(imgScale[0] * jitter));

    public void Mix(DataSample destination, IReadOnlyList<DataSample> partners, Random random)
    {
        if (partners.Count != PartnerCount) throw new ArgumentException($"MixUp takes {PartnerCount} partner, got {partners.Count}.", nameof(partners));
        var partner = partners[0];
        SampleGeometry.RequireBytes(destination, "MixUp");
        SampleGeometry.RequireBytes(partner, "MixUp");
        if ((destination.Masks is null) != (partner.Masks is null))
            throw new InvalidOperationException($"{destination.FilePath} and {partner.FilePath}: one sample has masks and the other not; MixUp needs both alike.");
        if (partner.InstanceCount == 0) return;

        double jitter = RandomDraws.Uniform(random, _settings.RatioRange[0], _settings.RatioRange[1]);
        bool flip = random.NextDouble() > _settings.FlipRatio;
        // numpy's randint(0, n): n excluded.
        Combine(destination, partner, jitter, flip, n => random.Next(0, n));
    }

    /// <summary>
    /// The mix for a drawn scale jitter and flip; <paramref name="drawOffset"/>(n) gives the cut's offset in [0, n) on an
    /// axis where the partner's canvas exceeds the sample by n pixels (y first, as mmdet draws).
    /// </summary>
    internal void Combine(DataSample destination, DataSample partner, double jitter, bool flip, Func<int, int> drawOffset)
    {
        int scaleW = _settings.ImgScale[0], scaleH = _settings.ImgScale[1];
        byte pad = (byte)_settings.PadVal;
        double fit = Math.Min((double)scaleH / partner.Height, (double)scaleW / partner.Width);
        SampleGeometry.ResizeTo(partner, Math.Max(1, (int)(partner.Height * fit)), Math.Max(1, (int)(partner.Width * fit)), ImageResampling.OpenCvBilinear);
        SampleGeometry.Translate(partner, 0, 0, scaleH, scaleW, pad);
        // The whole canvas is jittered, its padding included, as mmdet resizes it.
        SampleGeometry.ResizeTo(partner, (int)(scaleH * jitter), (int)(scaleW * jitter), ImageResampling.OpenCvBilinear);
        if (flip) SampleGeometry.FlipHorizontal(partner);

        int targetH = destination.Height, targetW = destination.Width;
        int paddedH = Math.Max(partner.Height, targetH), paddedW = Math.Max(partner.Width, targetW);
        int offsetY = paddedH > targetH ? drawOffset(paddedH - targetH) : 0;
        int offsetX = paddedW > targetW ? drawOffset(paddedW - targetW) : 0;
        var uncut = (float[])partner.Boxes.Clone();
        Blend(destination, partner, offsetX, offsetY, pad);

        var keep = SampleGeometry.KeepInside(partner, _settings.BboxClipBorder);
        if (!_settings.SkipFilter)
            for (int i = 0; i < keep.Length; i++) keep[i] &= IsCandidate(uncut, partner.Boxes, i);
        partner.KeepInstances(keep);
        destination.KeepInstances(SampleGeometry.KeepInside(destination, _settings.BboxClipBorder));
        destination.AppendInstances(partner);
        // The blend covers the whole image: mmdet's img_shape after MixUp is the image's.
        destination.ContentHeight = targetH;
        destination.ContentWidth = targetW;
    }

    /// <summary>Cuts the partner to the destination's size at the offset (pad_val beyond it) and averages the two images into the destination.</summary>
    private static void Blend(DataSample destination, DataSample partner, int offsetX, int offsetY, byte pad)
    {
        SampleGeometry.Translate(partner, -offsetX, -offsetY, destination.Height, destination.Width, pad);
        var mixed = destination.Image;
        var other = partner.Image;
        for (int p = 0; p < mixed.Length; p++) mixed[p] = (byte)((mixed[p] + other[p]) >> 1);
    }

    /// <summary>
    /// mmdet 2.x's _filter_box_candidates on partner box <paramref name="i"/>: <paramref name="before"/> its box before the
    /// cut to the sample, <paramref name="after"/> after it.
    /// </summary>
    private bool IsCandidate(float[] before, float[] after, int i)
    {
        int k = 4 * i;
        double w1 = before[k + 2] - before[k], h1 = before[k + 3] - before[k + 1];
        double w2 = after[k + 2] - after[k], h2 = after[k + 3] - after[k + 1];
        double aspect = Math.Max(w2 / (h2 + 1e-16), h2 / (w2 + 1e-16));
        return w2 > _settings.MinBboxSize && h2 > _settings.MinBboxSize
            && w2 * h2 / (w1 * h1 + 1e-16) > _settings.MinAreaRatio && aspect < _settings.MaxAspectRatio;
    }
}
