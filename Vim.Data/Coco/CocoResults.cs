using System.Text.Json;
using Vim.Core;
using Vim.Data.Evaluation;
using Vim.Core.IO;

namespace Vim.Data.Coco;

/// <summary>Reads and writes detection results in the COCO results format [{image_id, category_id, bbox, score, segmentation}].</summary>
public static class CocoResults
{
    public static List<CocoDetection> Load(string path)
    {
        using var doc = CocoJsonReading.OpenDocument(path);
        return Parse(doc.RootElement, path);
    }

    public static List<CocoDetection> Parse(JsonElement root, string source)
    {
        if (root.ValueKind != JsonValueKind.Array) throw new VimException($"{source}: a COCO results file must be a JSON array of detections.");
        var list = new List<CocoDetection>(root.GetArrayLength());
        int index = 0;
        foreach (var e in root.EnumerateArray())
        {
            string where = $"{source}: [{index++}]";
            if (e.ValueKind != JsonValueKind.Object) throw new VimException($"{where}: expected an object.");
            var box = CocoJsonReading.OptionalBox(e, "bbox", where);
            var segmentation = CocoJsonReading.OptionalSegmentation(e, where);
            if (box is null && segmentation is null) throw new VimException($"{where}: a detection needs \"bbox\" or \"segmentation\".");
            list.Add(new CocoDetection(
                CocoJsonReading.RequireId(e, "image_id", where),
                CocoJsonReading.RequireId(e, "category_id", where),
                CocoJsonReading.RequireNumber(e, "score", where),
                box,
                segmentation));
        }
        return list;
    }

    /// <summary>Writes the results atomically (temp file, then rename). Masks are written as compressed RLE.</summary>
    public static void Save(string path, IEnumerable<CocoDetection> detections)
    {
        AtomicFile.Write(path, stream =>
        {
            using var w = new Utf8JsonWriter(stream);
            w.WriteStartArray();
            foreach (var d in detections)
            {
                w.WriteStartObject();
                w.WriteNumber("image_id", d.ImageId);
                w.WriteNumber("category_id", d.CategoryId);
                if (d.Bbox is not null)
                {
                    w.WriteStartArray("bbox");
                    foreach (var v in d.Bbox) w.WriteNumberValue(v);
                    w.WriteEndArray();
                }
                w.WriteNumber("score", d.Score);
                if (d.Segmentation is not null) WriteSegmentation(w, d.Segmentation);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        });
    }

    /// <summary>Writes a "segmentation" property in whichever form the mask is stored.</summary>
    public static void WriteSegmentation(Utf8JsonWriter w, CocoSegmentation s)
    {
        if (s.Kind == CocoSegmentationKind.Polygons)
        {
            w.WriteStartArray("segmentation");
            foreach (var poly in s.Polygons!)
            {
                w.WriteStartArray();
                foreach (var v in poly) w.WriteNumberValue(v);
                w.WriteEndArray();
            }
            w.WriteEndArray();
            return;
        }
        w.WriteStartObject("segmentation");
        w.WriteStartArray("size");
        w.WriteNumberValue(s.RleHeight);
        w.WriteNumberValue(s.RleWidth);
        w.WriteEndArray();
        if (s.Kind == CocoSegmentationKind.CompressedRle) w.WriteString("counts", s.CompressedCounts);
        else
        {
            w.WriteStartArray("counts");
            foreach (var c in s.UncompressedCounts!) w.WriteNumberValue(c);
            w.WriteEndArray();
        }
        w.WriteEndObject();
    }
}
