namespace Vim.Data.Datasets;

/// <summary>
/// One training/evaluation sample as it flows through the transforms: an 8-bit RGB image (HWC, RGB
/// order), instances (xyxy boxes in pixels, contiguous class indices, crowd flags, optional masks),
/// an optional semantic label map (255 = ignore), and the bookkeeping needed to map predictions back
/// to the original image (original size, scale factors, flip).
/// </summary>
public sealed class DataSample
{
    public DataSample(long imageId, string filePath, byte[] image, int height, int width)
    {
        if (image.Length != height * width * 3)
            throw new ArgumentException($"image has {image.Length} bytes, expected {height}x{width}x3.", nameof(image));
        ImageId = imageId;
        FilePath = filePath;
        Image = image;
        Height = height;
        Width = width;
        OriginalHeight = height;
        OriginalWidth = width;
        ContentHeight = height;
        ContentWidth = width;
    }

    /// <summary>
    /// A copy that transforms can change without touching this sample: its own arrays (image, instances, label map) and
    /// mask list, with every size, scale and flag as they are now. The masks themselves are shared: transforms replace
    /// a mask rather than change it.
    /// </summary>
    public DataSample Copy() => new(this);

    private DataSample(DataSample source)
    {
        ImageId = source.ImageId;
        FilePath = source.FilePath;
        Image = (byte[])source.Image.Clone();
        Height = source.Height;
        Width = source.Width;
        NormalizedImage = (float[]?)source.NormalizedImage?.Clone();
        Boxes = (float[])source.Boxes.Clone();
        Labels = (int[])source.Labels.Clone();
        IsCrowd = (bool[])source.IsCrowd.Clone();
        AnnotationIds = (long[])source.AnnotationIds.Clone();
        Masks = source.Masks is null ? null : [.. source.Masks];
        LabelMap = (ushort[]?)source.LabelMap?.Clone();
        OriginalHeight = source.OriginalHeight;
        OriginalWidth = source.OriginalWidth;
        ContentHeight = source.ContentHeight;
        ContentWidth = source.ContentWidth;
        ScaleX = source.ScaleX;
        ScaleY = source.ScaleY;
        Flipped = source.Flipped;
    }

    public long ImageId { get; }
    public string FilePath { get; }

    /// <summary>HWC bytes in RGB order.</summary>
    public byte[] Image { get; set; }
    public int Height { get; set; }
    public int Width { get; set; }

    /// <summary>CHW float32 pixels once <c>Normalize</c> has run; geometric transforms refuse to run after it.</summary>
    public float[]? NormalizedImage { get; set; }

    /// <summary>Flat N×4 boxes [x1, y1, x2, y2] in pixels of the current image.</summary>
    public float[] Boxes { get; set; } = [];

    /// <summary>Contiguous class index per instance (0..K−1).</summary>
    public int[] Labels { get; set; } = [];

    /// <summary>COCO iscrowd per instance: kept so losses can ignore and evaluation can honour them.</summary>
    public bool[] IsCrowd { get; set; } = [];

    /// <summary>Dataset annotation id per instance (−1 when not from a file).</summary>
    public long[] AnnotationIds { get; set; } = [];

    /// <summary>Instance masks at the image size, or null for box-only data.</summary>
    public List<InstanceMask>? Masks { get; set; }

    /// <summary>
    /// Semantic label map (H×W class indices, the dataset's ignore index, 255 by default, for unlabelled
    /// pixels), or null for detection data. 16-bit for every dataset, so more than 255 classes need no other path.
    /// </summary>
    public ushort[]? LabelMap { get; set; }

    public int OriginalHeight { get; }
    public int OriginalWidth { get; }

    /// <summary>Size of the image content before padding (Pad grows Height/Width but not these).</summary>
    public int ContentHeight { get; set; }
    public int ContentWidth { get; set; }

    /// <summary>Accumulated resize factors (current / original) along x and y.</summary>
    public double ScaleX { get; set; } = 1;
    public double ScaleY { get; set; } = 1;

    /// <summary>True when the image has been mirrored an odd number of times.</summary>
    public bool Flipped { get; set; }

    public int InstanceCount => Labels.Length;

    /// <summary>
    /// Adds <paramref name="other"/>'s instances after this sample's, as they are: the two must be of one size and both
    /// carry masks or neither (a mix of the two samples' images is the caller's business).
    /// </summary>
    public void AppendInstances(DataSample other)
    {
        if (other.Height != Height || other.Width != Width)
            throw new ArgumentException($"instances of a {other.Width}x{other.Height} sample cannot join a {Width}x{Height} one.", nameof(other));
        if ((Masks is null) != (other.Masks is null))
            throw new ArgumentException($"{(Masks is null ? "this" : "the other")} sample's instances have no masks, the other's have.", nameof(other));
        Boxes = [.. Boxes, .. other.Boxes];
        Labels = [.. Labels, .. other.Labels];
        IsCrowd = [.. IsCrowd, .. other.IsCrowd];
        AnnotationIds = [.. AnnotationIds, .. other.AnnotationIds];
        if (Masks is not null) Masks = [.. Masks, .. other.Masks!];
    }

    /// <summary>Keeps the instances whose flag is set, in order.</summary>
    public void KeepInstances(bool[] keep)
    {
        if (keep.Length != InstanceCount) throw new ArgumentException($"keep has {keep.Length} flags for {InstanceCount} instances.", nameof(keep));
        int n = keep.Count(k => k);
        if (n == InstanceCount) return;
        var boxes = new float[n * 4];
        var labels = new int[n];
        var crowd = new bool[n];
        var ids = new long[n];
        var masks = Masks is null ? null : new List<InstanceMask>(n);
        int j = 0;
        for (int i = 0; i < keep.Length; i++)
        {
            if (!keep[i]) continue;
            Array.Copy(Boxes, i * 4, boxes, j * 4, 4);
            labels[j] = Labels[i];
            crowd[j] = IsCrowd[i];
            ids[j] = AnnotationIds[i];
            masks?.Add(Masks![i]);
            j++;
        }
        Boxes = boxes;
        Labels = labels;
        IsCrowd = crowd;
        AnnotationIds = ids;
        Masks = masks;
    }
}
