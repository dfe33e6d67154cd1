#!/usr/bin/env python3
"""Writes small checkpoints in the exact byte layout torch.save produces, without PyTorch.

torch.save (zip format, default pickle protocol 2) pickles the object with a Pickler whose
persistent_id turns every storage into ('storage', torch.<Type>Storage, key, location, numel) and
every tensor reduces to torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
requires_grad, backward_hooks). We register stand-in modules `torch` and `torch._utils` in
sys.modules so the standard pickler emits the same GLOBAL opcodes; nothing here imports torch.

Besides the .pth files it writes expected.json (every tensor's logical values, computed here from
offset/stride arithmetic, independently of the C# reader) and expected_inspect.tsv (what
`vim checkpoint inspect` must print). Run from anywhere: python3 make_fixtures.py
With `--synthetic-vim-tiny OUT.pth` it instead writes a full-size (~115 MB) Vim-Ti training
checkpoint with patterned values, for timing the reader.
"""
import argparse
import array
import collections
import io
import json
import os
import pickle
import pickletools
import struct
import sys
import types
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))

# ---------------------------------------------------------------- stand-in torch globals
torch_mod = types.ModuleType("torch")
torch_utils = types.ModuleType("torch._utils")
torch_mod._utils = torch_utils
sys.modules["torch"] = torch_mod
sys.modules["torch._utils"] = torch_utils


def _global_function(module, name):
    def fn(*args):
        raise RuntimeError("stand-in, never called")
    fn.__module__ = module.__name__
    fn.__qualname__ = name
    fn.__name__ = name
    setattr(module, name, fn)
    return fn


rebuild_tensor_v2 = _global_function(torch_utils, "_rebuild_tensor_v2")
rebuild_parameter = _global_function(torch_utils, "_rebuild_parameter")

STORAGE_CLASS = {}
for dtype, cls_name in [("float32", "FloatStorage"), ("float16", "HalfStorage"),
                        ("bfloat16", "BFloat16Storage"), ("float64", "DoubleStorage"),
                        ("int64", "LongStorage"), ("int32", "IntStorage"),
                        ("uint8", "ByteStorage"), ("bool", "BoolStorage")]:
    cls = type(cls_name, (), {"__module__": "torch"})
    cls.__qualname__ = cls_name
    setattr(torch_mod, cls_name, cls)
    STORAGE_CLASS[dtype] = cls


def bf16_bytes(v):
    bits = struct.unpack("<I", struct.pack("<f", v))[0]
    assert bits & 0xFFFF == 0, f"{v} is not exactly representable in bfloat16"
    return struct.pack("<H", bits >> 16)


ENCODERS = {
    "float32": lambda v: struct.pack("<f", v),
    "float16": lambda v: struct.pack("<e", v),
    "bfloat16": bf16_bytes,
    "float64": lambda v: struct.pack("<d", v),
    "int64": lambda v: struct.pack("<q", int(v)),
    "int32": lambda v: struct.pack("<i", int(v)),
    "uint8": lambda v: struct.pack("<B", int(v)),
    "bool": lambda v: struct.pack("<?", bool(v)),
}


class Storage:
    """A typed storage: its element values are written raw to data/<key>."""

    def __init__(self, dtype, values):
        self.dtype = dtype
        self.values = list(values)
        for v in self.values:  # values must survive the round trip through the dtype exactly
            if dtype in ("float32", "float16", "bfloat16"):
                fmt = {"float32": "<f", "float16": "<e"}.get(dtype)
                if fmt:
                    assert struct.unpack(fmt, struct.pack(fmt, v))[0] == v, (dtype, v)

    def raw(self):
        return b"".join(ENCODERS[self.dtype](v) for v in self.values)


