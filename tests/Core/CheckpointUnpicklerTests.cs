using System.Text;
using NUnit.Framework;
using Vim.Core;
using Vim.Core.Checkpoints;
using static TorchSharp.torch;

namespace Vim.Tests.Core;

/// <summary>The restricted unpickler on hand-assembled opcode streams, wrapped in torch.save-shaped zips.</summary>
public class CheckpointUnpicklerTests
{
    private string _dir = "";

    [SetUp]
    public void CreateDirectory() => _dir = CheckpointTestData.NewTempDirectory();

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_dir, recursive: true);

    private static byte[] Floats(params float[] values) => values.SelectMany(BitConverter.GetBytes).ToArray();

    [Test]
    public void UnknownCallablesAreRecordedNeverExecuted()
    {
        var marker = Path.Combine(_dir, "executed");
        // {'evil': os.system('touch <marker>')}: Python's pickle would run the command.
        var pickle = new PickleOps().Op('}').Str("evil").Global("os", "system").Str($"touch {marker}").Op(0x85).Op('R').Op('s').Op('.').Bytes;
        using var checkpoint = CheckpointFile.Load(CheckpointTestData.WriteTorchZip(_dir, "evil.pth", pickle));
        var call = (PickledObject)((PickleDict)checkpoint.Root!)["evil"]!;
        Assert.That(call.QualifiedName, Is.EqualTo("os.system"));
        Assert.That(call.Args, Is.EqualTo(new object[] { $"touch {marker}" }));
        Assert.That(File.Exists(marker), Is.False);
        Assert.That(checkpoint.Entries.Single().Name, Is.EqualTo("evil"));
    }

    [Test]
    public void MemoisedTensorReferencedTwiceIsOneTensorUnderTwoNames()
    {
        // {'a': T, 'b': T} where the second is a BINGET of the first (tied weights).
        var pickle = new PickleOps().Op('}').Op('(').Str("a").Tensor("FloatStorage", "0", 3, 0, [3], [1]).Op('q').Op(7)
            .Str("b").Op('h').Op(7).Op('u').Op('.').Bytes;
        using var checkpoint = CheckpointFile.Load(CheckpointTestData.WriteTorchZip(_dir, "tied.pth", pickle, ("0", Floats(1, 2, 3))));
        Assert.That(checkpoint.Tensors.Select(t => t.Key), Is.EqualTo(new[] { "a", "b" }));
        Assert.That(checkpoint.Tensors[0].Value, Is.SameAs(checkpoint.Tensors[1].Value));
        Assert.That(checkpoint.Tensors[0].Value.data<float>().ToArray(), Is.EqualTo(new float[] { 1, 2, 3 }));
    }

    [Test]
    public void TensorSubclassRebuildAndProtocol2BytesAreDecoded()
    {
        // _rebuild_from_type_v2(_rebuild_tensor_v2, torch.Tensor, (storage, 0, (2,), (1,), False, OrderedDict()), {})
        // and _codecs.encode('\xff\x00', 'latin1'), which is how protocol 2 spells bytes.
        var pickle = new PickleOps().Op('}').Op('(').Str("t")
            .Global("torch._tensor", "_rebuild_from_type_v2").Op('(')
            .Global("torch._utils", "_rebuild_tensor_v2").Global("torch", "Tensor")
            .Op('(').Op('(').Str("storage").Global("torch", "DoubleStorage").Str("0").Str("cpu").Int(2).Op('t').Op('Q')
            .Int(0).Int(2).Op(0x85).Int(1).Op(0x85).Op(0x89).Global("collections", "OrderedDict").Op(')').Op('R').Op('t')
            .Op('}').Op('t').Op('R')
            .Str("b").Global("_codecs", "encode").Str("\u00ff\u0000").Str("latin1").Op(0x86).Op('R')
            .Op('u').Op('.').Bytes;
        var data = BitConverter.GetBytes(0.25).Concat(BitConverter.GetBytes(-8.0)).ToArray();
        using var checkpoint = CheckpointFile.Load(CheckpointTestData.WriteTorchZip(_dir, "sub.pth", pickle, ("0", data)));
        Assert.That(checkpoint.StateDict()["t"].data<double>().ToArray(), Is.EqualTo(new[] { 0.25, -8.0 }));
        Assert.That(((PickleDict)checkpoint.Root!)["b"], Is.EqualTo(new byte[] { 0xff, 0x00 }));
    }

    [Test]
    public void SelfReferencingListDoesNotLoopForever()
    {
        // l = []; l.append(l); {'l': l}
        var pickle = new PickleOps().Op('}').Str("l").Op(']').Op('q').Op(0).Op('h').Op(0).Op('a').Op('s').Op('.').Bytes;
        using var checkpoint = CheckpointFile.Load(CheckpointTestData.WriteTorchZip(_dir, "cycle.pth", pickle));
        var list = (List<object?>)((PickleDict)checkpoint.Root!)["l"]!;
        Assert.That(list.Single(), Is.SameAs(list));
        Assert.That(checkpoint.Entries, Is.Empty);
    }

    [Test]
    public void ContainersSharedAtEveryLevelAreRefusedInsteadOfWalkedOncePerPath()
    {
        // x = [1]; 64 times x = (x, x); {'x': x}: 400 bytes that name 2^64 leaves.
        var ops = new PickleOps().Op('}').Str("x").Op(']').Int(1).Op('a').Op(0x94).Op('0');
        for (var level = 0; level < 64; level++)
            ops.Op('h').Op((byte)level).Op('h').Op((byte)level).Op(0x86).Op(0x94).Op('0');
        var path = CheckpointTestData.WriteTorchZip(_dir, "shared.pth", ops.Op('h').Op(64).Op('s').Op('.').Bytes);
        var error = Assert.Throws<VimException>(() => CheckpointFile.Load(path))!;
        Assert.That(error.Message, Does.StartWith("shared.pth: entry 'archive/data.pkl': the object tree shares containers so often"));
    }

    [Test]
    public void ATensorInASharedContainerAppearsUnderEachParent()
    {
        // d = {'w': T}; {'a': d, 'b': d}
        var pickle = new PickleOps().Op('}').Op('(').Str("a").Op('}').Str("w").Tensor("FloatStorage", "0", 2, 0, [2], [1]).Op('s').Op('q').Op(1)
            .Str("b").Op('h').Op(1).Op('u').Op('.').Bytes;
        using var checkpoint = CheckpointFile.Load(CheckpointTestData.WriteTorchZip(_dir, "shared_dict.pth", pickle, ("0", Floats(5, 6))));
        Assert.That(checkpoint.Tensors.Select(t => t.Key), Is.EqualTo(new[] { "a.w", "b.w" }));
        Assert.That(checkpoint.Tensors[0].Value, Is.SameAs(checkpoint.Tensors[1].Value));
    }

    [Test]
    public void NestingDeeperThanTheLimitIsRefusedWithoutExhaustingTheStack()
    {
        const int levels = 5000;
        // [[[...]]]: 5000 lists, each appended to the one before.
        var lists = new PickleOps();
        for (var i = 0; i < levels; i++) lists.Op(']');
        for (var i = 1; i < levels; i++) lists.Op('a');
        var error = Assert.Throws<VimException>(() => CheckpointFile.Load(CheckpointTestData.WriteTorchZip(_dir, "lists.pth", lists.Op('.').Bytes)))!;
        Assert.That(error.Message, Does.StartWith("lists.pth: entry 'archive/data.pkl': containers nest more than 1000 levels deep"));

        // {((((),),),...): 1}: a tuple key nested 5000 levels.
        var tupleKey = new PickleOps().Op('}').Op(')');
        for (var i = 0; i < levels; i++) tupleKey.Op(0x85);
        error = Assert.Throws<VimException>(() => CheckpointFile.Load(CheckpointTestData.WriteTorchZip(_dir, "key.pth", tupleKey.Int(1).Op('s').Op('.').Bytes)))!;
        Assert.That(error.Message, Does.StartWith("key.pth: entry 'archive/data.pkl': pickle offset ").And.Contain("TUPLE1 nests tuples more than 1000 levels deep"));

        // Dicts nested 5000 levels, each under the key 'k'.
        var dicts = new PickleOps();
        for (var i = 0; i < levels; i++) dicts.Op('}').Str("k");
        dicts.Int(0);
        for (var i = 0; i < levels; i++) dicts.Op('s');
        error = Assert.Throws<VimException>(() => CheckpointFile.Load(CheckpointTestData.WriteTorchZip(_dir, "dicts.pth", dicts.Op('.').Bytes)))!;
        Assert.That(error.Message, Does.Contain("containers nest more than 1000 levels deep (at 'k.k.k."));
    }

    [Test]
    public void ALongKeySharedDownADeepChainIsRefusedBeforeItsNamesGrowQuadratically()
    {
        // 900 nested dicts, each under the same memoised 100 000-character key: names of up to 90 million characters.
        var key = new string('k', 100_000);
        var ops = new PickleOps().Op('}').Str(key).Op(0x94);
        for (var i = 1; i < 900; i++) ops.Op('}').Op('h').Op(0);
        ops.Int(0);
        for (var i = 0; i < 900; i++) ops.Op('s');
        var path = CheckpointTestData.WriteTorchZip(_dir, "long_key.pth", ops.Op('.').Bytes);
        Assert.That(Assert.Throws<VimException>(() => CheckpointFile.Load(path))!.Message, Does.Contain("naming every path takes more than"));
    }

    [Test]
    public void DeepTupleKeysAreComparedWithinTheDepthLimit()
    {
        static object?[] Nested(int levels)
        {
            var tuple = Array.Empty<object?>();
            for (var i = 0; i < levels; i++) tuple = [tuple];
            return tuple;
        }
        var dict = new PickleDict(isOrderedDict: false);
        dict[Nested(5000)] = 1;
        // An equal key of another identity is compared element by element.
        Assert.That(() => dict[Nested(5000)] = 2, Throws.TypeOf<VimException>().With.Message.Contain("nested more than 1000 levels"));
        dict[Nested(3)] = 3;
        Assert.That(dict[Nested(3)], Is.EqualTo(3));
    }

    [Test]
    public void ATupleKeyThatPrintsEndlesslyIsRefused()
    {
        // x = (); 40 times x = (x, x); {x: 1}: hashing it is bounded, printing it as a name would take 2^40 pairs of brackets.
        var ops = new PickleOps().Op('}').Op(')').Op(0x94).Op('0');
        for (var level = 0; level < 40; level++)
            ops.Op('h').Op((byte)level).Op('h').Op((byte)level).Op(0x86).Op(0x94).Op('0');
        var path = CheckpointTestData.WriteTorchZip(_dir, "tuple_key.pth", ops.Op('h').Op(40).Int(1).Op('s').Op('.').Bytes);
        Assert.That(Assert.Throws<VimException>(() => CheckpointFile.Load(path))!.Message,
            Does.StartWith("tuple_key.pth: entry 'archive/data.pkl': a key at the top level is a tuple nested more than 1000 levels deep or longer than 65536 characters"));
    }

    [Test]
    public void BigEndianStoragesAreByteSwapped()
    {
        var pickle = new PickleOps().Op('}').Str("w").Tensor("FloatStorage", "0", 3, 1, [2], [1]).Op('s').Op('.').Bytes;
        var bigEndian = Floats(7, 1, -2).Chunk(4).SelectMany(b => b.Reverse()).ToArray();
        var path = Path.Combine(_dir, "big.pth");
        using (var zip = System.IO.Compression.ZipFile.Open(path, System.IO.Compression.ZipArchiveMode.Create))
        {
            foreach (var (name, data) in new[] { ("model/data.pkl", pickle), ("model/byteorder", "big"u8.ToArray()), ("model/data/0", bigEndian) })
            {
                using var s = zip.CreateEntry(name).Open(); // deflated entries are read as well
                s.Write(data);
            }
        }
        using var checkpoint = CheckpointFile.Load(path);
        Assert.That(checkpoint.StateDict()["w"].data<float>().ToArray(), Is.EqualTo(new float[] { 1, -2 }));
    }

    [Test]
    public void ProtocolZeroTextOpcodesAreUnderstood()
    {
        // (dp0 \n S'a' \n p1 \n I1 \n s S'b' \n F1.5 \n s I00 \n ...: protocol 0 dict with int, float, bool.
        var bytes = Encoding.ASCII.GetBytes("(dp0\nS'a'\np1\nI12\nsS'b'\nF1.5\nsS'c'\nI00\nsg1\nL99999999999999999999L\ns.");
        using var checkpoint = CheckpointFile.Load(CheckpointTestData.WriteTorchZip(_dir, "p0.pth", bytes));
        var root = (PickleDict)checkpoint.Root!;
        Assert.That(root["b"], Is.EqualTo(1.5));
        Assert.That(root["c"], Is.EqualTo(false));
        Assert.That(root["a"], Is.EqualTo(System.Numerics.BigInteger.Parse("99999999999999999999")), "memo g1 is the key 'a', so SETITEM replaces it");
        Assert.That(root.Keys, Is.EqualTo(new object[] { "a", "b", "c" }));
    }

    [TestCase('I')]
    [TestCase('L')]
    public void ATextIntegerLongerThanPythonAcceptsIsRefused(char opcode)
    {
        // Python's int() stops at 4300 digits; 100 000 nines would cost .NET's parser time for nothing.
        var bytes = Encoding.ASCII.GetBytes($"{opcode}{new string('9', 100_000)}\n.");
        var error = Assert.Throws<VimException>(() => CheckpointFile.Load(CheckpointTestData.WriteTorchZip(_dir, "digits.pth", bytes)))!;
        Assert.That(error.Message, Is.EqualTo($"digits.pth: entry 'archive/data.pkl': pickle offset 0: {(opcode == 'I' ? "INT" : "LONG")} holds a 100000-digit integer, more digits than Python's int() accepts (4300)"));

        var longest = Encoding.ASCII.GetBytes($"I-{new string('9', 4300)}\n.");
        using var checkpoint = CheckpointFile.Load(CheckpointTestData.WriteTorchZip(_dir, "longest.pth", longest));
        Assert.That(checkpoint.Root, Is.EqualTo(-(System.Numerics.BigInteger.Pow(10, 4300) - 1)));
    }

    [Test]
    public void Python2StringsAreDecodedAsUtf8FallingBackToLatin1()
    {
        // {'u': SHORT_BINSTRING c3 a9, 't': BINSTRING e9 (not UTF-8), 's': STRING 'caf\xc3\xa9'}
        var ops = new PickleOps().Op('}').Op('(').Str("u").Op('U').Op(2).Op(0xc3).Op(0xa9)
            .Str("t").Op('T').Op(1).Op(0).Op(0).Op(0).Op(0xe9)
            .Str("s").Op('S').Text("'caf\\xc3\\xa9'").Op('u').Op('.');
        using var checkpoint = CheckpointFile.Load(CheckpointTestData.WriteTorchZip(_dir, "py2.pth", ops.Bytes));
        var root = (PickleDict)checkpoint.Root!;
        Assert.That(root["u"], Is.EqualTo("\u00e9"));
        Assert.That(root["t"], Is.EqualTo("\u00e9"));
        Assert.That(root["s"], Is.EqualTo("caf\u00e9"));
    }

    [Test]
    public void TensorViewReachingPastItsStorageIsReported()
    {
        // 2x2 view with stride (3, 1) at offset 1 reaches element 1 + 3 + 1 = 5: needs 6 floats, the storage has 5.
        var pickle = new PickleOps().Op('}').Str("m").Op('}').Str("w").Tensor("FloatStorage", "0", 5, 1, [2, 2], [3, 1]).Op('s').Op('s').Op('.').Bytes;
        var path = CheckpointTestData.WriteTorchZip(_dir, "short.pth", pickle, ("0", Floats(1, 2, 3, 4, 5)));
        var error = Assert.Throws<VimException>(() => CheckpointFile.Load(path))!;
        Assert.That(error.Message, Is.EqualTo("short.pth: storage 'archive/data/0' holds 20 bytes, tensor 'm.w' needs 24 (offset 1, shape [2,2], stride [3,1], float32)"));
    }

    // 2^62 x 4 with stride (0, 1) reaches 4 elements of its storage, but holds 2^64 elements: the count wraps to 0.
    [TestCase(4L, 0L, new[] { 1L << 62, 4L }, new[] { 0L, 1L }, "size [4611686018427387904,4] with stride [0,1] and offset 0 spans more bytes")]
    // 2^61 contiguous floats: 2^63 bytes, one more than a long holds.
    [TestCase(4L, 0L, new[] { 1L << 61 }, new[] { 1L }, "size [2305843009213693952] with stride [1] and offset 0 spans more bytes")]
    [TestCase(4L, long.MaxValue - 1, new[] { 2L }, new[] { 1L }, "and offset 9223372036854775806 spans more bytes")]
    [TestCase(1L << 62, 0L, new[] { 1L }, new[] { 1L }, "storage '0' declares 4611686018427387904 float32 elements, more bytes than a file can hold")]
    public void SizesThatOverflowSixtyFourBitsAreRefusedBeforeAnyAllocation(long numel, long offset, long[] size, long[] stride, string message)
    {
        var pickle = new PickleOps().Op('}').Str("w").Tensor("FloatStorage", "0", numel, offset, size, stride).Op('s').Op('.').Bytes;
        var path = CheckpointTestData.WriteTorchZip(_dir, "huge.pth", pickle, ("0", Floats(1, 2, 3, 4)));
        Assert.That(Assert.Throws<VimException>(() => CheckpointFile.Load(path))!.Message,
            Does.StartWith("huge.pth: entry 'archive/data.pkl': pickle offset ").And.Contain(message));
    }

    [Test]
    public void AnExpandedViewStaysAViewOfItsFourByteStorage()
    {
        // torch.full((1,), 1.5).expand(2**30, 2**30): 2^60 elements (2^62 bytes if copied out) on one stored float.
        const long side = 1L << 30;
        var pickle = new PickleOps().Op('}').Str("w").Tensor("FloatStorage", "0", 1, 0, [side, side], [0, 0]).Op('s').Op('.').Bytes;
        var path = CheckpointTestData.WriteTorchZip(_dir, "expanded.pth", pickle, ("0", Floats(1.5f)));
        using var checkpoint = CheckpointFile.Load(path);
        var w = checkpoint.StateDict()["w"];
        Assert.That(w.shape, Is.EqualTo(new[] { side, side }));
        Assert.That(w.is_contiguous(), Is.False);
        Assert.That(w[side - 1, side - 1].item<float>(), Is.EqualTo(1.5f));

        // Writing it out needs every element: refused with the tensor's name, and no file left behind.
        var output = Path.Combine(_dir, "expanded.safetensors");
        Assert.That(Assert.Throws<VimException>(() => SafeTensorsFormat.Write(output, [new("w", w)]))!.Message,
            Does.StartWith($"{output}: tensor 'w' (shape [{side}, {side}], {side * side * 4} bytes when written out) could not be copied to contiguous memory"));
        Assert.That(Directory.GetFiles(_dir).Select(Path.GetFileName), Is.EqualTo(new[] { "expanded.pth" }));
    }

    [Test]
    public void AnOverlappingViewWithinItsStorageIsStillCopiedOut()
    {
        // Sliding windows of width 3 over 5 floats: 9 elements, more than the 5 stored; a 2x2 overlapping view of 4 is copied.
        var pickle = new PickleOps().Op('}').Op('(').Str("windows").Tensor("FloatStorage", "0", 5, 0, [3, 3], [1, 1])
            .Str("small").Tensor("FloatStorage", "0", 5, 1, [2, 2], [1, 1]).Op('u').Op('.').Bytes;
        using var checkpoint = CheckpointFile.Load(CheckpointTestData.WriteTorchZip(_dir, "windows.pth", pickle, ("0", Floats(1, 2, 3, 4, 5))));
        var windows = checkpoint.StateDict()["windows"];
        Assert.That(windows.stride(), Is.EqualTo(new long[] { 1, 1 }), "kept as a view");
        Assert.That(windows.contiguous().data<float>().ToArray(), Is.EqualTo(new float[] { 1, 2, 3, 2, 3, 4, 3, 4, 5 }));
        var small = checkpoint.StateDict()["small"];
        Assert.That(small.is_contiguous(), Is.True);
        Assert.That(small.data<float>().ToArray(), Is.EqualTo(new float[] { 2, 3, 3, 4 }));
    }

    [TestCase(0xFFFFFFF0u, "claims 4294967280 bytes, more than the 1073741824 such an entry may hold")]
    [TestCase(100_000_000u, "claims 100000000 bytes from ")]
    [TestCase(1000u, "holds 100 bytes, but its zip header claims 1000; the zip directory is corrupt")]
    public void AZipHeaderClaimingMoreBytesThanAnEntryHoldsIsRefusedBeforeAllocating(uint claimed, string message)
    {
        // [1] * 32 in 100 bytes, deflated; then its size as the zip headers state it is changed.
        var ops = new PickleOps().Op(']');
        for (var i = 0; i < 32; i++) ops.Op('K').Op(1).Op('a');
        var path = Path.Combine(_dir, "claims.pth");
        using (var zip = System.IO.Compression.ZipFile.Open(path, System.IO.Compression.ZipArchiveMode.Create))
        using (var s = zip.CreateEntry("archive/data.pkl", System.IO.Compression.CompressionLevel.Optimal).Open())
            s.Write(ops.Op('.').Bytes);
        CheckpointTestData.ClaimUncompressedSize(path, "archive/data.pkl", claimed);
        Assert.That(Assert.Throws<VimException>(() => CheckpointFile.Load(path))!.Message,
            Does.StartWith("claims.pth: entry 'archive/data.pkl' ").And.Contain(message));
    }

    [TestCase(1000L, "holds 400 bytes, but its zip header claims 4000; the zip directory is corrupt")]
    [TestCase(1L << 28, "claims 1073741824 bytes from 400 compressed bytes, more than deflate expands to (about 1000:1); the zip directory is corrupt")]
    public void AStoredStorageClaimingMoreBytesThanItHoldsIsRefusedBeforeAllocating(long claimedFloats, string message)
    {
        // 100 stored floats whose zip headers claim more, as many as the persistent id declares.
        var pickle = new PickleOps().Op('}').Str("w").Tensor("FloatStorage", "0", claimedFloats, 0, [100], [1]).Op('s').Op('.').Bytes;
        var path = CheckpointTestData.WriteTorchZip(_dir, "stored.pth", pickle, ("0", new byte[400]));
        CheckpointTestData.ClaimUncompressedSize(path, "archive/data/0", (uint)(claimedFloats * 4));
        Assert.That(Assert.Throws<VimException>(() => CheckpointFile.Load(path))!.Message,
            Is.EqualTo($"stored.pth: entry 'archive/data/0' {message}"));
    }

    [Test]
    public void AStoredStorageClaimingMoreBytesThanTheFileHoldsIsRefusedBeforeAllocating()
    {
        // Both lengths of 100 stored floats claim 2^28 floats: consistent with each other, not with the file.
        const long claimedFloats = 1L << 28;
        var pickle = new PickleOps().Op('}').Str("w").Tensor("FloatStorage", "0", claimedFloats, 0, [100], [1]).Op('s').Op('.').Bytes;
        var path = CheckpointTestData.WriteTorchZip(_dir, "beyond.pth", pickle, ("0", new byte[400]));
        CheckpointTestData.ClaimUncompressedSize(path, "archive/data/0", (uint)(claimedFloats * 4), compressedToo: true);
        Assert.That(Assert.Throws<VimException>(() => CheckpointFile.Load(path))!.Message,
            Does.StartWith("beyond.pth: entry 'archive/data/0' claims 1073741824 compressed bytes, more than the whole file ("));
    }

    [Test]
    public void StorageLengthMustMatchItsDeclaredElementCount()
    {
        var pickle = new PickleOps().Op('}').Str("w").Tensor("HalfStorage", "0", 4, 0, [2], [1]).Op('s').Op('.').Bytes;
        var path = CheckpointTestData.WriteTorchZip(_dir, "declared.pth", pickle, ("0", new byte[6]));
        Assert.That(Assert.Throws<VimException>(() => CheckpointFile.Load(path))!.Message,
            Is.EqualTo("declared.pth: storage 'archive/data/0' holds 6 bytes, but its persistent id declares 4 float16 elements (8 bytes)"));
    }

    [TestCase("ComplexFloatStorage", "storage type torch.ComplexFloatStorage is not supported")]
    [TestCase("FloatStorage", "")]
    public void StorageTypesOutsideTheWhitelistAreRefused(string type, string message)
    {
        var pickle = new PickleOps().Op('}').Str("w").Tensor(type, "0", 1, 0, [1], [1]).Op('s').Op('.').Bytes;
        var path = CheckpointTestData.WriteTorchZip(_dir, "types.pth", pickle, ("0", Floats(4)));
        if (message.Length == 0)
        {
            using var checkpoint = CheckpointFile.Load(path);
            Assert.That(checkpoint.StateDict()["w"].item<float>(), Is.EqualTo(4f));
            return;
        }
        Assert.That(Assert.Throws<VimException>(() => CheckpointFile.Load(path))!.Message,
            Does.StartWith("types.pth: entry 'archive/data.pkl': pickle offset ").And.Contain(message));
    }

    [Test]
    public void StructuralErrorsNameTheOpcodeAndOffset()
    {
        // BUILD on a list: offset 4 is the BUILD (PROTO 2 bytes, EMPTY_LIST, EMPTY_DICT).
        var build = new PickleOps().Op(']').Op('}').Op('b').Op('.').Bytes;
        Assert.That(Assert.Throws<VimException>(() => CheckpointFile.Load(CheckpointTestData.WriteTorchZip(_dir, "b.pth", build)))!.Message,
            Is.EqualTo("b.pth: entry 'archive/data.pkl': pickle offset 4: BUILD applies state to a list of 0, which cannot take attributes"));
        var getBeforePut = new PickleOps().Op('h').Op(3).Op('.').Bytes;
        Assert.That(Assert.Throws<VimException>(() => CheckpointFile.Load(CheckpointTestData.WriteTorchZip(_dir, "g.pth", getBeforePut)))!.Message,
            Does.Contain("pickle offset 2: memo slot 3 is read before it was written"));
        var noStop = new PickleOps().Op('}').Bytes;
        Assert.That(Assert.Throws<VimException>(() => CheckpointFile.Load(CheckpointTestData.WriteTorchZip(_dir, "s.pth", noStop)))!.Message,
            Does.Contain("pickle ended at offset 3 while reading an opcode (the pickle has no STOP)"));
        var underflow = new PickleOps().Op('(').Op('s').Op('.').Bytes;
        Assert.That(Assert.Throws<VimException>(() => CheckpointFile.Load(CheckpointTestData.WriteTorchZip(_dir, "u.pth", underflow)))!.Message,
            Does.Contain("pickle offset 3: SETITEM needs a value but the stack is empty above the MARK"));
    }
}
