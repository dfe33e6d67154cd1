using Vim.Data.Masks;

namespace Vim.Data.Coco;

/// <summary>
/// A mask as stored in COCO json, kept in its stored form (so files round-trip) and turned into an
/// <see cref="Rle"/> on demand. RLE forms carry their own size; polygons take the image's.
/// </summary>
public sealed class CocoSegmentation
{
    private CocoSegmentation(CocoSegmentationKind kind, IReadOnlyList<double[]>? polygons, int rleHeight, int rleWidth,
        string? compressedCounts, uint[]? uncompressedCounts)
    {
        Kind = kind;
        Polygons = polygons;
        RleHeight = rleHeight;
        RleWidth = rleWidth;
        CompressedCounts = compressedCounts;
        UncompressedCounts = uncompressedCounts;
    }

    public CocoSegmentationKind Kind { get; }
    public IReadOnlyList<double[]>? Polygons { get; }
    public int RleHeight { get; }
    public int RleWidth { get; }
    public string? CompressedCounts { get; }
    public uint[]? UncompressedCounts { get; }

    public static CocoSegmentation FromPolygons(IReadOnlyList<double[]> polygons) =>
        new(CocoSegmentationKind.Polygons, polygons, 0, 0, null, null);

    public static CocoSegmentation FromCompressed(string counts, int height, int width) =>
        new(CocoSegmentationKind.CompressedRle, null, height, width, counts, null);

    public static CocoSegmentation FromUncompressed(uint[] counts, int height, int width) =>
        new(CocoSegmentationKind.UncompressedRle, null, height, width, null, counts);

    /// <summary>Stores a mask in the compact compressed form used in results files.</summary>
    public static CocoSegmentation FromRle(Rle rle) => FromCompressed(rle.ToCompressedString(), rle.Height, rle.Width);

    /// <summary>
    /// The mask as RLE. Polygons are rasterised at <paramref name="imageHeight"/>×<paramref name="imageWidth"/>
    /// and merged; a first outline with exactly 4 numbers is read as an [x, y, w, h] box, as pycocotools does.
    /// </summary>
    public Rle ToRle(int imageHeight, int imageWidth)
    {
        switch (Kind)
        {
            case CocoSegmentationKind.CompressedRle:
                return Rle.FromCompressedString(CompressedCounts!, RleHeight, RleWidth);
            case CocoSegmentationKind.UncompressedRle:
                return new Rle(RleHeight, RleWidth, UncompressedCounts!);
            default:
                var polygons = Polygons!;
                if (imageHeight <= 0 || imageWidth <= 0)
                    throw new InvalidOperationException(
                        $"polygon segmentation needs the image size, got {imageHeight}x{imageWidth}.");
                if (polygons.Count > 0 && polygons[0].Length == 4)
                {
                    var boxes = new double[polygons.Count][];
                    for (int i = 0; i < boxes.Length; i++)
                    {
                        var b = polygons[i];
                        double x1 = b[0], y1 = b[1], x2 = b[0] + b[2], y2 = b[1] + b[3];
                        boxes[i] = [x1, y1, x1, y2, x2, y2, x2, y1];
                    }
                    return PolygonRasterizer.FromPolygons(boxes, imageHeight, imageWidth);
                }
                return PolygonRasterizer.FromPolygons(polygons, imageHeight, imageWidth);
        }
    }
}
