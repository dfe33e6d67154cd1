namespace Vim.Tests;

/// <summary>
/// A model factory for a task that records whether the task called it: tests of data checks use it to show that bad
/// data was refused before any model was built.
/// </summary>
public sealed class ModelFactoryProbe<TModel>(Func<TModel> create)
{
    public bool Called { get; private set; }

    public TModel Create()
    {
        Called = true;
        return create();
    }
}
