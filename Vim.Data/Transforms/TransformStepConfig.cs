using Vim.Core.Config;

namespace Vim.Data.Transforms;

/// <summary>
/// One pipeline step in YAML form: exactly one key naming the transform, whose mapping holds that transform's
/// options (an empty mapping takes the defaults), e.g. <c>- random_crop: {height: 512, width: 512, cat_max_ratio: 0.75}</c>.
/// Experiment configs list such steps under data.train_pipeline and data.test_pipeline (<see cref="DataPipelines"/>, which
/// falls back to <see cref="TransformPipeline"/>'s official recipes where they are unset); <see cref="TransformPipeline.FromConfig"/> builds them.
/// </summary>
public sealed class TransformStepConfig
{
    public ResizeOptions? Resize { get; set; }
    public ResizeScaleOptions? ResizeScale { get; set; }
    public ResizeShortestEdgeOptions? ResizeShortestEdge { get; set; }
    public FixedSizeCropOptions? FixedSizeCrop { get; set; }
    public RandomCropOptions? RandomCrop { get; set; }
    public RandomFlipOptions? RandomFlip { get; set; }
    public PhotoMetricDistortionOptions? PhotoMetricDistortion { get; set; }
    public NormalizeOptions? Normalize { get; set; }
    public PadOptions? Pad { get; set; }
    public RandomRotateOptions? RandomRotate { get; set; }
    public RandomAffineOptions? RandomAffine { get; set; }
    public RandomCutoutOptions? RandomCutout { get; set; }
    public AdjustGammaOptions? AdjustGamma { get; set; }
    public ClaheOptions? Clahe { get; set; }

    [ConfigKey("rgb2gray")]
    public Rgb2GrayOptions? Rgb2Gray { get; set; }

    public RandomChoiceOptions? RandomChoice { get; set; }
    public FilterAnnotationsOptions? FilterAnnotations { get; set; }

    /// <summary>Builds the transform; <paramref name="where"/> names the step in errors.</summary>
    public ISampleTransform Create(string where)
    {
        var chosen = new List<ISampleTransform>(1);
        try
        {
            if (Resize is not null) chosen.Add(new Resize(Resize));
            if (ResizeScale is not null) chosen.Add(new ResizeScale(ResizeScale));
            if (ResizeShortestEdge is not null) chosen.Add(new ResizeShortestEdge(ResizeShortestEdge));
            if (FixedSizeCrop is not null) chosen.Add(new FixedSizeCrop(FixedSizeCrop));
            if (RandomCrop is not null) chosen.Add(new RandomCrop(RandomCrop));
            if (RandomFlip is not null) chosen.Add(new RandomFlip(RandomFlip));
            if (PhotoMetricDistortion is not null) chosen.Add(new PhotoMetricDistortion(PhotoMetricDistortion));
            if (Normalize is not null) chosen.Add(new Normalize(Normalize));
            if (Pad is not null) chosen.Add(new Pad(Pad));
            if (RandomRotate is not null) chosen.Add(new RandomRotate(RandomRotate));
            if (RandomAffine is not null) chosen.Add(new RandomAffine(RandomAffine));
            if (RandomCutout is not null) chosen.Add(new RandomCutout(RandomCutout));
            if (AdjustGamma is not null) chosen.Add(new AdjustGamma(AdjustGamma));
            if (Clahe is not null) chosen.Add(new Clahe(Clahe));
            if (Rgb2Gray is not null) chosen.Add(new Rgb2Gray(Rgb2Gray));
            if (RandomChoice is not null) chosen.Add(new RandomChoice(RandomChoice, $"{where}.random_choice"));
            if (FilterAnnotations is not null) chosen.Add(new FilterAnnotations(FilterAnnotations));
        }
        catch (ArgumentException e)
        {
            throw new Vim.Core.VimException($"{where}: {e.Message}", e);
        }
        if (chosen.Count != 1)
            throw new Vim.Core.VimException($"{where}: a transform step needs exactly one of " +
                $"{string.Join(", ", ConfigBinder.KeysOf(typeof(TransformStepConfig)).Select(k => k.Key))}; got {chosen.Count}.");
        return chosen[0];
    }
}
