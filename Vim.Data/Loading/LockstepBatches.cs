using Vim.Data.Datasets;
using Vim.Data.Transforms;

namespace Vim.Data.Loading;

/// <summary>Several loaders over one dataset read side by side: the test views of multi-scale test-time augmentation.</summary>
public static class LockstepBatches
{
    /// <summary>
    /// The test views of <paramref name="images"/>: per image, one batch per pipeline (e.g. one per test scale, each its
    /// own resize of the original image), in order, each read by <paramref name="loader"/>'s loader over the images.
    /// The views of an image share one load (decode) of it (<see cref="SharedLoads"/>), so K scales decode each image once,
    /// not K times. The caller disposes the batches.
    /// </summary>
    public static IEnumerable<Batch[]> Views(ISampleSource images, IReadOnlyList<TransformPipeline> pipelines, Func<ISampleSource, TransformPipeline, DataLoader> loader)
    {
        var shared = pipelines.Count == 1 ? images : new SharedLoads(images, pipelines.Count);
        return Read(pipelines.Select(pipeline => loader(shared, pipeline).Epoch(0)));
    }

    /// <summary>
    /// The i-th batch of every stream together. The streams read one dataset in the same order (e.g. one per test scale, each
    /// its own resize of the original image), so they end together; whatever is still running stops when the caller stops reading.
    /// </summary>
    public static IEnumerable<Batch[]> Read(IEnumerable<IEnumerable<Batch>> streams)
    {
        var readers = streams.Select(stream => stream.GetEnumerator()).ToList();
        try
        {
            while (true)
            {
                var batches = new List<Batch>(readers.Count);
                bool complete = false;
                try
                {
                    foreach (var reader in readers)
                    {
                        if (!reader.MoveNext()) break;
                        batches.Add(reader.Current);
                    }
                    complete = batches.Count == readers.Count;
                }
                finally
                {
                    // A stream that ended or failed leaves this round's earlier batches to us.
                    if (!complete) foreach (var batch in batches) batch.Dispose();
                }
                if (!complete) yield break;
                yield return batches.ToArray();
            }
        }
        finally
        {
            foreach (var reader in readers) reader.Dispose();
        }
    }

}
