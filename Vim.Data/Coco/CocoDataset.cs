using System.Text.Json;
using Vim.Core;

namespace Vim.Data.Coco;

/// <summary>
/// The parts of a COCO instances json that evaluation and training need: images, annotations
/// (box, area, crowd flag, polygon or RLE mask) and categories, in file order.
/// </summary>
public sealed class CocoDataset
{
    public CocoDataset(IReadOnlyList<CocoImage> images, IReadOnlyList<CocoAnnotation> annotations, IReadOnlyList<CocoCategory> categories)
    {
        Images = images;
        Annotations = annotations;
        Categories = categories;
        var byId = new Dictionary<long, CocoImage>(images.Count);
        foreach (var image in images)
        {
            if (!byId.TryAdd(image.Id, image))
                throw new VimException($"COCO dataset: image id {image.Id} appears more than once.");
        }
        ImagesById = byId;
    }

    public IReadOnlyList<CocoImage> Images { get; }
    public IReadOnlyList<CocoAnnotation> Annotations { get; }
    public IReadOnlyList<CocoCategory> Categories { get; }
    public IReadOnlyDictionary<long, CocoImage> ImagesById { get; }

    /// <summary>Loads an instances json file; errors name the file, the entry index and the field.</summary>
    public static CocoDataset Load(string path)
    {
        using var doc = CocoJsonReading.OpenDocument(path);
        return Parse(doc.RootElement, path);
    }

    /// <summary>Parses an already-read json root; <paramref name="source"/> names it in error messages.</summary>
    public static CocoDataset Parse(JsonElement root, string source)
    {
        if (root.ValueKind != JsonValueKind.Object) throw new VimException($"{source}: expected a JSON object with images/annotations/categories.");
        var imagesJson = CocoJsonReading.RequireArray(root, "images", source);
        var images = new List<CocoImage>(imagesJson.GetArrayLength());
        int index = 0;
        foreach (var e in imagesJson.EnumerateArray())
        {
            string where = $"{source}: images[{index++}]";
            string? fileName = e.TryGetProperty("file_name", out var fn) && fn.ValueKind == JsonValueKind.String ? fn.GetString() : null;
            images.Add(new CocoImage(
                CocoJsonReading.RequireId(e, "id", where),
                CocoJsonReading.OptionalInt(e, "width", where),
                CocoJsonReading.OptionalInt(e, "height", where),
                fileName));
        }

        var categories = new List<CocoCategory>();
        if (root.TryGetProperty("categories", out var catsJson) && catsJson.ValueKind == JsonValueKind.Array)
        {
            index = 0;
            foreach (var e in catsJson.EnumerateArray())
            {
                string where = $"{source}: categories[{index++}]";
                long id = CocoJsonReading.RequireId(e, "id", where);
                string name = e.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString()! : id.ToString(System.Globalization.CultureInfo.InvariantCulture);
                string? super = e.TryGetProperty("supercategory", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString() : null;
                categories.Add(new CocoCategory(id, name, super));
            }
        }

        var annotations = new List<CocoAnnotation>();
        if (root.TryGetProperty("annotations", out var annsJson))
        {
            if (annsJson.ValueKind != JsonValueKind.Array) throw new VimException($"{source}: \"annotations\" must be an array.");
            annotations.Capacity = annsJson.GetArrayLength();
            index = 0;
            foreach (var e in annsJson.EnumerateArray())
            {
                string where = $"{source}: annotations[{index++}]";
                annotations.Add(new CocoAnnotation(
                    CocoJsonReading.RequireId(e, "id", where),
                    CocoJsonReading.RequireId(e, "image_id", where),
                    CocoJsonReading.RequireId(e, "category_id", where),
                    CocoJsonReading.OptionalBox(e, "bbox", where),
                    CocoJsonReading.OptionalNumber(e, "area", where),
                    CocoJsonReading.OptionalFlag(e, "iscrowd", where),
                    CocoJsonReading.OptionalSegmentation(e, where)));
            }
        }
        return new CocoDataset(images, annotations, categories);
    }
}
