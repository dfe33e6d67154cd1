using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace Vim.Core.Checkpoints;

/// <summary>
/// Reads the zip archive torch.save writes: ARCHIVE/data.pkl (the object tree, storages replaced by
/// persistent ids), ARCHIVE/data/KEY (raw storages), ARCHIVE/byteorder. The archive folder is named
/// after the file torch.save wrote to, so it is found by looking for data.pkl.
/// </summary>
internal sealed class TorchZipReader
{
    /// <summary>The pickle of a state dict is kilobytes to megabytes; a header claiming more is not believed.</summary>
    private const long MaxPickleBytes = 1L << 30;

    /// <summary>'little' or 'big'.</summary>
    private const long MaxByteOrderBytes = 64;

    /// <summary>Deflate expands by at most about 1032:1, so a longer claim is false.</summary>
    private const long MaxDeflateRatio = 1100;

    private readonly string _file;
    private readonly ZipArchive _zip;
    private readonly string _prefix;
    private readonly string _pickleEntry;
    private readonly bool _bigEndian;
    private readonly long _archiveLength;
    private readonly Dictionary<string, TorchStorageRef> _storageRefs = [];
    private readonly Dictionary<string, Tensor> _storages = [];

    private TorchZipReader(string file, ZipArchive zip, ZipArchiveEntry pickle, long archiveLength)
    {
        _file = file;
        _archiveLength = archiveLength;
        _zip = zip;
        _pickleEntry = pickle.FullName;
        _prefix = pickle.FullName[..^"data.pkl".Length];
        _bigEndian = ReadByteOrder();
    }

