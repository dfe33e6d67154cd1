namespace Vim.Tests;

/// <summary>Locates the repository root (the folder holding VimDense.sln) from the test binaries.</summary>
public static class RepositoryPaths
{
    public static string Root { get; } = Find();

    public static string TestData(params string[] parts) => Path.Combine([Root, "tests", "data", .. parts]);

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "VimDense.sln"))) return dir.FullName;
        throw new InvalidOperationException("VimDense.sln not found above " + AppContext.BaseDirectory);
    }
}
