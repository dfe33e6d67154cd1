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

    /// <summary>One random edit: overwrite a byte, flip a bit, delete or repeat a run, truncate, or plant a large integer.</summary>
    private static byte[] Mutate(byte[] original, Random random, int from = 0)
    {
        var bytes = original.ToList();
        var at = random.Next(from, bytes.Count);
        switch (random.Next(6))
        {
            case 0:
                bytes[at] = (byte)random.Next(256);
                break;
            case 1:
                bytes[at] ^= (byte)(1 << random.Next(8));
                break;
            case 2:
                bytes.RemoveRange(at, Math.Min(random.Next(1, 9), bytes.Count - at));
                break;
            case 3:
                var length = Math.Min(random.Next(1, 17), bytes.Count - at);
                bytes.InsertRange(at, bytes.GetRange(at, length));
                break;
            case 4:
                bytes.RemoveRange(at, bytes.Count - at);
                break;
            default:
                // Lengths, counts and shapes near the limits of their fields.
                var big = new[] { 0xff, 0x7f, 0x80, 0x00 }[random.Next(4)];
                for (var i = at; i < Math.Min(at + random.Next(1, 9), bytes.Count); i++)
                    bytes[i] = (byte)big;
                break;
        }
        return bytes.ToArray();
    }

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
        // One example per kind of escape, so a report shows every distinct reader bug, not twelve copies of the first.
        var kinds = bad.GroupBy(b => b[(b.IndexOf(": ", StringComparison.Ordinal) + 2)..]).Select(g => $"{g.First()} (x{g.Count()})");
        Assert.That(bad, Is.Empty, $"{bad.Count} damaged files escaped as other errors:\n{string.Join("\n", kinds.Take(20))}");
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
            File.WriteAllBytes(path, WithPickle(good, pickle => Mutate(pickle, random)));
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
            File.WriteAllBytes(path, Mutate(good, random, from: 4));
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
            File.WriteAllBytes(path, random.Next(4) == 0 ? Mutate(bytes, random) : MutateWithin(bytes, random, headerEnd));
            return (path, $"safetensors mutation {i}");
        }).ToList());
    }

    private static byte[] MutateWithin(byte[] bytes, Random random, int end)
    {
        var head = Mutate(bytes[..end], random);
        return [.. head, .. bytes[end..]];
    }
}
