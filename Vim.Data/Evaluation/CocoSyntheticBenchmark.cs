using System.Diagnostics;
using Vim.Data.Coco;
using Vim.Data.Masks;

namespace Vim.Data.Evaluation;

/// <summary>
/// A val2017-sized synthetic case (by default 5,000 images, 80 categories, ~7 ground truths and
/// 100 detections per image) built from a fixed seed, and the timing of each evaluation stage on it. With masks the
/// ground truth carries polygon outlines and the detections compressed RLE masks, as `vim test` writes them.
/// </summary>
public static class CocoSyntheticBenchmark
{
    public sealed record Timing(int Images, int Categories, int GroundTruths, int Detections,
        double PrepareSeconds, double EvaluateSeconds, double AccumulateSeconds, double SummarizeSeconds, double EvalCpuSeconds, double[] Stats)
    {
        /// <summary>Evaluate + Accumulate + Summarize wall-clock seconds (what the speed target is about).</summary>
        public double EvalSeconds => EvaluateSeconds + AccumulateSeconds + SummarizeSeconds;
        public double TotalSeconds => PrepareSeconds + EvalSeconds;
    }

    /// <param name="supercategories">Contiguous groups of categories sharing a supercategory (COCO: 12 for its 80); 0 for none.</param>
    /// <param name="masks">Also give every annotation a polygon outline (area: the outline's) and every detection an RLE mask
    /// of its own outline; the boxes and scores are those of the case without masks.</param>
    public static (CocoDataset GroundTruth, List<CocoDetection> Detections) Build(int images = 5000, int categories = 80,
        double meanGtPerImage = 7, int detectionsPerImage = 100, int seed = 2017, int supercategories = 0, bool masks = false)
    {
        var rng = new Random(seed);
        var cats = new List<CocoCategory>(categories);
        for (int c = 0; c < categories; c++)
            cats.Add(new CocoCategory(c + 1, $"class{c + 1}", supercategories > 0 ? $"super{(long)c * supercategories / categories + 1}" : null));
        var imgs = new List<CocoImage>(images);
        var anns = new List<CocoAnnotation>();
        var dets = new List<CocoDetection>(images * detectionsPerImage);
        const int width = 640, height = 480;
        long annId = 1;
        var gtOfImage = new List<(long Cat, double[] Box)>();
        for (int i = 0; i < images; i++)
        {
            long imageId = 100000 + 7 * i;
            imgs.Add(new CocoImage(imageId, width, height, $"{imageId:D12}.jpg"));
            gtOfImage.Clear();
            int nGt = Math.Max(0, (int)Math.Round(meanGtPerImage + (rng.NextDouble() * 2 - 1) * meanGtPerImage * 0.8));
            for (int g = 0; g < nGt; g++)
            {
                var box = RandomBox(rng, width, height);
                long cat = 1 + rng.Next(categories);
                bool crowd = rng.NextDouble() < 0.01;
                anns.Add(new CocoAnnotation(annId++, imageId, cat, box, box[2] * box[3] * (0.6 + 0.3 * rng.NextDouble()), crowd, null));
                gtOfImage.Add((cat, box));
            }
            for (int d = 0; d < detectionsPerImage; d++)
            {
                double[] box;
                long cat;
                double score;
                if (gtOfImage.Count > 0 && rng.NextDouble() < 0.3)
                {
                    // A detection near a ground truth: jittered box, usually the right class.
                    var (gCat, gBox) = gtOfImage[rng.Next(gtOfImage.Count)];
                    double j = 0.25 * rng.NextDouble();
                    box =
                    [
                        gBox[0] + (rng.NextDouble() * 2 - 1) * j * gBox[2],
                        gBox[1] + (rng.NextDouble() * 2 - 1) * j * gBox[3],
                        gBox[2] * (1 + (rng.NextDouble() * 2 - 1) * j),
                        gBox[3] * (1 + (rng.NextDouble() * 2 - 1) * j),
                    ];
                    cat = rng.NextDouble() < 0.8 ? gCat : 1 + rng.Next(categories);
                    score = 0.3 + 0.7 * rng.NextDouble();
                }
                else
                {
                    box = RandomBox(rng, width, height);
                    cat = 1 + rng.Next(categories);
                    score = 0.5 * rng.NextDouble();
                }
                dets.Add(new CocoDetection(imageId, cat, Math.Round(score, 3), box, null));
            }
        }
        if (masks) AddOutlines(anns, dets, width, height, seed);
        return (new CocoDataset(imgs, anns, cats), dets);
    }

