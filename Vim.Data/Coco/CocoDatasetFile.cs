using System.Text.Json;
using Vim.Core.IO;

namespace Vim.Data.Coco;

/// <summary>
/// Writes a <see cref="CocoDataset"/> as an instances json ("images", "annotations", "categories"), atomically, in the
/// form <see cref="CocoDataset.Load(string)"/> reads back: what the dataset converters (`vim data convert`) and the demo
/// data generator (`vim data demo`) produce.
/// </summary>
public static class CocoDatasetFile
{
    /// <param name="description">Written as COCO's <c>info.description</c> (readers ignore it; it says where a file came from); none when null.</param>
    public static void Save(string path, CocoDataset dataset, string? description = null) => AtomicFile.Write(path, stream =>
    {
        using var w = new Utf8JsonWriter(stream);
        w.WriteStartObject();
        if (description is not null)
        {
            w.WriteStartObject("info");
            w.WriteString("description", description);
            w.WriteEndObject();
        }
        w.WriteStartArray("images");
        foreach (var image in dataset.Images)
        {
            w.WriteStartObject();
            w.WriteNumber("id", image.Id);
            if (image.FileName is not null) w.WriteString("file_name", image.FileName);
            w.WriteNumber("width", image.Width);
            w.WriteNumber("height", image.Height);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartArray("annotations");
        foreach (var a in dataset.Annotations)
        {
            w.WriteStartObject();
            w.WriteNumber("id", a.Id);
            w.WriteNumber("image_id", a.ImageId);
            w.WriteNumber("category_id", a.CategoryId);
            if (a.Bbox is not null)
            {
                w.WriteStartArray("bbox");
                foreach (var v in a.Bbox) w.WriteNumberValue(v);
                w.WriteEndArray();
            }
            if (a.Area is { } area) w.WriteNumber("area", area);
            w.WriteNumber("iscrowd", a.IsCrowd ? 1 : 0);
            if (a.Segmentation is not null) CocoResults.WriteSegmentation(w, a.Segmentation);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartArray("categories");
        foreach (var c in dataset.Categories)
        {
            w.WriteStartObject();
            w.WriteNumber("id", c.Id);
            w.WriteString("name", c.Name);
            if (c.Supercategory is not null) w.WriteString("supercategory", c.Supercategory);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    });

    /// <summary>Categories with ids 1..N in list order, COCO's convention (id 0 is left free), each of supercategory "none".</summary>
    public static IReadOnlyList<CocoCategory> NumberedCategories(IReadOnlyList<string> names) =>
        names.Select((name, i) => new CocoCategory(i + 1, name, "none")).ToArray();
}