class Tensor:
    """Reduces exactly like torch.Tensor._reduce_ex_internal for a plain CPU tensor."""

    def __init__(self, storage, shape, stride=None, offset=0):
        self.storage, self.shape, self.offset = storage, tuple(shape), offset
        if stride is None:
            stride, acc = [], 1
            for d in reversed(self.shape):
                stride.insert(0, acc)
                acc *= d
        self.stride = tuple(stride)

    def __reduce_ex__(self, proto):
        return (rebuild_tensor_v2,
                (self.storage, self.offset, self.shape, self.stride, False, collections.OrderedDict()))

    def logical_values(self):
        out = []

        def walk(dim, base):
            if dim == len(self.shape):
                out.append(self.storage.values[base])
                return
            for i in range(self.shape[dim]):
                walk(dim + 1, base + i * self.stride[dim])

        walk(0, self.offset)
        return [float(v) for v in out]


class Parameter:
    def __init__(self, data):
        self.data = data

    def __reduce_ex__(self, proto):
        return (rebuild_parameter, (self.data, True, collections.OrderedDict()))


def tensor(dtype, values, shape):
    return Tensor(Storage(dtype, values), shape)


class TorchLikePickler(pickle.Pickler):
    def __init__(self, f, protocol):
        super().__init__(f, protocol)
        self.keys = {}
        self.storages = []

    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            key = self.keys.get(id(obj))
            if key is None:
                key = str(len(self.keys))
                self.keys[id(obj)] = key
                self.storages.append((key, obj))
            return ("storage", STORAGE_CLASS[obj.dtype], key, "cpu", len(obj.values))
        return None


def aligned_info(zf, name):
    # torch's writer (miniz) pads each local header with an 'FB' extra field so data is 64-aligned.
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    start = zf.fp.tell() + 30 + len(name.encode()) + 4
    pad = (64 - start % 64) % 64
    info.extra = struct.pack("<HH", 0x4246, pad) + b"Z" * pad
    return info


def pickle_obj(obj, protocol=2):
    buf = io.BytesIO()
    p = TorchLikePickler(buf, protocol)
    p.dump(obj)
    return buf.getvalue(), p.storages


def write_pth(path, archive, pkl, storages, storage_override=None):
    records = [("data.pkl", pkl), (".format_version", b"1"), ("byteorder", b"little")]
    for key, st in storages:
        raw = st.raw()
        if storage_override and key in storage_override:
            raw = storage_override[key](raw)
            if raw is None:
                continue
        records.append((f"data/{key}", raw))
    records += [("version", b"3\n"), (".data/serialization_id", b"0123456789")]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, data in records:
            zf.writestr(aligned_info(zf, f"{archive}/{name}"), data)


def flatten(obj, prefix, out):
    if isinstance(obj, (Tensor,)):
        out.append((prefix, obj))
    elif isinstance(obj, Parameter):
        out.append((prefix, obj.data))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            flatten(v, f"{prefix}.{i}" if prefix else str(i), out)
    elif isinstance(obj, argparse.Namespace):
        flatten(vars(obj), prefix, out)
    return out


def frange(n, scale, shift=0.0):
    return [shift + scale * i for i in range(n)]


