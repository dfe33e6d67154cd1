using System.Text.Json;
using System.Text.Json.Serialization;

namespace Vim.Core.IO;

/// <summary>
/// Serializer options for files of numbers we write (training logs, metrics.json, benchmark results). JSON has no
/// NaN or infinity and System.Text.Json throws on them by default, yet a metric can be undefined (mIoU of a validation
/// set with no labelled pixel, mmseg's "nan"): such values are written as null, which readers take as NaN.
/// </summary>
public static class MetricJson
{
    public static readonly JsonSerializerOptions Compact = Create(indented: false);

    public static readonly JsonSerializerOptions Indented = Create(indented: true);

    private static JsonSerializerOptions Create(bool indented)
    {
        var options = new JsonSerializerOptions { WriteIndented = indented };
        options.Converters.Add(new NonFiniteAsNull());
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }

    /// <summary>A number field, NaN where it is null, absent or not a number.</summary>
    public static double NumberOrNaN(JsonElement record, string name) =>
        record.ValueKind == JsonValueKind.Object && record.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number
            ? value.GetDouble()
            : double.NaN;

    private sealed class NonFiniteAsNull : JsonConverter<double>
    {
        public override bool HandleNull => true;

        public override double Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            reader.TokenType == JsonTokenType.Null ? double.NaN : reader.GetDouble();

        public override void Write(Utf8JsonWriter writer, double value, JsonSerializerOptions options)
        {
            if (double.IsFinite(value)) writer.WriteNumberValue(value);
            else writer.WriteNullValue();
        }
    }
}
