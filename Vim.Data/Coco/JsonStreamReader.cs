using System.Text;
using System.Text.Json;

namespace Vim.Data.Coco;

/// <summary>
/// A <see cref="Utf8JsonReader"/> fed from a stream through one growing buffer, so a file of any size
/// is read token by token with memory bounded by the largest single token. When the reader runs out
/// of complete tokens (<c>Read</c> returns false before the final block), the unconsumed tail
/// (<c>BytesConsumed</c> onwards: a token cut by the buffer end) moves to the front, the rest of the
/// buffer is refilled, and a new reader continues from the old one's <c>CurrentState</c>; a tail that
/// fills the whole buffer doubles it.
/// </summary>
internal ref struct JsonStreamReader
{
    /// <summary>Large enough that refills are rare (the file is read in 1 MiB slices), small enough to stay out of the LOH churn.</summary>
    public const int DefaultBufferBytes = 1 << 20;

    private static readonly JsonReaderOptions Options = new() { AllowTrailingCommas = true };

    private readonly Stream _stream;
    private byte[] _buffer;
    private int _length;
    private bool _final;
    private Utf8JsonReader _reader;
    /// <summary>Offset in the stream of the buffer's first byte, for error positions.</summary>
    private long _bufferStart;

    public JsonStreamReader(Stream stream, int initialBufferBytes = DefaultBufferBytes)
    {
        if (initialBufferBytes < 4) throw new ArgumentOutOfRangeException(nameof(initialBufferBytes), "the buffer needs at least 4 bytes.");
        _stream = stream;
        _buffer = new byte[initialBufferBytes];
        _length = 0;
        _final = false;
        Fill();
        if (_length >= 3 && _buffer[0] == 0xEF && _buffer[1] == 0xBB && _buffer[2] == 0xBF)
        {
            // A UTF-8 byte-order mark (JsonDocument skips it too); dropped so BytesConsumed counts from the buffer start.
            Buffer.BlockCopy(_buffer, 3, _buffer, 0, _length - 3);
            _length -= 3;
            _bufferStart = 3;
            Fill();
        }
        _reader = new Utf8JsonReader(_buffer.AsSpan(0, _length), _final, new JsonReaderState(Options));
    }

    /// <summary>Current buffer size (grows to hold the largest token).</summary>
    public readonly int BufferBytes => _buffer.Length;

    public readonly JsonTokenType TokenType => _reader.TokenType;
    public readonly int CurrentDepth => _reader.CurrentDepth;

    /// <summary>Next token; false only at the end of the input (the reader itself rejects truncated json).</summary>
    public bool Read()
    {
        while (!_reader.Read())
        {
            if (_final) return false;
            Refill();
        }
        return true;
    }

    /// <summary>Advances to the value after a property name.</summary>
    public void ReadValue()
    {
        if (!Read()) throw new JsonException("unexpected end of the input after a property name.");
    }

    /// <summary>On a property name: whether it is <paramref name="name"/> (escapes in the file are undone first).</summary>
    public readonly bool NameIs(ReadOnlySpan<byte> name) => _reader.ValueTextEquals(name);

    /// <summary>Skips the current value: nothing for a scalar, the whole subtree (read, not kept) for an object or array.</summary>
    public void Skip()
    {
        if (_reader.TokenType is not (JsonTokenType.StartObject or JsonTokenType.StartArray)) return;
        int depth = _reader.CurrentDepth;
        while (Read())
        {
            if (_reader.TokenType is JsonTokenType.EndObject or JsonTokenType.EndArray && _reader.CurrentDepth == depth) return;
        }
        throw new JsonException("unexpected end of the input inside an object or array.");
    }

    public readonly bool TryGetDouble(out double value) => _reader.TryGetDouble(out value);
    public readonly bool TryGetInt64(out long value) => _reader.TryGetInt64(out value);
    public readonly bool TryGetInt32(out int value) => _reader.TryGetInt32(out value);
    public readonly bool TryGetUInt32(out uint value) => _reader.TryGetUInt32(out value);

    /// <summary>The current string token, unescaped.</summary>
    public readonly string GetString()
    {
        try
        {
            return _reader.GetString()!;
        }
        catch (InvalidOperationException e)
        {
            // The reader checks a string's UTF-8 only when it is decoded; as a JsonException it is reported like any other
            // malformed json, naming the file and the position.
            throw new JsonException($"the string at byte {_bufferStart + _reader.TokenStartIndex} is not valid UTF-8 ({e.Message})", e);
        }
    }

    /// <summary>The current scalar as it appears in the file, for error messages (strings quoted; containers by kind).</summary>
    public readonly string Describe() => _reader.TokenType switch
    {
        JsonTokenType.Number => Encoding.UTF8.GetString(_reader.ValueSpan),
        JsonTokenType.String => "\"" + GetString() + "\"",
        JsonTokenType.True => "true",
        JsonTokenType.False => "false",
        JsonTokenType.Null => "null",
        JsonTokenType.StartArray => "an array",
        JsonTokenType.StartObject => "an object",
        var other => other.ToString(),
    };

    /// <summary>A number token that is an integer written with a fraction or exponent (e.g. 3.0, 1e3), as a long.</summary>
    public readonly bool TryGetIntegralDouble(out long value)
    {
        value = 0;
        if (!_reader.TryGetDouble(out double d) || d != Math.Floor(d) || Math.Abs(d) >= 9e15) return false;
        value = (long)d;
        return true;
    }

    private void Refill()
    {
        int consumed = (int)_reader.BytesConsumed;
        int left = _length - consumed;
        _bufferStart += consumed;
        if (consumed > 0) Buffer.BlockCopy(_buffer, consumed, _buffer, 0, left);
        _length = left;
        // A single token larger than the buffer: grow so it fits.
        if (_length == _buffer.Length) Array.Resize(ref _buffer, checked(_buffer.Length * 2));
        Fill();
        _reader = new Utf8JsonReader(_buffer.AsSpan(0, _length), _final, _reader.CurrentState);
    }

    private void Fill()
    {
        while (_length < _buffer.Length)
        {
            int n = _stream.Read(_buffer, _length, _buffer.Length - _length);
            if (n == 0)
            {
                _final = true;
                return;
            }
            _length += n;
        }
    }
}
