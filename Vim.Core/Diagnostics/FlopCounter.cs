using System.Linq.Expressions;
using System.Reflection;
using TorchSharp;
using static TorchSharp.torch;

namespace Vim.Core.Diagnostics;

/// <summary>
/// Counts the FLOPs of real forward passes of a model (see <see cref="FlopFormulas"/> for the convention: one fused
/// multiply-add = one FLOP), by module path and by operator, the way fvcore's FlopCountAnalysis attributes an operator
/// to the innermost module whose call runs it.
/// </summary>
/// <remarks>
/// <para>While a counter is active on a thread, it holds a stack of module scopes. Every module of the model gets a
/// forward pre-hook that opens its scope and a forward hook that closes it; standard TorchSharp layers (Linear,
/// convolutions, norms, adaptive average pooling, Upsample) are counted in that hook from their input and output
/// shapes (<see cref="FlopFormulas.StandardLayer"/>). TorchSharp 0.107 runs hooks only in <c>Module.call</c>, not in
/// <c>forward</c>, so the models invoke their submodules with <c>call</c> (PyTorch's <c>module(x)</c>).</para>
/// <para>Our own operators that are not standard modules (selective scan, fused conv + SiLU, attention, RoIAlign,
/// RMSNorm, interpolation) report themselves with <see cref="Add"/>; code that runs a module's computation other
/// than through <c>call</c> (a mixer reading its projections' weights, the in-place inference path, a method other
/// than forward) opens that module's scope with <see cref="Within"/>. Both cost one thread-static read when no
/// counter is active.</para>
/// <para>Disposing removes every hook, so later forwards are neither counted nor slowed.</para>
/// </remarks>
public sealed class FlopCounter : IDisposable
{
    [ThreadStatic] private static FlopCounter? active;

    private readonly Dictionary<nn.Module, string> paths = new(ReferenceEqualityComparer.Instance);
    private readonly List<(string Path, nn.Module Module)> modulesInOrder = new();
    private readonly List<Action> hookRemovers = new();
    private readonly Stack<string> scopes = new();
    private readonly Dictionary<string, long> byModule = new();
    private readonly Dictionary<string, long> byOperator = new();
    private readonly HashSet<string> entered = new();
    private bool disposed;

    private FlopCounter(nn.Module model)
    {
        AddPaths(model, "");
        try
        {
            foreach (var (module, path) in paths)
                AttachHooks(module, path);
        }
        catch
        {
            RemoveHooks();
            throw;
        }
    }

    /// <summary>Every module under <paramref name="module"/> depth first, each child right after its parent (TorchSharp's
    /// named_modules lists a level at a time); a module registered twice keeps its first path.</summary>
    private void AddPaths(nn.Module module, string path)
    {
        if (!paths.TryAdd(module, path)) return;
        modulesInOrder.Add((path, module));
        foreach (var (name, child) in module.named_children())
            AddPaths(child, path.Length == 0 ? name : path + "." + name);
    }

    /// <summary>Starts counting the forwards of <paramref name="model"/> run on this thread until disposed.</summary>
    /// <exception cref="InvalidOperationException">Another counter is active on this thread.</exception>
    public static FlopCounter Start(nn.Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (active is not null) throw new InvalidOperationException("a FlopCounter is already active on this thread; dispose it first");
        var counter = new FlopCounter(model);
        active = counter;
        return counter;
    }

    /// <summary>True while a counter is active on this thread: operators that need extra work to count themselves
    /// (reading RoI sizes back from the device) do it only then.</summary>
    public static bool IsActive => active is not null;

    /// <summary>Adds <paramref name="flops"/> of operator <paramref name="op"/> to the innermost open module scope.</summary>
    public static void Add(string op, long flops)
    {
        var counter = active;
        if (counter is null) return;
        string path = counter.scopes.Count > 0 ? counter.scopes.Peek() : "";
        counter.byModule[path] = counter.byModule.GetValueOrDefault(path) + flops;
        counter.byOperator[op] = counter.byOperator.GetValueOrDefault(op) + flops;
    }

    /// <summary>
    /// Opens <paramref name="module"/>'s scope until the returned token is disposed, for code that runs the module's
    /// computation without going through its <c>call</c>. Does nothing when no counter is active or the module is not
    /// part of the counted model.
    /// </summary>
    public static Scope Within(nn.Module module)
    {
        var counter = active;
        if (counter is null || !counter.paths.TryGetValue(module, out var path)) return default;
        counter.Enter(path);
        return new Scope(counter);
    }

    /// <summary>FLOPs attributed to each module path itself (not its descendants); "" is the model.</summary>
    public IReadOnlyDictionary<string, long> ByModule => byModule;

    /// <summary>FLOPs per operator ("linear", "conv", "selective_scan", …).</summary>
    public IReadOnlyDictionary<string, long> ByOperator => byOperator;

