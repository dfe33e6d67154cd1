using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace Vim.Core.IO.TensorBoard;

/// <summary>
/// The protobuf wire format (protobuf.dev/programming-guides/encoding), as much of it as TensorBoard events need: each
/// field is its key, varint (field number &lt;&lt; 3 | wire type), then the value: a varint, 8 or 4 little-endian bytes,
/// or a varint length and that many bytes (strings, bytes, nested messages).
/// </summary>
public sealed class ProtobufWriter
{
    private enum WireType
    {
        Varint = 0,
        Fixed64 = 1,
        LengthDelimited = 2,
        Fixed32 = 5,
    }

    private readonly ArrayBufferWriter<byte> _buffer = new();

    public ReadOnlySpan<byte> Written => _buffer.WrittenSpan;

    public byte[] ToArray() => _buffer.WrittenSpan.ToArray();

    /// <summary>A double field (wire type 1).</summary>
    public ProtobufWriter Double(int field, double value)
    {
        Key(field, WireType.Fixed64);
        BinaryPrimitives.WriteDoubleLittleEndian(_buffer.GetSpan(8), value);
        _buffer.Advance(8);
        return this;
    }

    /// <summary>A float field (wire type 5).</summary>
    public ProtobufWriter Float(int field, float value)
    {
        Key(field, WireType.Fixed32);
        BinaryPrimitives.WriteSingleLittleEndian(_buffer.GetSpan(4), value);
        _buffer.Advance(4);
        return this;
    }

    /// <summary>An int64, int32 or enum field (wire type 0); a negative number takes ten bytes, its two's complement.</summary>
    public ProtobufWriter Int64(int field, long value)
    {
        Key(field, WireType.Varint);
        Varint(unchecked((ulong)value));
        return this;
    }

    /// <summary>A bytes field (wire type 2).</summary>
    public ProtobufWriter Bytes(int field, ReadOnlySpan<byte> value)
    {
        Key(field, WireType.LengthDelimited);
        Varint((ulong)value.Length);
        _buffer.Write(value);
        return this;
    }

    /// <summary>A string field: its UTF-8 bytes.</summary>
    public ProtobufWriter String(int field, string value) => Bytes(field, Encoding.UTF8.GetBytes(value));

    /// <summary>A nested message field, encoded by <paramref name="build"/>; an empty message is still present (length 0).</summary>
    public ProtobufWriter Message(int field, Action<ProtobufWriter> build)
    {
        var inner = new ProtobufWriter();
        build(inner);
        return Bytes(field, inner.Written);
    }

    private void Key(int field, WireType type)
    {
        if (field < 1) throw new ArgumentOutOfRangeException(nameof(field), field, "protobuf field numbers start at 1");
        Varint(((ulong)field << 3) | (ulong)type);
    }

    /// <summary>Seven bits a byte, least significant group first; the high bit says another byte follows.</summary>
    private void Varint(ulong value)
    {
        var span = _buffer.GetSpan(10);
        int length = 0;
        while (value >= 0x80)
        {
            span[length++] = (byte)(value | 0x80);
            value >>= 7;
        }
        span[length++] = (byte)value;
        _buffer.Advance(length);
    }
}
