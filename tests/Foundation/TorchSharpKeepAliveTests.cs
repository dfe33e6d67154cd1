using System.Reflection;
using System.Reflection.Emit;
using System.Runtime.CompilerServices;
using System.Runtime.Loader;
using NUnit.Framework;
using TorchSharp;
using Vim.Tools.Commands;

namespace Vim.Tests.Foundation;

/// <summary>
/// The TorchSharp keep-alive fix (native/tools/TorchSharpKeepAlive, docs/ARCHITECTURE.md): the TorchSharp.dll this
/// process runs is the rewritten one from the build output, every handle it reads from an argument or local is kept
/// alive to every return (checked by <see cref="KeepAliveAudit"/>, an IL reader of its own, not the rewriter's Cecil
/// analysis), the package's own dll fails that audit at the known race, and the rewritten IL compiles.
/// </summary>
public class TorchSharpKeepAliveTests
{
    private static Assembly LoadedTorchSharp => typeof(torch.Tensor).Assembly;

    private static string PackageDll()
    {
        var root = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var version = LoadedTorchSharp.GetName().Version!;
        var path = Path.Combine(root, "torchsharp", $"{version.Major}.{version.Minor}.{version.Build}", "lib", "net8.0", "TorchSharp.dll");
        if (!File.Exists(path)) Assert.Inconclusive($"the TorchSharp package is not in the NuGet cache ({path})");
        return path;
    }

