using Vim.Data.Datasets;

namespace Vim.Data.Transforms;

/// <summary>mmcv's RandomChoice: one sub-pipeline per sample (see <see cref="RandomChoiceOptions"/>).</summary>
public sealed class RandomChoice : ISampleTransform
{
    /// <summary>How far from 1 the probabilities may sum (mmcv asserts an exact 1; YAML decimals such as 0.1 + 0.2 are not exact).</summary>
    private const double SumTolerance = 1e-6;

    private readonly TransformPipeline[] _branches;
    private readonly double[]? _cumulative;

    /// <summary>Builds the sub-pipelines; <paramref name="where"/> names this step (e.g. <c>data.train_pipeline[1].random_choice</c>) in their errors.</summary>
    public RandomChoice(RandomChoiceOptions options, string where)
    {
        if (options.Transforms is not { Count: > 0 } transforms)
            throw new ArgumentException("RandomChoice needs transforms: a list of sub-pipelines, each a list of steps ([[step, ...], [step, ...]]).");
        for (int i = 0; i < transforms.Count; i++)
            if (transforms[i] is not { Count: > 0 })
                throw new ArgumentException($"RandomChoice transforms[{i}] is empty; each sub-pipeline needs at least one step.");
        if (options.Prob is { } prob)
        {
            if (prob.Length != transforms.Count)
                throw new ArgumentException($"RandomChoice prob has {prob.Length} probabilities for {transforms.Count} sub-pipelines; give one each, or null for uniform.");
            if (prob.Any(p => p is < 0 or > 1 || double.IsNaN(p)))
                throw new ArgumentException($"RandomChoice prob [{string.Join(", ", prob)}] must be probabilities in [0, 1].");
            if (Math.Abs(prob.Sum() - 1) > SumTolerance)
                throw new ArgumentException($"RandomChoice prob [{string.Join(", ", prob)}] sums to {prob.Sum()}, not 1.");
            // numpy's choice(p=...): the cumulative sum, divided by its last entry.
            var cumulative = new double[prob.Length];
            double total = 0;
            for (int i = 0; i < prob.Length; i++) cumulative[i] = total += prob[i];
            for (int i = 0; i < prob.Length; i++) cumulative[i] /= total;
            _cumulative = cumulative;
        }
        _branches = transforms.Select((steps, i) => TransformPipeline.FromConfig(steps, $"{where}.transforms[{i}]")).ToArray();
    }

    public IReadOnlyList<TransformPipeline> Branches => _branches;

    public void Apply(DataSample sample, Random random) => _branches[DrawBranch(random)].Apply(sample, random);

    /// <summary>numpy's choice: randint(n) without probabilities, else the first cumulative probability above one uniform draw.</summary>
    private int DrawBranch(Random random)
    {
        if (_cumulative is null) return random.Next(_branches.Length);
        double u = random.NextDouble();
        for (int i = 0; i < _cumulative.Length; i++)
            if (_cumulative[i] > u) return i;
        return _cumulative.Length - 1;
    }
}
