using System.Runtime.ExceptionServices;
using Vim.Core;

namespace Vim.Data;

/// <summary>
/// Parallel loops over user files report a user-facing error (<see cref="VimException"/>) as itself, with its stack, not
/// inside an AggregateException, and the same one on every run: that of the lowest failing index, as a loop in order would.
/// </summary>
public static class ParallelErrors
{
    /// <summary>
    /// Runs <paramref name="body"/> for every index in [0, <paramref name="count"/>) in parallel. Of the user errors
    /// (<see cref="VimException"/>) it raises, the one of the lowest index is thrown, as a loop in order would throw it:
    /// whichever thread failed first would name a different entry of a file with several bad ones from run to run.
    /// Indices above a known failure are skipped; those below still run, to find an earlier one.
    /// </summary>
    /// <param name="maxThreads">At most this many threads; -1 for the scheduler's choice.</param>
    public static void For(int count, Action<int> body, int maxThreads = -1) =>
        For<object?>(count, () => null, (i, none) =>
        {
            body(i);
            return none;
        }, _ => { }, maxThreads);

    /// <summary>
    /// <see cref="For(int, Action{int}, int)"/> with state per worker thread, as <see cref="Parallel.For{TLocal}(int, int, Func{TLocal}, Func{int, ParallelLoopState, TLocal, TLocal}, Action{TLocal})"/>:
    /// each thread starts from <paramref name="localInit"/>, passes its state through <paramref name="body"/> and hands it
    /// to <paramref name="localFinally"/> (which runs on several threads and must lock what it shares). An index that fails
    /// may leave its thread's state part-updated; the loop then throws, so what the states were merged into is not to be read.
    /// </summary>
    public static void For<TLocal>(int count, Func<TLocal> localInit, Func<int, TLocal, TLocal> body, Action<TLocal> localFinally,
        int maxThreads = -1)
    {
        var gate = new object();
        int firstIndex = int.MaxValue;
        VimException? first = null;
        try
        {
            Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = maxThreads }, localInit, (i, _, local) =>
            {
                if (i > Volatile.Read(ref firstIndex)) return local;
                try
                {
                    return body(i, local);
                }
                catch (VimException e)
                {
                    lock (gate)
                        if (i < firstIndex) (firstIndex, first) = (i, e);
                    return local;
                }
            }, localFinally);
        }
        catch (AggregateException) when (first is not null)
        {
        }
        if (first is not null) ExceptionDispatchInfo.Capture(first).Throw();
    }
}