# ---------------------------------------------------------------- fixture contents
def vim_like():
    model = collections.OrderedDict()
    model["cls_token"] = tensor("float32", frange(4, 0.25, -0.5), (1, 1, 4))
    model["pos_embed"] = tensor("float32", frange(12, -0.125, 1.0), (1, 3, 4))
    model["layers.0.mixer.A_log"] = tensor("float32", frange(6, 0.5), (3, 2))
    model["layers.0.mixer.D"] = tensor("float16", [1.0, -0.5, 2.25], (3,))
    model["layers.0.mixer.in_proj.weight"] = tensor("bfloat16", [1.5, -2.25, 0.09375, 8.0, -0.75, 3.0], (2, 3))
    # A transposed view into a storage that starts with 2 unrelated elements: offset 2, strides (1, 3).
    base = Storage("float32", [100.0, 200.0] + frange(6, 1.0, 10.0))
    model["head.weight"] = Tensor(base, (3, 2), stride=(1, 3), offset=2)
    # Two tensors sharing one storage: the first and the second half.
    shared = Storage("float32", frange(8, 0.5, -1.0))
    model["layers.0.norm.weight"] = Tensor(shared, (4,), offset=0)
    model["norm_f.weight"] = Tensor(shared, (4,), offset=4)
    model["num_updates"] = tensor("int64", [123456789012], ())
    model._metadata = collections.OrderedDict([("", {"version": 1}), ("layers.0", {"version": 2})])

    ema = collections.OrderedDict()
    ema["cls_token"] = tensor("float32", frange(4, 0.5, 1.0), (1, 1, 4))
    ema["head.weight"] = tensor("float32", frange(6, -1.0, 3.0), (3, 2))
    ema._metadata = collections.OrderedDict([("", {"version": 1})])

    extra = {
        "f64": tensor("float64", [0.1, -2.5, 1024.0], (3,)),
        "i32": tensor("int32", [-7, 0, 2147483647, 5], (2, 2)),
        "u8": tensor("uint8", [0, 1, 255], (3,)),
        "mask": tensor("bool", [True, False, True, True], (4,)),
        "empty": tensor("float32", [], (0, 3)),
    }
    exp_avg = tensor("float32", frange(4, 0.0625), (4,))
    args = argparse.Namespace(model="vim_tiny_patch16_224", lr=0.0005, input_size=224,
                              if_amp=False, resume=None, betas=(0.9, 0.999))
    return {
        "model": model,
        "optimizer": {"state": {0: {"step": 5, "exp_avg": exp_avg}},
                      "param_groups": [{"lr": 0.001, "betas": (0.9, 0.999), "weight_decay": 0.05,
                                        "amsgrad": False, "params": [0, 1]}]},
        "epoch": 7,
        "model_ema": ema,
        "scaler": "none",
        "args": args,
        "extra": extra,
    }


def protocol4_like():
    d = collections.OrderedDict()
    d["weight"] = Parameter(tensor("float32", [0.5, -1.5, 2.0, 4.0], (2, 2)))
    d["bias"] = tensor("float16", [0.25, -0.125], (2,))
    return {
        "state_dict": d,
        "big_int": 2 ** 70,
        "neg_int": -3,
        "ints": (1, 300, 70000, -5, 2 ** 40),
        "blob": b"\x00\x01\xfe",
        "tags": {"a", "b"},
        "ratio": 1.5,
        "name": "x" * 300,
    }


def vim_tiny_shapes(classes=1000, depth=24, dim=192, state=16):
    """Vim-Ti state-dict names and shapes (vim-reference.md section 2), in registration order."""
    inner, rank = 2 * dim, (dim + 15) // 16
    shapes = [("cls_token", (1, 1, dim)), ("pos_embed", (1, 197, dim)),
              ("patch_embed.proj.weight", (dim, 3, 16, 16)), ("patch_embed.proj.bias", (dim,)),
              ("head.weight", (classes, dim)), ("head.bias", (classes,))]
    for i in range(depth):
        m = f"layers.{i}.mixer."
        shapes += [(m + "A_log", (inner, state)), (m + "D", (inner,)), (m + "A_b_log", (inner, state)),
                   (m + "D_b", (inner,)), (m + "in_proj.weight", (2 * inner, dim)),
                   (m + "conv1d.weight", (inner, 1, 4)), (m + "conv1d.bias", (inner,)),
                   (m + "x_proj.weight", (rank + 2 * state, inner)), (m + "dt_proj.weight", (inner, rank)),
                   (m + "dt_proj.bias", (inner,)), (m + "conv1d_b.weight", (inner, 1, 4)),
                   (m + "conv1d_b.bias", (inner,)), (m + "x_proj_b.weight", (rank + 2 * state, inner)),
                   (m + "dt_proj_b.weight", (inner, rank)), (m + "dt_proj_b.bias", (inner,)),
                   (m + "out_proj.weight", (dim, inner)), (f"layers.{i}.norm.weight", (dim,))]
    return shapes + [("norm_f.weight", (dim,))]


