using System.Globalization;
using System.Text;
using System.Text.Json;
using Vim.Core;
using Vim.Core.IO;

namespace Vim.Data.Evaluation;

/// <summary>One image's score in a per-image analysis (COCO AP of the image, or its mIoU).</summary>
/// <param name="Index">Where the image sits in the source the analysis read (the json's images, the dataset's samples).</param>
/// <param name="Image">The image's name as the source gives it (a COCO file_name, a path under the image folder).</param>
/// <param name="Score">NaN where undefined: the image cannot be ranked.</param>
/// <param name="Details">Counts that explain the score, one per column name the table is written with.</param>
public sealed record ImageScore(int Index, string Image, double Score, IReadOnlyList<long> Details);

/// <summary>
/// The best and worst images of a per-image analysis, chosen as mmdet's tools/analysis_tools/analyze_results.py chooses
/// them: the images sorted by ascending score with a stable sort (Python's sorted), the worst K the first K and the best K
/// the last K, where K is the asked top-k cut to half the ranked images (so the two never share an image). Among equal
/// scores the worst list therefore takes the earliest images and the best list the latest. Images whose score is
/// undefined are left out of the ranking and kept in <see cref="Undefined"/>.
/// </summary>
public sealed class ImageRanking
{
    private ImageRanking(IReadOnlyList<ImageScore> ranked, IReadOnlyList<ImageScore> undefined, int topK)
    {
        Ranked = ranked;
        Undefined = undefined;
        TopK = topK;
        Best = ranked.Take(topK).ToList();
        Worst = ranked.Reverse().Take(topK).ToList();
    }

    /// <summary>Every image with a score, best first (rank i + 1 at index i).</summary>
    public IReadOnlyList<ImageScore> Ranked { get; }

    /// <summary>Images without a score, in source order.</summary>
    public IReadOnlyList<ImageScore> Undefined { get; }

    /// <summary>The top-k taken: the asked one, or half the ranked images when that is less.</summary>
    public int TopK { get; }

    /// <summary>The <see cref="TopK"/> best images, best first.</summary>
    public IReadOnlyList<ImageScore> Best { get; }

    /// <summary>The <see cref="TopK"/> worst images, worst first.</summary>
    public IReadOnlyList<ImageScore> Worst { get; }

    /// <param name="topK">How many best and worst images to pick; at least 1 (mmdet asserts topk &gt; 0).</param>
    public static ImageRanking Rank(IReadOnlyList<ImageScore> images, int topK)
    {
        if (topK < 1) throw new VimException($"--topk: expected at least 1, got {topK}.");
        var defined = images.Where(i => !double.IsNaN(i.Score)).ToList();
        // OrderBy is stable: ascending as mmdet sorts; reversed, the best come first and the ties' last images lead.
        var ascending = defined.OrderBy(i => i.Score).ToList();
        ascending.Reverse();
        return new ImageRanking(ascending, images.Where(i => double.IsNaN(i.Score)).ToList(), Math.Min(topK, defined.Count / 2));
    }

    /// <summary>The folder of the best images' drawings, inside the output folder.</summary>
    public const string BestFolder = "good";

    /// <summary>The folder of the worst images' drawings, inside the output folder.</summary>
    public const string WorstFolder = "bad";

    /// <summary>
    /// The drawing's file name: the rank within its list (1 = best in good/, worst in bad/; zero-padded to the top-k's
    /// width so the names sort by rank), the image's file-name stem and the score rounded to 3 decimals as mmdet names its
    /// drawings (Python's str(round(score, 3)): 1.0, 0.5, 0.333).
    /// </summary>
    public string DrawingName(int rank, ImageScore image)
    {
        int width = TopK.ToString(CultureInfo.InvariantCulture).Length;
        string score = Math.Round(image.Score, 3, MidpointRounding.ToEven).ToString("0.0##", CultureInfo.InvariantCulture);
        return $"{rank.ToString(CultureInfo.InvariantCulture).PadLeft(width, '0')}_{Path.GetFileNameWithoutExtension(image.Image)}_{score}.png";
    }

