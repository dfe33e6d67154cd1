using System.Text.Json;
using Vim.Core;
using Vim.Data.Evaluation;
using Vim.Core.IO;

namespace Vim.Data.Coco;

/// <summary>Reads and writes detection results in the COCO results format [{image_id, category_id, bbox, score, segmentation}].</summary>
public static class CocoResults
{
    /// <summary>Reads a results file in one streaming pass, with the same field readers as ground-truth files.</summary>
    public static List<CocoDetection> Load(string path) => CocoJsonReading.ReadFile(path, CocoJsonReading.ReadResults, JsonStreamReader.DefaultBufferBytes);

    /// <summary>Reads a results array from a stream; <paramref name="source"/> names it in error messages.</summary>
    public static List<CocoDetection> Read(Stream stream, string source) => CocoJsonReading.ReadResults(stream, source, JsonStreamReader.DefaultBufferBytes);

    internal static List<CocoDetection> Read(Stream stream, string source, int bufferBytes) => CocoJsonReading.ReadResults(stream, source, bufferBytes);

    /// <summary>Parses an already-parsed json value with the same reader as files.</summary>
    public static List<CocoDetection> Parse(JsonElement root, string source)
    {
        using var stream = new MemoryStream(JsonSerializer.SerializeToUtf8Bytes(root));
        return Read(stream, source);
    }

    /// <summary>
    /// Refuses a detection naming an image or a category the ground truth lacks (pycocotools' loadRes asserts the
    /// images; a category it lacks has no name and no class), naming both files and the entry.
    /// </summary>
    /// <param name="groundTruthSource">Names the ground truth in errors (its file).</param>
    /// <param name="resultsSource">Names the detections in errors (the results file).</param>
    public static void RequireOf(CocoDataset groundTruth, IReadOnlyList<CocoDetection> detections, string groundTruthSource, string resultsSource)
    {
        var categories = CategoryMap.FromDataset(groundTruth);
        for (int d = 0; d < detections.Count; d++)
        {
            var det = detections[d];
            if (!groundTruth.ImagesById.ContainsKey(det.ImageId))
                throw new VimException($"{resultsSource}: [{d}]: image_id {det.ImageId} is not an image of the ground truth {groundTruthSource}; " +
                    "expected the results of the images that file lists.");
            if (!categories.TryGetClassIndex(det.CategoryId, out _))
                throw new VimException($"{resultsSource}: [{d}]: category_id {det.CategoryId} is not a category of the ground truth {groundTruthSource} " +
                    $"(its ids: {string.Join(", ", categories.CategoryIds.Take(10))}{(categories.Count > 10 ? ", …" : "")}).");
        }
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