    [Test]
    public void TheLoadedTorchSharpIsTheMarkedCopyInTheBuildOutput()
    {
        Assert.That(KeepAliveStress.IsRewritten(LoadedTorchSharp), Is.True,
            "TorchSharp.dll carries no keep-alive marker: the build did not copy the rewritten dll");
        Assert.That(Path.GetDirectoryName(LoadedTorchSharp.Location), Is.EqualTo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)));

        // Same identity as the package's, so our assemblies bind to it unchanged.
        var package = AssemblyName.GetAssemblyName(PackageDll());
        Assert.That(LoadedTorchSharp.GetName().FullName, Is.EqualTo(package.FullName));
        Assert.That(LoadedTorchSharp.GetName().GetPublicKeyToken(), Is.EqualTo(package.GetPublicKeyToken()).And.Not.Empty);
    }

    [Test]
    public void EveryHandleReadFromAnArgumentOrLocalIsKeptAliveToEveryReturn()
    {
        var audit = new KeepAliveAudit(LoadedTorchSharp);
        Assert.That(audit.HandleOwners, Does.Contain("TorchSharp.Scalar").And.Contain("TorchSharp.torch+Tensor"));
        Assert.That(audit.MethodsReadingHandles, Is.GreaterThan(500), "the audit found too few handle reads to be looking at TorchSharp");
        Assert.That(audit.Violations, Is.Empty, string.Join("\n", audit.Violations.Take(20)));
    }

    [Test]
    public void ThePackageDllFailsTheAuditAtTheKnownRace()
    {
        var context = new AssemblyLoadContext("pristine-torchsharp", isCollectible: true);
        try
        {
            var pristine = context.LoadFromAssemblyPath(PackageDll());
            Assert.That(KeepAliveStress.IsRewritten(pristine), Is.False);
            var audit = new KeepAliveAudit(pristine);
            // Tensor.add(Scalar target, Scalar alpha) passes target.Handle and alpha.Handle to THSTensor_add_scalar with
            // nothing keeping either Scalar alive: the crash in Scalar::toFloat.
            Assert.That(audit.Violations, Has.Some.StartsWith("TorchSharp.torch+Tensor::add(TorchSharp.Scalar, TorchSharp.Scalar): ")
                .And.Some.Contains("'target'"));
            Assert.That(audit.Violations.Count, Is.GreaterThan(500));
        }
        finally
        {
            context.Unload();
        }
    }

    /// <summary>
    /// A keep-alive placed before a <c>ret</c> that a branch jumps to directly (the rewrite inserting before the ret
    /// instead of turning the ret into the first load) leaves the object dead on that path, though every ret is still
    /// preceded by it in instruction order; the audit must see the branch, and accept the same code branching to the
    /// keep-alive's first load.
    /// </summary>
    [TestCase(false, ExpectedResult = false)]
    [TestCase(true, ExpectedResult = true)]
    public bool TheAuditRejectsABranchThatSkipsTheKeepAlive(bool branchToTheRet)
    {
        var image = new MemoryStream();
        var builder = new PersistedAssemblyBuilder(new AssemblyName("KeepAliveAuditProbe"), typeof(object).Assembly);
        var module = builder.DefineDynamicModule("KeepAliveAuditProbe");
        var owner = module.DefineType("Probe.Owner", TypeAttributes.Public | TypeAttributes.Class);
        owner.DefineDefaultConstructor(MethodAttributes.Public);
        var handle = owner.DefineField("handle", typeof(IntPtr), FieldAttributes.Private);
        var finalizer = owner.DefineMethod("Finalize", MethodAttributes.Family | MethodAttributes.Virtual | MethodAttributes.HideBySig, typeof(void), Type.EmptyTypes);
        finalizer.GetILGenerator().Emit(OpCodes.Ret);
        var getter = owner.DefineMethod("get_Handle", MethodAttributes.Public | MethodAttributes.HideBySig | MethodAttributes.SpecialName, typeof(IntPtr), Type.EmptyTypes);
        var getterIl = getter.GetILGenerator();
        getterIl.Emit(OpCodes.Ldarg_0);
        getterIl.Emit(OpCodes.Ldfld, handle);
        getterIl.Emit(OpCodes.Ret);
        owner.DefineProperty("Handle", PropertyAttributes.None, typeof(IntPtr), null).SetGetMethod(getter);
        owner.CreateType();

        var reader = module.DefineType("Probe.Reader", TypeAttributes.Public | TypeAttributes.Abstract | TypeAttributes.Sealed);
        var read = reader.DefineMethod("Read", MethodAttributes.Public | MethodAttributes.Static, typeof(IntPtr), [owner, typeof(bool)]);
        read.DefineParameter(1, ParameterAttributes.None, "owner");
        read.DefineParameter(2, ParameterAttributes.None, "early");
        var il = read.GetILGenerator();
        var keepAlive = il.DefineLabel();
        var ret = il.DefineLabel();
        il.Emit(OpCodes.Ldarg_0);
        il.Emit(OpCodes.Callvirt, getter);
        il.Emit(OpCodes.Ldarg_1);
        il.Emit(OpCodes.Brtrue, branchToTheRet ? ret : keepAlive);
        il.Emit(OpCodes.Nop);
        il.MarkLabel(keepAlive);
        il.Emit(OpCodes.Ldarg_0);
        il.Emit(OpCodes.Call, typeof(GC).GetMethod(nameof(GC.KeepAlive))!);
        il.MarkLabel(ret);
        il.Emit(OpCodes.Ret);
        reader.CreateType();
        builder.Save(image);

        var context = new AssemblyLoadContext("keepalive-audit-probe", isCollectible: true);
        try
        {
            image.Position = 0;
            var audit = new KeepAliveAudit(context.LoadFromStream(image));
            return audit.Violations.Any(v => v.StartsWith("Probe.Reader::Read("));
        }
        finally
        {
            context.Unload();
        }
    }

    [Test]
    public void EveryRewrittenMethodCompiles()
    {
        int compiled = 0, openGeneric = 0;
        foreach (var method in new KeepAliveAudit(LoadedTorchSharp).MethodsWithKeepAlive)
        {
            // An open generic has no code of its own until instantiated; its IL was checked above like any other.
            if (method.ContainsGenericParameters || method.DeclaringType!.ContainsGenericParameters)
            {
                openGeneric++;
                continue;
            }
            Assert.DoesNotThrow(() => RuntimeHelpers.PrepareMethod(method.MethodHandle), $"{method.DeclaringType}::{method}");
            compiled++;
        }
        TestContext.Out.WriteLine($"compiled {compiled} rewritten methods, skipped {openGeneric} open generic ones");
        Assert.That(compiled, Is.GreaterThan(500));
        Assert.That(openGeneric, Is.LessThan(compiled / 10), "most rewritten methods are closed and must have been compiled");
    }
}

/// <summary>
/// Reads every method body of a TorchSharp assembly and reports each method that loads an argument or local, reads its
/// native handle (a call to an IntPtr getter, or a load of an IntPtr field, of a class whose finalizer releases it; or
/// <c>OverloadHelper.ToHandleArray</c> of a tensor list), and can return without a <c>GC.KeepAlive</c> of that argument
/// or local immediately before the <c>ret</c>.
/// </summary>
public sealed class KeepAliveAudit
{
    private const BindingFlags Declared = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance
                                          | BindingFlags.Static | BindingFlags.DeclaredOnly;

