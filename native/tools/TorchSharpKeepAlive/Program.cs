using Mono.Cecil;
using Mono.Cecil.Cil;
using Mono.Cecil.Rocks;

namespace Vim.Build.TorchSharpKeepAlive;

/// <summary>
/// Rewrites a TorchSharp.dll so that every method which reads the native handle of an argument or local keeps that
/// object alive until it returns. TorchSharp 0.107 passes <c>scalar.Handle</c> / <c>tensor.Handle</c> to libtorch as a
/// bare IntPtr; the object is dead to the JIT from that read on, so a GC during the native call can run its finalizer,
/// which frees the native object libtorch is still reading (c10 "Expected false to be true" in Scalar::toFloat, or worse).
/// A <c>GC.KeepAlive(x)</c> before each <c>ret</c> extends x's lifetime past the call.
/// docs/ARCHITECTURE.md, "The TorchSharp keep-alive fix".
/// </summary>
public static class Program
{
    /// <summary>Assembly metadata key that marks a patched dll (read by `vim env` and the tests: KeepAliveStress.RewriteMarker); its value names the rewrite's revision.</summary>
    public const string MarkerKey = "VimDense.TorchSharpKeepAlive";
    const string MarkerValue = "1";

    public static int Main(string[] args)
    {
        if (!(args is ["apply", _] or ["apply", _, _] or ["inspect", _]))
        {
            Console.Error.WriteLine("usage: TorchSharpKeepAlive apply SOURCE/TorchSharp.dll [DESTINATION/TorchSharp.dll]");
            Console.Error.WriteLine("       TorchSharpKeepAlive inspect PATH/TorchSharp.dll");
            return 2;
        }
        var path = args[1];
        if (!File.Exists(path))
        {
            Console.Error.WriteLine($"TorchSharpKeepAlive: {path}: no such file");
            return 1;
        }
        try
        {
            return args[0] == "apply" ? Apply(path, args.Length == 3 ? args[2] : path) : Inspect(path);
        }
        catch (Exception e) when (e is BadImageFormatException or IOException or InvalidOperationException)
        {
            Console.Error.WriteLine($"TorchSharpKeepAlive: {path}: {e.Message}");
            return 1;
        }
    }

    /// <summary>Writes the patched <paramref name="source"/> to <paramref name="destination"/> (may be the same file).</summary>
    static int Apply(string source, string destination)
    {
        // Read fully into memory: the source may be the destination, which the rename below replaces.
        using var assembly = AssemblyDefinition.ReadAssembly(new MemoryStream(File.ReadAllBytes(source)));
        string outcome = "already patched";
        if (IsMarked(assembly))
        {
            if (Path.GetFullPath(source) == Path.GetFullPath(destination))
            {
                Console.WriteLine($"TorchSharpKeepAlive: {source}: {outcome}");
                return 0;
            }
        }
        else
        {
            outcome = KeepAliveRewriter.Rewrite(assembly.MainModule).ToString();
            Mark(assembly);
        }
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(destination))!);
        // A temporary file and a rename: a build reading the dll at the same moment never sees half a file, and a hard
        // link into the NuGet cache is replaced, never written through.
        var temporary = $"{destination}.keepalive-{Environment.ProcessId}.tmp";
        assembly.Write(temporary);
        File.Move(temporary, destination, overwrite: true);
        Console.WriteLine($"TorchSharpKeepAlive: {source} -> {destination}: {outcome}");
        return 0;
    }

    static int Inspect(string path)
    {
        using var assembly = AssemblyDefinition.ReadAssembly(path);
        Console.WriteLine(IsMarked(assembly) ? "marked: yes" : "marked: no");
        var owners = HandleOwners.Find(assembly.MainModule);
        foreach (var owner in owners.Types.OrderBy(t => t.FullName))
            Console.WriteLine($"handle owner: {owner.FullName}");
        foreach (var reader in owners.Readers.OrderBy(r => r))
            Console.WriteLine($"handle read: {reader}");
        var report = KeepAliveRewriter.Rewrite(assembly.MainModule);
        foreach (var method in report.MethodsReadingTemporaries)
            Console.WriteLine($"handle read on a temporary: {method}");
        Console.WriteLine(report);
        return 0;
    }

    static bool IsMarked(AssemblyDefinition assembly) =>
        assembly.CustomAttributes.Any(a => a.AttributeType.FullName == "System.Reflection.AssemblyMetadataAttribute"
                                           && a.ConstructorArguments.Count == 2
                                           && (string)a.ConstructorArguments[0].Value == MarkerKey);

    static void Mark(AssemblyDefinition assembly)
    {
        var module = assembly.MainModule;
        var attributeType = new TypeReference("System.Reflection", "AssemblyMetadataAttribute", module, module.TypeSystem.CoreLibrary);
        var constructor = new MethodReference(".ctor", module.TypeSystem.Void, attributeType) { HasThis = true };
        constructor.Parameters.Add(new ParameterDefinition(module.TypeSystem.String));
        constructor.Parameters.Add(new ParameterDefinition(module.TypeSystem.String));
        var marker = new CustomAttribute(constructor);
        marker.ConstructorArguments.Add(new CustomAttributeArgument(module.TypeSystem.String, MarkerKey));
        marker.ConstructorArguments.Add(new CustomAttributeArgument(module.TypeSystem.String, MarkerValue));
        assembly.CustomAttributes.Add(marker);
    }
}

