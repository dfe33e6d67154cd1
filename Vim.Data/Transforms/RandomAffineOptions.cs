namespace Vim.Data.Transforms;

/// <summary>
/// mmdet's RandomAffine (YOLOX): rotation, scale, shear and translation drawn per sample, onto a canvas grown (or, negative,
/// shrunk) by <see cref="Border"/> on each side. The defaults are mmdet's.
/// </summary>
public sealed record RandomAffineOptions
{
    /// <summary>The rotation is uniform in [−d, d] degrees.</summary>
    public double MaxRotateDegree { get; init; } = 10.0;

    /// <summary>The translation is uniform in [−r, r] times the output's width resp. height.</summary>
    public double MaxTranslateRatio { get; init; } = 0.1;

    /// <summary>[min, max] of the uniform scale factor.</summary>
    public double[] ScalingRatioRange { get; init; } = [0.5, 1.5];

    /// <summary>Each axis' shear is uniform in [−d, d] degrees.</summary>
    public double MaxShearDegree { get; init; } = 2.0;

    /// <summary>
    /// [x, y] pixels added to each side (mmdet's border): the output is (width + 2x) × (height + 2y); YOLOX's
    /// [−img_scale / 2, −img_scale / 2] turns a 2 × img_scale mosaic into an img_scale image.
    /// </summary>
    public int[] Border { get; init; } = [0, 0];

    /// <summary>Fill of the image where the warped image does not reach, in every channel.</summary>
    public int BorderVal { get; init; } = 114;
}
