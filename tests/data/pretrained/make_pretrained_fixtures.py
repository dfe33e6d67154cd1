#!/usr/bin/env python3
"""Writes two ImageNet classifier checkpoints in the official layouts, shrunk to width 8, one block and a
10-class head so each stays a few tens of kilobytes, for the pretrained-initialisation tests:

* deit_tiny_official_like.pth: the official DeiT release (facebookresearch/deit main.py:
  {"model": state dict, "optimizer", "lr_scheduler", "epoch", "args"}) with timm's key names and
  DeiT-Ti's 224² position table [1, 197, D] (class slot first, 14×14 grid).
* vim_rope_nocls_official_like.pth: the hustvl/Vim classifier the official detection recipe starts
  from (RoPE, no class token: pos_embed [1, 196, D], rope.freqs_cos / rope.freqs_sin saved with the
  weights, head and norm_f), in vim/main.py's layout ({"model", "optimizer", "lr_scheduler", "epoch",
  "model_ema", "scaler", "args"}).

Values follow one formula the tests recompute independently: the k-th tensor of a state dict (in the
order written below) holds, at flat row-major index i, ((37·i + 11·k) mod 101 − 50) / 64 (exact in
float32). Uses the torch.save writer of ../checkpoints/make_fixtures.py (no PyTorch needed).
Run from anywhere: python3 make_pretrained_fixtures.py
"""
import argparse
import collections
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "checkpoints"))
import make_fixtures as mf  # noqa: E402

DIM, MLP, CLASSES, GRID = 8, 32, 10, 14

DEIT_SHAPES = [
    ("cls_token", (1, 1, DIM)),
    ("pos_embed", (1, 1 + GRID * GRID, DIM)),
    ("patch_embed.proj.weight", (DIM, 3, 16, 16)),
    ("patch_embed.proj.bias", (DIM,)),
    ("blocks.0.norm1.weight", (DIM,)),
    ("blocks.0.norm1.bias", (DIM,)),
    ("blocks.0.attn.qkv.weight", (3 * DIM, DIM)),
    ("blocks.0.attn.qkv.bias", (3 * DIM,)),
    ("blocks.0.attn.proj.weight", (DIM, DIM)),
    ("blocks.0.attn.proj.bias", (DIM,)),
    ("blocks.0.norm2.weight", (DIM,)),
    ("blocks.0.norm2.bias", (DIM,)),
    ("blocks.0.mlp.fc1.weight", (MLP, DIM)),
    ("blocks.0.mlp.fc1.bias", (MLP,)),
    ("blocks.0.mlp.fc2.weight", (DIM, MLP)),
    ("blocks.0.mlp.fc2.bias", (DIM,)),
    ("norm.weight", (DIM,)),
    ("norm.bias", (DIM,)),
    ("head.weight", (CLASSES, DIM)),
    ("head.bias", (CLASSES,)),
]


# Vim with D = 8: d_inner 16, d_state 16, dt_rank ceil(8/16) = 1, so x_proj has 1 + 2·16 = 33 rows.
INNER, STATE, RANK = 16, 16, 1
MIXER = [
    ("A_log", (INNER, STATE)), ("D", (INNER,)), ("A_b_log", (INNER, STATE)), ("D_b", (INNER,)),
    ("in_proj.weight", (2 * INNER, DIM)), ("conv1d.weight", (INNER, 1, 4)), ("conv1d.bias", (INNER,)),
    ("x_proj.weight", (RANK + 2 * STATE, INNER)), ("dt_proj.weight", (INNER, RANK)), ("dt_proj.bias", (INNER,)),
    ("conv1d_b.weight", (INNER, 1, 4)), ("conv1d_b.bias", (INNER,)), ("x_proj_b.weight", (RANK + 2 * STATE, INNER)),
    ("dt_proj_b.weight", (INNER, RANK)), ("dt_proj_b.bias", (INNER,)), ("out_proj.weight", (DIM, INNER)),
]
VIM_SHAPES = [
    ("pos_embed", (1, GRID * GRID, DIM)),
    ("patch_embed.proj.weight", (DIM, 3, 16, 16)),
    ("patch_embed.proj.bias", (DIM,)),
    ("head.weight", (CLASSES, DIM)),
    ("head.bias", (CLASSES,)),
    ("rope.freqs_cos", (GRID * GRID, DIM)),
    ("rope.freqs_sin", (GRID * GRID, DIM)),
] + [("layers.0.mixer." + name, shape) for name, shape in MIXER] + [
    ("layers.0.norm.weight", (DIM,)),
    ("norm_f.weight", (DIM,)),
]


def value(k, i):
    return ((37 * i + 11 * k) % 101 - 50) / 64.0


def state_dict(shapes):
    model = collections.OrderedDict()
    for k, (name, shape) in enumerate(shapes):
        count = 1
        for d in shape:
            count *= d
        model[name] = mf.tensor("float32", [value(k, i) for i in range(count)], shape)
    return model


def write(filename, checkpoint):
    pkl, storages = mf.pickle_obj(checkpoint)
    mf.write_pth(os.path.join(HERE, filename), "checkpoint", pkl, storages)


def main():
    write("deit_tiny_official_like.pth", {
        "model": state_dict(DEIT_SHAPES),
        "optimizer": {"state": {}, "param_groups": []},
        "lr_scheduler": {"last_epoch": 300},
        "epoch": 299,
        "args": argparse.Namespace(model="deit_tiny_patch16_224", input_size=224, lr=0.0005, drop_path=0.1),
    })
    write("vim_rope_nocls_official_like.pth", {
        "model": state_dict(VIM_SHAPES),
        "optimizer": {"state": {}, "param_groups": []},
        "lr_scheduler": {"last_epoch": 300},
        "epoch": 299,
        "model_ema": state_dict(VIM_SHAPES[:1]),
        "scaler": "none",
        "args": argparse.Namespace(model="vim_tiny_patch16_224_bimambav2_final_pool_mean_abs_pos_embed_rope_also_residual",
                                   input_size=224, lr=0.0005),
    })


if __name__ == "__main__":
    main()