    public static CheckpointFile Read(string path)
    {
        var file = Path.GetFileName(path);
        using var stream = File.OpenRead(path);
        ZipArchive zip;
        try
        {
            zip = new ZipArchive(stream, ZipArchiveMode.Read);
            // The central directory is read at the first look at the entries; its damage must be reported here too.
            _ = zip.Entries.Count;
        }
        catch (InvalidDataException e)
        {
            throw new VimException($"{file}: starts like a torch.save zip archive but the zip structure is unreadable (truncated or corrupt file?): {e.Message}", e);
        }
        using (zip)
        {
            var pickle = zip.Entries.Where(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) || e.FullName == "data.pkl")
                             .OrderBy(e => e.FullName.Count(c => c == '/'))
                             .FirstOrDefault()
                         ?? throw new VimException($"{file}: zip archive has no '<archive>/data.pkl' entry, so it is not a torch.save checkpoint (entries: {string.Join(", ", zip.Entries.Take(8).Select(e => e.FullName))})");
            return new TorchZipReader(file, zip, pickle, stream.Length).Load(path);
        }
    }

    private CheckpointFile Load(string path)
    {
        var pickleBytes = ReadEntry(_zip.GetEntry(_pickleEntry)!, MaxPickleBytes);
        var source = $"{_file}: entry '{_pickleEntry}'";
        var root = new RestrictedUnpickler(pickleBytes, source, PersistentLoad).Load();

        using var scope = NewDisposeScope();
        var loaded = new Dictionary<PendingTensor, Tensor>(ReferenceEqualityComparer.Instance);
        var entries = new List<CheckpointEntry>();
        root = CheckpointTree.Visit(root, (name, value) =>
        {
            if (value is PendingTensor pending)
            {
                if (!loaded.TryGetValue(pending, out var tensor))
                    loaded[pending] = tensor = Materialise(pending, name);
                value = tensor;
            }
            entries.Add(new CheckpointEntry(name, value));
            return value;
        }, CheckpointTree.StepBudget(pickleBytes.Length), source);
        // Everything else made here (whole storages, intermediate views) dies with the scope; the
        // loaded tensors keep the storage memory they alias alive.
        var owned = loaded.Values.ToList();
        scope.Detach(owned);
        return new CheckpointFile(path, CheckpointFormat.TorchZip, root, entries, owned, new Dictionary<string, string>());
    }

    private object? PersistentLoad(object? pid, long pickleOffset)
    {
        VimException Fail(string what) => new($"{_file}: entry '{_pickleEntry}': pickle offset {pickleOffset}: {what}");

        if (pid is not object?[] { Length: 5 } t || t[0] is not "storage")
            throw Fail("persistent id is not ('storage', StorageType, key, location, numel)");
        if (t[1] is not PickleGlobal type || type.Module != "torch" || !CheckpointDTypes.TryFromStorageClass(type.Name, out var dtype))
            throw Fail($"storage type {t[1]} is not supported (supported: torch.{CheckpointDTypes.SupportedStorageClasses.Replace(", ", ", torch.")})");
        var key = t[2] switch
        {
            string s => s,
            long l => l.ToString(System.Globalization.CultureInfo.InvariantCulture),
            _ => throw Fail($"storage key {t[2]} is not a string"),
        };
        if (t[4] is not long numel || numel < 0)
            throw Fail($"storage '{key}' declares element count {t[4]}, expected a non-negative integer");
        if (TensorExtent.Bytes([numel], CheckpointDTypes.ElementSize(dtype)) is null)
            throw Fail($"storage '{key}' declares {numel} {CheckpointDTypes.TorchName(dtype)} elements, more bytes than a file can hold");
        if (_storageRefs.TryGetValue(key, out var existing))
        {
            if (existing.DType != dtype)
                throw Fail($"storage '{key}' is used as {CheckpointDTypes.TorchName(existing.DType)} and as {CheckpointDTypes.TorchName(dtype)}");
            return existing;
        }
        return _storageRefs[key] = new TorchStorageRef(key, dtype, t[3] as string ?? "cpu", numel);
    }

    private Tensor Materialise(PendingTensor pending, string name)
    {
        var storageRef = pending.Storage;
        var entryName = _prefix + "data/" + storageRef.Key;
        var entry = _zip.GetEntry(entryName)
                    ?? throw new VimException($"{_file}: entry '{entryName}' is missing; tensor '{name}' needs it ({pending.Describe()})");
        var neededBytes = pending.RequiredStorageBytes;
        if (entry.Length < neededBytes)
            throw new VimException($"{_file}: storage '{entryName}' holds {entry.Length} bytes, tensor '{name}' needs {neededBytes} ({pending.Describe()})");

        var storage = LoadStorage(storageRef, entry, name);
        if (pending.ElementCount == 0)
            return empty(pending.Shape, dtype: storageRef.DType);
        // Runs inside the caller's dispose scope, so the intermediate view needs no explicit disposal.
        var view = storage.as_strided(pending.Shape, pending.Stride, pending.StorageOffset);
        // A view with more elements than its storage (expand(), stride 0, overlapping windows) stays a view of it, as
        // torch.load's set_ leaves it: copying it out would turn 4 stored bytes into as many gigabytes as its shape says.
        if (pending.ElementCount > storage.NumberOfElements)
            return view;
        try
        {
            if (!view.is_contiguous())
                return view.contiguous();
            // A view of the whole storage aliases it (as in PyTorch); a contiguous slice is copied so a
            // small tensor does not pin a large shared storage.
            var whole = pending.StorageOffset == 0 && pending.ElementCount == storage.NumberOfElements;
            return whole ? view : view.clone();
        }
        catch (Exception e) when (IsAllocationFailure(e))
        {
            throw new VimException($"{_file}: tensor '{name}' ({pending.Describe()}) could not be allocated: {e.Message}", e);
        }
    }

    private Tensor LoadStorage(TorchStorageRef storageRef, ZipArchiveEntry entry, string tensorName)
    {
        if (_storages.TryGetValue(storageRef.Key, out var cached))
            return cached;
        var elementSize = CheckpointDTypes.ElementSize(storageRef.DType);
        var declaredBytes = storageRef.DeclaredElements * elementSize;
        if (entry.Length != declaredBytes)
            throw new VimException($"{_file}: storage '{entry.FullName}' holds {entry.Length} bytes, but its persistent id declares {storageRef.DeclaredElements} {CheckpointDTypes.TorchName(storageRef.DType)} elements ({declaredBytes} bytes)");
        Tensor storage;
        try
        {
            CheckClaimedLength(entry, long.MaxValue);
            // Allocated in the caller's dispose scope, which frees it if the read below fails.
            storage = empty(storageRef.DeclaredElements, dtype: storageRef.DType);
            using var s = entry.Open();
            TensorBytes.ReadInto(storage, s, _bigEndian);
        }
        catch (Exception e) when (IsReadFailure(e))
        {
            throw new VimException($"{_file}: storage '{entry.FullName}' could not be read ({declaredBytes} bytes expected): {e.Message}", e);
        }
        catch (Exception e) when (IsAllocationFailure(e))
        {
            throw new VimException($"{_file}: storage '{entry.FullName}' of tensor '{tensorName}' ({declaredBytes} bytes) could not be allocated: {e.Message}", e);
        }
        _storages[storageRef.Key] = storage;
        return storage;
    }

    private bool ReadByteOrder()
    {
        var entry = _zip.GetEntry(_prefix + "byteorder");
        if (entry is null)
            return false; // written since PyTorch 1.13; older files are little-endian
        var text = Encoding.ASCII.GetString(ReadEntry(entry, MaxByteOrderBytes)).Trim();
        return text switch
        {
            "little" => false,
            "big" => true,
            _ => throw new VimException($"{_file}: entry '{entry.FullName}' holds '{text}', expected 'little' or 'big'"),
        };
    }

    private byte[] ReadEntry(ZipArchiveEntry entry, long maxLength)
    {
        try
        {
            CheckClaimedLength(entry, maxLength);
            using var s = entry.Open();
            var buffer = new byte[entry.Length];
            s.ReadExactly(buffer);
            return buffer;
        }
        catch (Exception e) when (IsReadFailure(e))
        {
            throw new VimException($"{_file}: entry '{entry.FullName}' could not be read ({entry.Length} bytes expected): {e.Message}", e);
        }
        catch (Exception e) when (IsAllocationFailure(e))
        {
            throw new VimException($"{_file}: entry '{entry.FullName}' ({entry.Length} bytes) could not be allocated: {e.Message}", e);
        }
    }

    /// <summary>
    /// Checks the uncompressed length an entry's zip header claims before a buffer that long is allocated: the claim
    /// is only a number in the header. A stored entry's length is its compressed length, which must fit in the file. A
    /// longer claim must be within what deflate can expand to, and is then confirmed by decompressing the entry once,
    /// counting; torch.save stores every record, so only archives other writers compressed pay that second pass.
    /// </summary>
    private void CheckClaimedLength(ZipArchiveEntry entry, long maxLength)
    {
        if (entry.Length > maxLength)
            throw new VimException($"{_file}: entry '{entry.FullName}' claims {entry.Length} bytes, more than the {maxLength} such an entry may hold; the zip directory is corrupt or the file is not a torch.save checkpoint");
        if (entry.CompressedLength > _archiveLength)
            throw new VimException($"{_file}: entry '{entry.FullName}' claims {entry.CompressedLength} compressed bytes, more than the whole file ({_archiveLength} bytes); the zip directory is corrupt or the file truncated");
        if (entry.Length <= entry.CompressedLength)
            return;
        if (entry.Length / MaxDeflateRatio > entry.CompressedLength)
            throw new VimException($"{_file}: entry '{entry.FullName}' claims {entry.Length} bytes from {entry.CompressedLength} compressed bytes, more than deflate expands to (about 1000:1); the zip directory is corrupt");
        var buffer = new byte[1 << 16];
        long actual = 0;
        using (var s = entry.Open())
            for (int n; actual <= entry.Length && (n = s.Read(buffer)) > 0;)
                actual += n;
        if (actual != entry.Length)
            throw new VimException($"{_file}: entry '{entry.FullName}' holds {(actual > entry.Length ? "at least " : "")}{actual} bytes, but its zip header claims {entry.Length}; the zip directory is corrupt");
    }

    private static bool IsReadFailure(Exception e) =>
        e is InvalidDataException or EndOfStreamException or IOException or NotSupportedException; // NotSupported: compression methods other than deflate

    private static bool IsAllocationFailure(Exception e) =>
        e is OutOfMemoryException or OverflowException or ExternalException; // ExternalException: libtorch's allocator
}
