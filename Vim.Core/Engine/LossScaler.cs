using System.Globalization;
using static TorchSharp.torch;

namespace Vim.Core.Engine;

/// <summary>
/// Loss scaling for fp16 autocast, with torch.amp.GradScaler's rules (what detectron2's AMPTrainer and mmcv's
/// Fp16OptimizerHook use): the loss is multiplied by the scale before backward, so gradients that would fall
/// below fp16's smallest subnormal (6e-8) inside the half-precision backward survive; the gradients are divided
/// by it again before clipping and the step. A step whose gradients hold an inf or NaN (the scale overflowed
/// fp16's 65504) is skipped. Dynamic scaling then halves the scale, and doubles it after
/// <see cref="GrowthInterval"/> finite steps in a row; a static scale (mmcv's loss_scale=512.) never changes.
/// </summary>
public sealed class LossScaler
{
    public const double DefaultInitialScale = 65536;
    public const int DefaultGrowthInterval = 2000;

    /// <summary>
    /// Overflows in a row after which training stops: from 2^16 the scale is then below 1e-10, where no finite gradient
    /// overflows fp16, so the gradients are inf or NaN whatever the scale (and the scale never reaches 0).
    /// </summary>
    public const int MaxOverflowsInARow = 50;
    private const double GrowthFactor = 2, BackoffFactor = 0.5;

    public LossScaler(double scale, bool dynamic, int growthInterval = DefaultGrowthInterval)
    {
        if (!double.IsFinite(scale) || scale <= 0) throw new VimException($"runtime.loss_scale must be a positive number or 'dynamic', got {scale.ToString(CultureInfo.InvariantCulture)}");
        if (growthInterval < 1) throw new VimException($"the loss scale's growth interval must be at least 1, got {growthInterval}");
        Scale = scale;
        Dynamic = dynamic;
        GrowthInterval = growthInterval;
    }

    public double Scale { get; private set; }

    public bool Dynamic { get; }

    public int GrowthInterval { get; }

    /// <summary>Finite steps since the scale last changed (GradScaler's growth tracker).</summary>
    public int FiniteStepsInARow { get; private set; }

    /// <summary>Skipped steps since the last finite one (dynamic or static scale).</summary>
    public int OverflowsInARow { get; private set; }

    /// <summary>
    /// <see cref="MaxOverflowsInARow"/> steps in a row overflowed: the gradients are inf or NaN at any scale, and the run
    /// should stop as float32 does on a non-finite loss rather than skip every step to the end.
    /// </summary>
    public bool GaveUp => OverflowsInARow >= MaxOverflowsInARow;

    /// <summary>
    /// The scaler a <c>runtime.loss_scale</c> setting asks for: "dynamic" (GradScaler's defaults: 2^16, halved on
    /// overflow, doubled after 2000 finite steps) or a number (a static scale).
    /// </summary>
    public static LossScaler FromSetting(string setting) =>
        setting == "dynamic"
            ? new LossScaler(DefaultInitialScale, dynamic: true)
            : new LossScaler(ParseStatic(setting), dynamic: false);

    /// <summary>Refuses a <c>runtime.loss_scale</c> that is neither "dynamic" nor a positive number.</summary>
    public static void CheckSetting(string setting)
    {
        if (setting != "dynamic") ParseStatic(setting);
    }

    private static double ParseStatic(string setting)
    {
        if (!double.TryParse(setting, NumberStyles.Float, CultureInfo.InvariantCulture, out var scale) || !double.IsFinite(scale) || scale <= 0)
            throw new VimException($"runtime.loss_scale must be 'dynamic' or a positive number (a static scale, e.g. 512), got '{setting}'");
        return scale;
    }

    /// <summary>The loss to call backward on.</summary>
    public Tensor ScaleLoss(Tensor loss) => loss * Scale;

    /// <summary>
    /// Divides every gradient by the scale, in place, and returns whether all of them are finite. One host
    /// synchronisation for the whole model, as GradScaler's fused check.
    /// </summary>
    public bool UnscaleGradients(IEnumerable<Tensor> gradients)
    {
        using var scope = NewDisposeScope();
        double inverse = 1.0 / Scale;
        Tensor? nonFinite = null;
        using (no_grad())
        {
            foreach (var grad in gradients)
            {
                grad.mul_(inverse);
                var bad = grad.isfinite().logical_not().any().to_type(ScalarType.Int32);
                nonFinite = nonFinite is null ? bad : nonFinite.add_(bad);
            }
        }
        return nonFinite is null || nonFinite.item<int>() == 0;
    }

    /// <summary>Adjusts a dynamic scale after a step that was taken (<paramref name="finite"/>) or skipped.</summary>
    public void Update(bool finite)
    {
        OverflowsInARow = finite ? 0 : OverflowsInARow + 1;
        if (!Dynamic) return;
        if (!finite)
        {
            Scale *= BackoffFactor;
            FiniteStepsInARow = 0;
            return;
        }
        FiniteStepsInARow++;
        if (FiniteStepsInARow < GrowthInterval) return;
        // GradScaler keeps the old scale where growing it would overflow its float32 tensor.
        if (double.IsFinite((float)(Scale * GrowthFactor))) Scale *= GrowthFactor;
        FiniteStepsInARow = 0;
    }

    /// <summary>What a checkpoint keeps so a resumed run continues with the same scale.</summary>
    public LossScaleState State => new(Scale, FiniteStepsInARow);

    public void Restore(LossScaleState state)
    {
        if (!double.IsFinite(state.Scale) || state.Scale <= 0 || state.FiniteStepsInARow < 0)
            throw new VimException($"the checkpoint's loss scale state is invalid (scale {state.Scale.ToString(CultureInfo.InvariantCulture)}, finite steps {state.FiniteStepsInARow})");
        // A static scale is the config's to set: a resumed run given another loss_scale uses it, as any other setting.
        if (!Dynamic) return;
        Scale = state.Scale;
        FiniteStepsInARow = state.FiniteStepsInARow;
    }
}

/// <summary>A loss scaler's progress: its current scale and the finite steps taken since it last changed.</summary>
public readonly record struct LossScaleState(double Scale, int FiniteStepsInARow);
