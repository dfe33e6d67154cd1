using System.Globalization;
using NUnit.Framework;
using Vim.Core.Checkpoints;
using Vim.Tools;
using Vim.Tools.Commands;
using static TorchSharp.torch;

namespace Vim.Tests.Core;

[NonParallelizable] // redirects Console
public class CheckpointInspectTests
{
    [TestCase("vim_like.pth")]
    [TestCase("protocol4.pth")]
    public void InspectLinesMatchWhatTheFixtureScriptComputed(string file)
    {
        using var checkpoint = CheckpointFile.Load(CheckpointTestData.PathOf(file));
        Assert.That(CheckpointCommand.InspectLines(checkpoint), Is.EqualTo(CheckpointTestData.ExpectedInspect(file)));
    }

    [Test]
    public void FormatUsesTabsPyTorchDTypeNamesAndAFloat64Sum()
    {
        using var scope = NewDisposeScope();
        // 2^24 + 1 is not representable in float32: the sum must be taken in float64.
        var t = tensor(new[] { 16777216, 1 }).reshape(1, 2);
        Assert.That(CheckpointCommand.FormatInspectLine("a.b", t), Is.EqualTo("a.b\tint32\t[1, 2]\t16777217.000000"));
        Assert.That(CheckpointCommand.FormatInspectLine("s", tensor(-0.125, ScalarType.BFloat16)), Is.EqualTo("s\tbfloat16\t[]\t-0.125000"));
    }

    [Test]
    public void TheSumOfAViewRepeatingItsStorageIsTakenWithoutCopyingItOut()
    {
        using var scope = NewDisposeScope();
        var storage = arange(1, 13, dtype: ScalarType.Float32);
        // Strides 0 and overlapping windows together: 3*2*4*2 = 48 elements over a span of 1 + 2*3 + 3 + 1 = 11.
        var view = storage.as_strided([3, 2, 4, 2], [3, 0, 1, 1], 1);
        var expected = view.contiguous().to_type(ScalarType.Float64).sum().item<double>();
        Assert.That(CheckpointCommand.FormatInspectLine("v", view), Is.EqualTo($"v\tfloat32\t[3, 2, 4, 2]\t{expected.ToString("F6", CultureInfo.InvariantCulture)}"));

        // 2^60 elements of one bfloat16: copying them out is impossible, their sum is exact.
        var huge = tensor(-0.75f).to_type(ScalarType.BFloat16).reshape(1).as_strided([1L << 30, 1L << 30], [0, 0], 0);
        Assert.That(CheckpointCommand.FormatInspectLine("h", huge), Is.EqualTo($"h\tbfloat16\t[{1L << 30}, {1L << 30}]\t{(-0.75 * Math.Pow(2, 60)).ToString("F6", CultureInfo.InvariantCulture)}"));
    }

    private static (int Code, string Out, string Err) RunCli(params string[] args)
    {
        var (stdout, stderr) = (Console.Out, Console.Error);
        using var o = new StringWriter();
        using var e = new StringWriter();
        Console.SetOut(o);
        Console.SetError(e);
        try
        {
            var code = VimCli.Run(args);
            return (code, o.ToString(), e.ToString());
        }
        finally
        {
            Console.SetOut(stdout);
            Console.SetError(stderr);
        }
    }

    [Test]
    public void CliInspectPrintsTheLinesAndReportsBadFiles()
    {
        var (code, output, _) = RunCli("checkpoint", "inspect", CheckpointTestData.PathOf("vim_like.pth"));
        Assert.That(code, Is.EqualTo(0));
        Assert.That(output.ReplaceLineEndings("\n").TrimEnd('\n').Split('\n'), Is.EqualTo(CheckpointTestData.ExpectedInspect("vim_like.pth")));

        var (badCode, _, error) = RunCli("checkpoint", "inspect", CheckpointTestData.PathOf("bad_short_storage.pth"));
        Assert.That(badCode, Is.Not.EqualTo(0));
        Assert.That(error, Does.Contain("storage 'vim_like/data/1' holds 40 bytes, tensor 'model.pos_embed' needs 48"));
    }

    [Test]
    public void CliConvertWritesTheSelectedSubDictToSafeTensors()
    {
        var dir = CheckpointTestData.NewTempDirectory();
        try
        {
            var output = Path.Combine(dir, "ema.safetensors");
            var (code, _, error) = RunCli("checkpoint", "convert", CheckpointTestData.PathOf("vim_like.pth"), output, "--key", "model_ema");
            Assert.That(code, Is.EqualTo(0), error);
            using var converted = CheckpointFile.Load(output);
            Assert.That(converted.Metadata["key"], Is.EqualTo("model_ema"));
            var expected = CheckpointTestData.Expected("vim_like.pth").Where(t => t.Name.StartsWith("model_ema.")).ToList();
            Assert.That(converted.Tensors.Select(t => t.Key), Is.EqualTo(expected.Select(t => t.Name["model_ema.".Length..])));
            foreach (var (e, (_, t)) in expected.Zip(converted.Tensors))
                Assert.That(t.to_type(ScalarType.Float64).flatten().data<double>().ToArray(), Is.EqualTo(e.Values));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
