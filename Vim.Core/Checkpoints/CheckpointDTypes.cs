using static TorchSharp.torch;

namespace Vim.Core.Checkpoints;

/// <summary>The element types checkpoints may hold, under their PyTorch and safetensors spellings.</summary>
public static class CheckpointDTypes
{
    private sealed record Info(ScalarType Type, string TorchName, string StorageClass, string SafeTensorsCode, int Size);

    private static readonly Info[] All =
    [
        new(ScalarType.Float32, "float32", "FloatStorage", "F32", 4),
        new(ScalarType.Float16, "float16", "HalfStorage", "F16", 2),
        new(ScalarType.BFloat16, "bfloat16", "BFloat16Storage", "BF16", 2),
        new(ScalarType.Float64, "float64", "DoubleStorage", "F64", 8),
        new(ScalarType.Int64, "int64", "LongStorage", "I64", 8),
        new(ScalarType.Int32, "int32", "IntStorage", "I32", 4),
        new(ScalarType.Int16, "int16", "ShortStorage", "I16", 2),
        new(ScalarType.Int8, "int8", "CharStorage", "I8", 1),
        new(ScalarType.Byte, "uint8", "ByteStorage", "U8", 1),
        new(ScalarType.Bool, "bool", "BoolStorage", "BOOL", 1),
    ];

    internal static string SupportedStorageClasses => string.Join(", ", All.Select(i => i.StorageClass));
    internal static string SupportedSafeTensorsCodes => string.Join(", ", All.Select(i => i.SafeTensorsCode));

    internal static bool TryFromStorageClass(string className, out ScalarType type) =>
        TryFind(i => i.StorageClass == className, out type);

    internal static bool TryFromSafeTensorsCode(string code, out ScalarType type) =>
        TryFind(i => i.SafeTensorsCode == code, out type);

    /// <summary>PyTorch's spelling (torch.float32 → "float32"), as `vim checkpoint inspect` prints it.</summary>
    public static string TorchName(ScalarType type) => Get(type).TorchName;
    internal static string SafeTensorsCode(ScalarType type) => Get(type).SafeTensorsCode;
    public static int ElementSize(ScalarType type) => Get(type).Size;
    public static bool IsSupported(ScalarType type) => All.Any(i => i.Type == type);

    private static Info Get(ScalarType type) =>
        All.FirstOrDefault(i => i.Type == type)
        ?? throw new VimException($"tensor dtype {type} is not supported in checkpoints (supported: {string.Join(", ", All.Select(i => i.TorchName))})");

    private static bool TryFind(Func<Info, bool> match, out ScalarType type)
    {
        var info = All.FirstOrDefault(match);
        type = info?.Type ?? default;
        return info is not null;
    }
}
