using System.Text;

namespace Vim.Tests.Core;

/// <summary>Appends pickle opcodes by name, so each test reads like a disassembly.</summary>
internal sealed class PickleOps
{
    private readonly List<byte> _bytes = [0x80, 0x02];
    public byte[] Bytes => [.. _bytes];

    public PickleOps Op(char opcode) { _bytes.Add((byte)opcode); return this; }
    public PickleOps Op(byte opcode) { _bytes.Add(opcode); return this; }
    public PickleOps Text(string line) { _bytes.AddRange(Encoding.ASCII.GetBytes(line + "\n")); return this; }

    public PickleOps Str(string s)
    {
        var utf8 = Encoding.UTF8.GetBytes(s);
        _bytes.Add((byte)'X');
        _bytes.AddRange(BitConverter.GetBytes(utf8.Length));
        _bytes.AddRange(utf8);
        return this;
    }

    public PickleOps Int(int v) { _bytes.Add((byte)'J'); _bytes.AddRange(BitConverter.GetBytes(v)); return this; }

    /// <summary>BININT where it fits, else LONG1 with 8 little-endian two's-complement bytes.</summary>
    public PickleOps Integer(long v)
    {
        if (v is >= int.MinValue and <= int.MaxValue)
            return Int((int)v);
        _bytes.Add(0x8a);
        _bytes.Add(8);
        _bytes.AddRange(BitConverter.GetBytes(v));
        return this;
    }
    public PickleOps Global(string module, string name) => Op('c').Text(module).Text(name);

    /// <summary>_rebuild_tensor_v2(('storage', torch.TYPE, key, 'cpu', numel), offset, size, stride, False, OrderedDict()).</summary>
    public PickleOps Tensor(string storageType, string key, long numel, long offset, long[] size, long[] stride)
    {
        Global("torch._utils", "_rebuild_tensor_v2").Op('(');
        Op('(').Str("storage").Global("torch", storageType).Str(key).Str("cpu").Integer(numel).Op('t').Op('Q');
        Integer(offset);
        Op('(');
        foreach (var s in size) Integer(s);
        Op('t').Op('(');
        foreach (var s in stride) Integer(s);
        Op('t').Op(0x89).Global("collections", "OrderedDict").Op(')').Op('R');
        return Op('t').Op('R');
    }
}
