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

    public static string NewTempDirectory()
    {
        var dir = Path.Combine(Path.GetTempPath(), "vim-ckpt-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }
}
