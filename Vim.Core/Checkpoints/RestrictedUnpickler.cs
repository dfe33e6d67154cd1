using System.Buffers.Binary;
using System.Globalization;
using System.Numerics;
using System.Text;

namespace Vim.Core.Checkpoints;

/// <summary>
/// Reads the pickle opcodes torch.save emits (protocols 2 to 4) into plain data: dicts, lists, tuples
/// (<c>object?[]</c>), scalars, <see cref="PendingTensor"/>s and inert <see cref="PickledObject"/>s.
/// GLOBAL never imports anything: a short whitelist of torch/collections names gets meaning, every
/// other class becomes data. Python's own unpickler would run arbitrary callables here.
/// </summary>
internal sealed class RestrictedUnpickler
{
    /// <summary>
    /// CPython's int() refuses longer digit strings (sys.int_max_str_digits, after CVE-2020-10735), so pickle does; the
    /// text opcodes INT and LONG would otherwise cost time super-linear in a line of any length.
    /// </summary>
    private const int MaxIntegerDigits = 4300;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly byte[] _data;
    private readonly string _source;
    private readonly Func<object?, long, object?> _persistentLoad;
    private readonly List<object?> _stack = [];
    private readonly Stack<int> _marks = new();
    private readonly Dictionary<long, object?> _memo = [];
    /// <summary>How deep each tuple nests tuples (1 when absent). Tuples are complete when made, so their depth is known then.</summary>
    private readonly Dictionary<object?[], int> _tupleDepth = new(ReferenceEqualityComparer.Instance);
    private int _pos;
    private int _opcodeStart;

    /// <param name="data">The pickle bytes.</param>
    /// <param name="source">How errors name the pickle, e.g. "x.pth: entry 'archive/data.pkl'".</param>
    /// <param name="persistentLoad">Resolves a persistent id (and its pickle offset) to a value.</param>
    public RestrictedUnpickler(byte[] data, string source, Func<object?, long, object?> persistentLoad)
    {
        _data = data;
        _source = source;
        _persistentLoad = persistentLoad;
    }

