using System.IO.Compression;
using System.Text.Json;
using NUnit.Framework;

namespace Vim.Tests.Core;

/// <summary>Locates the checkpoint fixtures written by tests/data/checkpoints/make_fixtures.py and their expectations.</summary>
internal static class CheckpointTestData
{
    public sealed record ExpectedTensor(string Name, string DType, long[] Shape, double[] Values);

    private static readonly Lazy<string> Folder = new(() =>
    {
        for (var dir = new DirectoryInfo(TestContext.CurrentContext.TestDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "data", "checkpoints");
            if (File.Exists(Path.Combine(candidate, "expected.json")))
                return candidate;
        }
        throw new DirectoryNotFoundException("tests/data/checkpoints not found above the test directory");
    });

    public static string PathOf(string file) => Path.Combine(Folder.Value, file);

    /// <summary>The tensors the fixture script wrote, values computed there from offsets and strides.</summary>
    public static IReadOnlyList<ExpectedTensor> Expected(string file)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(PathOf("expected.json")));
        return doc.RootElement.GetProperty(file).EnumerateArray().Select(e => new ExpectedTensor(
            e.GetProperty("name").GetString()!,
            e.GetProperty("dtype").GetString()!,
            e.GetProperty("shape").EnumerateArray().Select(x => x.GetInt64()).ToArray(),
            e.GetProperty("values").EnumerateArray().Select(x => x.GetDouble()).ToArray())).ToList();
    }

    /// <summary>The `inspect` lines the fixture script expects for one file.</summary>
    public static IReadOnlyList<string> ExpectedInspect(string file)
    {
        var lines = File.ReadAllLines(PathOf("expected_inspect.tsv"));
        return lines.SkipWhile(l => l != $"# {file}").Skip(1).TakeWhile(l => !l.StartsWith('#') && l.Length > 0).ToList();
    }

    /// <summary>Writes a torch.save-shaped zip (ARCHIVE/data.pkl + data/KEY entries) around hand-made pickle bytes.</summary>
    public static string WriteTorchZip(string directory, string name, byte[] pickle, params (string Key, byte[] Data)[] storages)
    {
        var path = Path.Combine(directory, name);
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        void Add(string entry, byte[] data)
        {
            using var s = zip.CreateEntry($"archive/{entry}", CompressionLevel.NoCompression).Open();
            s.Write(data);
        }
        Add("data.pkl", pickle);
        Add("byteorder", "little"u8.ToArray());
        foreach (var (key, data) in storages)
            Add($"data/{key}", data);
        Add("version", "3\n"u8.ToArray());
        return path;
    }

    /// <summary>
    /// Overwrites the uncompressed size (and, with <paramref name="compressedToo"/>, the compressed size just before it)
    /// of one entry in its local header and in the central directory, as a damaged or hostile zip would state them.
    /// </summary>
    public static void ClaimUncompressedSize(string path, string entry, uint size, bool compressedToo = false)
    {
        var bytes = File.ReadAllBytes(path);
        var name = System.Text.Encoding.ASCII.GetBytes(entry);
        var patched = 0;
        for (var i = 0; i + 46 + name.Length <= bytes.Length; i++)
        {
            var signature = BitConverter.ToUInt32(bytes, i);
            var (nameAt, sizeAt) = signature switch
            {
                0x04034b50 => (30, 22), // local file header
                0x02014b50 => (46, 24), // central directory header
                _ => (-1, -1),
            };
            if (nameAt < 0 || BitConverter.ToUInt16(bytes, i + (nameAt == 30 ? 26 : 28)) != name.Length || !bytes.AsSpan(i + nameAt, name.Length).SequenceEqual(name))
                continue;
            BitConverter.GetBytes(size).CopyTo(bytes, i + sizeAt);
            if (compressedToo)
                BitConverter.GetBytes(size).CopyTo(bytes, i + sizeAt - 4);
            patched++;
        }
        Assert.That(patched, Is.EqualTo(2), $"{entry}: local and central headers");
        File.WriteAllBytes(path, bytes);
    }

    public static string NewTempDirectory()
    {
        var dir = Path.Combine(Path.GetTempPath(), "vim-ckpt-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }
}
