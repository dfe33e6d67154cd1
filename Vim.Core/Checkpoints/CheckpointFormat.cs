namespace Vim.Core.Checkpoints;

/// <summary>On-disk checkpoint layouts, told apart by their first bytes rather than the file extension.</summary>
public enum CheckpointFormat
{
    /// <summary>The zip archive torch.save writes (since PyTorch 1.6): data.pkl plus raw storages.</summary>
    TorchZip,

    /// <summary>safetensors: 8-byte header length, JSON header, raw tensor bytes.</summary>
    SafeTensors,
}
