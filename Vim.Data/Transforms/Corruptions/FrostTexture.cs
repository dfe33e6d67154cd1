using OpenCvSharp;

namespace Vim.Data.Transforms.Corruptions;

/// <summary>
/// A procedural stand-in for the frost photographs imagecorruptions ships (frost1.png … frost6.jpg), which we may not
/// redistribute: a frozen haze (a plasma fractal, as fog's) under ice needles that branch at ±60° as frost dendrites
/// do, with a soft glow around them, tinted the cold blue-white of the photographs. The package crops a random window
/// of a photograph scaled to cover the image; here the texture is drawn at the image's size. The blend with the image
/// is the package's (<see cref="WeatherCorruptions.Frost"/>), but the texture is ours, so frost's numbers are not
/// comparable with published ones.
/// </summary>
internal static class FrostTexture
{
    /// <summary>Per-channel tint (R, G, B) of the frost's brightness: ice is bluish white.</summary>
    private static readonly double[] Tint = [0.86, 0.93, 1.0];

    /// <summary>Image area per needle cluster: a 640×480 image gets about 200.</summary>
    private const double PixelsPerCrystal = 1500;

    /// <summary>The texture as RGB on the 0–255 scale (HWC), a function of the size and the draws of <paramref name="random"/>.</summary>
    public static float[] Generate(int height, int width, CorruptionRandom random)
    {
        int mapSize = PlasmaFractal.NextPowerOfTwo(Math.Max(height, width));
        var haze = PlasmaFractal.Generate(mapSize, 1.8, random);
        var needles = new byte[height * width];
        using (var canvas = Mat.FromPixelData(height, width, MatType.CV_8UC1, needles))
        {
            int crystals = Math.Max(4, (int)(height * width / PixelsPerCrystal));
            double scale = Math.Min(height, width);
            for (int k = 0; k < crystals; k++) DrawDendrite(canvas, random, random.Uniform(0, width), random.Uniform(0, height), scale);
        }
        var lines = needles.Select(v => v / 255f).ToArray();
        // Needles softened a little, and a wide glow around them (light scattered in the ice).
        var sharp = CorruptionPixels.Gaussian(lines, height, width, 1, 0.6);
        var glow = CorruptionPixels.Gaussian(lines, height, width, 1, 3.0);
        var texture = new float[height * width * 3];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                int pixel = y * width + x;
                double brightness = Math.Clamp(0.15 + 0.45 * haze[y * mapSize + x] + 0.8 * sharp[pixel] + 1.5 * glow[pixel], 0, 1);
                for (int c = 0; c < 3; c++) texture[pixel * 3 + c] = (float)(255 * Tint[c] * brightness);
            }
        return texture;
    }

    /// <summary>A needle from (x, y) at a random angle, with pairs of side branches at ±60° that shorten towards its tip.</summary>
    private static void DrawDendrite(Mat canvas, CorruptionRandom random, double x, double y, double scale)
    {
        double angle = random.Uniform(0, 2 * Math.PI);
        double length = scale * random.Uniform(0.03, 0.12) + 3;
        double intensity = random.Uniform(130, 255);
        var tip = new Point2d(x + length * Math.Cos(angle), y + length * Math.Sin(angle));
        Cv2.Line(canvas, Rounded(x, y), Rounded(tip.X, tip.Y), new Scalar(intensity), 1, LineTypes.AntiAlias);
        int branches = random.Integer(2, 6);
        for (int b = 1; b <= branches; b++)
        {
            double along = length * b / (branches + 1);
            double branchLength = (length - along) * random.Uniform(0.3, 0.6);
            double bx = x + along * Math.Cos(angle), by = y + along * Math.Sin(angle);
            foreach (double turn in new[] { Math.PI / 3, -Math.PI / 3 })
                Cv2.Line(canvas, Rounded(bx, by), Rounded(bx + branchLength * Math.Cos(angle + turn), by + branchLength * Math.Sin(angle + turn)),
                    new Scalar(intensity * 0.8), 1, LineTypes.AntiAlias);
        }
    }

    private static Point Rounded(double x, double y) => new((int)Math.Round(x), (int)Math.Round(y));
}
