using OpenCvSharp;
using Vim.Data.Datasets;

namespace Vim.Data.Transforms;

/// <summary>mmseg's CLAHE: OpenCV's CLAHE applied to each of the three channels on its own, as mmseg loops over them.</summary>
public sealed class Clahe : ISampleTransform
{
    private readonly ClaheOptions _options;

    public Clahe(ClaheOptions options)
    {
        if (!(options.ClipLimit >= 0) || double.IsInfinity(options.ClipLimit))
            throw new ArgumentException($"clahe clip_limit {options.ClipLimit} must be a number >= 0 (0: no clipping).");
        if (options.TileGridSize is not [> 0, > 0])
            throw new ArgumentException($"clahe tile_grid_size [{string.Join(", ", options.TileGridSize)}] must be [tiles across, tiles down], both positive.");
        _options = options;
    }

    public void Apply(DataSample sample, Random random)
    {
        SampleGeometry.RequireBytes(sample, "CLAHE");
        // One CLAHE object per call: OpenCV's keeps scratch buffers, and loader threads run transforms in parallel.
        using var clahe = Cv2.CreateCLAHE(_options.ClipLimit, new Size(_options.TileGridSize[0], _options.TileGridSize[1]));
        ImageOps.WithMat(sample.Image, sample.Height, sample.Width, rgb =>
        {
            var channels = Cv2.Split(rgb);
            var equalised = channels.Select(_ => new Mat()).ToArray();
            try
            {
                for (int c = 0; c < channels.Length; c++) clahe.Apply(channels[c], equalised[c]);
                Cv2.Merge(equalised, rgb);
            }
            finally
            {
                foreach (var mat in channels.Concat(equalised)) mat.Dispose();
            }
        });
    }
}
