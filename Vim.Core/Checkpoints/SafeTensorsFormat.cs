using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using TorchSharp;
using Vim.Core.IO;
using static TorchSharp.torch;

namespace Vim.Core.Checkpoints;

/// <summary>
/// The safetensors layout: an unsigned 64-bit little-endian header length N, N bytes of UTF-8 JSON
/// ({"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ..., optional
/// "__metadata__": {string: string}}), then the raw little-endian tensor bytes, offsets relative to
/// the end of the header. Reading is through <see cref="CheckpointFile.Load"/>.
/// </summary>
public static class SafeTensorsFormat
{
    private const string MetadataKey = "__metadata__";

    /// <summary>Headers beyond this are refused before allocating (the reference implementation uses the same cap).</summary>
    private const long MaxHeaderBytes = 100_000_000;

    /// <summary>
    /// Writes the tensors in the given order (their names are the keys) with optional string metadata,
    /// through a temporary file renamed over <paramref name="path"/> so readers never see half a file.
    /// Tensors on other devices or non-contiguous ones are copied to contiguous CPU memory first.
    /// </summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        WriteThenName(path, tensors, metadata, _ => path);

    /// <summary><see cref="Write"/>, the file then named by <paramref name="finalPath"/> from its complete bytes (<see cref="AtomicFile.WriteThenName"/>); returns that name.</summary>
    public static string WriteThenName(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata,
        Func<string, string> finalPath)
    {
        var items = tensors.ToList();
        var seen = new HashSet<string>();
        foreach (var (name, tensor) in items)
        {
            if (name == MetadataKey)
                throw new VimException($"{path}: tensor name '{MetadataKey}' is reserved by the safetensors format");
            if (!seen.Add(name))
                throw new VimException($"{path}: tensor name '{name}' appears twice");
            if (!CheckpointDTypes.IsSupported(tensor.dtype))
                throw new VimException($"{path}: tensor '{name}' has dtype {tensor.dtype}, which safetensors writing does not support ({CheckpointDTypes.SupportedSafeTensorsCodes})");
        }

        var header = BuildHeader(items, metadata);
        return AtomicFile.WriteThenName(path, stream =>
        {
            Span<byte> length = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
            stream.Write(length);
            stream.Write(header);
            foreach (var (name, tensor) in items)
            {
                using var scope = NewDisposeScope();
                Tensor bytes;
                try
                {
                    bytes = tensor.cpu().contiguous();
                }
                catch (Exception e) when (e is ExternalException or OutOfMemoryException)
                {
                    // An expanded view (stride 0) read from a .pth holds few bytes but writes all of its elements.
                    throw new VimException($"{path}: tensor '{name}' (shape [{string.Join(", ", tensor.shape)}], {tensor.NumberOfElements * tensor.ElementSize} bytes when written out) could not be copied to contiguous memory: {e.Message}", e);
                }
                TensorBytes.WriteFrom(bytes, stream);
            }
        }, finalPath);
    }

