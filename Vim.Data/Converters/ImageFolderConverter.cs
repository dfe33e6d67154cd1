using System.Buffers.Binary;
using Vim.Core;
using Vim.Data.Coco;
using Vim.Data.Datasets;

namespace Vim.Data.Converters;

/// <summary>
/// A folder of images (any depth) as a COCO json of images and categories without annotations, as MMDetection's
/// tools/dataset_converters/images2coco.py writes it, so that a detector can predict unlabelled images
/// (`vim test --format-only` reads it as an image-info file). Every file below the folder is an image unless its name
/// ends in an excluded extension (as in mmdet, where Pillow's lazy open reads the size); sizes come from the PNG or JPEG
/// header without decoding, other formats are decoded by OpenCV. Departures: file_name is the path relative to the folder
/// (mmdet writes the folder joined in front, which an image prefix would then double), images are in ordinal path order
/// (mmdet's follows the file system's listing) and ids start at 1, categories too (mmdet's at 0).
/// </summary>
public static class ImageFolderConverter
{
    public static CocoDataset Convert(string imageDir, IReadOnlyList<CocoCategory> categories, IReadOnlyList<string> excludeExtensions, TextWriter? log)
    {
        if (!Directory.Exists(imageDir)) throw new VimException($"--images {imageDir}: image folder not found.");
        if (categories.Count == 0) throw new VimException("the category list is empty; the json needs the model's classes.");
        var excluded = excludeExtensions.Select(e => e.ToLowerInvariant()).ToArray();
        var files = Directory.EnumerateFiles(imageDir, "*", SearchOption.AllDirectories)
            .Where(f => !excluded.Any(e => f.ToLowerInvariant().EndsWith(e, StringComparison.Ordinal)))
            .Order(StringComparer.Ordinal)
            .ToArray();
        if (files.Length == 0) throw new VimException($"--images {imageDir}: no image files (after --exclude-extensions).");
        var images = new CocoImage[files.Length];
        var progress = new ItemProgress(log, files.Length, "images");
        ParallelErrors.For(files.Length, i =>
        {
            var (width, height) = ReadSize(files[i]);
            images[i] = new CocoImage(i + 1, width, height, Path.GetRelativePath(imageDir, files[i]).Replace('\\', '/'));
            progress.Advance();
        });
        return new CocoDataset(images, [], categories);
    }

    /// <summary>An image's stored width and height (EXIF orientation ignored, as the decoders read the pixel grid).</summary>
    public static (int Width, int Height) ReadSize(string path)
    {
        var head = new byte[64 * 1024];
        int read;
        using (var stream = File.OpenRead(path)) read = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        var bytes = head.AsSpan(0, read);
        if (PngLabelLayout.ReadHeader(bytes, path) is { } png) return (png.Width, png.Height);
        if (JpegFrameSize(bytes) is { } jpeg) return jpeg;
        // Another format, or a JPEG whose frame header lies past the first 64 KiB (large EXIF thumbnails): decode it.
        try
        {
            using var mat = ImageDecoder.ReadBgr(path);
            return (mat.Cols, mat.Rows);
        }
        catch (VimException)
        {
            throw new VimException($"{path}: cannot read the image's size (not an image OpenCV decodes; leave such files out with --exclude-extensions).");
        }
    }

    /// <summary>The width and height of a JPEG's frame header (SOF0–SOF15 but DHT, JPG and DAC), or null when it is not in <paramref name="bytes"/>.</summary>
    internal static (int Width, int Height)? JpegFrameSize(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < 4 || bytes[0] != 0xFF || bytes[1] != 0xD8) return null;
        int at = 2;
        while (at + 4 <= bytes.Length)
        {
            if (bytes[at] != 0xFF) return null;
            byte marker = bytes[at + 1];
            if (marker == 0xFF) { at++; continue; } // fill byte
            if (marker is 0x01 or (>= 0xD0 and <= 0xD7)) { at += 2; continue; } // markers without a length
            if (marker is 0xD9 or 0xDA) return null; // end of image or start of scan: no frame header before it
            int length = BinaryPrimitives.ReadUInt16BigEndian(bytes[(at + 2)..]);
            if (length < 2) return null;
            if (marker is >= 0xC0 and <= 0xCF and not (0xC4 or 0xC8 or 0xCC))
            {
                if (at + 9 > bytes.Length) return null;
                int height = BinaryPrimitives.ReadUInt16BigEndian(bytes[(at + 5)..]), width = BinaryPrimitives.ReadUInt16BigEndian(bytes[(at + 7)..]);
                // A height of 0 is given later by a DNL marker: the decoder knows it.
                return height > 0 && width > 0 ? (width, height) : null;
            }
            at += 2 + length;
        }
        return null;
    }
}
