using Vim.Core.Config;
using Vim.Core.Ssm;
using static TorchSharp.torch;

namespace Vim.Core.Engine;

/// <summary>
/// A config read for a run in this process: merged and type-checked, its runtime.threads applied to the process, its
/// runtime.device checked against this machine and build. Every command that runs a model, and the library's
/// <c>Detector</c> and <c>Segmentor</c>, start here, so a config means the same to each.
/// </summary>
public static class RuntimeSetup
{
    /// <summary>
    /// Loads <paramref name="configPath"/> with the --set style <paramref name="overrides"/> (applied last, in order) and
    /// applies its runtime settings. runtime.threads above 0 sets libtorch's and our kernels' thread counts for the whole
    /// process (0, the default, leaves them alone); an unusable runtime.device fails here, before any data or weights are read.
    /// </summary>
    public static ExperimentConfig LoadConfig(string configPath, IEnumerable<string> overrides)
    {
        var (config, _) = ExperimentConfig.Load(configPath, overrides);
        if (config.Runtime.Threads > 0)
        {
            set_num_threads(config.Runtime.Threads);
            // Our native kernels (selective scan, RoIAlign) keep their own pool, sized to every CPU unless told.
            SelectiveScan.NativeThreads = config.Runtime.Threads;
        }
        DeviceSelection.Resolve(config.Runtime);
        return config;
    }
}
