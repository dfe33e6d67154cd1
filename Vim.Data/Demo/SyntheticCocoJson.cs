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
}
