using TorchSharp;
using TorchSharp.Modules;
using Vim.Core.Diagnostics;
using static TorchSharp.torch;

namespace Vim.Core.Models;

/// <summary>
/// Vision Mamba (Vim): patch embedding, optional class token (middle / head / none), absolute
/// position embedding, optional 2-D RoPE before every block, a stack of bidirectional Mamba blocks
/// carrying a separate residual stream, final add + RMSNorm and a linear head. Accepts any input whose
/// size tiles with the patch and stride; the position embedding (and RoPE) follow the actual grid.
/// </summary>
/// <remarks>
/// Fields are named and ordered as the official state dict (cls_token, pos_embed, patch_embed, head,
/// layers.i, norm_f), so <see cref="nn.Module.state_dict"/> keys match checkpoints one to one.
/// </remarks>
public sealed class VisionMamba : nn.Module<Tensor, Tensor>, ITokenBackbone
{
#pragma warning disable IDE1006 // names are the checkpoint keys
    private readonly Parameter? cls_token;
    private readonly Parameter pos_embed;
    private readonly PatchEmbed patch_embed;
    private readonly Linear? head;
    private readonly VisionRotaryEmbedding? rope;
    private readonly ModuleList<MambaBlock> layers;
    private readonly RmsNorm? norm_f;
    private readonly DropPath drop_path;
#pragma warning restore IDE1006

    // Kept between inference forwards: reallocating the buffers every forward let glibc's heap creep up
    // by tens of MB per forward through fragmentation. Taken and returned atomically, so concurrent
    // forwards never share one (a second concurrent forward builds its own).
    private MambaInferenceWorkspace? inferenceWorkspace;

    public VimConfig Config { get; }
    public int EmbedDim => Config.EmbedDim;
    public int TokenStride => Config.Stride;

    public int ImageSize => Config.ImageSize;

    public VisionMamba(VimConfig config, long seed = 0) : base(nameof(VisionMamba))
    {
        config.Validate();
        Config = config;
        int grid = config.GridSize;
        int patches = grid * grid;
        int extra = config.ClassToken == ClassTokenPosition.None ? 0 : 1;

        if (extra == 1) cls_token = new Parameter(zeros(1, 1, config.EmbedDim));
        pos_embed = new Parameter(zeros(1, patches + extra, config.EmbedDim));
        patch_embed = new PatchEmbed(config.InChannels, config.EmbedDim, config.PatchSize, config.Stride);
        if (config.NumClasses > 0) head = nn.Linear(config.EmbedDim, config.NumClasses);
        if (config.UseRope) rope = new VisionRotaryEmbedding(config.EmbedDim, grid, grid, config.RopePretrainGrid);

        var blockRates = DropPath.OfficialBlockRates(config.DropPathRate, config.Depth);
        var blocks = new MambaBlock[config.Depth];
        for (int i = 0; i < config.Depth; i++)
        {
            var mixer = new BiMambaMixer(config.EmbedDim, config.StateSize, config.ConvKernel, config.Expand,
                config.EffectiveDtRank, config.DivideOut) { RecomputeInputProjection = config.RecomputeInputProjection };
            blocks[i] = new MambaBlock(mixer, new RmsNorm(config.EmbedDim, config.NormEps), blockRates[i], config.ResidualInFp32);
        }
        layers = nn.ModuleList(blocks);
        if (config.FinalNorm) norm_f = new RmsNorm(config.EmbedDim, config.NormEps);
        drop_path = new DropPath(config.DropPathRate);
        RegisterComponents();
        ResetParameters(seed);
    }

    public IReadOnlyList<MambaBlock> Layers => layers.ToList();