class BulkStorage(Storage):
    """A float32 storage with a cheap repeating pattern, for large synthetic files."""

    def __init__(self, numel, seed):
        self.dtype = "float32"
        self.numel = numel
        self.seed = seed
        self.values = range(numel)  # only len() is used when pickling

    def raw(self):
        pattern = array.array("f", [((self.seed + i) % 97 - 48) / 64.0 for i in range(97)])
        return (pattern * (self.numel // 97 + 1))[: self.numel].tobytes()


def synthetic_vim_tiny(path):
    """A full-size Vim-Ti training checkpoint (model, model_ema, AdamW moments): about 115 MB."""
    seed = iter(range(10 ** 9))

    def state_dict():
        d = collections.OrderedDict()
        for name, shape in vim_tiny_shapes():
            n = 1
            for s in shape:
                n *= s
            d[name] = Tensor(BulkStorage(n, next(seed)), shape)
        return d

    model, ema = state_dict(), state_dict()
    moments = {i: {"step": 300, "exp_avg": Tensor(BulkStorage(t.storage.numel, next(seed)), t.shape),
                   "exp_avg_sq": Tensor(BulkStorage(t.storage.numel, next(seed)), t.shape)}
               for i, t in enumerate(model.values())}
    obj = {"model": model, "optimizer": {"state": moments, "param_groups": []}, "epoch": 299,
           "model_ema": ema, "scaler": "none", "args": argparse.Namespace(model="vim_tiny")}
    pkl, storages = pickle_obj(obj)
    write_pth(path, os.path.splitext(os.path.basename(path))[0], pkl, storages)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--synthetic-vim-tiny":
        synthetic_vim_tiny(sys.argv[2])  # for timing only; never committed
        return
    expected = {}
    inspect_lines = {}

    def emit(filename, archive, obj, protocol=2):
        pkl, storages = pickle_obj(obj, protocol)
        write_pth(os.path.join(HERE, filename), archive, pkl, storages)
        entries = []
        lines = []
        for name, t in flatten(obj, "", []):
            st = t.storage
            vals = t.logical_values()
            entries.append({"name": name, "dtype": st.dtype, "shape": list(t.shape), "values": vals})
            total = 0.0
            for v in vals:
                total += v
            lines.append(f"{name}\t{st.dtype}\t[{', '.join(str(d) for d in t.shape)}]\t{total:.6f}")
        expected[filename] = entries
        inspect_lines[filename] = lines
        return pkl, storages

    pkl, storages = emit("vim_like.pth", "vim_like", vim_like())
    emit("protocol4.pth", "archive", protocol4_like(), protocol=4)

    # Deliberately broken variants of vim_like.pth.
    write_pth(os.path.join(HERE, "bad_short_storage.pth"), "vim_like", pkl, storages,
              storage_override={"1": lambda raw: raw[:40]})
    write_pth(os.path.join(HERE, "bad_missing_storage.pth"), "vim_like", pkl, storages,
              storage_override={"2": lambda raw: None})
    write_pth(os.path.join(HERE, "bad_truncated_pickle.pth"), "vim_like", pkl[: len(pkl) // 2], storages)
    bad_op = bytearray(pkl)
    # Overwrite the opcode of the 6th instruction (a BINPUT) with a byte no protocol defines.
    bad_pos = [pos for _, _, pos in pickletools.genops(pkl)][5]
    bad_op[bad_pos] = 0xFF
    write_pth(os.path.join(HERE, "bad_opcode.pth"), "vim_like", bytes(bad_op), storages)
    with open(os.path.join(HERE, "vim_like.pth"), "rb") as f:
        whole = f.read()
    with open(os.path.join(HERE, "bad_truncated_file.pth"), "wb") as f:
        f.write(whole[: len(whole) // 2])
    with zipfile.ZipFile(os.path.join(HERE, "bad_no_pickle.pth"), "w") as zf:
        zf.writestr(zipfile.ZipInfo("archive/version", date_time=(1980, 1, 1, 0, 0, 0)), b"3\n")

    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    with open(os.path.join(HERE, "expected_inspect.tsv"), "w") as f:
        for filename, lines in inspect_lines.items():
            f.write(f"# {filename}\n")
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
