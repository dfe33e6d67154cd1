namespace Vim.Core.Config;

public sealed class DataConfig
{
    /// <summary>Dataset format: coco (instances json + images) or ade20k (images/ + annotations/ PNGs).</summary>
    public string Type { get; set; } = "ade20k";

    /// <summary>Dataset root folder; relative paths are resolved from the working directory.</summary>
    public string Root { get; set; } = "data/ade/ADEChallengeData2016";

    public string TrainSplit { get; set; } = "training";

    public string ValSplit { get; set; } = "validation";

    /// <summary>Images per iteration on one process.</summary>
    public int BatchSize { get; set; } = 2;

    public int NumWorkers { get; set; } = 2;

    /// <summary>
    /// Training crop (height, width). Detection (square): also the side test and `vim infer` images are fitted into
    /// (ViTDet tests at its training size).
    /// </summary>
    public List<int> CropSize { get; set; } = [512, 512];

    /// <summary>Segmentation resize target (long edge, short edge), keep ratio; training jitters it by 0.5–2×.</summary>
    public List<int> Scale { get; set; } = [2048, 512];

    /// <summary>ADE-style labels: 0 is "other" (ignored) and k becomes class k − 1.</summary>
    public bool ReduceZeroLabel { get; set; } = true;

    /// <summary>A file with one class name per line; empty: &lt;root&gt;/class_names.txt if present, else the official list.</summary>
    public string ClassNames { get; set; } = "";
}