/// <summary>
/// The types whose finalizer releases a native handle (a class that overrides <c>Finalize</c>, or derives from one
/// that does), and the members through which code reads that handle: an IntPtr field, or a property getter returning
/// IntPtr, declared on such a type, and <c>OverloadHelper.ToHandleArray(IList&lt;Tensor&gt;)</c>.
/// </summary>
sealed class HandleOwners
{
    public HashSet<TypeDefinition> Types { get; } = new();
    public HashSet<string> Readers { get; } = new();

    public static HandleOwners Find(ModuleDefinition module)
    {
        var owners = new HandleOwners();
        var all = module.GetTypes().ToList();
        foreach (var type in all)
            if (DefinesOrInheritsFinalizer(type))
                owners.Types.Add(type);
        foreach (var type in owners.Types)
        {
            foreach (var field in type.Fields)
                if (!field.IsStatic && IsNativePointer(field.FieldType))
                    owners.Readers.Add(field.FullName);
            foreach (var method in type.Methods)
                if (method.IsGetter && !method.IsStatic && method.Parameters.Count == 0 && IsNativePointer(method.ReturnType))
                    owners.Readers.Add(method.FullName);
        }
        // TorchSharp's one helper that reads the handles of a list of tensors (cat, stack, ...): keeping the list alive
        // keeps its tensors alive. Its span overload takes a value, which cannot be kept alive this way.
        foreach (var helper in all.Where(t => t.FullName == "TorchSharp.OverloadHelper"))
            foreach (var method in helper.Methods.Where(m => m.Name == "ToHandleArray" && m.Parameters.Count == 1))
                if (!method.Parameters[0].ParameterType.IsValueType)
                    owners.Readers.Add(method.FullName);
        return owners;
    }

    static bool DefinesOrInheritsFinalizer(TypeDefinition? type)
    {
        for (; type != null; type = Resolve(type.BaseType))
            if (type.Methods.Any(m => m.Name == "Finalize" && m.IsVirtual && !m.HasParameters && !m.IsAbstract))
                return true;
        return false;
    }

    // Only types of this module matter: a finalizer that frees a TorchSharp handle lives in TorchSharp.
    static TypeDefinition? Resolve(TypeReference? type) =>
        type is null || type.Scope is not ModuleDefinition ? null : type.Resolve();

    static bool IsNativePointer(TypeReference type) => type.FullName == "System.IntPtr";

    public bool IsHandleRead(Instruction instruction) => instruction.OpCode.Code switch
    {
        Code.Ldfld => instruction.Operand is FieldReference field && Readers.Contains(field.FullName),
        Code.Call or Code.Callvirt => instruction.Operand is MethodReference method && Readers.Contains(method.FullName),
        _ => false,
    };
}

/// <summary>Inserts <c>GC.KeepAlive(x)</c> before every <c>ret</c> for each argument or local x whose handle the method reads.</summary>
static class KeepAliveRewriter
{
    public sealed record Report(int MethodsPatched, int VariablesKeptAlive, int HandleReadsOnTemporaries, List<string> MethodsReadingTemporaries)
    {
        public override string ToString() =>
            $"{MethodsPatched} methods patched, {VariablesKeptAlive} arguments/locals kept alive " +
            $"({HandleReadsOnTemporaries} handle reads are on values that are neither, which the rewrite cannot reach)";
    }

