using Vim.Data.Datasets;

namespace Vim.Data.Transforms;

/// <summary>
/// A step of the augmentation pipeline. It changes the sample in place, keeping image, boxes, masks and
/// label map consistent. Random steps draw only from <paramref name="random"/>, which the loader seeds
/// per (seed, epoch, sample), so results do not depend on which worker thread ran them.
/// </summary>
public interface ISampleTransform
{
    void Apply(DataSample sample, Random random);
}