    /// <summary>Every FLOP counted so far.</summary>
    public long Total => byModule.Values.Sum();

    /// <summary>Module paths whose scope was opened by at least one counted forward.</summary>
    public IReadOnlySet<string> EnteredModules => entered;

    /// <summary>Every module of the model once, with its path ("" is the model), depth first in registration order.</summary>
    public IReadOnlyList<(string Path, nn.Module Module)> Modules => modulesInOrder;

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        RemoveHooks();
        if (ReferenceEquals(active, this)) active = null;
    }

    private void Enter(string path)
    {
        scopes.Push(path);
        entered.Add(path);
    }

    private void Exit()
    {
        if (scopes.Count > 0) scopes.Pop();
    }

    private void CountStandardLayer(nn.Module layer, Tensor input, Tensor output)
    {
        if (FlopFormulas.StandardLayer(layer, input, output) is var (op, flops)) Add(op, flops);
    }

    private void RemoveHooks()
    {
        foreach (var remove in hookRemovers) remove();
        hookRemovers.Clear();
    }

    /// <summary>
    /// Hooks that open and close the module's scope (and count a standard layer). Single-tensor modules get typed
    /// hooks; modules with other forward signatures get hooks of their own delegate types built by reflection;
    /// plain <c>nn.Module</c>s (no forward) have no hooks and rely on <see cref="Within"/> in their entry points.
    /// </summary>
    private void AttachHooks(nn.Module module, string path)
    {
        if (module is nn.Module<Tensor, Tensor> tensorModule)
        {
            // Returning null leaves the input and the output as they are.
            var pre = tensorModule.register_forward_pre_hook((_, _) =>
            {
                if (IsCurrent) Enter(path);
                return null!;
            });
            var post = tensorModule.register_forward_hook((layer, input, output) =>
            {
                if (!IsCurrent) return null!;
                CountStandardLayer(layer, input, output);
                Exit();
                return null!;
            });
            hookRemovers.Add(pre.remove);
            hookRemovers.Add(post.remove);
            return;
        }
        var hookable = HookableBase(module.GetType());
        if (hookable is null) return;
        var types = hookable.GetGenericArguments();
        foreach (var (register, hookType, enter) in new[] { ("register_forward_pre_hook", types[0], true), ("register_forward_hook", types[1], false) })
        {
            var hook = BuildScopeHook(hookType, path, enter);
            var remover = hookable.GetMethod(register, [hookType])!.Invoke(module, [hook])!;
            var remove = remover.GetType().GetMethod("remove")!;
            hookRemovers.Add(() => remove.Invoke(remover, null));
        }
    }

    /// <summary>Hooks stay registered only while this counter lives, but a forward on another thread must not touch it.</summary>
    private bool IsCurrent => ReferenceEquals(active, this);

    private void EnterIfCurrent(string path)
    {
        if (IsCurrent) Enter(path);
    }

    private void ExitIfCurrent()
    {
        if (IsCurrent) Exit();
    }

    private static Type? HookableBase(Type? type)
    {
        for (; type is not null; type = type.BaseType)
            if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(nn.HookableModule<,>))
                return type;
        return null;
    }

    /// <summary>
    /// A delegate of <paramref name="hookType"/> (Func&lt;module, inputs…, [result,] returned&gt;) that enters or exits
    /// the scope and hands back what leaves the call unchanged: the argument of the returned type itself where there is
    /// one (the input of a single-input pre-hook, the result of a post-hook), else null (a multi-input pre-hook's
    /// nullable tuple).
    /// </summary>
    private Delegate BuildScopeHook(Type hookType, string path, bool enter)
    {
        var invoke = hookType.GetMethod("Invoke")!;
        var parameters = invoke.GetParameters().Select(p => Expression.Parameter(p.ParameterType, p.Name)).ToArray();
        var action = enter
            ? Expression.Call(Expression.Constant(this), typeof(FlopCounter).GetMethod(nameof(EnterIfCurrent), BindingFlags.NonPublic | BindingFlags.Instance)!, Expression.Constant(path))
            : Expression.Call(Expression.Constant(this), typeof(FlopCounter).GetMethod(nameof(ExitIfCurrent), BindingFlags.NonPublic | BindingFlags.Instance)!);
        var unchanged = (Expression?)parameters.Skip(1).LastOrDefault(p => p.Type == invoke.ReturnType) ?? Expression.Default(invoke.ReturnType);
        return Expression.Lambda(hookType, Expression.Block(action, unchanged), parameters).Compile();
    }

    /// <summary>An open module scope (see <see cref="Within"/>); default when nothing was opened.</summary>
    public readonly struct Scope : IDisposable
    {
        private readonly FlopCounter? counter;

        internal Scope(FlopCounter counter) => this.counter = counter;

        public void Dispose()
        {
            if (counter is not null && counter.IsCurrent) counter.Exit();
        }
    }
}
