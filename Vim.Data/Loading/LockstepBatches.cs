namespace Vim.Data.Loading;

/// <summary>Several loaders over one dataset read side by side: the test views of multi-scale test-time augmentation.</summary>
public static class LockstepBatches
{
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
