using System.Text.Json.Nodes;
using NUnit.Framework;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Distributed;
using Vim.Data.Coco;
using Vim.Data.Demo;
using Vim.Data.Evaluation;
using Vim.Detection;
using Vim.Tools;
using Vim.Tools.Commands;
using static TorchSharp.torch;

namespace Vim.Tests.Detection;

/// <summary>
/// `vim test --proposals`: the RPN's average recall as mmdet's CocoMetric(metric='proposal') computes it (class-agnostic
/// COCOeval, maxDets 100, 300, 1000, stats 6–11), on hand-counted cases, through the detector and the task, and end to end.
/// </summary>
public class ProposalRecallTests
{
    private string _root = null!;

    [SetUp]
    public void SetUp() => _root = Directory.CreateTempSubdirectory("vimdense-proposals-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    private static CocoAnnotation Gt(long id, long category, double[] box) => new(id, 1, category, box, box[2] * box[3], false, null);

    /// <summary>
    /// 1000 proposals of one 1000² image, best first (scores 1 − rank/2000), all class 0's category; every rank not listed
    /// is an 8×8 box in the empty lower right, away from every object.
    /// </summary>
    private static List<CocoDetection> RankedProposals(long categoryId, IReadOnlyDictionary<int, double[]> placed)
    {
        var proposals = new List<CocoDetection>();
        for (int rank = 1; rank <= 1000; rank++)
        {
            int junk = rank - 1;
            var box = placed.TryGetValue(rank, out var at) ? at : [500 + junk % 45 * 10, 500 + junk / 45 * 10, 8, 8];
            proposals.Add(new CocoDetection(1, categoryId, 1 - rank / 2000.0, box, null));
        }
        // File order must not matter: COCOeval sorts each image's results by score.
        proposals.Reverse();
        return proposals;
    }

    /// <summary>
    /// A proposal with IoU v against an object counts at the thresholds .50, .55, … ≤ v, and only while it is among the
    /// image's best 100, 300 or 1000. Objects: small S [10,10,20,20] (area 400), medium M [100,100,50,50] (2500), large L
    /// [300,300,100,100] (10000). Proposals: rank 50, M shifted right by 10: IoU 40/60 = .667, thresholds .50–.65, 4 of 10;
    /// rank 60, L shifted by 20: 80/120 = .667, 4; rank 150, L itself: 10 (the rank-60 one takes L up to .65, this one above);
    /// rank 500, S shifted by 2: 18/22 = .818, thresholds .50–.80, 7. Hence recall summed over the ten thresholds:
    /// top 100: M 4, L 4, S 0 → AR@100 = 8/30; top 300: M 4, L 10 → AR@300 = 14/30; top 1000: + S 7 → AR@1000 = 21/30;
    /// by range at 1000: AR_s = 7/10, AR_m = 4/10, AR_l = 10/10. In percent, as metrics.json holds them.
    /// </summary>
    [Test]
    public void AverageRecallCountsEachThresholdAndOnlyTheBestProposalsOfEachMaxDets()
    {
        var groundTruth = new CocoDataset([new CocoImage(1, 1000, 1000, null)],
            [Gt(1, 1, [10, 10, 20, 20]), Gt(2, 1, [100, 100, 50, 50]), Gt(3, 1, [300, 300, 100, 100])], [new CocoCategory(1, "thing", null)]);
        var proposals = RankedProposals(1, new Dictionary<int, double[]>
        {
            [50] = [110, 100, 50, 50], [60] = [320, 300, 100, 100], [150] = [300, 300, 100, 100], [500] = [12, 10, 20, 20],
        });
        var metrics = ProposalRecall.Metrics(ProposalRecall.Evaluate(groundTruth, proposals));
        var expected = new Dictionary<string, double>
        {
            ["proposal_AR@100"] = 800.0 / 30, ["proposal_AR@300"] = 1400.0 / 30, ["proposal_AR@1000"] = 2100.0 / 30,
            ["proposal_AR_s@1000"] = 70, ["proposal_AR_m@1000"] = 40, ["proposal_AR_l@1000"] = 100,
        };
        Assert.That(metrics.Keys, Is.EquivalentTo(expected.Keys));
        foreach (var (name, value) in expected) Assert.That(metrics[name], Is.EqualTo(value).Within(1e-9), name);
    }

    /// <summary>
    /// Proposals carry class 0's category, yet match objects of any category: two objects, of categories 1 and 2, each
    /// covered exactly by a proposal of category 1 give AR 100 at every maxDets; scored by category (COCOeval's default,
    /// maxDets 100) the same results find category 2's object never (recall 0), category 1's always: AR@100 50. A range
    /// without objects is undefined (−1), as pycocotools reports it.
    /// </summary>
    [Test]
    public void AProposalMatchesAnObjectOfAnyCategory()
    {
        var groundTruth = new CocoDataset([new CocoImage(1, 1000, 1000, null)],
            [Gt(1, 1, [100, 100, 50, 50]), Gt(2, 2, [300, 300, 50, 50])], [new CocoCategory(1, "cat", null), new CocoCategory(2, "dog", null)]);
        var proposals = RankedProposals(1, new Dictionary<int, double[]> { [1] = [100, 100, 50, 50], [2] = [300, 300, 50, 50] });
        var metrics = ProposalRecall.Metrics(ProposalRecall.Evaluate(groundTruth, proposals));
        Assert.That(metrics["proposal_AR@100"], Is.EqualTo(100).Within(1e-9));
        Assert.That(metrics["proposal_AR@1000"], Is.EqualTo(100).Within(1e-9));
        Assert.That(metrics["proposal_AR_m@1000"], Is.EqualTo(100).Within(1e-9));
        Assert.That(metrics["proposal_AR_s@1000"], Is.EqualTo(-1));
        Assert.That(metrics["proposal_AR_l@1000"], Is.EqualTo(-1));
        var byCategory = new CocoEvaluator(groundTruth, proposals, CocoIouType.Bbox).Run();
        Assert.That(byCategory.Stats[8], Is.EqualTo(0.5).Within(1e-12), "AR@100 by category: the dog is never found");
    }

    /// <summary>
    /// The proposals come out of the detector's own forward, mapped to the output size as the detections are: asked for a
    /// 3× taller and 2× wider output than the valid input, each proposal is the input-size proposal with x × 2 and y × 3,
    /// the scores are the same objectness probabilities in (0, 1), best first, at most the RPN's post-NMS top-k, and the
    /// detections equal plain Predict's; for the cascade and for Mask R-CNN (one stage, class-specific boxes) alike.
    /// </summary>
    [TestCase(false)]
    [TestCase(true)]
    public void ProposalsAreScaledToTheOutputSizeLikeTheDetections(bool maskRcnn)
    {
        using var model = maskRcnn ? DetectionTaskTests.TinyDetector(MaskRcnnTests.OneStageClassSpecific) : DetectionTaskTests.TinyDetector();
        model.eval();
        using var scope = NewDisposeScope();
        var image = randn([1, 3, 64, 64], generator: new TorchSharp.torch.Generator(7));
        (long, long)[] valid = [(48, 64)];
        var (_, atInput) = model.PredictWithProposals(image, valid);
        var (detections, atOutput) = model.PredictWithProposals(image, valid, [(144, 128)]);
        var plain = model.Predict(image, valid, [(144, 128)]);

        var input = atInput[0];
        var output = atOutput[0];
        Assert.That(input.Count, Is.GreaterThan(0).And.LessThanOrEqualTo(model.ProposalsPerImage));
        Assert.That((output.ImageHeight, output.ImageWidth), Is.EqualTo((144L, 128L)));
        var expected = input.Boxes.Tensor.to_type(ScalarType.Float64) * tensor(new double[] { 2, 3, 2, 3 });
        Assert.That(output.Boxes.Tensor.to_type(ScalarType.Float64).allclose(expected, rtol: 1e-6, atol: 1e-4), Is.True);
        Assert.That(output.Boxes.Tensor[.., 3].max().item<float>(), Is.GreaterThan(48), "mapped beyond the input's valid height");
        var scores = output.Scores!.data<double>().ToArray();
        Assert.That(Same(output.Scores!, input.Scores!), Is.True);
        Assert.That(scores, Is.All.InRange(0.0, 1.0));
        Assert.That(scores, Is.Ordered.Descending);
        Assert.That(Same(detections[0].Boxes.Tensor, plain[0].Boxes.Tensor), Is.True);
        Assert.That(Same(detections[0].Scores!, plain[0].Scores!), Is.True);
    }

    private static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    /// <summary>
    /// Through the task on images the test resize shrinks (96×80 into 64²): the same detections as PredictValidation, and
    /// proposals per image as COCO results in the original image's coordinates (some reach beyond the 64 resized pixels,
    /// none beyond the image), all of class 0's category, scores in (0, 1).
    /// </summary>
    [Test]
    public void TheTaskGivesTheSameDetectionsAndProposalsInOriginalCoordinates()
    {
        DemoDatasetGenerator.Generate(new DemoOptions { Kind = DemoKind.Coco, OutputDir = Path.Combine(_root, "coco"), TrainImages = 2, ValImages = 2, Width = 96, Height = 80, Seed = 5 });
        using var task = new DetectionTask(DetectionTaskTests.ConfigAt(_root), TextWriter.Null, DetectionTaskTests.TinyDetector);
        var (detections, proposals) = task.PredictValidationWithProposals();
        static string Text(CocoDetection d) => $"{d.ImageId} {d.CategoryId} {d.Score:R} {string.Join(',', d.Bbox!.Select(v => v.ToString("R")))} {d.Segmentation?.CompressedCounts}";
        Assert.That(detections.Select(Text), Is.EqualTo(task.PredictValidation().Select(Text)));

        Assert.That(proposals.Select(p => p.ImageId).Distinct(), Is.EquivalentTo(task.ValSet.Images.Select(i => i.Id)));
        Assert.That(proposals.GroupBy(p => p.ImageId).Select(g => g.Count()), Is.All.LessThanOrEqualTo(task.ProposalsPerImage));
        Assert.That(proposals.Select(p => p.CategoryId), Is.All.EqualTo(task.Data.Categories.ToCategoryId(0)));
        Assert.That(proposals.Select(p => p.Score), Is.All.InRange(0.0, 1.0));
        Assert.That(proposals.Select(p => p.Segmentation), Is.All.Null);
        Assert.That(proposals.Select(p => p.Bbox![0] + p.Bbox[2]), Is.All.LessThanOrEqualTo(96 + 1e-3));
        Assert.That(proposals.Select(p => p.Bbox![1] + p.Bbox[3]), Is.All.LessThanOrEqualTo(80 + 1e-3));
        Assert.That(proposals.Max(p => p.Bbox![0] + p.Bbox[2]), Is.GreaterThan(64), "mapped from the 64-pixel test resize back to 96");
    }

    /// <summary>
    /// Refused by name before anything is read: --proposals with --format-only (no ground truth), with --tta and with a
    /// config whose model.det_test adds passes (each pass proposes its own boxes), and for a segmentation config.
    /// </summary>
    [Test]
    public void TheCommandRefusesProposalsWhereThereIsNoSingleProposalSetToEvaluate()
    {
        var detectionConfig = Path.Combine(RepositoryPaths.Root, "configs", "det", "cascade_mask_rcnn_vim_tiny_demo_coco.yaml");
        var segmentationConfig = Directory.GetFiles(Path.Combine(RepositoryPaths.Root, "configs", "seg"), "*.yaml").Order().First();
        var absent = Path.Combine(_root, "absent.safetensors");
        (string[] Arguments, string[] Expected)[] cases =
        [
            (["test", detectionConfig, "--checkpoint", absent, "--proposals", "--format-only"], ["error: --proposals", "--format-only", "ground truth"]),
            (["test", detectionConfig, "--checkpoint", absent, "--proposals", "--tta"], ["error: --proposals", "--tta", "without --tta"]),
            (["test", detectionConfig, "--checkpoint", absent, "--proposals", "--set", "model.det_test.scales=[1.0,0.5]"],
                ["error: --proposals", "model.det_test", "scales: [1, 0.5]", "model.det_test.scales=[1.0]"]),
            (["test", segmentationConfig, "--checkpoint", absent, "--proposals"], ["error: --proposals", segmentationConfig, "segmentation config"]),
        ];
        CliProcess.AssertRefusedBeforeCheckpoint(cases, absent);
    }

    /// <summary>
    /// `vim test --proposals` on the demo config (untrained, 3 validation images of 128² tested at 96²): proposals.json and
    /// the six proposal_AR items in metrics.json, each the class-agnostic COCOeval of proposals.json as `vim eval coco
    /// --class-agnostic --max-dets 100,300,1000` computes it (stats 6–11, in percent), the section in bbox/summary.md, the
    /// printed items and the note that the demo's 200 proposals per image bound AR@1000.
    /// </summary>
    [Test]
    public void VimTestWritesProposalsAndTheirRecallAsTheEvaluatorRecomputesIt()
    {
        DemoDatasetGenerator.Generate(new DemoOptions { Kind = DemoKind.Coco, OutputDir = Path.Combine(_root, "coco"), TrainImages = 4, ValImages = 3, Width = 128, Height = 128, Seed = 3 });
        var configPath = Path.Combine(RepositoryPaths.Root, "configs", "det", "cascade_mask_rcnn_vim_tiny_demo_coco.yaml");
        string[] overrides = [$"data.root={Path.Combine(_root, "coco")}", "data.crop_size=[96,96]", "model.backbone.img_size=96", "data.num_workers=0",
            "model.backbone.pretrained=null", "model.det_head.test_score_threshold=1.0"];
        using var stop = new CancellationTokenSource();
        stop.Cancel();
        var trained = TrainCommand.Train(ExperimentConfig.Load(configPath, overrides).Config, Path.Combine(_root, "work"), null, SingleProcessCommunicator.Instance, stop.Token);
        var outDir = Path.Combine(_root, "test");
        var (console, errors) = (new StringWriter(), new StringWriter());
        int exit = CliProcess.WithConsole(console, () => VimCli.Run(["test", configPath, "--checkpoint", trained.LastCheckpoint!, "--out", outDir, "--overlays", "0", "--proposals",
            .. overrides.SelectMany(o => new[] { "--set", o })], errors));
        Assert.That(exit, Is.EqualTo(0), errors.ToString());

        var groundTruthPath = Path.Combine(_root, "coco", "annotations", "instances_val.json");
        var groundTruth = CocoDataset.Load(groundTruthPath);
        var proposalsPath = Path.Combine(outDir, "proposals.json");
        var proposals = CocoResults.Load(proposalsPath);
        Assert.That(proposals, Is.Not.Empty);
        Assert.That(proposals.GroupBy(p => p.ImageId).Select(g => g.Count()), Is.All.LessThanOrEqualTo(200));
        Assert.That(proposals.Select(p => p.CategoryId), Is.All.EqualTo(groundTruth.Categories.Min(c => c.Id)));
        Assert.That(proposals.Select(p => p.Bbox![0] + p.Bbox[2]), Is.All.LessThanOrEqualTo(128 + 1e-3));
        Assert.That(proposals.Max(p => p.Bbox![0] + p.Bbox[2]), Is.GreaterThan(96), "in the original 128² image, not the 96² test input");

        var evalJson = Path.Combine(_root, "recomputed.json");
        Assert.That(VimCli.Run(["eval", "coco", "--gt", groundTruthPath, "--results", proposalsPath, "--iou-type", "bbox", "--class-agnostic",
            "--max-dets", "100,300,1000", "--json-out", evalJson], errors), Is.EqualTo(0), errors.ToString());
        var stats = JsonNode.Parse(File.ReadAllText(evalJson))!["stats"]!.AsArray().Select(v => v!.GetValue<double>()).ToArray();
        var metrics = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "metrics.json")))!.AsObject();
        string[] names = ["AR@100", "AR@300", "AR@1000", "AR_s@1000", "AR_m@1000", "AR_l@1000"];
        for (int i = 0; i < names.Length; i++)
        {
            double value = metrics["proposal_" + names[i]]!.GetValue<double>();
            Assert.That(value, Is.EqualTo(stats[6 + i] < 0 ? -1 : 100 * stats[6 + i]).Within(1e-9), names[i]);
            Assert.That(value, Is.EqualTo(-1).Or.InRange(0.0, 100.0), names[i]);
        }
        Assert.That(metrics["proposal_AR@1000"]!.GetValue<double>(), Is.GreaterThan(0), "some proposal finds an object: the recomputation compares numbers, not zeros");
        Assert.That(metrics.ContainsKey("bbox_mAP"), Is.True);

        var summary = File.ReadAllText(Path.Combine(outDir, "bbox", "summary.md"));
        Assert.That(summary, Does.Contain("## Proposal recall (RPN)").And.Contain("](../proposals.json)").And.Contain("| AR_l@1000 |"));
        Assert.That(console.ToString(), Does.Contain("proposal_AR@100: ").And.Contain("at most 200 proposals per image"));
    }
}
