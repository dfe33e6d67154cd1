using System.Text;

namespace Vim.Core.IO.TensorBoard;

/// <summary>
/// The protobuf <c>Event</c> messages of a TensorBoard event file (tensorboard/compat/proto/event.proto, summary.proto,
/// tensor.proto), each encoded as protoc would: fields in field-number order, proto3 defaults (a step of 0) left out,
/// members of a oneof always written (a scalar of 0 is a value).
/// </summary>
public static class TensorBoardEvents
{
    /// <summary>What the first event of every file says (TensorFlow's and tensorboardX's writers: "brain.Event:2").</summary>
    public const string FileVersion = "brain.Event:2";

    /// <summary>The plugin that renders a string tensor as Markdown.</summary>
    public const string TextPlugin = "text";

    // Event
    private const int EventWallTime = 1, EventStep = 2, EventFileVersion = 3, EventSummary = 5, EventSessionLog = 7;
    // Summary, Summary.Value
    private const int SummaryValue = 1;
    private const int ValueTag = 1, ValueSimpleValue = 2, ValueTensor = 8, ValueMetadata = 9;
    // SummaryMetadata, SummaryMetadata.PluginData
    private const int MetadataPluginData = 1, PluginDataPluginName = 1;
    // TensorProto, and DataType.DT_STRING (types.proto)
    private const int TensorDtype = 1, TensorShape = 2, TensorStringVal = 8, DtString = 7;
    // SessionLog, and SessionLog.SessionStatus.START
    private const int SessionLogStatus = 1, SessionStatusStart = 1;

    public static byte[] FileVersionEvent(double wallTime) => Event(wallTime, 0).String(EventFileVersion, FileVersion).ToArray();

    /// <summary>One event holding a <c>simple_value</c> per tag: what the scalars dashboard plots against <paramref name="step"/>.</summary>
    public static byte[] ScalarsEvent(double wallTime, long step, IEnumerable<(string Tag, float Value)> scalars) =>
        Event(wallTime, step).Message(EventSummary, summary =>
        {
            foreach (var (tag, value) in scalars)
                summary.Message(SummaryValue, v => v.String(ValueTag, tag).Float(ValueSimpleValue, value));
        }).ToArray();

    /// <summary>A rank-0 DT_STRING tensor for the text plugin (tensorboard.summary.text's layout): its dashboard renders the string as Markdown.</summary>
    public static byte[] TextEvent(double wallTime, long step, string tag, string markdown) =>
        Event(wallTime, step).Message(EventSummary, summary => summary.Message(SummaryValue, v => v
            .String(ValueTag, tag)
            .Message(ValueTensor, tensor => tensor
                .Int64(TensorDtype, DtString)
                .Message(TensorShape, _ => { })
                .Bytes(TensorStringVal, Encoding.UTF8.GetBytes(markdown)))
            .Message(ValueMetadata, metadata => metadata.Message(MetadataPluginData, plugin => plugin.String(PluginDataPluginName, TextPlugin)))))
        .ToArray();

    /// <summary>
    /// <c>session_log { status: START }</c>: a restart from a checkpoint. TensorBoard's event accumulator then drops the
    /// points of every tag at <paramref name="step"/> and later that earlier events left (TensorFlow's Supervisor writes it on a restart).
    /// </summary>
    public static byte[] SessionStartEvent(double wallTime, long step) =>
        Event(wallTime, step).Message(EventSessionLog, log => log.Int64(SessionLogStatus, SessionStatusStart)).ToArray();

    private static ProtobufWriter Event(double wallTime, long step)
    {
        var writer = new ProtobufWriter().Double(EventWallTime, wallTime);
        return step == 0 ? writer : writer.Int64(EventStep, step);
    }
}
