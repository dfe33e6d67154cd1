using System.Diagnostics.CodeAnalysis;
using System.Runtime.ExceptionServices;
using Vim.Core;

namespace Vim.Data;

/// <summary>Parallel loops over user files report their first user-facing error as itself (with its stack), not inside an AggregateException.</summary>
public static class ParallelErrors
{
    public static bool HasUserError(AggregateException e) => e.InnerExceptions.OfType<VimException>().Any();

    [DoesNotReturn]
    public static void RethrowUserError(AggregateException e) => ExceptionDispatchInfo.Capture(e.InnerExceptions.OfType<VimException>().First()).Throw();

    /// <summary>
    /// Runs <paramref name="body"/> for every index in [0, <paramref name="count"/>) in parallel. Of the user errors
    /// (<see cref="VimException"/>) it raises, the one of the lowest index is thrown, as a loop in order would throw it:
    /// whichever thread failed first would name a different entry of a file with several bad ones from run to run.
    /// Indices above a known failure are skipped; those below still run, to find an earlier one.
    /// </summary>
    /// <param name="maxThreads">At most this many threads; -1 for the scheduler's choice.</param>
    public static void For(int count, Action<int> body, int maxThreads = -1)
    {
        var gate = new object();
        int firstIndex = int.MaxValue;
        VimException? first = null;
        try
        {
            Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = maxThreads }, i =>
            {
                if (i > Volatile.Read(ref firstIndex)) return;
                try
                {
                    body(i);
                }
                catch (VimException e)
                {
                    lock (gate)
                        if (i < firstIndex) (firstIndex, first) = (i, e);
                }
            });
        }
        catch (AggregateException) when (first is not null)
        {
        }
        if (first is not null) ExceptionDispatchInfo.Capture(first).Throw();
    }
}
