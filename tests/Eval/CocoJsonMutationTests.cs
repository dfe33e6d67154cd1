using System.Text;
using NUnit.Framework;
using Vim.Core;
using Vim.Data.Coco;
using Vim.Data.Evaluation;
using Vim.Data.Masks;

namespace Vim.Tests.Eval;

/// <summary>
/// Damaged COCO json, made by mutating a good instances file and a good results file at random (fixed seeds): each
/// must either read (and then evaluate and go through the error analysis, for boxes and masks) or be refused with a <see cref="VimException"/>; a read
/// error must name the file. Any other exception is a reader or evaluator bug that would reach the user as a stack
/// trace.
/// </summary>
public class CocoJsonMutationTests
{
    private const int MutationsPerCase = 1500;

    /// <summary>A column-major RLE of a <paramref name="height"/>x<paramref name="width"/> rectangle [x0, x1) x [y0, y1).</summary>
    private static uint[] RectangleRle(int height, int width, int x0, int x1, int y0, int y1)
    {
        var counts = new List<uint> { (uint)(x0 * height + y0) };
        for (var x = x0; x < x1; x++)
        {
            counts.Add((uint)(y1 - y0));
            counts.Add((uint)(x == x1 - 1 ? (width - x1) * height + height - y1 : height - (y1 - y0)));
        }
        return [.. counts];
    }

    private static readonly string GroundTruth = $$$"""
        {"info": {"year": 2017, "description": "mutation base"}, "licenses": [],
         "images": [{"id": 1, "width": 40, "height": 30, "file_name": "a.jpg"},
                    {"id": 2, "width": 20, "height": 20, "file_name": "b.jpg"}],
         "annotations": [
           {"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 3, 10, 8], "area": 80, "iscrowd": 0,
            "segmentation": [[2, 3, 12, 3, 12, 11, 2, 11]]},
           {"id": 2, "image_id": 1, "category_id": 2, "bbox": [20, 5, 6, 6], "area": 36, "iscrowd": 1,
            "segmentation": {"size": [30, 40], "counts": [{{{string.Join(", ", RectangleRle(30, 40, 20, 26, 5, 11))}}}]}},
           {"id": 3, "image_id": 2, "category_id": 1, "bbox": [4, 4, 8, 8], "area": 64, "iscrowd": 0,
            "segmentation": {"size": [20, 20], "counts": "{{{RleStringCodec.Encode(RectangleRle(20, 20, 4, 12, 4, 12))}}}"}}],
         "categories": [{"id": 1, "name": "cat", "supercategory": "animal"}, {"id": 2, "name": "dog"}]}
        """;

    private static readonly string Results = $$$"""
        [{"image_id": 1, "category_id": 1, "bbox": [2, 3, 10, 9], "score": 0.9,
          "segmentation": {"size": [30, 40], "counts": "{{{RleStringCodec.Encode(RectangleRle(30, 40, 2, 12, 3, 12))}}}"}},
         {"image_id": 1, "category_id": 2, "bbox": [21, 5, 5, 6], "score": 0.8,
          "segmentation": {"size": [30, 40], "counts": "{{{RleStringCodec.Encode(RectangleRle(30, 40, 21, 26, 5, 11))}}}"}},
         {"image_id": 2, "category_id": 1, "bbox": [5, 4, 8, 8], "score": 0.35,
          "segmentation": {"size": [20, 20], "counts": "{{{RleStringCodec.Encode(RectangleRle(20, 20, 5, 13, 4, 12))}}}"}}]
        """;

    private static string? Misbehaviour(Func<CocoDataset> readGroundTruth, Func<List<CocoDetection>> readResults, string file)
    {
        CocoDataset gt;
        List<CocoDetection> dt;
        try
        {
            gt = readGroundTruth();
            dt = readResults();
        }
        catch (VimException e) when (e.Message.Contains(file, StringComparison.Ordinal))
        {
            return null;
        }
        catch (Exception e)
        {
            return $"reading: {e.GetType().Name}: {e.Message.Split('\n')[0]}";
        }
        foreach (var iouType in new[] { CocoIouType.Bbox, CocoIouType.Segm })
        {
            try
            {
                var summary = new CocoEvaluator(gt, dt, iouType).Run();
                if (summary.Stats.Any(double.IsNaN))
                    return $"{iouType}: a NaN statistic";
                // The error analysis reads what the evaluator accepted: it must run too, and its C50 and C75 are AP50 and AP75.
                var analysis = CocoErrorAnalysis.Run(gt, dt, iouType);
                double c50 = analysis.OverallAp(CocoErrorStage.C50, 0), c75 = analysis.OverallAp(CocoErrorStage.C75, 0);
                if (!(Math.Abs(c50 - summary.Stats[1]) < 1e-12 && Math.Abs(c75 - summary.Stats[2]) < 1e-12))
                    return $"{iouType} error analysis: C50 {c50}, C75 {c75} against AP50 {summary.Stats[1]}, AP75 {summary.Stats[2]}";
            }
            catch (VimException)
            {
            }
            catch (Exception e)
            {
                return $"{iouType} evaluation: {e.GetType().Name}: {e.Message.Split('\n')[0]}";
            }
        }
        return null;
    }

