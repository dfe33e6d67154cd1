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

    /// <summary>Training crop (height, width).</summary>
    public List<int> CropSize { get; set; } = [512, 512];
}
