using System.Text;
using NUnit.Framework;

namespace Vim.Tests;

/// <summary>
/// One random edit of a file's bytes, for tests that every damaged input is refused cleanly: overwrite a byte, flip a
/// bit, delete or repeat a run, truncate, or plant a token that holds an extreme value.
/// </summary>
internal static class RandomDamage
{
    /// <param name="original">The good bytes (left as they are).</param>
    /// <param name="random">The seeded source, so a failure names a reproducible mutation.</param>
    /// <param name="meaningful">Bytes that mean something in the format, chosen for three in four overwrites.</param>
    /// <param name="planted">Tokens to insert, e.g. numbers far outside their range.</param>
    /// <param name="from">Edits start at or after this offset (e.g. past a magic number).</param>
    public static byte[] Mutate(byte[] original, Random random, byte[] meaningful, byte[][] planted, int from = 0)
    {
        var bytes = original.ToList();
        var at = random.Next(from, bytes.Count);
        switch (random.Next(6))
        {
            case 0:
                bytes[at] = random.Next(4) == 0 ? (byte)random.Next(256) : meaningful[random.Next(meaningful.Length)];
                break;
            case 1:
                bytes[at] ^= (byte)(1 << random.Next(8));
                break;
            case 2:
                bytes.RemoveRange(at, Math.Min(random.Next(1, 9), bytes.Count - at));
                break;
            case 3:
                bytes.InsertRange(at, bytes.GetRange(at, Math.Min(random.Next(1, 33), bytes.Count - at)));
                break;
            case 4:
                bytes.RemoveRange(at, bytes.Count - at);
                break;
            default:
                bytes.InsertRange(at, planted[random.Next(planted.Length)]);
                break;
        }
        return [.. bytes];
    }

    /// <summary>JSON structure and number characters, and numbers that no field should accept as they are.</summary>
    public static readonly byte[] JsonMeaningful = Encoding.ASCII.GetBytes("{}[]:,\"-.eE0123456789 \\tnfu");

    public static readonly byte[][] JsonPlanted =
        new[] { "99999999999999999999", "-7", "1e308", "1e999", "0.5", "4294967296", "-0", "NaN" }
            .Select(Encoding.ASCII.GetBytes).ToArray();

    /// <summary>Binary formats: the bytes that mark lengths and counts at their extremes.</summary>
    public static readonly byte[] BinaryMeaningful = [0x00, 0x01, 0x7f, 0x80, 0xff];

    public static readonly byte[][] BinaryPlanted =
        [[0xff, 0xff, 0xff, 0xff], [0xff, 0xff, 0xff, 0x7f], [0x00, 0x00, 0x00, 0x80], [0, 0, 0, 0, 0, 0, 0, 0], [0x80, 0x02]];

    /// <summary>
    /// Fails listing the damaged inputs that escaped as anything but a clean refusal, each "what: problem"; one example
    /// per distinct problem, so a report shows every bug rather than many copies of the first.
    /// </summary>
    public static void AssertNoneEscaped(IReadOnlyList<string> escaped)
    {
        var kinds = escaped.GroupBy(e => e[(e.IndexOf(": ", StringComparison.Ordinal) + 2)..]).Select(g => $"{g.First()} (x{g.Count()})");
        Assert.That(escaped, Is.Empty, $"{escaped.Count} damaged files escaped as other errors:\n{string.Join("\n", kinds.Take(20))}");
    }
}
