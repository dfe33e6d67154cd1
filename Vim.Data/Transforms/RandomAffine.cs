using Vim.Data.Datasets;

namespace Vim.Data.Transforms;

/// <summary>
/// mmdet's RandomAffine: rotation, scale, x and y shear and x and y translation drawn in that order, composed as mmdet does,
/// translate · shear · rotate · scale, about the image's top-left corner (mmdet's matrix has no centring), onto a canvas of
/// (width + 2·border[0]) × (height + 2·border[1]) filled with border_val; the translation is a fraction of that canvas. The
/// matrix moves boxes and outlines, whose coordinates are continuous (pixel i spans [i, i + 1)), as mmdet projects its
/// boxes; the image, whose pixel centres sit at i + ½, is warped by the same map (bilinear), as are RLE masks (nearest).
/// Boxes, masks and dropping follow <see cref="SampleGeometry.Warp"/>: a box-only instance gets the enclosing box of its
/// moved corners (mmdet's project), clipped, and goes when nothing is left inside; an instance with a mask gets its moved
/// mask's extent.
/// </summary>
/// <remarks>
/// Departures from mmdet: cv2 warps the pixel indices themselves by the matrix, so mmdet's image lies up to half a pixel
/// off its boxes (for scales and rotations other than 1 and 0); here the image follows the boxes. Boxes are always clipped
/// (mmdet's bbox_clip_border default). mmdet's RandomAffine refuses masks; ours moves them, and an object with a mask takes
/// its moved mask's extent as its box, tighter than the enclosing box of its turned corners.
/// </remarks>
public sealed class RandomAffine : ISampleTransform
{
    private readonly RandomAffineOptions _options;

    public RandomAffine(RandomAffineOptions options)
    {
        if (!(options.MaxRotateDegree >= 0) || double.IsInfinity(options.MaxRotateDegree))
            throw new ArgumentException($"random_affine max_rotate_degree {options.MaxRotateDegree} must be 0 or more degrees.");
        if (!(options.MaxTranslateRatio is >= 0 and <= 1))
            throw new ArgumentException($"random_affine max_translate_ratio {options.MaxTranslateRatio} must be in [0, 1] (of the output's size).");
        if (options.ScalingRatioRange is not [var low, var high] || !(low > 0 && low <= high) || double.IsInfinity(high))
            throw new ArgumentException($"random_affine scaling_ratio_range [{string.Join(", ", options.ScalingRatioRange)}] must be [min, max] with 0 < min ≤ max.");
        if (!(options.MaxShearDegree is >= 0 and < 90))
            throw new ArgumentException($"random_affine max_shear_degree {options.MaxShearDegree} must be in [0, 90) degrees.");
        if (options.Border is not [_, _])
            throw new ArgumentException($"random_affine border [{string.Join(", ", options.Border)}] must be [x, y] pixels added to each side.");
        if (options.BorderVal is < 0 or > 255) throw new ArgumentException($"random_affine border_val {options.BorderVal} must be 0..255.");
        _options = options;
    }

    public void Apply(DataSample sample, Random random)
    {
        SampleGeometry.RequireBytes(sample, "RandomAffine");
        if (sample.LabelMap is not null)
            throw new InvalidOperationException($"{sample.FilePath}: random_affine is a detection step (mmdet's); it has no fill for a label map.");
        int height = sample.Height + 2 * _options.Border[1], width = sample.Width + 2 * _options.Border[0];
        if (height < 1 || width < 1)
            throw new InvalidOperationException($"{sample.FilePath}: random_affine border [{_options.Border[0]}, {_options.Border[1]}] leaves nothing of a " +
                $"{sample.Width}x{sample.Height} image; it adds border[0] to the left and right and border[1] above and below.");
        double rotation = RandomDraws.Uniform(random, -_options.MaxRotateDegree, _options.MaxRotateDegree);
        double scale = RandomDraws.Uniform(random, _options.ScalingRatioRange[0], _options.ScalingRatioRange[1]);
        double shearX = RandomDraws.Uniform(random, -_options.MaxShearDegree, _options.MaxShearDegree);
        double shearY = RandomDraws.Uniform(random, -_options.MaxShearDegree, _options.MaxShearDegree);
        double translateX = RandomDraws.Uniform(random, -_options.MaxTranslateRatio, _options.MaxTranslateRatio) * width;
        double translateY = RandomDraws.Uniform(random, -_options.MaxTranslateRatio, _options.MaxTranslateRatio) * height;
        Warp(sample, Matrix(rotation, scale, shearX, shearY, translateX, translateY), height, width);
    }

    /// <summary>Moves the sample by <paramref name="matrix"/> (continuous coordinates) onto a <paramref name="height"/>×<paramref name="width"/> canvas.</summary>
    internal void Warp(DataSample sample, double[] matrix, int height, int width) =>
        SampleGeometry.Warp(sample, PixelMatrix(matrix), height, width, _options.BorderVal, segPadValue: 0);

    /// <summary>mmdet's translate · shear · rotate · scale, 2×3 row-major, on continuous coordinates.</summary>
    internal static double[] Matrix(double rotationDegrees, double scale, double shearXDegrees, double shearYDegrees, double translateX, double translateY)
    {
        double radians = rotationDegrees * Math.PI / 180, cos = Math.Cos(radians), sin = Math.Sin(radians);
        double tanX = Math.Tan(shearXDegrees * Math.PI / 180), tanY = Math.Tan(shearYDegrees * Math.PI / 180);
        // shear · rotate = [[1, tanX], [tanY, 1]] · [[cos, −sin], [sin, cos]], then · scale.
        double a = (cos + tanX * sin) * scale, b = (-sin + tanX * cos) * scale;
        double c = (tanY * cos + sin) * scale, d = (-tanY * sin + cos) * scale;
        return [a, b, translateX, c, d, translateY];
    }

    /// <summary>
    /// The matrix on pixel indices that moves each pixel as <paramref name="matrix"/> moves its centre: index i is continuous
    /// i + ½, so t' = t + A·(½, ½) − (½, ½).
    /// </summary>
    internal static double[] PixelMatrix(double[] matrix)
    {
        var m = matrix;
        return [m[0], m[1], m[2] + 0.5 * (m[0] + m[1]) - 0.5, m[3], m[4], m[5] + 0.5 * (m[3] + m[4]) - 0.5];
    }
}
