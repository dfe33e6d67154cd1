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
