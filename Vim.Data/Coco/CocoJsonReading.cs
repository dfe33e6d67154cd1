using System.Text.Json;
using Vim.Core;

namespace Vim.Data.Coco;

/// <summary>Field readers that turn malformed COCO json into errors naming the file, the entry and the field.</summary>
internal static class CocoJsonReading
{
    public static JsonDocument OpenDocument(string path)
    {
        if (!File.Exists(path)) throw new VimException($"{path}: file not found.");
        try
        {
            using var stream = File.OpenRead(path);
            return JsonDocument.Parse(stream, new JsonDocumentOptions { AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new VimException($"{path}: not valid JSON ({e.Message}).", e);
        }
    }

    public static JsonElement RequireArray(JsonElement obj, string field, string where)
    {
        if (obj.ValueKind != JsonValueKind.Object || !obj.TryGetProperty(field, out var v) || v.ValueKind != JsonValueKind.Array)
            throw new VimException($"{where}: expected an array field \"{field}\".");
        return v;
    }

    public static long RequireId(JsonElement obj, string field, string where)
    {
        if (!obj.TryGetProperty(field, out var v))
            throw new VimException($"{where}: missing field \"{field}\".");
        if (v.ValueKind == JsonValueKind.Number)
        {
            if (v.TryGetInt64(out long id)) return id;
            double d = v.GetDouble();
            if (d == Math.Floor(d) && Math.Abs(d) < 9e15) return (long)d;
        }
        throw new VimException($"{where}: field \"{field}\" must be an integer id, got {v.GetRawText()}.");
    }

    public static double RequireNumber(JsonElement obj, string field, string where)
    {
        if (!obj.TryGetProperty(field, out var v) || v.ValueKind != JsonValueKind.Number)
            throw new VimException($"{where}: expected a number field \"{field}\".");
        double d = v.GetDouble();
        if (!double.IsFinite(d)) throw new VimException($"{where}: field \"{field}\" must be finite.");
        return d;
    }

    public static double? OptionalNumber(JsonElement obj, string field, string where)
    {
        if (!obj.TryGetProperty(field, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.Number) throw new VimException($"{where}: field \"{field}\" must be a number.");
        return v.GetDouble();
    }

    public static int OptionalInt(JsonElement obj, string field, string where)
    {
        var d = OptionalNumber(obj, field, where);
        if (d is null) return 0;
        if (d.Value != Math.Floor(d.Value) || d.Value < 0 || d.Value > int.MaxValue)
            throw new VimException($"{where}: field \"{field}\" must be a non-negative integer, got {d.Value}.");
        return (int)d.Value;
    }

    public static bool OptionalFlag(JsonElement obj, string field, string where)
    {
        if (!obj.TryGetProperty(field, out var v) || v.ValueKind == JsonValueKind.Null) return false;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            JsonValueKind.Number => v.GetDouble() != 0,
            _ => throw new VimException($"{where}: field \"{field}\" must be 0/1 or a boolean."),
        };
    }

    public static double[]? OptionalBox(JsonElement obj, string field, string where)
    {
        if (!obj.TryGetProperty(field, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.Array) throw new VimException($"{where}: field \"{field}\" must be an array [x, y, w, h].");
        if (v.GetArrayLength() == 0) return null;
        if (v.GetArrayLength() != 4) throw new VimException($"{where}: field \"{field}\" must have 4 numbers [x, y, w, h], got {v.GetArrayLength()}.");
        var box = new double[4];
        int i = 0;
        foreach (var e in v.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.Number) throw new VimException($"{where}: field \"{field}\" must hold numbers.");
            box[i++] = e.GetDouble();
        }
        return box;
    }

    public static CocoSegmentation? OptionalSegmentation(JsonElement obj, string where)
    {
        if (!obj.TryGetProperty("segmentation", out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind == JsonValueKind.Array)
        {
            if (v.GetArrayLength() == 0) return null;
            var polygons = new List<double[]>(v.GetArrayLength());
            foreach (var poly in v.EnumerateArray())
            {
                if (poly.ValueKind != JsonValueKind.Array)
                    throw new VimException($"{where}: \"segmentation\" polygons must be arrays of numbers [x1, y1, x2, y2, ...].");
                var xy = new double[poly.GetArrayLength()];
                int i = 0;
                foreach (var n in poly.EnumerateArray())
                {
                    if (n.ValueKind != JsonValueKind.Number)
                        throw new VimException($"{where}: \"segmentation\" polygon coordinates must be numbers.");
                    xy[i++] = n.GetDouble();
                }
                if (xy.Length % 2 != 0 || xy.Length < 4)
                    throw new VimException($"{where}: \"segmentation\" polygon must have an even number (>= 4) of coordinates, got {xy.Length}.");
                polygons.Add(xy);
            }
            return CocoSegmentation.FromPolygons(polygons);
        }
        if (v.ValueKind != JsonValueKind.Object || !v.TryGetProperty("size", out var size) || !v.TryGetProperty("counts", out var counts))
            throw new VimException($"{where}: \"segmentation\" must be polygons or an RLE object {{\"size\": [h, w], \"counts\": ...}}.");
        if (size.ValueKind != JsonValueKind.Array || size.GetArrayLength() != 2
            || size[0].ValueKind != JsonValueKind.Number || size[1].ValueKind != JsonValueKind.Number
            || !size[0].TryGetInt32(out int h) || !size[1].TryGetInt32(out int w) || h < 0 || w < 0)
            throw new VimException($"{where}: \"segmentation.size\" must be [height, width] (non-negative integers).");
        if (counts.ValueKind == JsonValueKind.String)
            return CocoSegmentation.FromCompressed(counts.GetString()!, h, w);
        if (counts.ValueKind == JsonValueKind.Array)
        {
            var runs = new uint[counts.GetArrayLength()];
            int i = 0;
            long total = 0;
            foreach (var n in counts.EnumerateArray())
            {
                if (n.ValueKind != JsonValueKind.Number || !n.TryGetUInt32(out runs[i]))
                    throw new VimException($"{where}: \"segmentation.counts\" must hold non-negative integers.");
                total += runs[i++];
            }
            if (total != (long)h * w)
                throw new VimException($"{where}: \"segmentation.counts\" sum to {total}, expected height*width = {(long)h * w}.");
            return CocoSegmentation.FromUncompressed(runs, h, w);
        }
        throw new VimException($"{where}: \"segmentation.counts\" must be a string or an array of integers.");
    }
}
