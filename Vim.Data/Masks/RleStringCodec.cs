using System.Text;

namespace Vim.Data.Masks;

/// <summary>
/// COCO's compressed RLE counts string: each count (after the third, as the difference to the count
/// two places before, which is small for smooth shapes) is written as 5-bit groups, least significant
/// first, each group offset by 48 into printable ASCII; bit 0x20 marks "more groups follow" and bit
/// 0x10 of the last group is the sign.
/// </summary>
public static class RleStringCodec
{
    public static string Encode(ReadOnlySpan<uint> counts)
    {
        var sb = new StringBuilder(counts.Length * 2);
        for (int i = 0; i < counts.Length; i++)
        {
            long x = counts[i];
            if (i > 2) x -= counts[i - 2];
            bool more = true;
            while (more)
            {
                int c = (int)(x & 0x1f);
                x >>= 5;
                more = (c & 0x10) != 0 ? x != -1 : x != 0;
                if (more) c |= 0x20;
                sb.Append((char)(c + 48));
            }
        }
        return sb.ToString();
    }

    public static uint[] Decode(string s)
    {
        var counts = new List<uint>(s.Length);
        int p = 0;
        while (p < s.Length)
        {
            long x = 0;
            int k = 0;
            bool more = true;
            while (more)
            {
                if (p >= s.Length)
                    throw new FormatException($"RLE counts string ends inside a value (at character {p}).");
                int c = s[p] - 48;
                if (c < 0 || c > 63)
                    throw new FormatException($"RLE counts string has invalid character '{s[p]}' at position {p}.");
                x |= (long)(c & 0x1f) << (5 * k);
                more = (c & 0x20) != 0;
                p++;
                k++;
                if (!more && (c & 0x10) != 0) x |= -1L << (5 * k);
            }
            if (counts.Count > 2) x += counts[^2];
            if (x < 0 || x > uint.MaxValue)
                throw new FormatException($"RLE counts string decodes to an out-of-range run length {x} (value {counts.Count}).");
            counts.Add((uint)x);
        }
        return counts.ToArray();
    }
}