    /// <summary>
    /// Outlines of 16 vertices on the ellipse inscribed in each box, each vertex's radius jittered by up to ±15%, from a
    /// generator of their own (so the boxes and scores stay those of the case without masks): the ground truth keeps them
    /// as polygons, with the polygon's area as COCO's area; the detections get them rasterised, as compressed RLE.
    /// </summary>
    private static void AddOutlines(List<CocoAnnotation> annotations, List<CocoDetection> detections, int width, int height, int seed)
    {
        var rng = new Random(seed + 1);
        double[] Outline(double[] box)
        {
            const int vertices = 16;
            var xy = new double[2 * vertices];
            double cx = box[0] + box[2] / 2, cy = box[1] + box[3] / 2;
            for (int v = 0; v < vertices; v++)
            {
                double angle = 2 * Math.PI * v / vertices, radius = 1 + 0.3 * (rng.NextDouble() - 0.5);
                xy[2 * v] = Math.Round(cx + radius * box[2] / 2 * Math.Cos(angle), 2);
                xy[2 * v + 1] = Math.Round(cy + radius * box[3] / 2 * Math.Sin(angle), 2);
            }
            return xy;
        }
        for (int a = 0; a < annotations.Count; a++)
        {
            var outline = Outline(annotations[a].Bbox!);
            double twiceArea = 0;
            for (int v = 0, n = outline.Length / 2; v < n; v++)
            {
                int w = (v + 1) % n;
                twiceArea += outline[2 * v] * outline[2 * w + 1] - outline[2 * w] * outline[2 * v + 1];
            }
            annotations[a] = annotations[a] with { Area = Math.Abs(twiceArea) / 2, Segmentation = CocoSegmentation.FromPolygons([outline]) };
        }
        var detectionOutlines = detections.Select(d => Outline(d.Bbox!)).ToArray();
        var rasterised = new CocoSegmentation[detections.Count];
        Parallel.For(0, detections.Count, d => rasterised[d] = CocoSegmentation.FromRle(PolygonRasterizer.FromPolygons([detectionOutlines[d]], height, width)));
        for (int d = 0; d < detections.Count; d++) detections[d] = detections[d] with { Segmentation = rasterised[d] };
    }

    private static double[] RandomBox(Random rng, int width, int height)
    {
        // Log-uniform sizes so small, medium and large objects all occur.
        double w = Math.Exp(Math.Log(4) + rng.NextDouble() * (Math.Log(400) - Math.Log(4)));
        double h = Math.Exp(Math.Log(4) + rng.NextDouble() * (Math.Log(400) - Math.Log(4)));
        w = Math.Min(w, width - 1);
        h = Math.Min(h, height - 1);
        double x = rng.NextDouble() * (width - w), y = rng.NextDouble() * (height - h);
        return [Math.Round(x, 2), Math.Round(y, 2), Math.Round(w, 2), Math.Round(h, 2)];
    }

    /// <summary>
    /// The timing of one error analysis: the case's size, the wall and process CPU seconds of the analysis, the overall AP
    /// of each stage at area "all", the masks the analysis's cache converted, and, where the plain AP ran first (as
    /// `vim test --error-analysis` runs it), its seconds, CPU seconds and numbers.
    /// </summary>
    public sealed record ErrorAnalysisTiming(int GroundTruths, int Detections, double Seconds, double CpuSeconds, double[] StageAps, int MaskConversions,
        double PlainSeconds = 0, double PlainCpuSeconds = 0, double[]? PlainStats = null);

