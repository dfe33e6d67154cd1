using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using NUnit.Framework;
using Vim.Core;
using Vim.Core.Config;
using Vim.Core.Engine;
using Vim.Core.IO.TensorBoard;
using static TorchSharp.torch;

namespace Vim.Tests.Engine;

/// <summary>
/// runtime.vis_backends: tensorboard. The format pieces against their specifications (CRC-32C's published check values,
/// Event messages encoded by hand from the .proto field numbers and the wire format), and real training runs of the toy
/// task read back by <see cref="TensorBoardEventReader"/>, which shares no code with the writer, against log.jsonl.
/// </summary>
public class TensorBoardLogTests
{
    private string _root = null!;

    [SetUp]
    public void SetUp() => _root = Directory.CreateTempSubdirectory("vimdense-tensorboard-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_root, recursive: true);

    private string Dir(string name) => Path.Combine(_root, name);

    private static ExperimentConfig WithTensorBoard(int maxIters)
    {
        var config = TrainerTests.Config(maxIters);
        config.Runtime.VisBackends = [VisBackend.Local, VisBackend.Tensorboard];
        return config;
    }

    /// <summary>The check value of the CRC catalogue ("123456789") and RFC 3720's B.4 vectors, for the writer's CRC and the test reader's.</summary>
    [Test]
    public void Crc32CGivesTheCheckValueAndTheRfc3720Vectors()
    {
        var vectors = new (byte[] Data, uint Crc)[]
        {
            (Encoding.ASCII.GetBytes("123456789"), 0xE3069283),
            (new byte[32], 0x8A9136AA),
            (Enumerable.Repeat((byte)0xFF, 32).ToArray(), 0x62A8AB43),
            (Enumerable.Range(0, 32).Select(i => (byte)i).ToArray(), 0x46DD794E),
            (Enumerable.Range(0, 32).Select(i => (byte)(31 - i)).ToArray(), 0x113FDB5C),
            ([], 0x00000000),
        };
        foreach (var (data, crc) in vectors)
        {
            Assert.That(Crc32C.Compute(data), Is.EqualTo(crc), $"{data.Length} bytes");
            Assert.That(TensorBoardEventReader.Crc32C(data), Is.EqualTo(crc), $"reader, {data.Length} bytes");
        }
        // The mask: rotate right by 15, add 0xa282ead8 (mod 2³²); 0xE3069283 rotated is 0x2507C60D.
        Assert.That(Crc32C.Masked(Encoding.ASCII.GetBytes("123456789")), Is.EqualTo(unchecked(0x2507C60Du + 0xA282EAD8u)));
    }

    /// <summary>
    /// Event { wall_time: 1.5, step: 300, summary { value { tag: "loss", simple_value: 0.25 } } }, byte by byte: a key is
    /// (field number &lt;&lt; 3) | wire type, doubles and floats little-endian, lengths and integers as varints.
    /// </summary>
    [Test]
    public void AScalarEventIsTheWireFormatOfTheEventProto()
    {
        byte[] value =
        [
            (1 << 3) | 2, 4, (byte)'l', (byte)'o', (byte)'s', (byte)'s', // tag = 1, length-delimited
            (2 << 3) | 5, 0x00, 0x00, 0x80, 0x3E,                      // simple_value = 2, fixed32: 0.25f is 0x3E800000
        ];
        byte[] summary = [(1 << 3) | 2, (byte)value.Length, .. value]; // Summary.value = 1
        byte[] expected =
        [
            (1 << 3) | 1, 0, 0, 0, 0, 0, 0, 0xF8, 0x3F, // wall_time = 1, fixed64: 1.5 is 0x3FF8000000000000
            (2 << 3) | 0, 0xAC, 0x02,                   // step = 2, varint: 300 = 0b10_0101100 → 0xAC (more follows), 0x02
            (5 << 3) | 2, (byte)summary.Length, .. summary, // summary = 5
        ];
        Assert.That(expected, Has.Length.EqualTo(27));
        Assert.That(TensorBoardEvents.ScalarsEvent(1.5, 300, [("loss", 0.25f)]), Is.EqualTo(expected));
    }

    /// <summary>
    /// The config's text summary (a rank-0 DT_STRING tensor for the text plugin) and the session START of a resume,
    /// by hand from summary.proto, tensor.proto and event.proto; a step of 0 is proto3's default and not written.
    /// </summary>
    [Test]
    public void TheTextSummaryAndTheSessionStartAreTheWireFormatOfTheirProtos()
    {
        byte[] tensor =
        [
            (1 << 3) | 0, 7,           // dtype = 1: DT_STRING is 7
            (2 << 3) | 2, 0,           // tensor_shape = 2: no dims, a scalar
            (8 << 3) | 2, 1, (byte)'a', // string_val = 8
        ];
        byte[] pluginData = [(1 << 3) | 2, 4, (byte)'t', (byte)'e', (byte)'x', (byte)'t']; // plugin_name = 1
        byte[] metadata = [(1 << 3) | 2, (byte)pluginData.Length, .. pluginData];            // plugin_data = 1
        byte[] value =
        [
            (1 << 3) | 2, 6, .. "config"u8,                  // tag = 1
            (8 << 3) | 2, (byte)tensor.Length, .. tensor,     // tensor = 8
            (9 << 3) | 2, (byte)metadata.Length, .. metadata, // metadata = 9
        ];
        byte[] summary = [(1 << 3) | 2, (byte)value.Length, .. value];
        byte[] text = [(1 << 3) | 1, 0, 0, 0, 0, 0, 0, 0, 0x40, (5 << 3) | 2, (byte)summary.Length, .. summary]; // 2.0, no step
        Assert.That(TensorBoardEvents.TextEvent(2.0, 0, "config", "a"), Is.EqualTo(text));

        byte[] start =
        [
            (1 << 3) | 1, 0, 0, 0, 0, 0, 0, 0xF0, 0x3F, // wall_time 1.0
            (2 << 3) | 0, 13,                          // step 13
            (7 << 3) | 2, 2, (1 << 3) | 0, 1,          // session_log = 7 { status = 1: START is 1 }
        ];
        Assert.That(TensorBoardEvents.SessionStartEvent(1.0, 13), Is.EqualTo(start));
    }

    /// <summary>
    /// A training run with runtime.vis_backends [local, tensorboard] writes one event file, named as TensorFlow names
    /// them, holding the file version, the merged config as text, then one event per log.jsonl record: at the record's
    /// iteration, every number of it as train/KEY or val/KEY, equal to log.jsonl's value in float32.
    /// </summary>
    [Test]
    public void ATrainingRunWritesEveryLogJsonlNumberAtItsIterationToAnEventFile()
    {
        set_num_threads(1);
        const string yaml = "runtime:\n  seed: 3\n# trained by the test\n";
        double before = Math.Floor(TensorBoardEventFile.UnixSeconds());
        using (var task = new ToyRegressionTask { LogsMaxError = true })
            new Trainer<(Tensor, Tensor)>(task, WithTensorBoard(16), Dir("run"), yaml, TextWriter.Null).Run(null);
        double after = TensorBoardEventFile.UnixSeconds();

        var file = Directory.GetFiles(Path.Combine(Dir("run"), "tensorboard")).Single();
        var name = Regex.Match(Path.GetFileName(file), @"^events\.out\.tfevents\.(\d{10})\.(.+)$");
        Assert.That(name.Success, Is.True, Path.GetFileName(file));
        Assert.That(double.Parse(name.Groups[1].Value), Is.InRange(before, after));
        Assert.That(name.Groups[2].Value, Is.EqualTo(Dns.GetHostName()));

        var events = TensorBoardEventReader.Read(file);
        Assert.That((events[0].FileVersion, events[0].Step, events[0].Values.Count), Is.EqualTo(("brain.Event:2", 0L, 0)));
        var config = events[1].Values.Single();
        Assert.That((events[1].Step, config.Tag, config.PluginName, config.TensorDtype, config.TensorShapeDims), Is.EqualTo((0L, "config", "text", 7L, 0)));
        Assert.That(config.TensorStrings, Is.EqualTo(new[] { "    runtime:\n      seed: 3\n    # trained by the test" }));
        Assert.That(events.Select(e => e.WallTime), Is.Ordered.And.All.InRange(before, after));

        var records = JsonLinesLog.Read(Path.Combine(Dir("run"), "log.jsonl")).ToList();
        // Logging every 5 iterations and at the end, evaluating every 8 and at the end, over 16 iterations.
        Assert.That(events.Skip(2).Select(e => (e.Step, e.Values[0].Tag.Split('/')[0])),
            Is.EqualTo(new[] { (5L, "train"), (8L, "val"), (10L, "train"), (15L, "train"), (16L, "train"), (16L, "val") }));
        Assert.That(events, Has.Count.EqualTo(2 + records.Count));
        foreach (var (record, @event) in records.Zip(events.Skip(2)))
        {
            string prefix = record.IsEvaluation ? "val/" : "train/";
            var expected = record.Fields.EnumerateObject()
                .Where(field => field.Name is not ("iter" or "mode"))
                .ToDictionary(field => prefix + field.Name, field => field.Value.ValueKind == JsonValueKind.Null ? float.NaN : (float)field.Value.GetDouble());
            Assert.That(@event.Step, Is.EqualTo(record.Iteration));
            Assert.That(@event.Values.ToDictionary(v => v.Tag, v => v.SimpleValue!.Value), Is.EqualTo(expected), $"iteration {record.Iteration}");
        }
        var tags = events.SelectMany(e => e.Values).Select(v => v.Tag).ToHashSet();
        Assert.That(new[] { "train/loss", "train/lr", "train/time", "train/data_time", "train/memory_mb", "train/loss_mse", "train/max_error", "val/neg_mse" },
            Is.SubsetOf(tags));
    }

    /// <summary>The default runtime.vis_backends, [local], writes log.jsonl and no event file.</summary>
    [Test]
    public void TheDefaultBackendWritesNoEventFile()
    {
        Assert.That(new RuntimeConfig().VisBackends, Is.EqualTo(new[] { VisBackend.Local }));
        using (var task = new ToyRegressionTask())
            new Trainer<(Tensor, Tensor)>(task, TrainerTests.Config(5), Dir("plain"), "cfg", TextWriter.Null).Run(null);
        Assert.That(File.Exists(Path.Combine(Dir("plain"), "log.jsonl")), Is.True);
        Assert.That(Directory.Exists(Path.Combine(Dir("plain"), "tensorboard")), Is.False);
    }

    /// <summary>
    /// The reader checks the framing: a file cut inside its last record (its header, or its payload's CRC) or with a
    /// changed byte is refused, and cut at a record boundary reads the records before it.
    /// </summary>
    [Test]
    public void TheReaderRefusesATruncatedLastRecordAndDamagedBytes()
    {
        using (var task = new ToyRegressionTask())
            new Trainer<(Tensor, Tensor)>(task, WithTensorBoard(8), Dir("run"), "cfg", TextWriter.Null).Run(null);
        var file = Directory.GetFiles(Path.Combine(Dir("run"), "tensorboard")).Single();
        var bytes = File.ReadAllBytes(file);
        var records = TensorBoardEventReader.Records(file);
        int last = records[^1].Offset;

        string Damaged(string name, byte[] content)
        {
            var path = Path.Combine(_root, name);
            File.WriteAllBytes(path, content);
            return path;
        }
        Assert.That(TensorBoardEventReader.Read(Damaged("boundary", bytes[..last])), Has.Count.EqualTo(records.Count - 1));
        Assert.That(() => TensorBoardEventReader.Read(Damaged("header", bytes[..(last + 5)])),
            Throws.TypeOf<InvalidDataException>().With.Message.Contains($"truncated record header at byte {last}"));
        Assert.That(() => TensorBoardEventReader.Read(Damaged("crc", bytes[..^1])),
            Throws.TypeOf<InvalidDataException>().With.Message.Contains($"truncated record at byte {last}"));

        var payloadChanged = bytes.ToArray();
        payloadChanged[last + 12] ^= 0x01;
        Assert.That(() => TensorBoardEventReader.Read(Damaged("payload", payloadChanged)),
            Throws.TypeOf<InvalidDataException>().With.Message.Contains($"payload CRC mismatch at byte {last}"));
        var lengthChanged = bytes.ToArray();
        lengthChanged[last] ^= 0x01;
        Assert.That(() => TensorBoardEventReader.Read(Damaged("length", lengthChanged)),
            Throws.TypeOf<InvalidDataException>().With.Message.Contains($"length CRC mismatch at byte {last}"));
    }

    /// <summary>
    /// A crash after iteration 15 was logged, with the last checkpoint at 12, then a resume: the resumed launch opens a
    /// second file (file version, config at step 12, session START at 13). Read as TensorBoard's event accumulator reads
    /// a folder (files in name order; a START drops every point at its step and later), the curves are the run's
    /// history as `vim report` reads log.jsonl: the abandoned launch's iteration 15 replaced by the resumed one's.
    /// </summary>
    [Test]
    public void AResumeAddsAnEventFileWhoseSessionStartDropsWhatTheAbandonedLaunchLoggedAfterTheCheckpoint()
    {
        set_num_threads(1);
        // The 16th forward is iteration 15: iteration 15's log record (after 15 iterations) is written, checkpoint 16 is not.
        using (var crashing = new ToyRegressionTask(failAtCall: 16))
            Assert.Throws<InvalidOperationException>(() =>
                new Trainer<(Tensor, Tensor)>(crashing, WithTensorBoard(24), Dir("run"), "first", TextWriter.Null).Run(null));
        var checkpoint = new CheckpointDirectory(Dir("run"), 2).Latest();
        Assert.That(Path.GetFileName(checkpoint), Is.EqualTo("iter_0000012.safetensors"));
        using (var resumed = new ToyRegressionTask())
            new Trainer<(Tensor, Tensor)>(resumed, WithTensorBoard(24), Dir("run"), "second", TextWriter.Null).Run(checkpoint);

        var files = Directory.GetFiles(Path.Combine(Dir("run"), "tensorboard")).Order(StringComparer.Ordinal).ToList();
        Assert.That(files, Has.Count.EqualTo(2));
        var first = TensorBoardEventReader.Read(files[0]);
        var second = TensorBoardEventReader.Read(files[1]);
        Assert.That(first.Where(e => e.Values.Any(v => v.Tag == "train/loss")).Select(e => e.Step), Is.EqualTo(new[] { 5L, 10L, 15L }));
        Assert.That(second[0].FileVersion, Is.EqualTo("brain.Event:2"));
        Assert.That((second[1].Step, second[1].Values.Single().Tag, second[1].Values.Single().TensorStrings.Single()), Is.EqualTo((12L, "config", "    second")));
        Assert.That((second[2].Step, second[2].SessionStatus, second[2].Values.Count), Is.EqualTo((13L, 1L, 0)));

        var points = new List<(string Tag, long Step, float Value)>();
        foreach (var @event in first.Concat(second))
        {
            if (@event.SessionStatus == 1) points.RemoveAll(p => p.Step >= @event.Step);
            points.AddRange(@event.Values.Where(v => v.SimpleValue is not null).Select(v => (v.Tag, @event.Step, v.SimpleValue!.Value)));
        }
        var history = TrainingLogHistory.Read(Path.Combine(Dir("run"), "log.jsonl"));
        Assert.That(points.Where(p => p.Tag == "train/loss").Select(p => (p.Step, p.Value)),
            Is.EqualTo(history.Training.Select(t => ((long)t.Record.Iteration, (float)t.Record.Number("loss")))));
        Assert.That(points.Where(p => p.Tag == "train/loss").Select(p => p.Step), Is.EqualTo(new[] { 5L, 10L, 15L, 20L, 24L }));
        Assert.That(points.Where(p => p.Tag == "val/neg_mse").Select(p => (p.Step, p.Value)),
            Is.EqualTo(history.Evaluations.Select(e => ((long)e.Iteration, (float)e.Number("neg_mse")))));
    }

    /// <summary>runtime.vis_backends is checked as every key: by the schema (names), then by the training checks (local kept, no repeats).</summary>
    [Test]
    public void VisBackendsAreCheckedByName()
    {
        var file = Path.Combine(RepositoryPaths.Root, "configs", "seg", "upernet_vim_tiny_demo_ade.yaml");
        Assert.That(ExperimentConfig.Load(file, ["runtime.vis_backends=[local, tensorboard]"]).Config.Runtime.VisBackends,
            Is.EqualTo(new[] { VisBackend.Local, VisBackend.Tensorboard }));
        var unknown = Assert.Throws<VimException>(() => ExperimentConfig.Load(file, ["runtime.vis_backends=[local, tensorbord]"]))!;
        Assert.That(unknown.Message, Does.Contain("'runtime.vis_backends[1]' must be one of local, tensorboard, got 'tensorbord'; did you mean 'tensorboard'?"));
        foreach (var (setting, got) in new[] { ("[tensorboard]", "[tensorboard]"), ("[]", "[]"), ("[local, tensorboard, local]", "[local, tensorboard, local]") })
        {
            var config = ExperimentConfig.Load(file, [$"runtime.vis_backends={setting}"]).Config;
            Assert.That(Assert.Throws<VimException>(() => TrainingSettings.Check(config))!.Message, Is.EqualTo(
                "runtime.vis_backends must name local (log.jsonl, which `vim report` reads) and each backend once, e.g. [local] or [local, tensorboard]; got " + got));
        }
    }
}