    private static readonly Dictionary<short, OpCode> OpCodeByValue = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static).Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(o => o.Value);

    public HashSet<string> HandleOwners { get; } = new();
    public List<string> Violations { get; } = new();
    public List<MethodBase> MethodsWithKeepAlive { get; } = new();
    public int MethodsReadingHandles { get; private set; }

    // Metadata tokens of the handle fields and getters: TorchSharp refers to its own members by these definition tokens.
    private readonly HashSet<int> handleReaders = new();
    private readonly Dictionary<int, bool> keepAliveByToken = new();

    public KeepAliveAudit(Assembly torchSharp)
    {
        var types = torchSharp.GetTypes();
        foreach (var type in types.Where(HasFinalizer))
        {
            HandleOwners.Add(type.FullName!);
            foreach (var field in type.GetFields(Declared).Where(f => !f.IsStatic && f.FieldType == typeof(IntPtr)))
                handleReaders.Add(field.MetadataToken);
            foreach (var property in type.GetProperties(Declared).Where(p => p.PropertyType == typeof(IntPtr)))
                if (property.GetMethod is { IsStatic: false } getter && getter.GetParameters().Length == 0)
                    handleReaders.Add(getter.MetadataToken);
        }
        // The helper that reads the handles of a list of tensors (cat, stack, ...); its span overload takes a value.
        foreach (var helper in types.Where(t => t.FullName == "TorchSharp.OverloadHelper"))
            foreach (var method in helper.GetMethods(Declared).Where(m => m.Name == "ToHandleArray"))
                if (method.GetParameters() is [{ ParameterType.IsValueType: false }])
                    handleReaders.Add(method.MetadataToken);
        foreach (var type in types)
            foreach (var method in type.GetMethods(Declared).Cast<MethodBase>().Concat(type.GetConstructors(Declared)))
                Audit(method);
    }

    private static bool HasFinalizer(Type type)
    {
        for (var t = type; t is not null && t != typeof(object); t = t.BaseType)
            if (t.GetMethod("Finalize", BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.DeclaredOnly, Type.EmptyTypes) is not null)
                return true;
        return false;
    }

    private readonly record struct Instruction(OpCode OpCode, long Operand, int Offset);

    private void Audit(MethodBase method)
    {
        var body = method.GetMethodBody();
        var il = body?.GetILAsByteArray();
        if (il is null) return;
        var (code, entries) = Decode(il);
        // A handler boundary is an entry like a branch target: code from there on runs without what precedes it.
        foreach (var clause in body!.ExceptionHandlingClauses)
        {
            entries.UnionWith([clause.TryOffset + clause.TryLength, clause.HandlerOffset, clause.HandlerOffset + clause.HandlerLength]);
            if (clause.Flags == ExceptionHandlingClauseOptions.Filter) entries.Add(clause.FilterOffset);
        }
        var needed = new SortedSet<string>();
        for (int i = 1; i < code.Count; i++)
            if (ReadsHandle(code[i]) && Variable(method, code[i - 1]) is { } variable)
                needed.Add(variable);
        bool hasKeepAlive = code.Any(x => IsKeepAlive(method, x));
        if (hasKeepAlive) MethodsWithKeepAlive.Add(method);
        if (needed.Count == 0) return;
        MethodsReadingHandles++;
        for (int i = 0; i < code.Count; i++)
        {
            if (code[i].OpCode != OpCodes.Ret) continue;
            var (kept, first) = KeptAliveBefore(method, code, i);
            var missing = needed.Where(v => !kept.Contains(v)).ToList();
            if (missing.Count > 0)
            {
                Violations.Add($"{Describe(method)}: ret #{i} does not keep {string.Join(", ", missing)} alive");
                return;
            }
            // Only the group's first load may be jumped to; a jump past it (to the ret, as when the keep-alive is inserted
            // before a ret that branches target) returns without keeping the rest alive.
            if (entries.FirstOrDefault(at => at > code[first].Offset && at <= code[i].Offset) is var entry and > 0)
            {
                Violations.Add($"{Describe(method)}: a branch or handler boundary at IL_{entry:x4} skips the keep-alive before ret #{i}");
                return;
            }
        }
    }

    /// <summary>
    /// The arguments/locals of the "load x; [box T;] call GC.KeepAlive" groups that end right before a ret, and the index
    /// of the first instruction of those groups (the ret's own when there are none).
    /// </summary>
    private (HashSet<string> Kept, int First) KeptAliveBefore(MethodBase method, List<Instruction> code, int ret)
    {
        var kept = new HashSet<string>();
        int first = ret;
        int i = ret - 1;
        while (i >= 1 && IsKeepAlive(method, code[i]))
        {
            int load = code[i - 1].OpCode == OpCodes.Box ? i - 2 : i - 1;
            if (load < 0 || Variable(method, code[load]) is not { } variable) break;
            kept.Add(variable);
            first = load;
            i = load - 1;
        }
        return (kept, first);
    }

    private static string Describe(MethodBase method) =>
        $"{method.DeclaringType!.FullName}::{method.Name}({string.Join(", ", method.GetParameters().Select(p => p.ParameterType.FullName ?? p.ParameterType.Name))})";

    private static string? Variable(MethodBase method, Instruction x)
    {
        int? argument = x.OpCode.Value switch
        {
            0x02 or 0x03 or 0x04 or 0x05 => x.OpCode.Value - 0x02, // ldarg.0..3
            0x0E => (int)x.Operand, // ldarg.s
            unchecked((short)0xFE09) => (int)x.Operand, // ldarg
            _ => null,
        };
        if (argument is { } a)
        {
            if (!method.IsStatic && a == 0) return "'this'";
            return $"'{method.GetParameters()[method.IsStatic ? a : a - 1].Name}'";
        }
        int? local = x.OpCode.Value switch
        {
            0x06 or 0x07 or 0x08 or 0x09 => x.OpCode.Value - 0x06, // ldloc.0..3
            0x11 => (int)x.Operand, // ldloc.s
            unchecked((short)0xFE0C) => (int)x.Operand, // ldloc
            _ => null,
        };
        return local is { } l ? $"local {l}" : null;
    }

    private bool ReadsHandle(Instruction x) =>
        (x.OpCode == OpCodes.Ldfld || x.OpCode == OpCodes.Call || x.OpCode == OpCodes.Callvirt) && handleReaders.Contains((int)x.Operand);

    private const int MemberReferenceTable = 0x0A;

    private bool IsKeepAlive(MethodBase method, Instruction x)
    {
        // GC.KeepAlive lives in another assembly, so TorchSharp calls it through a member reference.
        if (x.OpCode != OpCodes.Call || (int)x.Operand >>> 24 != MemberReferenceTable) return false;
        int token = (int)x.Operand;
        if (!keepAliveByToken.TryGetValue(token, out var isKeepAlive))
        {
            try
            {
                isKeepAlive = method.Module.ResolveMethod(token) is { Name: nameof(GC.KeepAlive) } callee && callee.DeclaringType == typeof(GC);
            }
            catch (ArgumentException)
            {
                isKeepAlive = false; // a member of a generic instantiation, which needs the caller's type arguments: not GC's
            }
            keepAliveByToken[token] = isKeepAlive;
        }
        return isKeepAlive;
    }

    /// <summary>The instructions, and the offsets that branches and switches jump to.</summary>
    private static (List<Instruction> Code, HashSet<int> JumpTargets) Decode(byte[] il)
    {
        var code = new List<Instruction>();
        var targets = new HashSet<int>();
        for (int at = 0; at < il.Length;)
        {
            int offset = at;
            short value = il[at] == 0xFE ? (short)(0xFE00 | il[at + 1]) : il[at];
            at += il[at] == 0xFE ? 2 : 1;
            var opCode = OpCodeByValue[value];
            long operand = 0;
            switch (opCode.OperandType)
            {
                case OperandType.InlineNone: break;
                case OperandType.ShortInlineBrTarget:
                    operand = (sbyte)il[at]; at += 1; targets.Add(at + (int)operand); break;
                case OperandType.InlineBrTarget:
                    operand = BitConverter.ToInt32(il, at); at += 4; targets.Add(at + (int)operand); break;
                case OperandType.ShortInlineI or OperandType.ShortInlineVar:
                    operand = il[at]; at += 1; break;
                case OperandType.InlineVar:
                    operand = BitConverter.ToUInt16(il, at); at += 2; break;
                case OperandType.InlineI8 or OperandType.InlineR:
                    operand = BitConverter.ToInt64(il, at); at += 8; break;
                case OperandType.InlineSwitch:
                    int count = BitConverter.ToInt32(il, at);
                    int next = at + 4 + 4 * count;
                    for (int k = 0; k < count; k++) targets.Add(next + BitConverter.ToInt32(il, at + 4 + 4 * k));
                    at = next; break;
                default:
                    operand = BitConverter.ToInt32(il, at); at += 4; break;
            }
            code.Add(new Instruction(opCode, operand, offset));
        }
        return (code, targets);
    }
}