    /// <summary>The case the error analysis is timed on: COCO's 12 supercategories, and with segm polygon outlines and RLE masks.</summary>
    public static (CocoDataset GroundTruth, List<CocoDetection> Detections) ErrorAnalysisCase(int images = 5000, int categories = 80, int seed = 2017,
        CocoIouType iouType = CocoIouType.Bbox) =>
        Build(images, categories, seed: seed, supercategories: Math.Min(12, categories), masks: iouType == CocoIouType.Segm);

    /// <summary>Times <see cref="CocoErrorAnalysis.Run"/> (every area range) on <see cref="ErrorAnalysisCase"/>.</summary>
    public static ErrorAnalysisTiming RunErrorAnalysis(int images = 5000, int categories = 80, int seed = 2017, TextWriter? progress = null,
        CocoIouType iouType = CocoIouType.Bbox)
    {
        var (gt, dets) = ErrorAnalysisCase(images, categories, seed, iouType);
        return TimeErrorAnalysis(gt, dets, iouType, progress, withPlainAp: false, shareMasks: true);
    }

    /// <summary>
    /// Times the error analysis of <paramref name="detections"/>, with <paramref name="withPlainAp"/> after the plain AP of
    /// the same detections, as `vim test --error-analysis` computes both. <paramref name="shareMasks"/>: the plain AP converts
    /// its masks into the cache the analysis then reads (what `vim test` does); false: it converts its own, as before the two
    /// shared them. Each run starts from a fresh cache after a full garbage collection.
    /// </summary>
    public static ErrorAnalysisTiming TimeErrorAnalysis(CocoDataset groundTruth, IReadOnlyList<CocoDetection> detections, CocoIouType iouType,
        TextWriter? progress, bool withPlainAp, bool shareMasks)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var masks = new CocoMaskCache();
        var process = System.Diagnostics.Process.GetCurrentProcess();
        TimeSpan Cpu()
        {
            process.Refresh();
            return process.TotalProcessorTime;
        }
        double plainSeconds = 0, plainCpu = 0;
        double[]? plainStats = null;
        var sw = Stopwatch.StartNew();
        var cpu0 = Cpu();
        if (withPlainAp)
        {
            plainStats = new CocoEvaluator(groundTruth, detections, iouType, masks: shareMasks ? masks : null).Run().Stats;
            plainSeconds = sw.Elapsed.TotalSeconds;
            plainCpu = (Cpu() - cpu0).TotalSeconds;
            sw.Restart();
            cpu0 = Cpu();
        }
        var analysis = CocoErrorAnalysis.Run(groundTruth, detections, iouType, progress: progress, masks: masks);
        double seconds = sw.Elapsed.TotalSeconds;
        double cpu = (Cpu() - cpu0).TotalSeconds;
        return new ErrorAnalysisTiming(groundTruth.Annotations.Count, detections.Count, seconds, cpu,
            CocoErrorAnalysis.Stages.Select(s => analysis.OverallAp(s, 0)).ToArray(), masks.Conversions, plainSeconds, plainCpu, plainStats);
    }

    public static Timing Run(int images = 5000, int categories = 80, int seed = 2017)
    {
        var (gt, dets) = Build(images, categories, seed: seed);
        var sw = Stopwatch.StartNew();
        var evaluator = new CocoEvaluator(gt, dets, CocoIouType.Bbox);
        double prepare = sw.Elapsed.TotalSeconds;
        sw.Restart();
        // CPU time of all threads: a measure that stays meaningful when other processes share the cores.
        var cpu0 = System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime;
        evaluator.Evaluate();
        double evaluate = sw.Elapsed.TotalSeconds;
        sw.Restart();
        var acc = evaluator.Accumulate();
        double accumulate = sw.Elapsed.TotalSeconds;
        sw.Restart();
        var summary = CocoEvaluator.Summarize(acc);
        double summarize = sw.Elapsed.TotalSeconds;
        double cpu = (System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds;
        return new Timing(images, categories, gt.Annotations.Count, dets.Count, prepare, evaluate, accumulate, summarize, cpu, summary.Stats);
    }
}
