using Vim.Core.Checkpoints;

namespace Vim.Core.Models;

/// <summary>A task whose backbone may have been initialised from a pretrained checkpoint (model.backbone.pretrained).</summary>
public interface IPretrainedInitialised
{
    /// <summary>What the pretrained load did; null when the config names no checkpoint.</summary>
    StateDictLoadReport? PretrainedReport { get; }
}
