using NUnit.Framework;
using OpenCvSharp;
using Vim.Core;
using Vim.Data.Datasets;

namespace Vim.Tests.Data;

/// <summary>
/// Damaged JPEG and PNG files (random edits, fixed seeds) through the image and label-map readers: each must decode
/// (a truncated JPEG decodes partially, as OpenCV and mmcv allow) or be refused with a <see cref="VimException"/>
/// naming the file; never a native error, an exception of another kind, or a crash.
/// </summary>
public class ImageMutationTests
{
    private const int MutationsPerCase = 300;
    private string _dir = "";

    [SetUp]
    public void CreateDirectory() => _dir = Directory.CreateTempSubdirectory("vim-image-mutation-").FullName;

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(_dir, recursive: true);

    private static byte[] Encode(string extension, MatType type, int channels)
    {
        using var image = new Mat(48, 64, type);
        var random = new Random(7);
        var bytes = new byte[48 * 64 * channels * (type == MatType.CV_16UC1 ? 2 : 1)];
        // Smooth gradients plus noise: compressible enough for real entropy-coded segments.
        for (var i = 0; i < bytes.Length; i++) bytes[i] = (byte)(i % 61 + random.Next(8));
        System.Runtime.InteropServices.Marshal.Copy(bytes, 0, image.Data, bytes.Length);
        Cv2.ImEncode(extension, image, out var encoded);
        return encoded;
    }

    [TestCase(".jpg", 61)]
    [TestCase(".png", 62)]
    public void DamagedImageDecodesOrIsRefused(string extension, int seed)
    {
        var good = Encode(extension, MatType.CV_8UC3, 3);
        Check(good, extension, seed, path => ImageDecoder.ReadRgb(path).Rgb.Length);
    }

    [TestCase(63, false)]
    [TestCase(64, true)]
    public void DamagedLabelMapDecodesOrIsRefused(int seed, bool sixteenBit)
    {
        var good = sixteenBit ? Encode(".png", MatType.CV_16UC1, 1) : Encode(".png", MatType.CV_8UC1, 1);
        Check(good, ".png", seed, path => ImageDecoder.ReadLabelMap(path).Labels.Length);
    }

    private void Check(byte[] good, string extension, int seed, Func<string, int> read)
    {
        var random = new Random(seed);
        var escaped = new List<string>();
        for (var i = 0; i < MutationsPerCase; i++)
        {
            var path = Path.Combine(_dir, $"m{i}{extension}");
            File.WriteAllBytes(path, RandomDamage.Mutate(good, random, RandomDamage.BinaryMeaningful, RandomDamage.BinaryPlanted));
            try
            {
                read(path);
            }
            catch (VimException e) when (e.Message.Contains(path, StringComparison.Ordinal))
            {
            }
            catch (Exception e)
            {
                escaped.Add($"mutation {i}: {e.GetType().Name}: {e.Message.Split('\n')[0]}");
            }
        }
        RandomDamage.AssertNoneEscaped(escaped);
    }
}