    /// <summary>Re-initialises every parameter from <paramref name="seed"/> as the official model does.</summary>
    public void ResetParameters(long seed)
    {
        var generator = new Generator((ulong)seed);
        using var noGrad = no_grad();
        if (cls_token is not null) WeightInit.TruncatedNormal(cls_token, 0.02, generator);
        WeightInit.TruncatedNormal(pos_embed, 0.02, generator);
        WeightInit.LecunNormal(patch_embed.Projection.weight!, generator);
        patch_embed.Projection.bias!.zero_();
        if (head is not null)
        {
            WeightInit.TruncatedNormal(head.weight!, 0.02, generator);
            head.bias!.zero_();
        }
        foreach (var block in layers) block.Mixer.ResetParameters(generator, Config.Depth);
        // RMSNorm weights start at 1 (their constructor value).
    }

    /// <summary>Classification logits (B, classes), or the read-out feature (B, D) when there is no head.</summary>
    public override Tensor forward(Tensor images)
    {
        using var scope = NewDisposeScope();
        var embedded = Embed(images);
        var normed = FinalFeatures(embedded, applyNorm: true);
        var pooled = Config.Readout switch
        {
            VimReadout.ClassToken when embedded.ClassIndex >= 0 => normed.select(1, embedded.ClassIndex),
            VimReadout.ClassToken => throw new VimException("Readout ClassToken needs a class token (VimConfig.ClassToken is None)."),
            VimReadout.Mean => normed.mean(new long[] { 1 }),
            VimReadout.LastToken => normed.select(1, normed.shape[1] - 1),
            _ => throw new ArgumentOutOfRangeException(nameof(Config.Readout)),
        };
        var output = head is null ? pooled : head.call(pooled);
        return output.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Final token features (B, L, D) including the class token: norm_f(residual + hidden) when the
    /// model has norm_f, else hidden + residual (the detection backbone's "last_feat").
    /// </summary>
    public Tensor ForwardTokens(Tensor images)
    {
        using var scope = NewDisposeScope();
        // Entry points other than forward open the model's FLOP scope themselves (the pyramids call them).
        using var counted = FlopCounter.Within(this);
        return FinalFeatures(Embed(images), applyNorm: true).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Dense features (B, D, rows, cols), class token removed, one per tap block (see
    /// <see cref="VimConfig.Features"/>); with no tap blocks, the single final feature hidden + residual
    /// (no final norm).
    /// </summary>
    public IReadOnlyList<Tensor> ForwardTaps(Tensor images)
    {
        using var scope = NewDisposeScope();
        using var counted = FlopCounter.Within(this);
        var embedded = Embed(images);
        var taps = new List<Tensor>();
        var tapSet = new HashSet<int>(Config.TapBlocks);
        var (hidden, residual) = RunLayers(embedded, (i, h, r) =>
        {
            // The observer runs inside the per-layer scope: keep the taps alive beyond it.
            // Copies: in inference the blocks update hidden and residual in place.
            if (Config.Features == FeatureSource.MixerOutput && tapSet.Contains(i)) taps.Add(h.clone().MoveToOuterDisposeScope());
            // The residual after tap block i−1 exists once block i has added it in.
            if (Config.Features == FeatureSource.ResidualStream && tapSet.Contains(i - 1)) taps.Add(r.clone().MoveToOuterDisposeScope());
        });
        if (Config.Features == FeatureSource.ResidualStream && (tapSet.Count == 0 || tapSet.Contains(Config.Depth - 1)))
            taps.Add(hidden + residual);
        var maps = taps.Select(t => ToMap(t, embedded)).ToList();
        foreach (var map in maps) map.MoveToOuterDisposeScope();
        return maps;
    }

    /// <summary>
    /// The embedded sequence fed to the first block (B, L, D): patch tokens with the class token
    /// inserted at its position and the (resized) position embedding added.
    /// </summary>
    public Tensor EmbedTokens(Tensor images)
    {
        using var scope = NewDisposeScope();
        using var counted = FlopCounter.Within(this);
        return Embed(images).Tokens.MoveToOuterDisposeScope();
    }

    /// <summary>Index of the class token for an input of this size, or −1 without one.</summary>
    public int ClassIndexFor(long height, long width)
    {
        var (rows, cols) = patch_embed.GridFor(height, width);
        return PositionEmbeddingResizer.ClassIndex(Config.ClassToken, rows * cols);
    }

    /// <summary>Position embedding for a token grid, resized from the built grid if it differs.</summary>
    public Tensor PositionEmbeddingFor(int rows, int cols)
    {
        int grid = Config.GridSize;
        if (rows == grid && cols == grid) return pos_embed.alias();
        return PositionEmbeddingResizer.Resize(pos_embed, (grid, grid), (rows, cols), Config.ClassToken, Config.PosEmbedResize);
    }

    private readonly record struct Embedded(Tensor Tokens, int Rows, int Cols, int ClassIndex);

    private Embedded Embed(Tensor images)
    {
        using var stage = StageProfiler.Measure("embed");
        using var marks = BackwardProfiler.Open("embed");
        // Its own scope: the patch map, the class-token concatenation and the resized position embedding
        // are freed here rather than staying alive through every block.
        using var scope = NewDisposeScope();
        var (rows, cols) = patch_embed.GridFor(images.shape[2], images.shape[3]);
        var tokens = patch_embed.call(images);
        int classIndex = PositionEmbeddingResizer.ClassIndex(Config.ClassToken, rows * cols);
        if (cls_token is not null) tokens = PositionEmbeddingResizer.InsertAt(tokens, cls_token, classIndex);
        tokens = marks.Output(tokens + PositionEmbeddingFor(rows, cols));
        return new Embedded(tokens.MoveToOuterDisposeScope(), rows, cols, classIndex);
    }

    private Tensor FinalFeatures(Embedded embedded, bool applyNorm)
    {
        bool inPlace = CanRunInPlace(embedded.Tokens);
        var (hidden, residual) = RunLayers(embedded, null);
        using var stage = StageProfiler.Measure("final_norm");
        if (inPlace)
        {
            // The in-place path's residual is its own tensor: add and norm without temporaries.
            residual.add_(hidden);
            if (!applyNorm || norm_f is null) return residual;
            var normed = empty_like(residual);
            norm_f.ForwardInto(residual, normed);
            return normed;
        }
        if (applyNorm && norm_f is not null) return norm_f.call(residual + drop_path.call(hidden));
        return hidden + residual;
    }

    private (Tensor Hidden, Tensor Residual) RunLayers(Embedded embedded, Action<int, Tensor, Tensor>? observe)
    {
        VisionRotaryEmbedding? gridRope = null;
        if (Config.UseRope)
            gridRope = rope!.Rows == embedded.Rows && rope.Cols == embedded.Cols
                ? rope
                : new VisionRotaryEmbedding(Config.EmbedDim, embedded.Rows, embedded.Cols, Config.RopePretrainGrid);
        try
        {
            if (CanRunInPlace(embedded.Tokens)) return RunLayersInPlace(embedded, gridRope, observe);
            Tensor hidden = embedded.Tokens;
            Tensor? residual = null;
            for (int i = 0; i < layers.Count; i++)
            {
                using var layerScope = NewDisposeScope();
                Tensor layerHidden = hidden;
                Tensor? layerResidual = residual;
                if (gridRope is not null)
                {
                    layerHidden = RotatePatches(gridRope, hidden, embedded.ClassIndex);
                    if (residual is not null && Config.RopeResidual) layerResidual = RotatePatches(gridRope, residual, embedded.ClassIndex);
                }
                var block = layers[i];
                var outputs = ActivationCheckpoint.Call(Config.ActivationCheckpointing, block, inputs =>
                {
                    var (blockHidden, blockResidual) = block.call(inputs[0]!, inputs[1]);
                    return [blockHidden, blockResidual];
                }, layerHidden, layerResidual);
                Tensor nextHidden = outputs[0], nextResidual = outputs[1];
                observe?.Invoke(i, nextHidden, nextResidual);
                // Release the previous block's outputs now rather than at the caller's scope end, so
                // inference memory stays flat in depth (autograd keeps its own references when training).
                if (i > 0)
                {
                    hidden.Dispose();
                    residual?.Dispose();
                }
                hidden = nextHidden.MoveToOuterDisposeScope();
                residual = nextResidual.MoveToOuterDisposeScope();
            }
            return (hidden, residual!);
        }
        finally
        {
            if (gridRope is not null && !ReferenceEquals(gridRope, rope)) gridRope.Dispose();
        }
    }

    /// <summary>
    /// Whether a forward on <paramref name="tokens"/>' dtype and device, in the current mode, runs the
    /// blocks in place on reused buffers: inference (eval mode, autograd off, no autocast) on float32
    /// CPU tensors and parameters. Anything else takes the autograd-capable path; both compute the same
    /// function.
    /// </summary>
    public bool CanRunInPlace(Tensor tokens) =>
        !is_grad_enabled() && !training && tokens.dtype == ScalarType.Float32 && tokens.device.type == DeviceType.CPU &&
        !Engine.Autocast.IsEnabled(DeviceType.CPU) && layers.All(block => block.Mixer.CanForwardInto(tokens));

    private (Tensor Hidden, Tensor Residual) RunLayersInPlace(Embedded embedded, VisionRotaryEmbedding? gridRope,
        Action<int, Tensor, Tensor>? observe)
    {
        var workspace = Interlocked.Exchange(ref inferenceWorkspace, null) ?? new MambaInferenceWorkspace();
        try
        {
            return RunLayersInPlace(embedded, gridRope, observe, workspace);
        }
        finally
        {
            if (Interlocked.CompareExchange(ref inferenceWorkspace, workspace, null) is not null) workspace.Dispose();
        }
    }

    /// <summary>Frees the buffers kept for in-place inference (the next inference forward allocates them again).</summary>
    public void ReleaseInferenceBuffers() => Interlocked.Exchange(ref inferenceWorkspace, null)?.Dispose();

    protected override void Dispose(bool disposing)
    {
        if (disposing) ReleaseInferenceBuffers();
        base.Dispose(disposing);
    }

    private (Tensor Hidden, Tensor Residual) RunLayersInPlace(Embedded embedded, VisionRotaryEmbedding? gridRope,
        Action<int, Tensor, Tensor>? observe, MambaInferenceWorkspace workspace)
    {
        var hidden = empty_like(embedded.Tokens);
        // The first block's residual is its (rotated) input. Embed made the tokens for this forward
        // alone, so they become the residual buffer itself rather than being copied into one.
        var residual = gridRope is null ? embedded.Tokens : RotatePatches(gridRope, embedded.Tokens, embedded.ClassIndex);
        for (int i = 0; i < layers.Count; i++)
        {
            using var layerScope = NewDisposeScope();
            if (i > 0 && gridRope is not null)
            {
                hidden.copy_(RotatePatches(gridRope, hidden, embedded.ClassIndex));
                if (Config.RopeResidual) residual.copy_(RotatePatches(gridRope, residual, embedded.ClassIndex));
            }
            layers[i].ForwardInPlace(hidden, residual, first: i == 0, workspace);
            observe?.Invoke(i, hidden, residual);
        }
        return (hidden, residual);
    }

    /// <summary>
    /// Rotates the patch tokens and leaves the class token alone. (The official code skips token 0
    /// whenever the length is odd, i.e. it assumes a head class token; for a middle token this rule
    /// rotates exactly the patches instead.)
    /// </summary>
    private static Tensor RotatePatches(VisionRotaryEmbedding rope, Tensor sequence, int classIndex)
    {
        if (classIndex < 0) return rope.call(sequence);
        var rotated = rope.call(PositionEmbeddingResizer.RemoveAt(sequence, classIndex));
        return PositionEmbeddingResizer.InsertAt(rotated, sequence.narrow(1, classIndex, 1), classIndex);
    }

    private static Tensor ToMap(Tensor tokens, Embedded embedded)
    {
        var patches = embedded.ClassIndex >= 0 ? PositionEmbeddingResizer.RemoveAt(tokens, embedded.ClassIndex) : tokens;
        return patches.transpose(1, 2).reshape(patches.shape[0], patches.shape[2], embedded.Rows, embedded.Cols);
    }
}
