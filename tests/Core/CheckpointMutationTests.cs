using System.IO.Compression;
using System.Text;
using NUnit.Framework;
using Vim.Core;
using Vim.Core.Checkpoints;
using static TorchSharp.torch;

namespace Vim.Tests.Core;

/// <summary>
/// Damaged checkpoints, made by mutating good ones at random (fixed seeds): every file must either load or be refused
/// with a <see cref="VimException"/> that names it. Any other exception (an index out of range, an overflow, a native
/// TorchSharp error, an allocation of petabytes) is a reader bug that would reach the user as a stack trace.
/// </summary>
public class CheckpointMutationTests
{
    private const int MutationsPerCase = 1000;
    private string _dir = "";

    [SetUp]
    public void CreateDirectory() => _dir = CheckpointTestData.NewTempDirectory();

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_dir, recursive: true);

    private static string? Misbehaviour(string path)
    {
        var name = Path.GetFileName(path);
        try
        {
            using var checkpoint = CheckpointFile.Load(path);
            foreach (var (_, tensor) in checkpoint.Tensors)
                _ = tensor.NumberOfElements;
            return null;
        }
        catch (VimException e) when (e.Message.Contains(name, StringComparison.Ordinal))
        {
            return null;
        }
        catch (Exception e)
        {
            return $"{e.GetType().Name}: {e.Message.Split('\n')[0]}";
        }
    }

    private static void AssertAllRefusedCleanly(IEnumerable<(string Path, string Edit)> files)
    {
        var bad = new List<string>();
        foreach (var (path, edit) in files)
        {
            using var scope = NewDisposeScope();
            if (Misbehaviour(path) is { } problem)
                bad.Add($"{edit}: {problem}");
        }
        RandomDamage.AssertNoneEscaped(bad);
    }

    /// <summary>The zip with its data.pkl replaced (the zip itself stays valid, so the unpickler sees the damage).</summary>
    private static byte[] WithPickle(byte[] zipBytes, Func<byte[], byte[]> edit)
    {
        using var input = new ZipArchive(new MemoryStream(zipBytes), ZipArchiveMode.Read);
        var output = new MemoryStream();
        using (var zip = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var entry in input.Entries)
            {
                using var source = entry.Open();
                var content = new MemoryStream();
                source.CopyTo(content);
                var bytes = content.ToArray();
                if (entry.FullName.EndsWith("/data.pkl", StringComparison.Ordinal))
                    bytes = edit(bytes);
                using var target = zip.CreateEntry(entry.FullName, CompressionLevel.NoCompression).Open();
                target.Write(bytes);
            }
        }
        return output.ToArray();
    }

    [TestCase("vim_like.pth", 11)]
    [TestCase("protocol4.pth", 12)]
    public void DamagedPickleIsRefusedNamingTheFile(string fixture, int seed)
    {
        var good = File.ReadAllBytes(CheckpointTestData.PathOf(fixture));
        var random = new Random(seed);
        AssertAllRefusedCleanly(Enumerable.Range(0, MutationsPerCase).Select(i =>
        {
            var path = Path.Combine(_dir, $"pickle{i}.pth");
            File.WriteAllBytes(path, WithPickle(good, pickle => RandomDamage.Mutate(pickle, random, RandomDamage.BinaryMeaningful, RandomDamage.BinaryPlanted)));
            return (path, $"pickle mutation {i}");
        }).ToList());
    }

    [TestCase("vim_like.pth", 21)]
    public void DamagedZipIsRefusedNamingTheFile(string fixture, int seed)
    {
        var good = File.ReadAllBytes(CheckpointTestData.PathOf(fixture));
        var random = new Random(seed);
        AssertAllRefusedCleanly(Enumerable.Range(0, MutationsPerCase).Select(i =>
        {
            var path = Path.Combine(_dir, $"zip{i}.pth");
            File.WriteAllBytes(path, RandomDamage.Mutate(good, random, RandomDamage.BinaryMeaningful, RandomDamage.BinaryPlanted, from: 4));
            return (path, $"file mutation {i}");
        }).ToList());
    }

    [Test]
    public void DamagedSafeTensorsIsRefusedNamingTheFile()
    {
        var good = Path.Combine(_dir, "good.safetensors");
        using (var scope = NewDisposeScope())
            SafeTensorsFormat.Write(good, new Dictionary<string, Tensor>
            {
                ["backbone.pos_embed"] = arange(24, dtype: ScalarType.Float32).reshape(1, 4, 6),
                ["backbone.layers.0.mixer.A_log"] = ones(3, 2, dtype: ScalarType.BFloat16),
                ["step"] = tensor(new long[] { 7 }),
                ["half"] = full(5, 0.5, dtype: ScalarType.Float16),
            }, new Dictionary<string, string> { ["format"] = "pt" });
        var bytes = File.ReadAllBytes(good);
        var random = new Random(31);
        AssertAllRefusedCleanly(Enumerable.Range(0, MutationsPerCase).Select(i =>
        {
            var path = Path.Combine(_dir, $"st{i}.safetensors");
            // Mostly the 8-byte length and the JSON header, where the structure is.
            var headerEnd = 8 + (int)BitConverter.ToUInt64(bytes, 0);
            File.WriteAllBytes(path, random.Next(4) == 0 ? RandomDamage.Mutate(bytes, random, RandomDamage.JsonMeaningful, RandomDamage.JsonPlanted) : MutateWithin(bytes, random, headerEnd));
            return (path, $"safetensors mutation {i}");
        }).ToList());
    }

    private static byte[] MutateWithin(byte[] bytes, Random random, int end)
    {
        var head = RandomDamage.Mutate(bytes[..end], random, RandomDamage.JsonMeaningful, RandomDamage.JsonPlanted);
        return [.. head, .. bytes[end..]];
    }
}
