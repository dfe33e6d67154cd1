using NUnit.Framework;
using TorchSharp;
using Vim.Core.Models;
using static TorchSharp.torch;

namespace Vim.Tests.Core;

public class ModelEmbeddingTests
{
    [TestCase(196, 98)]
    [TestCase(729, 364)]
    [TestCase(4, 2)]
    [TestCase(9, 4)]
    [TestCase(1, 0)]
    public void MiddleClassIndexIsHalfThePatchCount(int patches, int expected) =>
        Assert.That(PositionEmbeddingResizer.ClassIndex(ClassTokenPosition.Middle, patches), Is.EqualTo(expected));

    [Test]
    public void ModelInsertsTheClassTokenBetweenTheTwoHalvesOfThePatches()
    {
        // 48×32 input, patch 16 → 3×2 grid, M = 6 patches, class token at index 3:
        // sequence = [p0, p1, p2, CLS, p3, p4, p5]. Patch tokens are made equal to their row-major
        // index by a hand-set conv; pos_embed is zero; the class token is −1.
        using var scope = NewDisposeScope();
        using var model = new VisionMamba(ModelTestConfigs.TinyVim with { EmbedDim = 4, ImageSize = 32, Depth = 1 });
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        using (no_grad())
        {
            parameters["patch_embed.proj.weight"].zero_();
            parameters["patch_embed.proj.weight"][.., 0, 0, 0].fill_(1);   // token = top-left pixel of channel 0
            parameters["patch_embed.proj.bias"].zero_();
            parameters["pos_embed"].zero_();
            parameters["cls_token"].fill_(-1);
        }
        var image = zeros(1, 3, 48, 32);
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 2; c++)
                image[0, 0, r * 16, c * 16] = tensor(r * 2 + c);
        Assert.That(model.ClassIndexFor(48, 32), Is.EqualTo(3));
        var tokens = model.EmbedTokens(image).select(2, 0).flatten().data<float>().ToArray();
        Assert.That(tokens, Is.EqualTo(new float[] { 0, 1, 2, -1, 3, 4, 5 }));
    }

    [Test]
    public void PositionEmbeddingIsAddedAfterInsertion()
    {
        using var scope = NewDisposeScope();
        using var model = new VisionMamba(ModelTestConfigs.TinyVim with { EmbedDim = 4, Depth = 1 });
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);
        using (no_grad())
        {
            parameters["patch_embed.proj.weight"].zero_();
            parameters["patch_embed.proj.bias"].zero_();
            parameters["cls_token"].fill_(100);
            parameters["pos_embed"].copy_(arange(5, dtype: ScalarType.Float32).reshape(1, 5, 1).expand(1, 5, 4));
        }
        // 2×2 grid, class at index 2: slot 2 of pos_embed belongs to the class token.
        var tokens = model.EmbedTokens(zeros(1, 3, 32, 32)).select(2, 0).flatten().data<float>().ToArray();
        Assert.That(tokens, Is.EqualTo(new float[] { 0, 1, 102, 3, 4 }));
    }

    [Test]
    public void ResizeToTheSameGridIsTheIdentity()
    {
        using var scope = NewDisposeScope();
        var pos = randn(1, 197, 8);
        foreach (var rule in new[] { PosEmbedResizeRule.ClassSlotAware, PosEmbedResizeRule.OfficialFirstSlot })
        {
            var same = PositionEmbeddingResizer.Resize(pos, (14, 14), (14, 14), ClassTokenPosition.Middle, rule);
            Assert.That((same - pos).abs().max().item<float>(), Is.LessThan(1e-5f), rule.ToString());
        }
    }

    [Test]
    public void ClassSlotAwareResizeMovesTheClassEmbeddingToTheNewMiddleUnchanged()
    {
        // Patches hold a constant (bicubic keeps constants), the class slot a distinct vector.
        using var scope = NewDisposeScope();
        var pos = full(new long[] { 1, 197, 3 }, 0.25f);
        pos[0, 98] = tensor(new float[] { 7, -3, 5 });
        var resized = PositionEmbeddingResizer.Resize(pos, (14, 14), (27, 27), ClassTokenPosition.Middle);
        Assert.That(resized.shape, Is.EqualTo(new long[] { 1, 730, 3 }));
        Assert.That(resized[0, 364].data<float>().ToArray(), Is.EqualTo(new float[] { 7, -3, 5 }));
        var patches = PositionEmbeddingResizer.RemoveAt(resized, 364);
        Assert.That((patches - 0.25f).abs().max().item<float>(), Is.LessThan(1e-6f), "the class vector leaked into the patch grid");

        // Non-square targets: class at (rows·cols)/2.
        var wide = PositionEmbeddingResizer.Resize(pos, (14, 14), (10, 21), ClassTokenPosition.Middle);
        Assert.That(wide.shape[1], Is.EqualTo(211));
        Assert.That(wide[0, 105].data<float>().ToArray(), Is.EqualTo(new float[] { 7, -3, 5 }));
    }

    [Test]
    public void OfficialRuleKeepsSlotZeroAndInterpolatesTheRealClassSlot()
    {
        using var scope = NewDisposeScope();
        var pos = full(new long[] { 1, 197, 1 }, 0.25f);
        pos[0, 0] = tensor(new float[] { 9 });       // patch 0, which the official code mistakes for the class slot
        pos[0, 98] = tensor(new float[] { 7 });      // the real class slot
        var resized = PositionEmbeddingResizer.Resize(pos, (14, 14), (27, 27), ClassTokenPosition.Middle, PosEmbedResizeRule.OfficialFirstSlot);
        Assert.That(resized.shape, Is.EqualTo(new long[] { 1, 730, 1 }));
        Assert.That(resized[0, 0].item<float>(), Is.EqualTo(9f));
        // The class value was smeared into the grid and the new middle slot is just an interpolated patch.
        Assert.That(resized.max().item<float>(), Is.GreaterThan(1f));
        Assert.That(resized[0, 364].item<float>(), Is.Not.EqualTo(7f));
    }

    [Test]
    public void ModelAcceptsOtherInputSizesThroughTheResizedEmbedding()
    {
        using var scope = NewDisposeScope();
        using var model = new VisionMamba(ModelTestConfigs.TinyVim with { Depth = 1 });
        model.eval();
        var logits = model.forward(randn(2, 3, 48, 64));
        Assert.That(logits.shape, Is.EqualTo(new long[] { 2, 5 }));
        var error = Assert.Throws<Vim.Core.VimException>(() => model.forward(randn(1, 3, 40, 32)));
        Assert.That(error!.Message, Does.Contain("height 40"));
    }

    [Test]
    public void RopeRotationPreservesPairNorms()
    {
        using var scope = NewDisposeScope();
        using var rope = new VisionRotaryEmbedding(16, 3, 5);
        var x = randn(2, 15, 16);
        var y = rope.forward(x);
        var pairNorm = (Tensor t) => t.reshape(2, 15, 8, 2).square().sum(-1);
        Assert.That((pairNorm(y) - pairNorm(x)).abs().max().item<float>(), Is.LessThan(1e-5f));
        Assert.That((y - x).abs().max().item<float>(), Is.GreaterThan(0.1f));
    }

    [Test]
    public void RopeMatchesAHandComputedTwoByTwoCase()
    {
        // D = 4 → one frequency (1); positions per axis t = i·14/2 = {0, 7}. Token (r, c) rotates the
        // first pair by 7r and the second by 7c.
        using var scope = NewDisposeScope();
        using var rope = new VisionRotaryEmbedding(4, 2, 2, pretrainGrid: 14);
        var x = tensor(new float[] { 1, 2, 3, 4 }).expand(1, 4, 4).contiguous();
        var y = rope.forward(x);
        float[] Rotate(double angle, float a, float b) =>
            new[] { (float)(a * Math.Cos(angle) - b * Math.Sin(angle)), (float)(b * Math.Cos(angle) + a * Math.Sin(angle)) };
        for (int r = 0; r < 2; r++)
            for (int c = 0; c < 2; c++)
            {
                var expected = Rotate(7 * r, 1, 2).Concat(Rotate(7 * c, 3, 4)).ToArray();
                var actual = y[0, r * 2 + c].data<float>().ToArray();
                for (int i = 0; i < 4; i++) Assert.That(actual[i], Is.EqualTo(expected[i]).Within(1e-5), $"token ({r},{c}) element {i}");
            }
        Assert.That(VisionRotaryEmbedding.RotateHalf(tensor(new float[] { 1, 2, 3, 4 })).data<float>().ToArray(),
            Is.EqualTo(new float[] { -2, 1, -4, 3 }));
    }

    /// <summary>
    /// bf16 tokens (an autocast forward) are rotated by the float32 tables in float32, as the official module's float32
    /// buffers promote them: the rope-residual stream must not be rounded to bf16. The same hand case as above.
    /// </summary>
    [Test]
    public void HalfPrecisionTokensAreRotatedInFloat32()
    {
        using var scope = NewDisposeScope();
        using var rope = new VisionRotaryEmbedding(4, 2, 2, pretrainGrid: 14);
        var x = tensor(new float[] { 1, 2, 3, 4 }).expand(1, 4, 4).contiguous();
        var half = rope.forward(x.to_type(ScalarType.BFloat16));
        Assert.That(half.dtype, Is.EqualTo(ScalarType.Float32));
        // 1, 2, 3, 4 are exact in bf16, so the result is the float32 rotation itself (sin 7 ≈ 0.65699 has no bf16 form).
        Assert.That(half.allclose(rope.forward(x), rtol: 0, atol: 0), Is.True);
    }
}
