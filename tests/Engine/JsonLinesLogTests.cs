using NUnit.Framework;
using Vim.Core;
using Vim.Core.Engine;

namespace Vim.Tests.Engine;

public class JsonLinesLogTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("vimdense-jsonl-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private string LogPath => Path.Combine(_dir, "log.jsonl");

    [Test]
    public void UndefinedNumbersAreWrittenAsNullAndReadBackAsNaN()
    {
        using (var log = new JsonLinesLog(LogPath))
            log.Write(new Dictionary<string, object?>
            {
                ["iter"] = 8, ["mode"] = "val", ["mIoU"] = double.NaN, ["aAcc"] = double.PositiveInfinity, ["mAcc"] = 12.5,
                ["kappa"] = double.NegativeInfinity,
            });

        // JSON has no NaN: the line must be plain JSON any reader (jq, Python's json) takes.
        Assert.That(File.ReadAllText(LogPath), Is.EqualTo("{\"iter\":8,\"mode\":\"val\",\"mIoU\":null,\"aAcc\":null,\"mAcc\":12.5,\"kappa\":null}\n"));
        var record = JsonLinesLog.Read(LogPath).Single();
        Assert.That((record.Iteration, record.IsEvaluation, record.Line), Is.EqualTo((8, true, 1)));
        Assert.That(record.Number("mIoU"), Is.NaN);
        Assert.That(record.Number("aAcc"), Is.NaN);
        Assert.That(record.Number("mAcc"), Is.EqualTo(12.5));
        Assert.That(record.Number("absent"), Is.NaN);
    }

    [Test]
    public void ARunResumedAfterAKillInTheMiddleOfALineStartsOnANewLine()
    {
        File.WriteAllText(LogPath, "{\"iter\":5,\"loss\":1.5}\n{\"iter\":10,\"lo");
        using (var log = new JsonLinesLog(LogPath))
            log.Write(new Dictionary<string, object?> { ["iter"] = 10, ["loss"] = 1.25 });
        Assert.That(File.ReadAllText(LogPath), Is.EqualTo("{\"iter\":5,\"loss\":1.5}\n{\"iter\":10,\"lo\n{\"iter\":10,\"loss\":1.25}\n"));
        var records = JsonLinesLog.Read(LogPath).ToList();
        Assert.That(records.Select(r => (r.Iteration, r.Number("loss"), r.Line)), Is.EqualTo(new[] { (5, 1.5, 1), (10, 1.25, 3) }));

        // A log that ends cleanly is continued without a blank line.
        using (var log = new JsonLinesLog(LogPath))
            log.Write(new Dictionary<string, object?> { ["iter"] = 15, ["loss"] = 1.0 });
        Assert.That(File.ReadAllLines(LogPath), Has.Length.EqualTo(4));
        Assert.That(File.ReadAllLines(LogPath)[3], Is.EqualTo("{\"iter\":15,\"loss\":1}"));
    }

    [Test]
    public void FieldsOfTheWrongKindAreRefusedNamingTheLineAndTheField()
    {
        File.WriteAllLines(LogPath, ["[1, 2]", "{\"iter\":\"ten\",\"loss\":1}", "{\"iter\":-3}", "{\"iter\":4,\"mode\":7}", "{\"loss\":2}"]);
        var records = JsonLinesLog.Read(LogPath).ToList();
        Assert.That(records.Select(r => r.Line), Is.EqualTo(new[] { 2, 3, 4, 5 }), "a line that is no JSON object is skipped as damaged");

        var text = Assert.Throws<VimException>(() => _ = records[0].Iteration)!.Message;
        Assert.That(text, Does.StartWith($"{LogPath} line 2: 'iter'").And.Contain("whole number").And.EndWith("got \"ten\""));
        Assert.That(Assert.Throws<VimException>(() => _ = records[1].Iteration)!.Message, Does.Contain("line 3").And.EndWith("got -3"));
        Assert.That(records[2].Iteration, Is.EqualTo(4));
        Assert.That(Assert.Throws<VimException>(() => _ = records[2].Mode)!.Message, Does.StartWith($"{LogPath} line 4: 'mode'").And.EndWith("got 7"));
        Assert.That(Assert.Throws<VimException>(() => _ = records[3].Iteration)!.Message, Does.Contain("line 5").And.EndWith("got nothing"));
    }
}
