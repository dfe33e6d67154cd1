using System.Text.Json;
using NUnit.Framework;
using Vim.Core.Diagnostics;
using Vim.Core.Models;
using Vim.Tests.Data;
using Vim.Tools;
using Vim.Tools.Commands;
using static TorchSharp.torch;

namespace Vim.Tests.Core;

/// <summary>
/// `vim model flops`: the JSON it writes, whole detectors and segmentors built from configs (the RoI heads counting the
/// proposals they were given, validation images averaged), and its refusals of bad targets and options.
/// </summary>
public class ModelFlopsCommandTests
{
    private DataTestFiles _files = null!;

    [SetUp]
    public void SetUp() => _files = new DataTestFiles();

    [TearDown]
    public void TearDown() => _files.Dispose();

    private static string DemoConfig(string relative) => Path.Combine(RepositoryPaths.Root, "configs", relative);

    [Test]
    public void JsonHoldsTheRowsDownToTheDepthAndTheTotals()
    {
        var json = _files.PathOf("out", "deit.json");
        Assert.That(VimCli.Run(["model", "flops", "deit_tiny", "--depth", "1", "--json-out", json]), Is.Zero);

        using var document = JsonDocument.Parse(File.ReadAllText(json));
        var root = document.RootElement;
        using (NewDisposeScope())
        {
            using var model = ModelRegistry.Create("deit_tiny");
            Assert.That(root.GetProperty("parameters").GetInt64(), Is.EqualTo(StateDictOrder.ParameterCount(model)));
        }
        var modules = root.GetProperty("modules").EnumerateArray().ToList();
        Assert.That(modules.Select(m => m.GetProperty("path").GetString()), Is.EqualTo(new[] { "", "patch_embed", "blocks", "norm", "head" }));
        Assert.That(modules.Sum(m => m.GetProperty("depth").GetInt32() == 1 ? m.GetProperty("flops").GetDouble() : 0),
            Is.EqualTo(root.GetProperty("flops").GetDouble()), "the children's FLOPs add up to the model's");
        Assert.That(modules[0].GetProperty("share").GetDouble(), Is.EqualTo(1.0));
        Assert.That(root.GetProperty("by_operator").EnumerateObject().Sum(p => p.Value.GetDouble()), Is.EqualTo(root.GetProperty("flops").GetDouble()));
        Assert.That(Directory.GetFiles(_files.PathOf("out")), Is.EqualTo(new[] { json }), "written through a temporary file, renamed");
    }

    // The demo detectors' box head per RoI (256 channels pooled 7×7; convs [64, 64] 3×3 with a channels-first LayerNorm
    // each, then one 256-wide FC), written out: conv 49·64·256·9, LN 5·64·49, conv 49·64·64·9, LN 5·64·49, fc 64·49·256.
    private const long DemoBoxHeadFlopsPerRoi = 49L * 64 * 256 * 9 + 5 * 64 * 49 + 49L * 64 * 64 * 9 + 5 * 64 * 49 + 64L * 49 * 256;

    [Test]
    public void DetectorRoiHeadsCountTheProposalsTheyProcess()
    {
        const long perRoi = DemoBoxHeadFlopsPerRoi;
        foreach (var cap in new[] { 200, 20 })
        {
            var complexity = ModelFlopsCommand.Count(new ModelFlopsCommand.Request(DemoConfig("det/cascade_mask_rcnn_vim_tiny_demo_coco.yaml"),
                Overrides: [$"model.det_head.rpn_post_nms_topk_test={cap}"]));
            double stage0 = complexity.Modules.Single(m => m.Path == "roi_heads.box_head.0").Flops;
            double rois = stage0 / perRoi;
            Assert.That(rois, Is.EqualTo(Math.Round(rois)).And.GreaterThan(0).And.LessThanOrEqualTo(cap),
                $"RPN kept at most {cap} proposals per image; the box head ran on a whole number of them");
            foreach (var stage in new[] { "roi_heads.box_head.1", "roi_heads.box_head.2" })
                Assert.That(complexity.Modules.Single(m => m.Path == stage).Flops, Is.EqualTo(stage0), $"{stage}: inference refines the same boxes");
            Assert.That(complexity.NotRun, Is.Empty);
            Assert.That(complexity.ByOperator.Keys, Does.Contain("roi_align").And.Contain("selective_scan"));
            if (cap == 20) Assert.That(rois, Is.EqualTo(20), "an untrained RPN on noise keeps as many proposals as it may");
        }
    }

    /// <summary>
    /// The Mask R-CNN demo config: one box stage (box_head.0 alone), whose predictor costs per RoI 256·(K + 1) for the
    /// classes and 256·4K for class-specific deltas (K = 5: 256 · 26), where the cascade's costs 256 · (6 + 4).
    /// </summary>
    [Test]
    public void MaskRcnnCountsItsOneStageAndItsClassSpecificDeltas()
    {
        var complexity = ModelFlopsCommand.Count(new ModelFlopsCommand.Request(DemoConfig("det/mask_rcnn_vim_tiny_demo_coco.yaml")));
        double rois = complexity.Modules.Single(m => m.Path == "roi_heads.box_head.0").Flops / DemoBoxHeadFlopsPerRoi;
        Assert.That(rois, Is.EqualTo(Math.Round(rois)).And.GreaterThan(0));
        Assert.That(complexity.Modules.Select(m => m.Path), Has.None.StartsWith("roi_heads.box_head.1"));
        Assert.That(complexity.Modules.Single(m => m.Path == "roi_heads.box_predictor.0").Flops, Is.EqualTo(rois * 256 * (6 + 4 * 5)));
        Assert.That(complexity.NotRun, Is.Empty);
    }

