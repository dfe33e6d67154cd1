using Vim.Core.Diagnostics;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Vim.Core.Models;

/// <summary>
/// DeiT / ViT baseline (timm VisionTransformer): patch embedding, head class token, absolute position
/// embedding (resized bicubically for other grids), pre-norm transformer blocks, final LayerNorm and a
/// linear head on the class token. State-dict names are timm's (cls_token, pos_embed,
/// patch_embed.proj, blocks.i.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}, norm, head), so
/// DeiT / timm ImageNet checkpoints load by name (<see cref="PretrainedWeights"/>).
/// Without a class token (<see cref="DeitConfig.ClassToken"/> false) the sequence holds the patches only
/// and pos_embed has no class slot (the ViTDet backbone); without a head the classifier output is the
/// class token, or the mean token when there is none.
/// </summary>
public sealed class VisionTransformer : nn.Module<Tensor, Tensor>, ITokenBackbone
{
#pragma warning disable IDE1006 // names are the checkpoint keys
    private readonly Parameter? cls_token;
    private readonly Parameter pos_embed;
    private readonly PatchEmbed patch_embed;
    private readonly ModuleList<TransformerBlock> blocks;
    private readonly LayerNorm? norm;
    private readonly Linear? head;
#pragma warning restore IDE1006

    public DeitConfig Config { get; }
    public int EmbedDim => Config.EmbedDim;
    public int TokenStride => Config.PatchSize;

    public int ImageSize => Config.ImageSize;

    /// <summary>Class slots at the head of the sequence and of pos_embed (1 with a class token, else 0).</summary>
    public int ClassSlots => Config.ClassToken ? 1 : 0;

    public VisionTransformer(DeitConfig config, long seed = 0) : base(nameof(VisionTransformer))
    {
        config.Validate();
        Config = config;
        int grid = config.GridSize;
        if (config.ClassToken) cls_token = new Parameter(zeros(1, 1, config.EmbedDim));
        pos_embed = new Parameter(zeros(1, grid * grid + ClassSlots, config.EmbedDim));
        patch_embed = new PatchEmbed(config.InChannels, config.EmbedDim, config.PatchSize, config.PatchSize);
        var rates = DropPath.Linspace(config.DropPathRate, config.Depth);
        blocks = nn.ModuleList(Enumerable.Range(0, config.Depth)
            .Select(i => new TransformerBlock(config.EmbedDim, config.Heads, config.MlpRatio, config.NormEps, rates[i], config.Attention,
                config.WindowSize > 0 && !config.GlobalBlocks.Contains(i) ? config.WindowSize : 0))
            .ToArray());
        if (config.FinalNorm) norm = nn.LayerNorm(config.EmbedDim, config.NormEps);
        if (config.NumClasses > 0) head = nn.Linear(config.EmbedDim, config.NumClasses);
        RegisterComponents();
        ResetParameters(seed);
    }

    /// <summary>Switches every block between SDPA and explicit attention.</summary>
    public AttentionKind Attention
    {
        set { foreach (var block in blocks) block.Attention.Kind = value; }
    }

    /// <summary>timm init: trunc_normal(.02) for tokens, embeddings and Linear weights, zero Linear biases, LayerNorm 1/0, default conv.</summary>
    public void ResetParameters(long seed)
    {
        var generator = new Generator((ulong)seed);
        using var noGrad = no_grad();
        if (cls_token is not null) WeightInit.TruncatedNormal(cls_token, 0.02, generator);
        WeightInit.TruncatedNormal(pos_embed, 0.02, generator);
        WeightInit.KaimingUniformSqrt5(patch_embed.Projection.weight!, generator);
        WeightInit.DefaultBias(patch_embed.Projection.bias!, patch_embed.Projection.weight!, generator);
        var linears = blocks.SelectMany(b => b.Linears).ToList();
        if (head is not null) linears.Add(head);
        foreach (var linear in linears)
        {
            WeightInit.TruncatedNormal(linear.weight!, 0.02, generator);
            linear.bias!.zero_();
        }
    }

    public override Tensor forward(Tensor images)
    {
        using var scope = NewDisposeScope();
        var tokens = ForwardTokens(images);
        var pooled = cls_token is null ? tokens.mean(new long[] { 1 }) : tokens.select(1, 0);
        return (head is null ? pooled : head.call(pooled)).MoveToOuterDisposeScope();
    }

    /// <summary>norm(blocks(tokens)) as (B, slots + rows·cols, D), class token (if any) first; no norm when the model has none.</summary>
    public Tensor ForwardTokens(Tensor images)
    {
        using var scope = NewDisposeScope();
        // Entry points other than forward open the model's FLOP scope themselves (the pyramids call them).
        using var counted = FlopCounter.Within(this);
        var (x, rows, cols) = Embed(images);
        foreach (var block in blocks)
        {
            var next = RunBlock(block, x, rows, cols);
            x.Dispose();   // keep inference memory flat in depth; autograd holds its own references
            x = next;
        }
        return (norm is null ? x : norm.call(x)).MoveToOuterDisposeScope();
    }

    /// <summary>Outputs of the tap blocks (or of the last block) as (B, D, rows, cols) maps, no final norm.</summary>
    public IReadOnlyList<Tensor> ForwardTaps(Tensor images)
    {
        using var scope = NewDisposeScope();
        using var counted = FlopCounter.Within(this);
        var (x, rows, cols) = Embed(images);
        var taps = Config.TapBlocks.Count > 0 ? new HashSet<int>(Config.TapBlocks) : new HashSet<int> { Config.Depth - 1 };
        var maps = new List<Tensor>();
        for (int i = 0; i < blocks.Count; i++)
        {
            x = RunBlock(blocks[i], x, rows, cols);
            if (taps.Contains(i))
            {
                var patches = x.narrow(1, ClassSlots, (long)rows * cols);
                maps.Add(patches.transpose(1, 2).reshape(x.shape[0], x.shape[2], rows, cols));
            }
        }
        foreach (var map in maps) map.MoveToOuterDisposeScope();
        return maps;
    }

    /// <summary>One block, checkpointed in training with model.backbone.with_cp (<see cref="ActivationCheckpoint"/>).</summary>
    private Tensor RunBlock(TransformerBlock block, Tensor x, int rows, int cols) =>
        ActivationCheckpoint.Call(Config.ActivationCheckpointing, block, inputs => [block.Forward(inputs[0]!, rows, cols)], x)[0];

    private (Tensor Tokens, int Rows, int Cols) Embed(Tensor images)
    {
        var (rows, cols) = patch_embed.GridFor(images.shape[2], images.shape[3]);
        var patches = patch_embed.call(images);
        var tokens = cls_token is null ? patches : PositionEmbeddingResizer.InsertAt(patches, cls_token, 0);
        int grid = Config.GridSize;
        var pos = rows == grid && cols == grid
            ? pos_embed.alias()
            : PositionEmbeddingResizer.Resize(pos_embed, (grid, grid), (rows, cols), cls_token is null ? ClassTokenPosition.None : ClassTokenPosition.Head);
        return (tokens + pos, rows, cols);
    }
}
