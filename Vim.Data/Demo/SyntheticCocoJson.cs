using System.Text.Json;
using Vim.Data.Evaluation;
using Vim.Core.IO;

namespace Vim.Data.Demo;

/// <summary>
/// Writes a large COCO instances json with the shape of val2017 (many images, several polygon
/// annotations each, a few crowd RLEs, 80 gapped category ids) for timing the annotation reader. No
/// image files are written; only the json matters.
/// </summary>
public static class SyntheticCocoJson
{
    /// <summary>Writes about <paramref name="targetBytes"/> of json; returns (images, annotations).</summary>
    public static (int Images, int Annotations) Write(string path, long targetBytes, int seed = 0)
    {
        var random = new Random(seed);
        int images = 0, annotations = 0;
        AtomicFile.Write(path, stream =>
        {
            using var w = new Utf8JsonWriter(stream);
            w.WriteStartObject();
            // Roughly 285 bytes per annotation at 7 per image, plus ~110 per image entry (measured).
            images = (int)Math.Max(1, targetBytes / (7 * 285 + 110));
            w.WriteStartArray("images");
            for (int i = 1; i <= images; i++)
            {
                w.WriteStartObject();
                w.WriteNumber("id", i);
                w.WriteString("file_name", $"{i:D12}.jpg");
                w.WriteNumber("width", 640);
                w.WriteNumber("height", 480);
                w.WriteString("license", "synthetic");
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("annotations");
            for (int i = 1; i <= images; i++)
            {
                int n = random.Next(1, 14);
                for (int k = 0; k < n; k++)
                {
                    annotations++;
                    double cx = 40 + random.NextDouble() * 560, cy = 40 + random.NextDouble() * 400, r = 5 + random.NextDouble() * 30;
                    w.WriteStartObject();
                    w.WriteNumber("id", annotations);
                    w.WriteNumber("image_id", i);
                    w.WriteNumber("category_id", 1 + (random.Next(80) * 90 / 80));
                    bool crowd = random.Next(100) == 0;
                    w.WriteNumber("iscrowd", crowd ? 1 : 0);
                    w.WriteStartArray("bbox");
                    w.WriteNumberValue(Math.Round(cx - r, 2)); w.WriteNumberValue(Math.Round(cy - r, 2));
                    w.WriteNumberValue(Math.Round(2 * r, 2)); w.WriteNumberValue(Math.Round(2 * r, 2));
                    w.WriteEndArray();
                    w.WriteNumber("area", Math.Round(Math.PI * r * r, 3));
                    if (crowd)
                    {
                        w.WriteStartObject("segmentation");
                        w.WriteStartArray("size"); w.WriteNumberValue(480); w.WriteNumberValue(640); w.WriteEndArray();
                        // A square region written directly as column-major runs (as crowd RLEs are stored).
                        int x0 = (int)(cx - r), y0 = (int)(cy - r), side = (int)(2 * r);
                        w.WriteStartArray("counts");
                        w.WriteNumberValue(x0 * 480 + y0);
                        for (int col = 0; col < side; col++)
                        {
                            w.WriteNumberValue(side);
                            w.WriteNumberValue(col + 1 < side ? 480 - side : 480 * 640 - (x0 + side - 1) * 480 - y0 - side);
                        }
                        w.WriteEndArray();
                        w.WriteEndObject();
                    }
                    else
                    {
                        w.WriteStartArray("segmentation");
                        w.WriteStartArray();
                        for (int v = 0; v < 12; v++)
                        {
                            double t = 2 * Math.PI * v / 12;
                            w.WriteNumberValue(Math.Round(cx + r * Math.Cos(t), 2));
                            w.WriteNumberValue(Math.Round(cy + r * Math.Sin(t), 2));
                        }
                        w.WriteEndArray();
                        w.WriteEndArray();
                    }
                    w.WriteEndObject();
                }
            }
            w.WriteEndArray();
            w.WriteStartArray("categories");
            for (int c = 0; c < 80; c++)
            {
                w.WriteStartObject();
                w.WriteNumber("id", 1 + c * 90 / 80);
                w.WriteString("name", $"class{c}");
                w.WriteString("supercategory", "synthetic");
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        });
        return (images, annotations);
    }

    /// <summary>
    /// Writes a file shaped like instances_train2017.json: the real image-entry fields, an "info" and a
    /// "licenses" section (which readers skip), 80 gapped categories, and annotations with
    /// <paramref name="annotations"/> spread over <paramref name="images"/> images; polygon objects
    /// have 1–3 outlines of 6–60 vertices (about <paramref name="meanVertices"/> in all, coordinates
    /// with two decimals, as COCO stores them) and one in a hundred is a crowd region stored as
    /// uncompressed RLE. Returns the file size in bytes.
    /// </summary>
    public static long WriteTrainShaped(string path, int images, int annotations, int meanVertices = 28, int seed = 0)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(images, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(annotations);
        ArgumentOutOfRangeException.ThrowIfLessThan(meanVertices, 6);
        var random = new Random(seed);
        const int Width = 640, Height = 480;
        AtomicFile.Write(path, stream =>
        {
            using var w = new Utf8JsonWriter(stream);
            w.WriteStartObject();
            w.WriteStartObject("info");
            w.WriteString("description", "synthetic COCO-shaped annotations");
            w.WriteString("url", "http://example.invalid/coco");
            w.WriteNumber("year", 2017);
            w.WriteEndObject();
            w.WriteStartArray("licenses");
            for (int l = 1; l <= 8; l++)
            {
                w.WriteStartObject();
                w.WriteString("url", $"http://example.invalid/licenses/{l}");
                w.WriteNumber("id", l);
                w.WriteString("name", $"License {l}");
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteStartArray("images");
            for (int i = 1; i <= images; i++)
            {
                w.WriteStartObject();
                w.WriteNumber("license", 1 + i % 8);
                w.WriteString("file_name", $"{i:D12}.jpg");
                w.WriteString("coco_url", $"http://images.example.invalid/train2017/{i:D12}.jpg");
                w.WriteNumber("height", Height);
                w.WriteNumber("width", Width);
                w.WriteString("date_captured", "2013-11-14 16:28:13");
                w.WriteString("flickr_url", $"http://farm.example.invalid/{i}/{i:D12}_z.jpg");
                w.WriteNumber("id", i);
                w.WriteEndObject();
                FlushEveryMegabyte(w);
            }
            w.WriteEndArray();
            w.WriteStartArray("annotations");
            for (int a = 1; a <= annotations; a++)
            {
                // Annotations are spread over the images in order, as COCO's are roughly.
                long imageId = 1 + (long)(a - 1) * images / Math.Max(1, annotations);
                double cx = 40 + random.NextDouble() * (Width - 80), cy = 40 + random.NextDouble() * (Height - 80);
                double r = 4 + random.NextDouble() * 36;
                bool crowd = random.Next(100) == 0;
                w.WriteStartObject();
                if (crowd)
                {
                    w.WriteStartObject("segmentation");
                    // A square region as column-major runs, the way crowd RLEs are stored.
                    int x0 = (int)(cx - r), y0 = (int)(cy - r), side = (int)(2 * r);
                    w.WriteStartArray("counts");
                    w.WriteNumberValue(x0 * Height + y0);
                    for (int col = 0; col < side; col++)
                    {
                        w.WriteNumberValue(side);
                        w.WriteNumberValue(col + 1 < side ? Height - side : Height * Width - (x0 + side - 1) * Height - y0 - side);
                    }
                    w.WriteEndArray();
                    w.WriteStartArray("size"); w.WriteNumberValue(Height); w.WriteNumberValue(Width); w.WriteEndArray();
                    w.WriteEndObject();
                }
                else
                {
                    w.WriteStartArray("segmentation");
                    int parts = random.Next(10) == 0 ? 2 + random.Next(2) : 1;
                    int total = Math.Max(6 * parts, meanVertices / 2 + random.Next(meanVertices + 1));
                    for (int part = 0; part < parts; part++)
                    {
                        int n = Math.Min(60, Math.Max(6, total / parts));
                        double px = cx + (part == 0 ? 0 : random.NextDouble() * r - r / 2), py = cy + (part == 0 ? 0 : random.NextDouble() * r - r / 2);
                        double pr = part == 0 ? r : r / 3;
                        w.WriteStartArray();
                        for (int v = 0; v < n; v++)
                        {
                            // A star-shaped outline with jittered radii: realistic coordinate text, always a valid polygon.
                            double t = 2 * Math.PI * v / n, radius = pr * (0.6 + 0.4 * random.NextDouble());
                            w.WriteNumberValue(Math.Round(Math.Clamp(px + radius * Math.Cos(t), 0, Width), 2));
                            w.WriteNumberValue(Math.Round(Math.Clamp(py + radius * Math.Sin(t), 0, Height), 2));
                        }
                        w.WriteEndArray();
                    }
                    w.WriteEndArray();
                }
                w.WriteNumber("area", Math.Round(Math.PI * r * r * 0.7, 4));
                w.WriteNumber("iscrowd", crowd ? 1 : 0);
                w.WriteNumber("image_id", imageId);
                w.WriteStartArray("bbox");
                w.WriteNumberValue(Math.Round(cx - r, 2)); w.WriteNumberValue(Math.Round(cy - r, 2));
                w.WriteNumberValue(Math.Round(2 * r, 2)); w.WriteNumberValue(Math.Round(2 * r, 2));
                w.WriteEndArray();
                w.WriteNumber("category_id", 1 + (random.Next(80) * 90 / 80));
                w.WriteNumber("id", 900000L + a);
                w.WriteEndObject();
                FlushEveryMegabyte(w);
            }
            w.WriteEndArray();
            w.WriteStartArray("categories");
            for (int c = 0; c < 80; c++)
            {
                w.WriteStartObject();
                w.WriteString("supercategory", "synthetic");
                w.WriteNumber("id", 1 + c * 90 / 80);
                w.WriteString("name", $"class{c}");
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        });
        return new FileInfo(path).Length;
    }

    /// <summary>Utf8JsonWriter keeps everything pending until flushed; a file of hundreds of MB must not.</summary>
    private static void FlushEveryMegabyte(Utf8JsonWriter w)
    {
        if (w.BytesPending > 1 << 20) w.Flush();
    }
}