    [Test]
    public void SegmentorOverValidationImagesIsTheMeanOfItsTestInputs()
    {
        // Two validation images already inside data.scale (64×32 and 64×64, not resized in whole mode): the mean per image
        // must equal the mean of the two inputs counted one at a time by --size.
        foreach (var (name, height, width) in new[] { ("tall", 64, 32), ("square", 64, 64) })
        {
            _files.WriteRgb(Path.Combine("ade", "images", "validation", name + ".jpg"), height, width, (y, x) => ((byte)x, (byte)y, 90));
            _files.WriteGray(Path.Combine("ade", "annotations", "validation", name + ".png"), height, width, (_, _) => 1);
        }
        _files.WriteRgb(Path.Combine("ade", "images", "training", "t.jpg"), 32, 32, (_, _) => (1, 2, 3));
        _files.WriteGray(Path.Combine("ade", "annotations", "training", "t.png"), 32, 32, (_, _) => 1);
        _files.WriteText(Path.Combine("ade", "class_names.txt"), "ground\nthing\n");
        var config = _files.WriteText("seg.yaml", $"""
            task: segmentation
            data:
              type: ade20k
              root: {_files.PathOf("ade")}
              scale: [64, 64]
              crop_size: [64, 64]
              batch_size: 1
              num_workers: 0
            model:
              num_classes: 2
              backbone:
                name: vimseg_tiny
                img_size: 64
              seg_head:
                channels: 16
                auxiliary_channels: 8
              seg_test:
                mode: whole
            """);
        var averaged = ModelFlopsCommand.Count(new ModelFlopsCommand.Request(config, Images: 2));
        var tall = ModelFlopsCommand.Count(new ModelFlopsCommand.Request(config, Size: (64, 32)));
        var square = ModelFlopsCommand.Count(new ModelFlopsCommand.Request(config, Size: (64, 64)));
        Assert.That(averaged.Forwards, Is.EqualTo(2));
        Assert.That(tall.Flops, Is.LessThan(square.Flops));
        Assert.That(averaged.Flops, Is.EqualTo((tall.Flops + square.Flops) / 2));
        Assert.That(averaged.NotRun, Is.EqualTo(new[] { "backbone.net.norm_f", "auxiliary_head" }), "training-only and unused modules are named");

        Assert.That(Refusal(["model", "flops", config, "--images", "3"]), Does.Contain("--images 3").And.Contain("only 2 images"));
        Assert.That(Refusal(["model", "flops", config, "--images", "0"]), Does.Contain("--images"));
        Assert.That(Refusal(["model", "flops", config, "--images", "1", "--size", "64"]), Does.Contain("--size").And.Contain("--images"));
    }

    private static string Refusal(string[] args)
    {
        var error = new StringWriter();
        Assert.That(VimCli.Run(args, error), Is.EqualTo(1), string.Join(' ', args));
        return error.ToString();
    }

    [Test]
    public void BadTargetsAndOptionsAreRefusedByName()
    {
        Assert.That(Refusal(["model", "flops", "vim_tinny"]), Does.Contain("TARGET 'vim_tinny'").And.Contain("vim_tiny"));
        Assert.That(Refusal(["model", "flops", _files.PathOf("missing.yaml")]), Does.Contain("missing.yaml").And.Contain("not found"));
        foreach (var size in new[] { "0", "abc", "224,224,3", "-5", "100000" })
            Assert.That(Refusal(["model", "flops", "deit_tiny", "--size", size]), Does.Contain("--size"), size);
        Assert.That(Refusal(["model", "flops", "deit_tiny", "--size", "100"]), Does.Contain("--size 100,100").And.Contain("does not tile"),
            "DeiT's 16-pixel patches do not tile 100");
        Assert.That(Refusal(["model", "flops", "deit_tiny", "--depth", "-1"]), Does.Contain("--depth"));
        Assert.That(Refusal(["model", "flops", "deit_tiny", "--images", "2"]), Does.Contain("--images").And.Contain("config TARGET"));
        Assert.That(Refusal(["model", "flops", "deit_tiny", "--set", "data.batch_size=2"]), Does.Contain("--set"));
    }

    [Test]
    public void SizeOptionTakesOneOrTwoSides()
    {
        Assert.That(ModelFlopsCommand.ParseSize("224"), Is.EqualTo((224, 224)));
        Assert.That(ModelFlopsCommand.ParseSize("512,1024"), Is.EqualTo((512, 1024)));
        Assert.That(ModelFlopsCommand.ParseSize(null), Is.Null);
        // DeiT-Ti's MLP (192 → 768 → 192) on every token: 16·16 patches + the class token at 256², 16·32 + 1 at 256×512.
        var square = ModelFlopsCommand.Count(new ModelFlopsCommand.Request("deit_tiny", Size: (256, 256)));
        var wide = ModelFlopsCommand.Count(new ModelFlopsCommand.Request("deit_tiny", Size: (256, 512)));
        Assert.That(wide.Input, Does.Contain("256×512"));
        Assert.That(square.Modules.Single(m => m.Path == "blocks.0.mlp").Flops, Is.EqualTo(257.0 * 2 * 192 * 768));
        Assert.That(wide.Modules.Single(m => m.Path == "blocks.0.mlp").Flops, Is.EqualTo(513.0 * 2 * 192 * 768));
    }
}
