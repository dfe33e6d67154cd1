#!/usr/bin/env python3
"""Writes deit_tiny_official_like.pth: a checkpoint in the byte layout of the official DeiT release
(facebookresearch/deit main.py: {"model": state dict, "optimizer", "lr_scheduler", "epoch", "args"})
with timm's key names and DeiT-Ti's 224² position table [1, 197, D] (class slot first, 14×14 grid),
shrunk to width 8, one block and a 10-class head so it stays a few tens of kilobytes.

Values follow one formula the tests recompute independently: the k-th tensor of the state dict
(in the order written below) holds, at flat row-major index i, ((37·i + 11·k) mod 101 − 50) / 64
(exact in float32). Uses the torch.save writer of ../checkpoints/make_fixtures.py (no PyTorch needed).
Run from anywhere: python3 make_deit_fixture.py
"""
import argparse
import collections
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "checkpoints"))
import make_fixtures as mf  # noqa: E402

DIM, MLP, CLASSES, GRID = 8, 32, 10, 14

SHAPES = [
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


def value(k, i):
    return ((37 * i + 11 * k) % 101 - 50) / 64.0


def main():
    model = collections.OrderedDict()
    for k, (name, shape) in enumerate(SHAPES):
        count = 1
        for d in shape:
            count *= d
        model[name] = mf.tensor("float32", [value(k, i) for i in range(count)], shape)
    checkpoint = {
        "model": model,
        "optimizer": {"state": {}, "param_groups": []},
        "lr_scheduler": {"last_epoch": 300},
        "epoch": 299,
        "args": argparse.Namespace(model="deit_tiny_patch16_224", input_size=224, lr=0.0005, drop_path=0.1),
    }
    pkl, storages = mf.pickle_obj(checkpoint)
    mf.write_pth(os.path.join(HERE, "deit_tiny_official_like.pth"), "checkpoint", pkl, storages)


if __name__ == "__main__":
    main()
