using OpenCvSharp;

namespace Vim.Tests.Data;

/// <summary>A temp folder per test with helpers to write small images, label maps and json fixtures.</summary>
public sealed class DataTestFiles : IDisposable
{
    public DataTestFiles()
    {
        Root = Path.Combine(Path.GetTempPath(), $"vimdense-data-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Root);
    }

    public string Root { get; }

    public string PathOf(params string[] parts) => Path.Combine([Root, .. parts]);

    public string WriteText(string relative, string text)
    {
        var path = PathOf(relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
        return path;
    }

    /// <summary>Writes an image given in RGB order (converted to OpenCV's BGR before encoding).</summary>
    public string WriteRgb(string relative, int height, int width, Func<int, int, (byte R, byte G, byte B)> colour)
    {
        using var mat = new Mat(height, width, MatType.CV_8UC3);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                var (r, g, b) = colour(y, x);
                mat.Set(y, x, new Vec3b(b, g, r));
            }
        return Write(relative, mat);
    }

    public string WriteGray(string relative, int height, int width, Func<int, int, byte> value)
    {
        using var mat = new Mat(height, width, MatType.CV_8UC1);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++) mat.Set(y, x, value(y, x));
        return Write(relative, mat);
    }

    /// <summary>
    /// A JPEG of <paramref name="height"/>×<paramref name="width"/> stored pixels, all <paramref name="bgr"/>, whose EXIF
    /// says "rotate 90° clockwise" (orientation 6, as phone cameras write portrait photos): OpenCV's default read
    /// returns it width×height.
    /// </summary>
    public string WriteJpegRotatedByExif(string relative, int height, int width, Scalar bgr)
    {
        using var mat = new Mat(height, width, MatType.CV_8UC3, bgr);
        Cv2.ImEncode(".jpg", mat, out byte[] jpeg);
        byte[] tiff = [0x49, 0x49, 0x2A, 0x00, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0];
        byte[] payload = [.. "Exif"u8, 0, 0, .. tiff];
        int length = payload.Length + 2;
        byte[] app1 = [0xFF, 0xE1, (byte)(length >> 8), (byte)length, .. payload];
        var path = PathOf(relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, [.. jpeg[..2], .. app1, .. jpeg[2..]]);
        return path;
    }

    public string Write(string relative, Mat mat)
    {
        var path = PathOf(relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        if (!Cv2.ImWrite(path, mat)) throw new InvalidOperationException($"could not write {path}");
        return path;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
