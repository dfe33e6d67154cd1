using System.Buffers.Binary;
using System.Text;

namespace Vim.Tests.Engine;

/// <summary>
/// Reads TensorBoard event files without the writer's code: TFRecord framing with both CRCs checked (a bit-at-a-time
/// CRC-32C), each record's protobuf decoded from the wire format into the few Event fields the trainer writes. Anything
/// else (another field, a wrong wire type, bytes left over) is damage here, since we know what was written.
/// </summary>
internal static class TensorBoardEventReader
{
    internal sealed record Event(double WallTime, long Step, string? FileVersion, IReadOnlyList<SummaryValue> Values, long? SessionStatus);

    /// <param name="TensorShapeDims">How many dimensions the tensor's shape lists (0: a scalar); null without a tensor.</param>
    internal sealed record SummaryValue(string Tag, float? SimpleValue, string? PluginName, long? TensorDtype, int? TensorShapeDims, IReadOnlyList<string> TensorStrings);

    public static List<Event> Read(string path) => Records(path).Select(record => DecodeEvent(record.Payload)).ToList();

    /// <summary>Each record's offset in the file and payload, after checking its framing and both CRCs.</summary>
    public static List<(int Offset, ReadOnlyMemory<byte> Payload)> Records(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var records = new List<(int, ReadOnlyMemory<byte>)>();
        for (int offset = 0; offset < bytes.Length;)
        {
            if (bytes.Length - offset < 12) throw new InvalidDataException($"{path}: truncated record header at byte {offset}");
            var header = bytes.AsSpan(offset, 8);
            if (BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(offset + 8)) != MaskedCrc(header))
                throw new InvalidDataException($"{path}: length CRC mismatch at byte {offset}");
            ulong length = BinaryPrimitives.ReadUInt64LittleEndian(header);
            if ((ulong)(bytes.Length - offset - 12) < length + 4) throw new InvalidDataException($"{path}: truncated record at byte {offset}");
            var payload = bytes.AsMemory(offset + 12, (int)length);
            if (BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(offset + 12 + (int)length)) != MaskedCrc(payload.Span))
                throw new InvalidDataException($"{path}: payload CRC mismatch at byte {offset}");
            records.Add((offset, payload));
            offset += 12 + (int)length + 4;
        }
        return records;
    }

    /// <summary>CRC-32C one bit at a time from the reflected polynomial (RFC 3720 B.4), unlike the writer's hardware path.</summary>
    public static uint Crc32C(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (var b in data)
        {
            crc ^= b;
            for (int bit = 0; bit < 8; bit++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F63B78 : crc >> 1;
        }
        return crc ^ 0xFFFFFFFF;
    }

    private static uint MaskedCrc(ReadOnlySpan<byte> data)
    {
        uint crc = Crc32C(data);
        return unchecked(((crc >> 15) | (crc << 17)) + 0xA282EAD8);
    }

    private readonly record struct Field(int Number, int WireType, ulong Varint, ReadOnlyMemory<byte> Bytes)
    {
        public ReadOnlyMemory<byte> Expect(int wireType, string name) =>
            WireType == wireType ? Bytes : throw new InvalidDataException($"{name}: wire type {WireType}, expected {wireType}");

        public string Text(string name) => Encoding.UTF8.GetString(Expect(2, name).Span);
    }

    private static List<Field> Fields(ReadOnlyMemory<byte> message)
    {
        var fields = new List<Field>();
        var span = message.ToArray();
        int i = 0;
        ulong ReadVarint()
        {
            ulong value = 0;
            for (int shift = 0; ; shift += 7)
            {
                if (i >= span.Length || shift > 63) throw new InvalidDataException("varint runs past the message");
                byte b = span[i++];
                value |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80) return value;
            }
        }
        while (i < span.Length)
        {
            ulong key = ReadVarint();
            int number = (int)(key >> 3), wireType = (int)(key & 7);
            switch (wireType)
            {
                case 0:
                    fields.Add(new Field(number, 0, ReadVarint(), default));
                    break;
                case 1 or 5:
                    int size = wireType == 1 ? 8 : 4;
                    if (i + size > span.Length) throw new InvalidDataException("fixed-width field runs past the message");
                    fields.Add(new Field(number, wireType, 0, message.Slice(i, size)));
                    i += size;
                    break;
                case 2:
                    int length = checked((int)ReadVarint());
                    if (i + length > span.Length) throw new InvalidDataException("length-delimited field runs past the message");
                    fields.Add(new Field(number, 2, 0, message.Slice(i, length)));
                    i += length;
                    break;
                default:
                    throw new InvalidDataException($"wire type {wireType} of field {number}");
            }
        }
        return fields;
    }

    private static Event DecodeEvent(ReadOnlyMemory<byte> payload)
    {
        double wallTime = 0;
        long step = 0;
        string? fileVersion = null;
        long? session = null;
        var values = new List<SummaryValue>();
        foreach (var field in Fields(payload))
        {
            switch (field.Number)
            {
                case 1: wallTime = BinaryPrimitives.ReadDoubleLittleEndian(field.Expect(1, "wall_time").Span); break;
                case 2 when field.WireType == 0: step = (long)field.Varint; break;
                case 3: fileVersion = field.Text("file_version"); break;
                case 5:
                    foreach (var value in Fields(field.Expect(2, "summary")))
                        values.Add(value.Number == 1 ? DecodeValue(value.Expect(2, "summary.value")) : throw Unexpected("Summary", value));
                    break;
                case 7:
                    foreach (var status in Fields(field.Expect(2, "session_log")))
                        session = status is { Number: 1, WireType: 0 } ? (long)status.Varint : throw Unexpected("SessionLog", status);
                    break;
                default: throw Unexpected("Event", field);
            }
        }
        return new Event(wallTime, step, fileVersion, values, session);
    }

    private static SummaryValue DecodeValue(ReadOnlyMemory<byte> message)
    {
        string tag = "";
        float? simple = null;
        string? plugin = null;
        long? dtype = null;
        int? dims = null;
        var strings = new List<string>();
        foreach (var field in Fields(message))
        {
            switch (field.Number)
            {
                case 1: tag = field.Text("tag"); break;
                case 2: simple = BinaryPrimitives.ReadSingleLittleEndian(field.Expect(5, "simple_value").Span); break;
                case 8:
                    foreach (var t in Fields(field.Expect(2, "tensor")))
                    {
                        switch (t.Number)
                        {
                            case 1 when t.WireType == 0: dtype = (long)t.Varint; break;
                            case 2: dims = Fields(t.Expect(2, "tensor_shape")).Count(d => d.Number == 2); break;
                            case 8: strings.Add(t.Text("string_val")); break;
                            default: throw Unexpected("TensorProto", t);
                        }
                    }
                    break;
                case 9:
                    foreach (var m in Fields(field.Expect(2, "metadata")))
                        foreach (var p in m.Number == 1 ? Fields(m.Expect(2, "plugin_data")) : throw Unexpected("SummaryMetadata", m))
                            plugin = p.Number == 1 ? p.Text("plugin_name") : throw Unexpected("PluginData", p);
                    break;
                default: throw Unexpected("Summary.Value", field);
            }
        }
        return new SummaryValue(tag, simple, plugin, dtype, dtype is null ? null : dims ?? 0, strings);
    }

    private static InvalidDataException Unexpected(string message, Field field) =>
        new($"{message}: unexpected field {field.Number} (wire type {field.WireType})");
}