    private static void AssertAllHandledCleanly(Func<int, string?> tryMutation)
    {
        var bad = new List<string>();
        for (var i = 0; i < MutationsPerCase; i++)
            if (tryMutation(i) is { } problem)
                bad.Add($"mutation {i}: {problem}");
        RandomDamage.AssertNoneEscaped(bad);
    }

    [Test]
    public void TheUndamagedFilesEvaluate()
    {
        var gt = CocoDataset.Read(new MemoryStream(Encoding.UTF8.GetBytes(GroundTruth)), "gt.json");
        var dt = CocoResults.Read(new MemoryStream(Encoding.UTF8.GetBytes(Results)), "dt.json");
        Assert.That(gt.Annotations, Has.Count.EqualTo(3));
        Assert.That(dt, Has.Count.EqualTo(3));
        // Every non-crowd object is found with IoU >= 0.5: the cat boxes overlap 80/90 and 56/72 (both images).
        Assert.That(new CocoEvaluator(gt, dt, CocoIouType.Bbox).Run().Stats[1], Is.EqualTo(1.0).Within(1e-12));
        Assert.That(new CocoEvaluator(gt, dt, CocoIouType.Segm).Run().Stats[1], Is.EqualTo(1.0).Within(1e-12));
    }

    [Test]
    public void DamagedInstancesFileIsReadOrRefused()
    {
        var good = Encoding.UTF8.GetBytes(GroundTruth);
        var random = new Random(41);
        AssertAllHandledCleanly(_ =>
        {
            var mutant = RandomDamage.Mutate(good, random, RandomDamage.JsonMeaningful, RandomDamage.JsonPlanted);
            return Misbehaviour(() => CocoDataset.Read(new MemoryStream(mutant), "instances_mutant.json"),
                () => CocoResults.Read(new MemoryStream(Encoding.UTF8.GetBytes(Results)), "results.json"), "instances_mutant.json");
        });
    }

    /// <summary>
    /// The categories-only read (what evaluation-only uses read of a training file) of damaged instances files, with the
    /// categories last (as COCO writes them) and first (so damage after them matters): each is read or refused naming the
    /// file; a file the full read accepts gives the full read's categories; and a file it accepts while the full read
    /// refuses it as malformed json has a string that is not UTF-8, the one damage only decoding a string finds (the
    /// categories-only read decodes no string outside the categories): both readers tokenize the whole file.
    /// </summary>
    [TestCase(false, 47)]
    [TestCase(true, 53)]
    public void DamagedInstancesFileGivesTheFullReadsCategoriesOrIsRefused(bool categoriesFirst, int seed)
    {
        var text = GroundTruth;
        if (categoriesFirst)
        {
            int at = text.IndexOf("\"categories\"", StringComparison.Ordinal);
            var categories = text[at..text.LastIndexOf('}')];
            text = "{" + categories + ", " + text[1..at].TrimEnd().TrimEnd(',') + "}";
        }
        var good = Encoding.UTF8.GetBytes(text);
        Assert.That(CocoDataset.ReadCategories(new MemoryStream(good), "instances.json"), Has.Count.EqualTo(2), "the undamaged file");
        Assert.That(CocoDataset.Read(new MemoryStream(good), "instances.json").Annotations, Has.Count.EqualTo(3), "the undamaged file, read whole");
        var random = new Random(seed);
        AssertAllHandledCleanly(_ =>
        {
            const string File = "instances_mutant.json";
            var mutant = RandomDamage.Mutate(good, random, RandomDamage.JsonMeaningful, RandomDamage.JsonPlanted);
            IReadOnlyList<CocoCategory> categories;
            try
            {
                categories = CocoDataset.ReadCategories(new MemoryStream(mutant), File);
            }
            catch (VimException e) when (e.Message.StartsWith(File + ": ", StringComparison.Ordinal))
            {
                return null;
            }
            catch (Exception e)
            {
                return $"categories: {e.GetType().Name}: {e.Message.Split('\n')[0]}";
            }
            try
            {
                var full = CocoDataset.Read(new MemoryStream(mutant), File);
                return full.Categories.SequenceEqual(categories) ? null : "categories differ from the full read's";
            }
            catch (VimException e) when (e.Message.Contains("not valid JSON", StringComparison.Ordinal) && !e.Message.Contains("UTF-8", StringComparison.Ordinal))
            {
                return $"the categories were read from a file the full read refuses as malformed: {e.Message.Split('\n')[0]}";
            }
            catch (VimException)
            {
                return null;
            }
        });
    }

    [Test]
    public void DamagedResultsFileIsReadOrRefused()
    {
        var good = Encoding.UTF8.GetBytes(Results);
        var random = new Random(43);
        AssertAllHandledCleanly(_ =>
        {
            var mutant = RandomDamage.Mutate(good, random, RandomDamage.JsonMeaningful, RandomDamage.JsonPlanted);
            return Misbehaviour(() => CocoDataset.Read(new MemoryStream(Encoding.UTF8.GetBytes(GroundTruth)), "instances.json"),
                () => CocoResults.Read(new MemoryStream(mutant), "results_mutant.json"), "results_mutant.json");
        });
    }
}
