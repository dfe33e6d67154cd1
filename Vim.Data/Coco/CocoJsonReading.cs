using System.Globalization;
using System.Text.Json;
using Vim.Core;

namespace Vim.Data.Coco;

/// <summary>
/// Streaming readers for COCO json (instances files and results files): records are built straight
/// from the token stream of a <see cref="JsonStreamReader"/>, keys in any order, unknown keys and
/// sections (<c>info</c>, <c>licenses</c>, nested objects) skipped without being materialised.
/// Malformed input becomes a <see cref="VimException"/> naming the file, the record and the field.
/// </summary>
internal static class CocoJsonReading
{
    /// <summary>Names a record in error messages; formatted only when an error is raised.</summary>
    private readonly record struct Where(string Source, string Section, int Index)
    {
        public override string ToString() => Section.Length == 0 ? $"{Source}: [{Index}]" : $"{Source}: {Section}[{Index}]";
    }

    /// <summary>Opens <paramref name="path"/> for one sequential pass; errors name the file.</summary>
    public static T ReadFile<T>(string path, Func<Stream, string, int, T> read, int bufferBytes)
    {
        if (!File.Exists(path)) throw new VimException($"{path}: file not found.");
        // Our own buffer does the batching; the FileStream's would only add a copy.
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.SequentialScan);
        return read(stream, path, bufferBytes);
    }

    public static CocoDataset ReadDataset(Stream stream, string source, int bufferBytes)
    {
        var (images, annotations, categories) = ReadInstances(stream, source, bufferBytes, categoriesOnly: false);
        if (images is null) throw new VimException($"{source}: expected an array field \"images\".");
        images.TrimExcess();
        annotations?.TrimExcess();
        return new CocoDataset(images, (IReadOnlyList<CocoAnnotation>?)annotations ?? [], (IReadOnlyList<CocoCategory>?)categories ?? []);
    }

    /// <summary>
    /// The "categories" of an instances json alone, wherever they stand in the file: "images" and "annotations" are
    /// skipped token by token without building a record, so the cost is one pass of the tokenizer and memory is the read
    /// buffer. The whole file is still read, so json damaged anywhere is refused as <see cref="ReadDataset"/> refuses it.
    /// Empty when the file has no "categories" array.
    /// </summary>
    public static List<CocoCategory> ReadCategories(Stream stream, string source, int bufferBytes) =>
        ReadInstances(stream, source, bufferBytes, categoriesOnly: true).Categories ?? [];

    /// <summary>
    /// One pass over an instances json's top-level object, keys in any order; with <paramref name="categoriesOnly"/> the
    /// images and annotations are skipped (and returned as null) instead of read.
    /// </summary>
    private static (List<CocoImage>? Images, List<CocoAnnotation>? Annotations, List<CocoCategory>? Categories) ReadInstances(
        Stream stream, string source, int bufferBytes, bool categoriesOnly)
    {
        try
        {
            var r = new JsonStreamReader(stream, bufferBytes);
            if (!r.Read() || r.TokenType != JsonTokenType.StartObject)
                throw new VimException($"{source}: expected a JSON object with images/annotations/categories.");
            List<CocoImage>? images = null;
            List<CocoAnnotation>? annotations = null;
            List<CocoCategory>? categories = null;
            var scratch = new Scratch();
            while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
            {
                if (!categoriesOnly && r.NameIs("images"u8))
                {
                    r.ReadValue();
                    if (r.TokenType != JsonTokenType.StartArray) throw new VimException($"{source}: expected an array field \"images\".");
                    images = [];
                    while (r.Read() && r.TokenType != JsonTokenType.EndArray)
                        images.Add(ReadImage(ref r, new Where(source, "images", images.Count)));
                }
                else if (!categoriesOnly && r.NameIs("annotations"u8))
                {
                    r.ReadValue();
                    if (r.TokenType != JsonTokenType.StartArray) throw new VimException($"{source}: \"annotations\" must be an array.");
                    annotations = [];
                    while (r.Read() && r.TokenType != JsonTokenType.EndArray)
                        annotations.Add(ReadAnnotation(ref r, new Where(source, "annotations", annotations.Count), scratch));
                }
                else if (r.NameIs("categories"u8))
                {
                    r.ReadValue();
                    // A non-array "categories" is treated as absent; where classes are needed CategoryMap.FromCategories refuses it.
                    if (r.TokenType != JsonTokenType.StartArray)
                    {
                        r.Skip();
                        continue;
                    }
                    categories = [];
                    while (r.Read() && r.TokenType != JsonTokenType.EndArray)
                        categories.Add(ReadCategory(ref r, new Where(source, "categories", categories.Count)));
                }
                else
                {
                    r.ReadValue();
                    r.Skip();
                }
            }
            ExpectEnd(ref r);
            return (images, annotations, categories);
        }
        catch (JsonException e)
        {
            throw NotJson(source, e);
        }
    }

    public static List<CocoDetection> ReadResults(Stream stream, string source, int bufferBytes)
    {
        try
        {
            var r = new JsonStreamReader(stream, bufferBytes);
            if (!r.Read() || r.TokenType != JsonTokenType.StartArray)
                throw new VimException($"{source}: a COCO results file must be a JSON array of detections.");
            var list = new List<CocoDetection>();
            var scratch = new Scratch();
            while (r.Read() && r.TokenType != JsonTokenType.EndArray)
                list.Add(ReadDetection(ref r, new Where(source, "", list.Count), scratch));
            ExpectEnd(ref r);
            return list;
        }
        catch (JsonException e)
        {
            throw NotJson(source, e);
        }
    }

    private static VimException NotJson(string source, JsonException e) => new($"{source}: not valid JSON ({e.Message}).", e);

    /// <summary>After the root value only the end of the input may follow (the reader rejects anything else).</summary>
    private static void ExpectEnd(ref JsonStreamReader r)
    {
        if (r.Read()) throw new JsonException($"unexpected {r.TokenType} after the root value.");
    }

    private static void ExpectObject(ref JsonStreamReader r, Where where)
    {
        if (r.TokenType != JsonTokenType.StartObject) throw new VimException($"{where}: expected an object, got {r.Describe()}.");
    }

    private static CocoImage ReadImage(ref JsonStreamReader r, Where where)
    {
        ExpectObject(ref r, where);
        long? id = null;
        int width = 0, height = 0;
        string? fileName = null;
        while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
        {
            if (r.NameIs("id"u8)) { r.ReadValue(); id = ReadId(ref r, "id", where); }
            else if (r.NameIs("width"u8)) { r.ReadValue(); width = ReadOptionalInt(ref r, "width", where); }
            else if (r.NameIs("height"u8)) { r.ReadValue(); height = ReadOptionalInt(ref r, "height", where); }
            else if (r.NameIs("file_name"u8))
            {
                r.ReadValue();
                fileName = r.TokenType == JsonTokenType.String ? r.GetString() : null;
                r.Skip();
            }
            else { r.ReadValue(); r.Skip(); }
        }
        RequireMaskablePixels(height, width, "width x height", where);
        return new CocoImage(id ?? throw Missing(where, "id"), width, height, fileName);
    }

    /// <summary>Masks of an image are counted in 32-bit runs and decoded into arrays; a size beyond that is a damaged field.</summary>
    private static void RequireMaskablePixels(int height, int width, string fields, Where where)
    {
        if ((long)height * width > int.MaxValue)
            throw new VimException($"{where}: {fields} {width} x {height} is {(long)height * width} pixels, more than a mask can hold ({int.MaxValue}).");
    }

    private static CocoCategory ReadCategory(ref JsonStreamReader r, Where where)
    {
        ExpectObject(ref r, where);
        long? id = null;
        string? name = null, supercategory = null;
        while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
        {
            if (r.NameIs("id"u8)) { r.ReadValue(); id = ReadId(ref r, "id", where); }
            else if (r.NameIs("name"u8)) { r.ReadValue(); name = r.TokenType == JsonTokenType.String ? r.GetString() : null; r.Skip(); }
            else if (r.NameIs("supercategory"u8)) { r.ReadValue(); supercategory = r.TokenType == JsonTokenType.String ? r.GetString() : null; r.Skip(); }
            else { r.ReadValue(); r.Skip(); }
        }
        long categoryId = id ?? throw Missing(where, "id");
        return new CocoCategory(categoryId, name ?? categoryId.ToString(CultureInfo.InvariantCulture), supercategory);
    }

    private static CocoAnnotation ReadAnnotation(ref JsonStreamReader r, Where where, Scratch scratch)
    {
        ExpectObject(ref r, where);
        long? id = null, imageId = null, categoryId = null;
        double[]? bbox = null;
        double? area = null;
        bool crowd = false;
        CocoSegmentation? segmentation = null;
        while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
        {
            if (r.NameIs("id"u8)) { r.ReadValue(); id = ReadId(ref r, "id", where); }
            else if (r.NameIs("image_id"u8)) { r.ReadValue(); imageId = ReadId(ref r, "image_id", where); }
            else if (r.NameIs("category_id"u8)) { r.ReadValue(); categoryId = ReadId(ref r, "category_id", where); }
            else if (r.NameIs("bbox"u8)) { r.ReadValue(); bbox = ReadOptionalBox(ref r, "bbox", where); }
            else if (r.NameIs("area"u8)) { r.ReadValue(); area = ReadOptionalNumber(ref r, "area", where); }
            else if (r.NameIs("iscrowd"u8)) { r.ReadValue(); crowd = ReadOptionalFlag(ref r, "iscrowd", where); }
            else if (r.NameIs("segmentation"u8)) { r.ReadValue(); segmentation = ReadOptionalSegmentation(ref r, where, scratch); }
            else { r.ReadValue(); r.Skip(); }
        }
        return new CocoAnnotation(
            id ?? throw Missing(where, "id"),
            imageId ?? throw Missing(where, "image_id"),
            categoryId ?? throw Missing(where, "category_id"),
            bbox, area, crowd, segmentation);
    }

    private static CocoDetection ReadDetection(ref JsonStreamReader r, Where where, Scratch scratch)
    {
        ExpectObject(ref r, where);
        long? imageId = null, categoryId = null;
        double? score = null;
        double[]? bbox = null;
        CocoSegmentation? segmentation = null;
        while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
        {
            if (r.NameIs("image_id"u8)) { r.ReadValue(); imageId = ReadId(ref r, "image_id", where); }
            else if (r.NameIs("category_id"u8)) { r.ReadValue(); categoryId = ReadId(ref r, "category_id", where); }
            else if (r.NameIs("score"u8)) { r.ReadValue(); score = ReadRequiredNumber(ref r, "score", where); }
            else if (r.NameIs("bbox"u8)) { r.ReadValue(); bbox = ReadOptionalBox(ref r, "bbox", where); }
            else if (r.NameIs("segmentation"u8)) { r.ReadValue(); segmentation = ReadOptionalSegmentation(ref r, where, scratch); }
            else { r.ReadValue(); r.Skip(); }
        }
        if (bbox is null && segmentation is null) throw new VimException($"{where}: a detection needs \"bbox\" or \"segmentation\".");
        return new CocoDetection(
            imageId ?? throw Missing(where, "image_id"),
            categoryId ?? throw Missing(where, "category_id"),
            score ?? throw new VimException($"{where}: expected a number field \"score\"."),
            bbox, segmentation);
    }

    private static VimException Missing(Where where, string field) => new($"{where}: missing field \"{field}\".");

    private static long ReadId(ref JsonStreamReader r, string field, Where where)
    {
        if (r.TokenType == JsonTokenType.Number)
        {
            if (r.TryGetInt64(out long id)) return id;
            if (r.TryGetIntegralDouble(out id)) return id;
        }
        var got = r.Describe();
        throw new VimException($"{where}: field \"{field}\" must be an integer id, got {got}.");
    }

    private static double ReadRequiredNumber(ref JsonStreamReader r, string field, Where where)
    {
        if (r.TokenType != JsonTokenType.Number || !r.TryGetDouble(out double d))
            throw new VimException($"{where}: expected a number field \"{field}\".");
        if (!double.IsFinite(d)) throw new VimException($"{where}: field \"{field}\" must be finite.");
        return d;
    }

    /// <summary>A number token that is finite: json has no infinities, but a literal such as 1e999 reads as one.</summary>
    private static bool TryReadFinite(ref JsonStreamReader r, out double value)
    {
        value = 0;
        return r.TokenType == JsonTokenType.Number && r.TryGetDouble(out value) && double.IsFinite(value);
    }

    private static double? ReadOptionalNumber(ref JsonStreamReader r, string field, Where where)
    {
        if (r.TokenType == JsonTokenType.Null) return null;
        if (!TryReadFinite(ref r, out double d)) throw new VimException($"{where}: field \"{field}\" must be a finite number, got {r.Describe()}.");
        return d;
    }

    private static int ReadOptionalInt(ref JsonStreamReader r, string field, Where where)
    {
        var d = ReadOptionalNumber(ref r, field, where);
        if (d is null) return 0;
        if (d.Value != Math.Floor(d.Value) || d.Value < 0 || d.Value > int.MaxValue)
            throw new VimException($"{where}: field \"{field}\" must be a non-negative integer, got {d.Value.ToString(CultureInfo.InvariantCulture)}.");
        return (int)d.Value;
    }

    private static bool ReadOptionalFlag(ref JsonStreamReader r, string field, Where where)
    {
        switch (r.TokenType)
        {
            case JsonTokenType.Null:
            case JsonTokenType.False:
                return false;
            case JsonTokenType.True:
                return true;
            case JsonTokenType.Number when r.TryGetDouble(out double d):
                return d != 0;
            default:
                r.Skip();
                throw new VimException($"{where}: field \"{field}\" must be 0/1 or a boolean.");
        }
    }

    private static double[]? ReadOptionalBox(ref JsonStreamReader r, string field, Where where)
    {
        if (r.TokenType == JsonTokenType.Null) return null;
        if (r.TokenType != JsonTokenType.StartArray) throw new VimException($"{where}: field \"{field}\" must be an array [x, y, w, h].");
        Span<double> box = stackalloc double[4];
        int n = 0;
        while (r.Read() && r.TokenType != JsonTokenType.EndArray)
        {
            if (!TryReadFinite(ref r, out double v))
                throw new VimException($"{where}: field \"{field}\" must hold finite numbers, got {r.Describe()}.");
            if (n < 4) box[n] = v;
            n++;
        }
        if (n == 0) return null;
        if (n != 4) throw new VimException($"{where}: field \"{field}\" must have 4 numbers [x, y, w, h], got {n}.");
        return box.ToArray();
    }

    private static CocoSegmentation? ReadOptionalSegmentation(ref JsonStreamReader r, Where where, Scratch scratch)
    {
        if (r.TokenType == JsonTokenType.Null) return null;
        if (r.TokenType == JsonTokenType.StartArray) return ReadPolygons(ref r, where, scratch);
        if (r.TokenType != JsonTokenType.StartObject)
            throw new VimException($"{where}: \"segmentation\" must be polygons or an RLE object {{\"size\": [h, w], \"counts\": ...}}.");
        int h = -1, w = -1;
        string? compressed = null;
        uint[]? runs = null;
        long total = 0;
        bool hasSize = false;
        while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
        {
            if (r.NameIs("size"u8))
            {
                r.ReadValue();
                hasSize = true;
                (h, w) = ReadRleSize(ref r, where);
            }
            else if (r.NameIs("counts"u8))
            {
                r.ReadValue();
                runs = null;
                compressed = null;
                if (r.TokenType == JsonTokenType.String) compressed = r.GetString();
                else if (r.TokenType == JsonTokenType.StartArray) (runs, total) = ReadRuns(ref r, where, scratch);
                else
                {
                    r.Skip();
                    throw new VimException($"{where}: \"segmentation.counts\" must be a string or an array of integers.");
                }
            }
            else { r.ReadValue(); r.Skip(); }
        }
        if (!hasSize || (compressed is null && runs is null))
            throw new VimException($"{where}: \"segmentation\" must be polygons or an RLE object {{\"size\": [h, w], \"counts\": ...}}.");
        if (compressed is not null) return CocoSegmentation.FromCompressed(compressed, h, w);
        if (total != (long)h * w)
            throw new VimException($"{where}: \"segmentation.counts\" sum to {total}, expected height*width = {(long)h * w}.");
        return CocoSegmentation.FromUncompressed(runs!, h, w);
    }

    private static (int Height, int Width) ReadRleSize(ref JsonStreamReader r, Where where)
    {
        const string Expected = "\"segmentation.size\" must be [height, width] (non-negative integers).";
        if (r.TokenType != JsonTokenType.StartArray)
        {
            r.Skip();
            throw new VimException($"{where}: {Expected}");
        }
        Span<int> hw = stackalloc int[2];
        int n = 0;
        while (r.Read() && r.TokenType != JsonTokenType.EndArray)
        {
            if (n >= 2 || r.TokenType != JsonTokenType.Number || !r.TryGetInt32(out int v) || v < 0)
                throw new VimException($"{where}: {Expected}");
            hw[n++] = v;
        }
        if (n != 2) throw new VimException($"{where}: {Expected}");
        RequireMaskablePixels(hw[0], hw[1], "\"segmentation.size\"", where);
        return (hw[0], hw[1]);
    }

    private static (uint[] Runs, long Total) ReadRuns(ref JsonStreamReader r, Where where, Scratch scratch)
    {
        int n = 0;
        long total = 0;
        while (r.Read() && r.TokenType != JsonTokenType.EndArray)
        {
            if (r.TokenType != JsonTokenType.Number || !r.TryGetUInt32(out uint v))
                throw new VimException($"{where}: \"segmentation.counts\" must hold non-negative integers.");
            scratch.AddRun(n++, v);
            total += v;
        }
        return (scratch.Runs.AsSpan(0, n).ToArray(), total);
    }

    private static CocoSegmentation? ReadPolygons(ref JsonStreamReader r, Where where, Scratch scratch)
    {
        scratch.Polygons.Clear();
        while (r.Read() && r.TokenType != JsonTokenType.EndArray)
        {
            if (r.TokenType != JsonTokenType.StartArray)
                throw new VimException($"{where}: \"segmentation\" polygons must be arrays of numbers [x1, y1, x2, y2, ...].");
            int n = 0;
            while (r.Read() && r.TokenType != JsonTokenType.EndArray)
            {
                if (!TryReadFinite(ref r, out double v))
                    throw new VimException($"{where}: \"segmentation\" polygon coordinates must be finite numbers, got {r.Describe()}.");
                scratch.AddCoordinate(n++, v);
            }
            if (n % 2 != 0 || n < 4)
                throw new VimException($"{where}: \"segmentation\" polygon must have an even number (>= 4) of coordinates, got {n}.");
            // One exact-size array per outline: no per-point objects, no list slack.
            scratch.Polygons.Add(scratch.Coordinates.AsSpan(0, n).ToArray());
        }
        return scratch.Polygons.Count == 0 ? null : CocoSegmentation.FromPolygons(scratch.Polygons.ToArray());
    }

    /// <summary>Growable buffers reused across records, so parsing a value allocates only its final exact-size array.</summary>
    private sealed class Scratch
    {
        public double[] Coordinates = new double[256];
        public uint[] Runs = new uint[256];
        public readonly List<double[]> Polygons = [];

        public void AddCoordinate(int index, double value)
        {
            if (index == Coordinates.Length) Array.Resize(ref Coordinates, Coordinates.Length * 2);
            Coordinates[index] = value;
        }

        public void AddRun(int index, uint value)
        {
            if (index == Runs.Length) Array.Resize(ref Runs, Runs.Length * 2);
            Runs[index] = value;
        }
    }
}