    public object? Load()
    {
        while (true)
        {
            _opcodeStart = _pos;
            var op = ReadByte("an opcode (the pickle has no STOP)");
            switch (op)
            {
                case 0x80: // PROTO
                    var protocol = ReadByte("PROTO version");
                    if (protocol > 5)
                        throw Fail($"pickle protocol {protocol} is newer than 5");
                    break;
                case 0x95: // FRAME: frames only group bytes for buffered reading; contents follow inline.
                    ReadBytes(8, "FRAME length");
                    break;
                case (byte)'.': // STOP
                    return Pop("STOP");

                case (byte)'(': _marks.Push(_stack.Count); break; // MARK
                case (byte)'0': // POP
                    if (_marks.Count > 0 && _marks.Peek() == _stack.Count)
                        _marks.Pop();
                    else
                        Pop("POP");
                    break;
                case (byte)'1': PopMark("POP_MARK"); break;
                case (byte)'2': Push(Peek("DUP")); break;

                case (byte)'N': Push(null); break;
                case 0x88: Push(true); break; // NEWTRUE
                case 0x89: Push(false); break; // NEWFALSE
                case (byte)'J': Push((long)BitConverter.ToInt32(ReadBytes(4, "BININT"))); break;
                case (byte)'K': Push((long)ReadByte("BININT1")); break;
                case (byte)'M': Push((long)BitConverter.ToUInt16(ReadBytes(2, "BININT2"))); break;
                case 0x8a: Push(ReadLong(ReadByte("LONG1 length"), "LONG1")); break;
                case 0x8b: Push(ReadLong(ReadLength(4, "LONG4"), "LONG4")); break;
                case (byte)'I': Push(ParseIntLine(ReadLine("INT"))); break;
                case (byte)'L': Push(ParseLong(ReadLine("LONG").TrimEnd('L'), "LONG")); break;
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(ReadSpan(8, "BINFLOAT"))); break;
                case (byte)'F': Push(ParseFloat(ReadLine("FLOAT"))); break;

                case (byte)'X': Push(ReadUtf8(ReadLength(4, "BINUNICODE"), "BINUNICODE")); break;
                case 0x8c: Push(ReadUtf8(ReadByte("SHORT_BINUNICODE length"), "SHORT_BINUNICODE")); break;
                case 0x8d: Push(ReadUtf8(ReadLength(8, "BINUNICODE8"), "BINUNICODE8")); break;
                case (byte)'V': Push(DecodeRawUnicodeEscape(ReadLine("UNICODE"))); break;
                // Python 2 str: bytes in no declared encoding; torch.load decodes them as UTF-8 (its default encoding).
                case (byte)'T': Push(DecodePython2String(ReadSpan(ReadLength(4, "BINSTRING"), "BINSTRING"))); break;
                case (byte)'U': Push(DecodePython2String(ReadSpan(ReadByte("SHORT_BINSTRING length"), "SHORT_BINSTRING"))); break;
                case (byte)'S': Push(ParseQuotedString(ReadLine("STRING"))); break;
                case (byte)'B': Push(ReadBytes(ReadLength(4, "BINBYTES"), "BINBYTES")); break;
                case (byte)'C': Push(ReadBytes(ReadByte("SHORT_BINBYTES length"), "SHORT_BINBYTES")); break;
                case 0x8e: Push(ReadBytes(ReadLength(8, "BINBYTES8"), "BINBYTES8")); break;
                case 0x96: Push(ReadBytes(ReadLength(8, "BYTEARRAY8"), "BYTEARRAY8")); break;

                case (byte)'}': Push(new PickleDict(isOrderedDict: false)); break; // EMPTY_DICT
                case (byte)'d': Push(DictFromPairs(PopMark("DICT"), "DICT")); break;
                case (byte)']': Push(new List<object?>()); break; // EMPTY_LIST
                case (byte)'l': Push(PopMark("LIST")); break;
                case (byte)')': Push(Array.Empty<object?>()); break; // EMPTY_TUPLE
                case (byte)'t': Push(Tuple(PopMark("TUPLE").ToArray(), "TUPLE")); break;
                case 0x85: Push(Tuple([Pop("TUPLE1")], "TUPLE1")); break;
                case 0x86: { var b = Pop("TUPLE2"); var a = Pop("TUPLE2"); Push(Tuple([a, b], "TUPLE2")); break; }
                case 0x87: { var c = Pop("TUPLE3"); var b = Pop("TUPLE3"); var a = Pop("TUPLE3"); Push(Tuple([a, b, c], "TUPLE3")); break; }
                case 0x8f: Push(new PickledObject("builtins", "set", [])); break; // EMPTY_SET
                case 0x91: // FROZENSET
                    var frozen = new PickledObject("builtins", "frozenset", []);
                    frozen.ListItems.AddRange(PopMark("FROZENSET"));
                    Push(frozen);
                    break;

                case (byte)'a': { var v = Pop("APPEND"); Append(Peek("APPEND"), [v], "APPEND"); break; }
                case (byte)'e': { var items = PopMark("APPENDS"); Append(Peek("APPENDS"), items, "APPENDS"); break; }
                case 0x90: { var items = PopMark("ADDITEMS"); Append(Peek("ADDITEMS"), items, "ADDITEMS"); break; }
                case (byte)'s': { var v = Pop("SETITEM"); var k = Pop("SETITEM"); SetItems(Peek("SETITEM"), [k, v], "SETITEM"); break; }
                case (byte)'u': { var items = PopMark("SETITEMS"); SetItems(Peek("SETITEMS"), items, "SETITEMS"); break; }

                case (byte)'c': // GLOBAL
                {
                    var module = ReadLine("GLOBAL module");
                    var name = ReadLine("GLOBAL name");
                    Push(new PickleGlobal(module, name));
                    break;
                }
                case 0x93: // STACK_GLOBAL
                {
                    var name = Pop("STACK_GLOBAL") as string ?? throw Fail("STACK_GLOBAL expects a string name on the stack");
                    var module = Pop("STACK_GLOBAL") as string ?? throw Fail("STACK_GLOBAL expects a string module on the stack");
                    Push(new PickleGlobal(module, name));
                    break;
                }
                case (byte)'R': // REDUCE
                {
                    var args = Pop("REDUCE") as object?[] ?? throw Fail("REDUCE expects an argument tuple on top of the stack");
                    Push(Call(Pop("REDUCE"), args));
                    break;
                }
                case 0x81: // NEWOBJ
                {
                    var args = Pop("NEWOBJ") as object?[] ?? throw Fail("NEWOBJ expects an argument tuple on top of the stack");
                    Push(NewObject(Pop("NEWOBJ"), args, "NEWOBJ"));
                    break;
                }
                case 0x92: // NEWOBJ_EX: keyword arguments have no place in the whitelist; kept with the object.
                {
                    var kwargs = Pop("NEWOBJ_EX");
                    var args = Pop("NEWOBJ_EX") as object?[] ?? throw Fail("NEWOBJ_EX expects an argument tuple");
                    var obj = NewObject(Pop("NEWOBJ_EX"), args, "NEWOBJ_EX");
                    if (obj is PickledObject po && kwargs is PickleDict kw)
                        foreach (var (k, v) in kw)
                            Insert(po.DictItems, k, v);
                    Push(obj);
                    break;
                }
                case (byte)'i': // INST (protocol 0/1 instance)
                {
                    var module = ReadLine("INST module");
                    var name = ReadLine("INST name");
                    Push(NewObject(new PickleGlobal(module, name), PopMark("INST").ToArray(), "INST"));
                    break;
                }
                case (byte)'o': // OBJ
                {
                    var items = PopMark("OBJ");
                    if (items.Count == 0)
                        throw Fail("OBJ expects a class after the MARK");
                    Push(NewObject(items[0], items.Skip(1).ToArray(), "OBJ"));
                    break;
                }
                case (byte)'b': // BUILD
                {
                    var state = Pop("BUILD");
                    Build(Peek("BUILD"), state);
                    break;
                }
                case (byte)'Q': // BINPERSID
                    Push(_persistentLoad(Pop("BINPERSID"), _opcodeStart));
                    break;
                case (byte)'P': // PERSID
                    Push(_persistentLoad(ReadLine("PERSID"), _opcodeStart));
                    break;

                case (byte)'q': _memo[ReadByte("BINPUT")] = Peek("BINPUT"); break;
                case (byte)'r': _memo[ReadLength(4, "LONG_BINPUT")] = Peek("LONG_BINPUT"); break;
                case (byte)'p': _memo[MemoIndex(ReadLine("PUT"), "PUT")] = Peek("PUT"); break;
                case 0x94: _memo[_memo.Count] = Peek("MEMOIZE"); break;
                case (byte)'h': Push(MemoGet(ReadByte("BINGET"))); break;
                case (byte)'j': Push(MemoGet(ReadLength(4, "LONG_BINGET"))); break;
                case (byte)'g': Push(MemoGet(MemoIndex(ReadLine("GET"), "GET"))); break;

                case 0x82 or 0x83 or 0x84:
                    throw Fail($"opcode EXT{(op == 0x82 ? 1 : op == 0x83 ? 2 : 4)} refers to the copyreg extension registry, which checkpoints do not use");
                case 0x97 or 0x98:
                    throw Fail("out-of-band buffers (pickle protocol 5 NEXT_BUFFER/READONLY_BUFFER) are not supported");
                default:
                    throw Fail($"unknown pickle opcode 0x{op:x2}");
            }
        }
    }

    // ------------------------------------------------------------------ object construction

    private object? Call(object? callable, object?[] args)
    {
        if (callable is not PickleGlobal g)
            throw Fail($"REDUCE calls {Describe(callable)}, but only named classes/functions (GLOBAL) can be called");
        switch (g.Module, g.Name)
        {
            case ("torch._utils", "_rebuild_tensor_v2"):
            case ("torch._utils", "_rebuild_tensor"):
                return RebuildTensor(g.Name, args);
            case ("torch._utils", "_rebuild_parameter"):
            case ("torch._utils", "_rebuild_parameter_with_state"):
                // A Parameter is its data plus requires_grad; a checkpoint reader only needs the data.
                return args.Length >= 1 && args[0] is PendingTensor p
                    ? p
                    : throw Fail($"{g} expects a tensor as its first argument, got {Describe(args.FirstOrDefault())}");
            case ("torch._tensor", "_rebuild_from_type_v2"):
                // (func, type, args, state): a tensor subclass; rebuild the plain tensor and ignore the type.
                if (args.Length < 3 || args[2] is not object?[] innerArgs)
                    throw Fail($"{g} expects (func, type, args, state), got {args.Length} arguments");
                return Call(args[0], innerArgs);
            case ("collections", "OrderedDict"):
                return NewDict(args, g);
            case ("_codecs", "encode"):
                // Protocol 2 writes Python 3 bytes as _codecs.encode(text, 'latin1').
                if (args.Length == 2 && args[0] is string text && args[1] is string enc
                    && (enc.Equals("latin1", StringComparison.OrdinalIgnoreCase) || enc.Equals("latin-1", StringComparison.OrdinalIgnoreCase)))
                    return Encoding.Latin1.GetBytes(text);
                return new PickledObject(g.Module, g.Name, args);
            default:
                return new PickledObject(g.Module, g.Name, args);
        }
    }

    private object NewObject(object? cls, object?[] args, string opcode)
    {
        if (cls is not PickleGlobal g)
            throw Fail($"{opcode} instantiates {Describe(cls)}, but only named classes (GLOBAL) can be instantiated");
        if (g is { Module: "collections", Name: "OrderedDict" })
            return NewDict(args, g);
        return new PickledObject(g.Module, g.Name, args);
    }

    private PickleDict NewDict(object?[] args, PickleGlobal g)
    {
        var dict = new PickleDict(isOrderedDict: true);
        if (args.Length == 0)
            return dict;
        switch (args[0])
        {
            case PickleDict source:
                foreach (var (k, v) in source)
                    Insert(dict, k, v);
                return dict;
            case IEnumerable<object?> pairs when args.Length == 1:
                foreach (var pair in pairs)
                {
                    if (pair is not object?[] { Length: 2 } kv)
                        throw Fail($"{g} expects (key, value) pairs, got {Describe(pair)}");
                    Insert(dict, kv[0], kv[1]);
                }
                return dict;
            default:
                throw Fail($"{g} expects no argument or a list of pairs, got {Describe(args[0])}");
        }
    }

    private PendingTensor RebuildTensor(string function, object?[] args)
    {
        // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]); the
        // legacy _rebuild_tensor stops after stride.
        if (args.Length < 4)
            throw Fail($"{function} expects at least (storage, offset, size, stride), got {args.Length} arguments");
        if (args[0] is not TorchStorageRef storage)
            throw Fail($"{function} expects a storage (persistent id) as its first argument, got {Describe(args[0])}");
        if (args[1] is not long offset || offset < 0)
            throw Fail($"{function} expects a non-negative integer storage offset, got {Describe(args[1])}");
        var shape = IntTuple(args[2], function, "size");
        var stride = IntTuple(args[3], function, "stride");
        if (shape.Length != stride.Length)
            throw Fail($"{function}: size has {shape.Length} dimensions but stride has {stride.Length}");
        if (shape.Any(d => d < 0) || stride.Any(s => s < 0))
            throw Fail($"{function}: negative size or stride ([{string.Join(",", shape)}] / [{string.Join(",", stride)}])");
        var elementSize = CheckpointDTypes.ElementSize(storage.DType);
        if (TensorExtent.Bytes(shape, elementSize) is null || TensorExtent.ReachedBytes(offset, shape, stride, elementSize) is null)
            throw Fail($"{function}: size [{string.Join(",", shape)}] with stride [{string.Join(",", stride)}] and offset {offset} spans more bytes than a file can hold");
        return new PendingTensor(storage, offset, shape, stride, _opcodeStart);
    }

    private long[] IntTuple(object? value, string function, string what)
    {
        if (value is not object?[] items)
            throw Fail($"{function} expects {what} as a tuple of integers, got {Describe(value)}");
        var result = new long[items.Length];
        for (var i = 0; i < items.Length; i++)
            result[i] = items[i] as long? ?? throw Fail($"{function}: {what}[{i}] is {Describe(items[i])}, expected an integer");
        return result;
    }

    /// <summary>
    /// A new tuple, refused when tuples nest deeper than <see cref="CheckpointTree.MaxDepth"/>: tuple keys are hashed and
    /// compared recursively, and _rebuild_from_type_v2 recurses into its argument tuple.
    /// </summary>
    private object?[] Tuple(object?[] items, string opcode)
    {
        var depth = 1;
        foreach (var item in items)
            if (item is object?[] inner)
                depth = Math.Max(depth, 1 + (_tupleDepth.TryGetValue(inner, out var d) ? d : 1));
        if (depth > CheckpointTree.MaxDepth)
            throw Fail($"{opcode} nests tuples more than {CheckpointTree.MaxDepth} levels deep");
        if (depth > 1)
            _tupleDepth[items] = depth;
        return items;
    }

    private void Build(object? target, object? state)
    {
        switch (target)
        {
            case PickledObject obj:
                if (obj.State is PickleDict existing && state is PickleDict more)
                    foreach (var (k, v) in more)
                        Insert(existing, k, v);
                else
                    obj.State = state;
                break;
            case PickleDict dict:
                // OrderedDict.__reduce__ passes vars(self) (e.g. {'_metadata': ...}), possibly paired
                // with slot state as (dict_state, slot_state).
                foreach (var part in state is object?[] { Length: 2 } pair ? pair : [state])
                {
                    if (part is null)
                        continue;
                    if (part is not PickleDict attributes)
                        throw Fail($"BUILD on a dict expects a dict of attributes, got {Describe(part)}");
                    foreach (var (k, v) in attributes)
                        dict.Attributes[k as string ?? throw Fail($"BUILD on a dict: attribute name {Describe(k)} is not a string")] = v;
                }
                break;
            case PendingTensor:
                // Tensor.__setstate__ carries requires_grad/hooks only; irrelevant to stored values.
                break;
            default:
                throw Fail($"BUILD applies state to {Describe(target)}, which cannot take attributes");
        }
    }

    private void Append(object? target, IReadOnlyList<object?> items, string opcode)
    {
        switch (target)
        {
            case List<object?> list: list.AddRange(items); break;
            case PickledObject obj: obj.ListItems.AddRange(items); break;
            default: throw Fail($"{opcode} expects a list on the stack, found {Describe(target)}");
        }
    }

    private void SetItems(object? target, IReadOnlyList<object?> items, string opcode)
    {
        if (items.Count % 2 != 0)
            throw Fail($"{opcode} expects key/value pairs, got an odd number ({items.Count}) of items");
        var dict = target switch
        {
            PickleDict d => d,
            PickledObject obj => obj.DictItems,
            _ => throw Fail($"{opcode} expects a dict on the stack, found {Describe(target)}"),
        };
        for (var i = 0; i < items.Count; i += 2)
            Insert(dict, items[i], items[i + 1]);
    }

    /// <summary>dict[key] = value, with the key comparer's refusals (tuple keys too large to compare) located in the file.</summary>
    private void Insert(PickleDict dict, object? key, object? value)
    {
        try
        {
            dict[Key(key)] = value;
        }
        catch (VimException e) when (!e.Message.StartsWith(_source, StringComparison.Ordinal))
        {
            throw Fail(e.Message);
        }
    }

    private PickleDict DictFromPairs(List<object?> items, string opcode)
    {
        var dict = new PickleDict(isOrderedDict: false);
        SetItems(dict, items, opcode);
        return dict;
    }

    private object Key(object? key) => key switch
    {
        null => "None",
        List<object?> or PickleDict => throw Fail($"unhashable dict key {Describe(key)}"),
        _ => key,
    };

    // ------------------------------------------------------------------ stack and memo

    private void Push(object? value) => _stack.Add(value);

    private object? Pop(string opcode)
    {
        var floor = _marks.Count > 0 ? _marks.Peek() : 0;
        if (_stack.Count <= floor)
            throw Fail($"{opcode} needs a value but the stack is empty{(_marks.Count > 0 ? " above the MARK" : "")}");
        var v = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return v;
    }

    private object? Peek(string opcode)
    {
        if (_stack.Count == 0)
            throw Fail($"{opcode} needs a value but the stack is empty");
        return _stack[^1];
    }

    private List<object?> PopMark(string opcode)
    {
        if (_marks.Count == 0)
            throw Fail($"{opcode} needs a MARK but there is none");
        var start = _marks.Pop();
        var items = _stack.GetRange(start, _stack.Count - start);
        _stack.RemoveRange(start, _stack.Count - start);
        return items;
    }

    private object? MemoGet(long index) =>
        _memo.TryGetValue(index, out var v) ? v : throw Fail($"memo slot {index} is read before it was written");

    // ------------------------------------------------------------------ raw reading

    private byte ReadByte(string what)
    {
        if (_pos >= _data.Length)
            throw Truncated(what, 1);
        return _data[_pos++];
    }

    private ReadOnlySpan<byte> ReadSpan(long count, string what)
    {
        if (count < 0 || count > _data.Length - _pos)
            throw Truncated(what, count);
        var span = _data.AsSpan(_pos, (int)count);
        _pos += (int)count;
        return span;
    }

    private byte[] ReadBytes(long count, string what) => ReadSpan(count, what).ToArray();

    private long ReadLength(int width, string what)
    {
        var span = ReadSpan(width, what + " length");
        return width == 4 ? BitConverter.ToUInt32(span) : (long)BitConverter.ToUInt64(span);
    }

    private string ReadUtf8(long length, string what)
    {
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(ReadSpan(length, what));
        }
        catch (DecoderFallbackException e)
        {
            throw Fail($"{what} holds invalid UTF-8 ({e.Message})");
        }
    }

    private string ReadLine(string what)
    {
        var end = Array.IndexOf(_data, (byte)'\n', _pos);
        if (end < 0)
            throw Fail($"pickle ended at offset {_data.Length} while reading {what} (no newline)");
        var line = Encoding.Latin1.GetString(_data, _pos, end - _pos);
        _pos = end + 1;
        return line;
    }

    private object ReadLong(long length, string what)
    {
        var bytes = ReadSpan(length, what);
        var value = new BigInteger(bytes, isUnsigned: false, isBigEndian: false);
        return value >= long.MinValue && value <= long.MaxValue ? (long)value : (object)value;
    }

    private long MemoIndex(string text, string what) =>
        ParseLong(text, what) as long? ?? throw Fail($"{what} memo index '{text}' is out of range");

    private object ParseIntLine(string line) => line switch
    {
        "00" => false, // protocol 0 spells booleans as INT 00/01
        "01" => true,
        _ => ParseLong(line, "INT"),
    };

    private object ParseLong(string text, string what)
    {
        var digits = text.Length - (text.StartsWith('-') || text.StartsWith('+') ? 1 : 0);
        if (digits > MaxIntegerDigits)
            throw Fail($"{what} holds a {digits}-digit integer, more digits than Python's int() accepts ({MaxIntegerDigits})");
        if (!BigInteger.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v))
            throw Fail($"{what} holds '{text}', expected an integer");
        return v >= long.MinValue && v <= long.MaxValue ? (long)v : (object)v;
    }

    private double ParseFloat(string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v)
            ? v
            : text switch
            {
                "nan" => double.NaN,
                "inf" => double.PositiveInfinity,
                "-inf" => double.NegativeInfinity,
                _ => throw Fail($"FLOAT holds '{text}', expected a number"),
            };

    private string ParseQuotedString(string line)
    {
        if (line.Length < 2 || line[0] != line[^1] || (line[0] != '\'' && line[0] != '"'))
            throw Fail($"STRING holds {line}, expected a quoted string");
        // The escapes (\xc3\xa9) spell bytes, one per char; \u escapes are no Python 2 str escapes and leave chars above 0xFF.
        var unescaped = System.Text.RegularExpressions.Regex.Unescape(line[1..^1]);
        return unescaped.All(c => c <= 0xFF) ? DecodePython2String(Encoding.Latin1.GetBytes(unescaped)) : unescaped;
    }

    /// <summary>
    /// UTF-8, as torch.load's default encoding="utf-8" decodes Python 2 str; bytes that are not UTF-8 (Python 2 code
    /// could store any) fall back to Latin-1, which maps every byte, where Python would raise UnicodeDecodeError.
    /// </summary>
    private static string DecodePython2String(ReadOnlySpan<byte> bytes)
    {
        try
        {
            return StrictUtf8.GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            return Encoding.Latin1.GetString(bytes);
        }
    }

    private static string DecodeRawUnicodeEscape(string line) =>
        System.Text.RegularExpressions.Regex.Replace(line, @"\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})",
            m => char.ConvertFromUtf32(int.Parse(m.Groups[1].Success ? m.Groups[1].Value : m.Groups[2].Value, NumberStyles.HexNumber)));

    private VimException Truncated(string what, long needed) =>
        Fail($"pickle ended at offset {_data.Length} while reading {what} ({needed} more byte(s) expected); the file is truncated or corrupt");

    private VimException Fail(string message) => new($"{_source}: pickle offset {_opcodeStart}: {message}");

    private static string Describe(object? value) => value switch
    {
        null => "None",
        string s => $"str '{(s.Length > 40 ? s[..40] + "..." : s)}'",
        long or BigInteger => $"int {value}",
        double d => $"float {d.ToString(CultureInfo.InvariantCulture)}",
        bool b => b ? "True" : "False",
        object?[] t => $"a tuple of {t.Length}",
        List<object?> l => $"a list of {l.Count}",
        PickleDict d => $"a dict of {d.Count}",
        byte[] b => $"bytes of length {b.Length}",
        PendingTensor => "a tensor",
        TorchStorageRef s => $"storage '{s.Key}'",
        PickleGlobal g => $"global {g}",
        PickledObject o => $"an instance of {o.QualifiedName}",
        _ => value.GetType().Name,
    };
}
