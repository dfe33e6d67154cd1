using System.Diagnostics;
using System.Text;
using NUnit.Framework;
using Vim.Core.Engine;
using Vim.Data.Demo;

namespace Vim.Tests.Engine;

/// <summary>`vim train` in a process of its own, stopped by a signal as a scheduler or mpirun would stop it.</summary>
public class StopSignalTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(180);

    [Test]
    public void SigUsr1WritesACheckpointAndExits()
    {
        // mpirun forwards SIGUSR1 to its ranks (and kills them shortly after SIGINT/SIGTERM), so it is the signal that stops
        // a data-parallel run with a checkpoint; here it goes to one process.
        var root = Directory.CreateTempSubdirectory("vimdense-signal-").FullName;
        try
        {
            var data = Path.Combine(root, "ade");
            DemoDatasetGenerator.Generate(new DemoOptions { Kind = DemoKind.Ade, OutputDir = data, TrainImages = 8, ValImages = 2, Width = 64, Height = 64, Seed = 5 });
            var work = Path.Combine(root, "work");
            var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            string[] args =
            [
                Path.Combine(AppContext.BaseDirectory, "VimDense.dll"), "train", Path.Combine(RepositoryPaths.Root, "configs", "seg", "upernet_vim_tiny_demo_ade.yaml"),
                "--work-dir", work, "--set", $"data.root={data}", "--set", "data.num_workers=0", "--set", "data.batch_size=2",
                "--set", "data.crop_size=[32, 32]", "--set", "data.scale=[64, 64]", "--set", "model.seg_head.channels=16",
                "--set", "model.seg_head.auxiliary_channels=16", "--set", "schedule.max_iters=100000", "--set", "train.log_interval=1",
                "--set", "train.eval_interval=100000", "--set", "train.checkpoint_interval=100000", "--set", "runtime.threads=1",
            ];
            foreach (var a in args) start.ArgumentList.Add(a);
            var output = new StringBuilder();
            using var trained = new ManualResetEventSlim();
            using var process = new Process { StartInfo = start };
            process.OutputDataReceived += (_, e) =>
            {
                if (e.Data is null) return;
                lock (output) output.AppendLine(e.Data);
                if (e.Data.StartsWith("iter ", StringComparison.Ordinal)) trained.Set();
            };
            process.ErrorDataReceived += (_, e) =>
            {
                if (e.Data is not null) lock (output) output.AppendLine(e.Data);
            };
            process.Start();
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            try
            {
                if (!trained.Wait(Limit))
                    Assert.Fail($"no training progress after {Limit.TotalSeconds} s:\n{output}");
                using (var kill = Process.Start("kill", ["-USR1", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
                    kill.WaitForExit();
                if (!process.WaitForExit(Limit))
                    Assert.Fail($"still running {Limit.TotalSeconds} s after SIGUSR1:\n{output}");
            }
            finally
            {
                if (!process.HasExited) process.Kill(entireProcessTree: true);
            }
            process.WaitForExit();
            string text;
            lock (output) text = output.ToString();
            Assert.That(process.ExitCode, Is.EqualTo(130), text);
            Assert.That(text, Does.Contain("stopped at iteration").And.Contain("--resume"));
            Assert.That(new CheckpointDirectory(work, 2).Latest(), Is.Not.Null, "the interruption checkpoint");
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }
}
