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

    /// <summary>
    /// Loads an instances json file in one streaming pass (memory: the parsed records plus one read
    /// buffer, never the file's text or a document tree); errors name the file, the entry index and the field.
    /// </summary>
    public static CocoDataset Load(string path) => Load(path, JsonStreamReader.DefaultBufferBytes);

    /// <summary><see cref="Load(string)"/> with a chosen initial read buffer (tests force tokens across buffer boundaries).</summary>
    internal static CocoDataset Load(string path, int bufferBytes) => CocoJsonReading.ReadFile(path, CocoJsonReading.ReadDataset, bufferBytes);

    /// <summary>
    /// The "categories" of an instances json alone, in file order (empty when it has none), for uses that need a model's
    /// classes but none of its images or annotations (<see cref="CategoryMap.Load"/>): the file is tokenized once,
    /// images and annotations skipped unbuilt, so a train2017-sized file costs a fraction of <see cref="Load(string)"/>'s
    /// time and no more memory than the read buffer. Malformed json anywhere in the file is refused as Load refuses it.
    /// </summary>
    public static IReadOnlyList<CocoCategory> LoadCategories(string path) => LoadCategories(path, JsonStreamReader.DefaultBufferBytes);

    /// <summary><see cref="LoadCategories(string)"/> with a chosen initial read buffer (tests force tokens across buffer boundaries).</summary>
    internal static IReadOnlyList<CocoCategory> LoadCategories(string path, int bufferBytes) =>
        CocoJsonReading.ReadFile(path, CocoJsonReading.ReadCategories, bufferBytes);

    /// <summary>The "categories" of an instances json read from a stream (<see cref="LoadCategories(string)"/>); <paramref name="source"/> names it in error messages.</summary>
    public static IReadOnlyList<CocoCategory> ReadCategories(Stream stream, string source) =>
        CocoJsonReading.ReadCategories(stream, source, JsonStreamReader.DefaultBufferBytes);

    /// <summary>Reads an instances json from a stream; <paramref name="source"/> names it in error messages.</summary>
    public static CocoDataset Read(Stream stream, string source) => CocoJsonReading.ReadDataset(stream, source, JsonStreamReader.DefaultBufferBytes);

    internal static CocoDataset Read(Stream stream, string source, int bufferBytes) => CocoJsonReading.ReadDataset(stream, source, bufferBytes);

    /// <summary>Parses an already-parsed json value (e.g. a test case embedding a dataset) with the same reader as files.</summary>
    public static CocoDataset Parse(JsonElement root, string source)
    {
        using var stream = new MemoryStream(JsonSerializer.SerializeToUtf8Bytes(root));
        return Read(stream, source);
    }
}