    /// <summary>The drawings to make: (path under <paramref name="outDir"/>, image), the best then the worst.</summary>
    public IReadOnlyList<(string Path, ImageScore Image)> Drawings(string outDir) =>
    [
        .. Best.Select((image, i) => (Path.Combine(outDir, BestFolder, DrawingName(i + 1, image)), image)),
        .. Worst.Select((image, i) => (Path.Combine(outDir, WorstFolder, DrawingName(i + 1, image)), image)),
    ];

    /// <summary>
    /// Deletes the drawings an earlier run left in good/ and bad/ (PNGs named as <see cref="DrawingName"/> names them,
    /// "RANK_..."), so the folders hold this run's lists only; other files are left alone. Returns how many went.
    /// </summary>
    public static int DeleteEarlierDrawings(string outDir)
    {
        int deleted = 0;
        foreach (var folder in new[] { BestFolder, WorstFolder })
        {
            var dir = Path.Combine(outDir, folder);
            if (!Directory.Exists(dir)) continue;
            foreach (var file in Directory.EnumerateFiles(dir, "*.png"))
            {
                var name = Path.GetFileName(file);
                int underscore = name.IndexOf('_');
                if (underscore <= 0 || !name[..underscore].All(char.IsAsciiDigit)) continue;
                File.Delete(file);
                deleted++;
            }
        }
        return deleted;
    }

    /// <summary>The table of every image: scores.csv and scores.json.</summary>
    public const string CsvName = "scores.csv", JsonName = "scores.json";

    /// <summary>
    /// Writes <see cref="CsvName"/> (rank, image, the score, the details; ranked images best first, then the undefined
    /// ones with an empty rank and score) and <see cref="JsonName"/> (the same rows with null for undefined, the top-k
    /// and the best and worst lists), each atomically. Returns both paths.
    /// </summary>
    /// <param name="scoreName">The score's column (e.g. bbox_ap, miou).</param>
    /// <param name="detailNames">One column name per <see cref="ImageScore.Details"/> entry.</param>
    public (string Csv, string Json) Write(string outDir, string scoreName, IReadOnlyList<string> detailNames)
    {
        foreach (var image in Ranked.Concat(Undefined))
            if (image.Details.Count != detailNames.Count)
                throw new ArgumentException($"{image.Image} has {image.Details.Count} details for {detailNames.Count} columns.", nameof(detailNames));
        var rows = Ranked.Select((image, i) => (Rank: (int?)(i + 1), Image: image)).Concat(Undefined.Select(image => (Rank: (int?)null, Image: image))).ToList();

        var csv = new StringBuilder($"rank,image,{string.Join(",", new[] { scoreName }.Concat(detailNames).Select(CsvText.Field))}\r\n");
        foreach (var (rank, image) in rows)
        {
            string score = double.IsNaN(image.Score) ? "" : image.Score.ToString("R", CultureInfo.InvariantCulture);
            csv.Append(string.Create(CultureInfo.InvariantCulture,
                $"{rank?.ToString(CultureInfo.InvariantCulture) ?? ""},{CsvText.Field(image.Image)},{score}{string.Concat(image.Details.Select(d => "," + d.ToString(CultureInfo.InvariantCulture)))}\r\n"));
        }
        var csvPath = Path.Combine(outDir, CsvName);
        AtomicFile.WriteText(csvPath, csv.ToString());

        var json = new Dictionary<string, object?>
        {
            ["score"] = scoreName,
            ["ranked"] = Ranked.Count,
            ["undefined"] = Undefined.Count,
            ["topk"] = TopK,
            [BestFolder] = Best.Select(i => i.Image).ToList(),
            [WorstFolder] = Worst.Select(i => i.Image).ToList(),
            ["images"] = rows.Select(row =>
            {
                var entry = new Dictionary<string, object?> { ["rank"] = row.Rank, ["image"] = row.Image.Image, [scoreName] = row.Image.Score };
                for (int d = 0; d < detailNames.Count; d++) entry[detailNames[d]] = row.Image.Details[d];
                return entry;
            }).ToList(),
        };
        var jsonPath = Path.Combine(outDir, JsonName);
        AtomicFile.WriteText(jsonPath, JsonSerializer.Serialize(json, MetricJson.Indented));
        return (csvPath, jsonPath);
    }
}
