namespace Vim.Core;

/// <summary>
/// An error meant for the user: the message names the file, argument or config key at fault and
/// what was expected. The CLI prints it without a stack trace.
/// </summary>
public sealed class VimException(string message, Exception? inner = null) : Exception(message, inner);
