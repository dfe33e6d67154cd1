using System.Text;
using NUnit.Framework;
using Vim.Core;
using Vim.Core.Config;

namespace Vim.Tests.Config;

/// <summary>
/// The repository's configs, damaged at random (fixed seeds) in the experiment file or in one of its bases: each must
/// load or be refused with a <see cref="VimException"/>; anything else would reach the user as a stack trace.
/// </summary>
public class ConfigMutationTests
{
    private const int MutationsPerCase = 600;

    private static readonly byte[] YamlMeaningful = Encoding.ASCII.GetBytes(":-#[]{},'\"&*!|>%@` \n\t0123456789.eE~");

    private static readonly byte[][] YamlPlanted = new[]
    {
        "99999999999999999999", "-1", "1e999", ".nan", "-.inf", "0.5", "null", "~", "[]", "{}", "!!binary x", "&a ", "*a", "<<: *a\n",
        "_base_: x.yaml\n", "_delete_: true\n", "? ", "\ufeff", "\t",
    }.Select(Encoding.UTF8.GetBytes).ToArray();

    private string _dir = "";

    [SetUp]
    public void CopyConfigs()
    {
        _dir = Directory.CreateTempSubdirectory("vim-config-mutation-").FullName;
        foreach (var file in Directory.EnumerateFiles(Path.Combine(RepositoryPaths.Root, "configs"), "*.yaml", SearchOption.AllDirectories))
        {
            var target = Path.Combine(_dir, Path.GetRelativePath(Path.Combine(RepositoryPaths.Root, "configs"), file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }

    [TearDown]
    public void DeleteCopies() => Directory.Delete(_dir, recursive: true);

    [TestCase("det/cascade_mask_rcnn_vim_tiny_1024_100ep_coco.yaml", 51)]
    [TestCase("seg/upernet_vim_tiny_512_60k_ade20k.yaml", 52)]
    public void DamagedConfigLoadsOrIsRefused(string experiment, int seed)
    {
        var random = new Random(seed);
        var files = Directory.EnumerateFiles(_dir, "*.yaml", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList();
        var experimentPath = Path.Combine(_dir, experiment);
        var escaped = new List<string>();
        for (var i = 0; i < MutationsPerCase; i++)
        {
            // Half the time the experiment file itself, else any file (most are bases of one of the two experiments).
            var victim = random.Next(2) == 0 ? experimentPath : files[random.Next(files.Count)];
            var good = File.ReadAllBytes(victim);
            File.WriteAllBytes(victim, RandomDamage.Mutate(good, random, YamlMeaningful, YamlPlanted));
            try
            {
                ExperimentConfig.Load(experimentPath);
            }
            catch (VimException)
            {
            }
            catch (Exception e)
            {
                escaped.Add($"{Path.GetRelativePath(_dir, victim)} mutation {i}: {e.GetType().Name}: {e.Message.Split('\n')[0]}");
            }
            finally
            {
                File.WriteAllBytes(victim, good);
            }
        }
        RandomDamage.AssertNoneEscaped(escaped);
    }
}
