using System.Buffers.Binary;
using System.Text;
using NUnit.Framework;
using Vim.Core;
using Vim.Core.Checkpoints;
using static TorchSharp.torch;

namespace Vim.Tests.Core;

public class CheckpointSafeTensorsTests
{
    private string _dir = "";

    [SetUp]
    public void CreateDirectory() => _dir = CheckpointTestData.NewTempDirectory();

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_dir, recursive: true);

    private string WriteRaw(string name, string header, byte[] data)
    {
        var json = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + json.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)json.Length);
        json.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + json.Length);
        var path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Test]
    public void HandBuiltFileIsReadInHeaderOrderWithMetadata()
    {
        // F16 1.5 = 0x3E00, -2 = 0xC000 (little-endian); I64 7 and -9.
        var data = new byte[] { 0x00, 0x3E, 0x00, 0xC0 }
            .Concat(BitConverter.GetBytes(7L)).Concat(BitConverter.GetBytes(-9L)).ToArray();
        var path = WriteRaw("hand.bin",
            """{"__metadata__":{"format":"pt"},"b":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"a":{"dtype":"I64","shape":[1,2],"data_offsets":[4,20]}}""",
            data);
        using var checkpoint = CheckpointFile.Load(path);
        Assert.That(checkpoint.Format, Is.EqualTo(CheckpointFormat.SafeTensors), "detected by content, not extension");
        Assert.That(checkpoint.Tensors.Select(t => t.Key), Is.EqualTo(new[] { "b", "a" }));
        Assert.That(checkpoint.Metadata, Is.EqualTo(new Dictionary<string, string> { ["format"] = "pt" }));
        var b = checkpoint.StateDict()["b"];
        Assert.That(b.dtype, Is.EqualTo(ScalarType.Float16));
        Assert.That(b.to_type(ScalarType.Float32).data<float>().ToArray(), Is.EqualTo(new[] { 1.5f, -2f }));
        var a = checkpoint.StateDict()["a"];
        Assert.That(a.shape, Is.EqualTo(new long[] { 1, 2 }));
        Assert.That(a.data<long>().ToArray(), Is.EqualTo(new[] { 7L, -9L }));
    }

    [Test]
    public void HeaderLengthThatLooksLikeAPickleProtocolMarkerIsStillSafeTensors()
    {
        // A 640-byte header is 0x280: the file starts 0x80 0x02, like a legacy torch.save pickle.
        var header = """{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""";
        var path = WriteRaw("p.safetensors", header.PadRight(640), BitConverter.GetBytes(2.5f));
        Assert.That(File.ReadAllBytes(path)[..2], Is.EqualTo(new byte[] { 0x80, 0x02 }));
        using var checkpoint = CheckpointFile.Load(path);
        Assert.That(checkpoint.StateDict()["w"].item<float>(), Is.EqualTo(2.5f));
    }

    [Test]
    public void WriteThenReadRoundTripsEveryDTypeShapeAndMetadata()
    {
        using var scope = NewDisposeScope();
        var generator = new TorchSharp.torch.Generator(42);
        var tensors = new List<KeyValuePair<string, Tensor>>
        {
            new("model.f32", randn([3, 4], generator: generator)),
            new("model.f32_transposed", randn([4, 3], generator: generator).t()), // non-contiguous input
            new("f16", randn([5], generator: generator).to_type(ScalarType.Float16)),
            new("bf16", randn([2, 3], generator: generator).to_type(ScalarType.BFloat16)),
            new("f64", randn([2], dtype: ScalarType.Float64, generator: generator)),
            new("i64", tensor(new long[] { long.MinValue, 0, long.MaxValue })),
            new("i32", tensor(new[] { -5, 6 })),
            new("u8", tensor(new byte[] { 0, 200, 255 })),
            new("mask", tensor(new[] { true, false, true })),
            new("scalar", tensor(3.25f)),
            new("empty", zeros([0, 7])),
        };
        var path = Path.Combine(_dir, "round.safetensors");
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["note"] = "ünïcode \"quoted\"" };
        SafeTensorsFormat.Write(path, tensors, metadata);

        Assert.That(Directory.GetFiles(_dir), Is.EqualTo(new[] { path }), "no temporary file left behind");
        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(File.ReadAllBytes(path).AsSpan(0, 8));
        Assert.That(headerLength % 8, Is.EqualTo(0UL), "data section 8-byte aligned");

        using var checkpoint = CheckpointFile.Load(path);
        Assert.That(checkpoint.Metadata, Is.EqualTo(metadata));
        Assert.That(checkpoint.Tensors.Select(t => t.Key), Is.EqualTo(tensors.Select(t => t.Key)));
        foreach (var ((name, expected), (_, actual)) in tensors.Zip(checkpoint.Tensors))
        {
            Assert.That(actual.dtype, Is.EqualTo(expected.dtype), name);
            Assert.That(actual.shape, Is.EqualTo(expected.shape), name);
            Assert.That(actual.eq(expected).all().item<bool>(), Is.True, name);
        }
        Assert.That(checkpoint.StateDict("model").Keys, Is.EqualTo(new[] { "f32", "f32_transposed" }));
    }

    [Test]
    public void WritingReplacesAnExistingFileAndRefusesDuplicateNames()
    {
        var path = Path.Combine(_dir, "x.safetensors");
        File.WriteAllText(path, "old contents");
        using var scope = NewDisposeScope();
        SafeTensorsFormat.Write(path, [new("w", ones(2))]);
        using (var checkpoint = CheckpointFile.Load(path))
            Assert.That(checkpoint.StateDict()["w"].data<float>().ToArray(), Is.EqualTo(new[] { 1f, 1f }));
        var error = Assert.Throws<VimException>(() => SafeTensorsFormat.Write(path, [new("w", ones(1)), new("w", ones(1))]))!;
        Assert.That(error.Message, Does.Contain("tensor name 'w' appears twice"));
    }

    [Test]
    public void TruncatedFileIsReported()
    {
        var path = Path.Combine(_dir, "t.safetensors");
        using (NewDisposeScope())
            SafeTensorsFormat.Write(path, [new("a", ones(4)), new("b", ones(4))]);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^3]);
        Assert.That(Assert.Throws<VimException>(() => CheckpointFile.Load(path))!.Message,
            Is.EqualTo("t.safetensors: safetensors tensors need 32 data bytes but the file holds 29 after the header (truncated?)"));
        File.WriteAllBytes(path, bytes[..20]);
        Assert.That(Assert.Throws<VimException>(() => CheckpointFile.Load(path))!.Message,
            Does.StartWith("t.safetensors: safetensors header length").And.Contain("exceeds the file (20 bytes)"));
    }

    [TestCase("""{"w":{"dtype":"F8","shape":[1],"data_offsets":[0,1]}}""", 1, "tensor 'w': dtype 'F8' is not supported")]
    [TestCase("""{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", 8, "tensor 'w': data_offsets [0, 8] span 8 bytes, but shape [3] of F32 needs 12")]
    [TestCase("""{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"v":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", 8, "tensor 'v' data [4, 8) overlaps the previous tensor")]
    [TestCase("""{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", 8, "data has a hole [0, 4) before tensor 'w'")]
    [TestCase("""{"w":{"dtype":"F32","shape":[1]}}""", 4, "tensor 'w': missing array field 'data_offsets'")]
    [TestCase("""{"w":[1,2""", 4, "header is not valid JSON")]
    // 2^62 x 4 floats: 2^66 bytes wrap to 0 in 64 bits, which data_offsets [0, 0] would match.
    [TestCase("""{"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}}""", 0, "tensor 'w': shape [4611686018427387904, 4] of F32 holds more bytes than a file can")]
    public void MalformedHeadersNameTheTensorAndField(string header, int dataBytes, string message)
    {
        var path = WriteRaw("bad.safetensors", header, new byte[dataBytes]);
        Assert.That(Assert.Throws<VimException>(() => CheckpointFile.Load(path))!.Message, Does.StartWith("bad.safetensors: ").And.Contain(message));
    }

    [Test]
    public void HeaderThatIsNotUtf8IsRefusedAsSuch()
    {
        // A Latin-1 'é' (0xE9) in a tensor name: valid JSON structure, invalid UTF-8.
        var header = Encoding.UTF8.GetBytes("""{"w?":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""");
        header[Array.IndexOf(header, (byte)'?')] = 0xE9;
        var bytes = new byte[8 + header.Length + 4];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        var path = Path.Combine(_dir, "latin1.safetensors");
        File.WriteAllBytes(path, bytes);
        Assert.That(Assert.Throws<VimException>(() => CheckpointFile.Load(path))!.Message,
            Is.EqualTo("latin1.safetensors: safetensors header is not valid UTF-8 (the JSON header must be UTF-8 text)"));
    }
}