    private static byte[] BuildHeader(List<KeyValuePair<string, Tensor>> items, IReadOnlyDictionary<string, string>? metadata)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject(MetadataKey);
                foreach (var (k, v) in metadata)
                    json.WriteString(k, v);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, tensor) in items)
            {
                var bytes = tensor.NumberOfElements * CheckpointDTypes.ElementSize(tensor.dtype);
                json.WriteStartObject(name);
                json.WriteString("dtype", CheckpointDTypes.SafeTensorsCode(tensor.dtype));
                json.WriteStartArray("shape");
                foreach (var d in tensor.shape)
                    json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + bytes);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += bytes;
            }
            json.WriteEndObject();
        }
        // Pad with spaces (valid JSON whitespace) so the data section starts 8-byte aligned.
        var padded = (buffer.Length + 7) / 8 * 8;
        while (buffer.Length < padded)
            buffer.WriteByte((byte)' ');
        return buffer.ToArray();
    }

    internal static CheckpointFile Read(string path)
    {
        var file = Path.GetFileName(path);
        using var stream = File.OpenRead(path);
        var headerBytes = ReadHeaderBytes(stream, file);
        var dataStart = 8 + (long)headerBytes.Length;
        var dataLength = stream.Length - dataStart;

        var specs = ParseHeader(file, headerBytes, dataLength, out var metadata);

        using var scope = NewDisposeScope();
        var entries = new List<CheckpointEntry>();
        var root = new PickleDict(isOrderedDict: true);
        var owned = new List<Tensor>();
        foreach (var spec in specs)
        {
            var tensor = empty(spec.Shape, dtype: spec.DType);
            stream.Position = dataStart + spec.Begin;
            try
            {
                TensorBytes.ReadInto(tensor, stream, bigEndian: false);
            }
            catch (EndOfStreamException e)
            {
                throw new VimException($"{file}: tensor '{spec.Name}' data [{spec.Begin}, {spec.End}) runs past the end of the file", e);
            }
            owned.Add(tensor);
            root[spec.Name] = tensor;
            entries.Add(new CheckpointEntry(spec.Name, tensor));
        }
        scope.Detach(owned);
        return new CheckpointFile(path, CheckpointFormat.SafeTensors, root, entries, owned, metadata);
    }

    /// <summary>The <c>__metadata__</c> strings alone, read from the header without the tensors (a file's provenance, cheaply).</summary>
    public static IReadOnlyDictionary<string, string> ReadMetadata(string path)
    {
        var file = Path.GetFileName(path);
        using var stream = File.OpenRead(path);
        var headerBytes = ReadHeaderBytes(stream, file);
        ParseHeader(file, headerBytes, stream.Length - 8 - headerBytes.Length, out var metadata);
        return metadata;
    }

    private static byte[] ReadHeaderBytes(FileStream stream, string file)
    {
        var fileLength = stream.Length;
        if (fileLength < 8)
            throw new VimException($"{file}: {fileLength} bytes is too short for a safetensors file (8-byte header length expected)");
        Span<byte> lengthBytes = stackalloc byte[8];
        stream.ReadExactly(lengthBytes);
        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
        if (headerLength > MaxHeaderBytes || (long)headerLength > fileLength - 8)
            throw new VimException($"{file}: safetensors header length {headerLength} exceeds the file ({fileLength} bytes) or the {MaxHeaderBytes}-byte limit; the file is truncated or not safetensors");
        var headerBytes = new byte[headerLength];
        stream.ReadExactly(headerBytes);
        return headerBytes;
    }

    private sealed record TensorSpec(string Name, ScalarType DType, long[] Shape, long Begin, long End);

    private static List<TensorSpec> ParseHeader(string file, byte[] headerBytes, long dataLength, out Dictionary<string, string> metadata)
    {
        metadata = [];
        // The parser checks UTF-8 only when a string is read, and then throws InvalidOperationException.
        if (!System.Text.Unicode.Utf8.IsValid(headerBytes))
            throw new VimException($"{file}: safetensors header is not valid UTF-8 (the JSON header must be UTF-8 text)");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(headerBytes);
        }
        catch (JsonException e)
        {
            throw new VimException($"{file}: safetensors header is not valid JSON: {e.Message}", e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new VimException($"{file}: safetensors header is a JSON {doc.RootElement.ValueKind}, expected an object");
            var specs = new List<TensorSpec>();
            foreach (var property in doc.RootElement.EnumerateObject())
            {
                if (property.Name == MetadataKey)
                {
                    if (property.Value.ValueKind != JsonValueKind.Object)
                        throw new VimException($"{file}: safetensors '{MetadataKey}' must be an object of strings");
                    foreach (var m in property.Value.EnumerateObject())
                        metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String
                            ? m.Value.GetString()!
                            : throw new VimException($"{file}: safetensors '{MetadataKey}.{m.Name}' is a {m.Value.ValueKind}, expected a string");
                    continue;
                }
                specs.Add(ParseTensor(file, property));
            }
            CheckCoverage(file, specs, dataLength);
            return specs;
        }
    }

    private static TensorSpec ParseTensor(string file, JsonProperty property)
    {
        var name = property.Name;
        VimException Bad(string what) => new($"{file}: safetensors header, tensor '{name}': {what}");
        var v = property.Value;
        if (v.ValueKind != JsonValueKind.Object)
            throw Bad($"entry is a JSON {v.ValueKind}, expected an object with dtype, shape and data_offsets");
        if (!v.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw Bad("missing string field 'dtype'");
        var code = dtypeElement.GetString()!;
        if (!CheckpointDTypes.TryFromSafeTensorsCode(code, out var dtype))
            throw Bad($"dtype '{code}' is not supported (supported: {CheckpointDTypes.SupportedSafeTensorsCodes})");
        var shape = ReadLongs(v, "shape", -1, Bad);
        if (shape.Any(d => d < 0))
            throw Bad($"shape [{string.Join(", ", shape)}] has a negative dimension");
        var offsets = ReadLongs(v, "data_offsets", 2, Bad);
        var (begin, end) = (offsets[0], offsets[1]);
        if (begin < 0 || end < begin)
            throw Bad($"data_offsets [{begin}, {end}] are not an increasing pair of non-negative offsets");
        var expected = TensorExtent.Bytes(shape, CheckpointDTypes.ElementSize(dtype))
                       ?? throw Bad($"shape [{string.Join(", ", shape)}] of {code} holds more bytes than a file can");
        if (end - begin != expected)
            throw Bad($"data_offsets [{begin}, {end}] span {end - begin} bytes, but shape [{string.Join(", ", shape)}] of {code} needs {expected}");
        return new TensorSpec(name, dtype, shape, begin, end);
    }

    private static long[] ReadLongs(JsonElement v, string field, int requiredLength, Func<string, VimException> bad)
    {
        if (!v.TryGetProperty(field, out var array) || array.ValueKind != JsonValueKind.Array)
            throw bad($"missing array field '{field}'");
        var values = new List<long>();
        foreach (var item in array.EnumerateArray())
            values.Add(item.ValueKind == JsonValueKind.Number && item.TryGetInt64(out var x)
                ? x
                : throw bad($"'{field}' holds {item}, expected integers"));
        if (requiredLength >= 0 && values.Count != requiredLength)
            throw bad($"'{field}' has {values.Count} values, expected {requiredLength}");
        return values.ToArray();
    }

    /// <summary>The format requires the tensors to tile the data section exactly: no overlaps, no holes.</summary>
    private static void CheckCoverage(string file, List<TensorSpec> specs, long dataLength)
    {
        long position = 0;
        foreach (var spec in specs.OrderBy(s => s.Begin).ThenBy(s => s.End))
        {
            if (spec.Begin != position)
                throw new VimException(spec.Begin < position
                    ? $"{file}: safetensors tensor '{spec.Name}' data [{spec.Begin}, {spec.End}) overlaps the previous tensor (which ends at {position})"
                    : $"{file}: safetensors data has a hole [{position}, {spec.Begin}) before tensor '{spec.Name}'");
            position = spec.End;
        }
        if (position != dataLength)
            throw new VimException(position > dataLength
                ? $"{file}: safetensors tensors need {position} data bytes but the file holds {dataLength} after the header (truncated?)"
                : $"{file}: safetensors file has {dataLength - position} unused bytes after the last tensor");
    }
}