    public static Report Rewrite(ModuleDefinition module)
    {
        var owners = HandleOwners.Find(module);
        var gcType = new TypeReference("System", "GC", module, module.TypeSystem.CoreLibrary);
        var keepAlive = new MethodReference("KeepAlive", module.TypeSystem.Void, gcType);
        keepAlive.Parameters.Add(new ParameterDefinition(module.TypeSystem.Object));
        int methods = 0, variables = 0, temporaries = 0;
        var readingTemporaries = new List<string>();
        foreach (var type in module.GetTypes())
            foreach (var method in type.Methods)
            {
                if (!method.HasBody) continue;
                var (kept, onTemporaries) = RewriteMethod(method, owners, keepAlive);
                temporaries += onTemporaries;
                if (onTemporaries > 0) readingTemporaries.Add(method.FullName);
                if (kept == 0) continue;
                methods++;
                variables += kept;
            }
        return new Report(methods, variables, temporaries, readingTemporaries);
    }

    static (int Kept, int OnTemporaries) RewriteMethod(MethodDefinition method, HandleOwners owners, MethodReference keepAlive)
    {
        var body = method.Body;
        var instructions = body.Instructions;
        var parameters = new List<ParameterDefinition>();
        var locals = new List<VariableDefinition>();
        int onTemporaries = 0;
        for (int i = 0; i < instructions.Count; i++)
        {
            if (!owners.IsHandleRead(instructions[i])) continue;
            var source = i > 0 ? instructions[i - 1] : null;
            if (source?.OpCode.Code is Code.Ldarg_0 or Code.Ldarg_1 or Code.Ldarg_2 or Code.Ldarg_3 or Code.Ldarg_S or Code.Ldarg
                && Parameter(method, source) is { } parameter && CanKeepAlive(parameter.ParameterType))
            {
                if (!parameters.Contains(parameter)) parameters.Add(parameter);
            }
            else if (source?.OpCode.Code is Code.Ldloc_0 or Code.Ldloc_1 or Code.Ldloc_2 or Code.Ldloc_3 or Code.Ldloc_S or Code.Ldloc
                     && Local(body, source) is { } local && CanKeepAlive(local.VariableType))
            {
                if (!locals.Contains(local)) locals.Add(local);
            }
            else
                onTemporaries++;
        }
        if (parameters.Count == 0 && locals.Count == 0) return (0, onTemporaries);

        // Long branch forms first: the inserted instructions can push a short branch out of its range.
        body.SimplifyMacros();
        var il = body.GetILProcessor();
        foreach (var ret in instructions.Where(x => x.OpCode == OpCodes.Ret).ToList())
        {
            // "tail. call; ret" must stay adjacent; the call is no longer in tail position, so the prefix goes.
            if (ret.Previous?.Previous is { OpCode.Code: Code.Tail } tail)
                tail.OpCode = OpCodes.Nop;
            var sequence = new List<Instruction>();
            foreach (var parameter in parameters)
            {
                sequence.Add(il.Create(OpCodes.Ldarg, parameter));
                AddKeepAlive(sequence, il, parameter.ParameterType, keepAlive);
            }
            foreach (var local in locals)
            {
                sequence.Add(il.Create(OpCodes.Ldloc, local));
                AddKeepAlive(sequence, il, local.VariableType, keepAlive);
            }
            // The ret itself becomes the first load, so branches to it and handler ends at it stay valid.
            ret.OpCode = sequence[0].OpCode;
            ret.Operand = sequence[0].Operand;
            var last = ret;
            foreach (var instruction in sequence.Skip(1).Append(il.Create(OpCodes.Ret)))
            {
                il.InsertAfter(last, instruction);
                last = instruction;
            }
        }
        body.OptimizeMacros();
        return (parameters.Count + locals.Count, onTemporaries);
    }

    static void AddKeepAlive(List<Instruction> sequence, ILProcessor il, TypeReference type, MethodReference keepAlive)
    {
        if (type.IsGenericParameter) sequence.Add(il.Create(OpCodes.Box, type));
        sequence.Add(il.Create(OpCodes.Call, keepAlive));
    }

    // A by-ref argument or a value type holds no object to keep alive.
    static bool CanKeepAlive(TypeReference type) => !type.IsByReference && !type.IsPointer && (type.IsGenericParameter || !type.IsValueType);

    static ParameterDefinition? Parameter(MethodDefinition method, Instruction load)
    {
        if (load.Operand is ParameterDefinition named) return named;
        int index = load.OpCode.Code - Code.Ldarg_0;
        if (!method.HasThis) return method.Parameters[index];
        return index == 0 ? method.Body.ThisParameter : method.Parameters[index - 1];
    }

    static VariableDefinition? Local(MethodBody body, Instruction load) =>
        load.Operand as VariableDefinition ?? body.Variables[load.OpCode.Code - Code.Ldloc_0];
}
