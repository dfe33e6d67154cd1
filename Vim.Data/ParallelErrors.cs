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
}
