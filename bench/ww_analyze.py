"""Run WeightWatcher 0.7.7 on a safetensors file as a user would, for scripts/bench-vs-weightwatcher.

Every 2-D tensor becomes an nn.Linear and every 4-D tensor an nn.Conv2d holding exactly the file's weights, so
WeightWatcher sees the same matrices htsr reads. Prints WW's details as CSV to the file given with --out.
"""
import argparse
import json
import os
import sys

import torch
import weightwatcher as ww
from safetensors.torch import load_file


def load_tensors(path):
    """A safetensors file, or a Hugging Face sharded checkpoint folder (model.safetensors.index.json)."""
    if os.path.isdir(path):
        with open(os.path.join(path, "model.safetensors.index.json")) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
        tensors = {}
        for name in files:
            tensors.update(load_file(os.path.join(path, name)))
        return tensors
    return load_file(path)


def model_from(path):
    tensors = load_tensors(path)
    model = torch.nn.Module()
    for name, t in tensors.items():
        t = t.to(torch.float32)
        if t.dim() == 2:
            layer = torch.nn.Linear(t.shape[1], t.shape[0], bias=False)
        elif t.dim() == 4:
            layer = torch.nn.Conv2d(t.shape[1], t.shape[0], tuple(t.shape[2:]), bias=False)
        else:
            continue
        with torch.no_grad():
            layer.weight.copy_(t)
        model.add_module(name.removesuffix(".weight").replace(".", "_"), layer)
    return model


def main():
    p = argparse.ArgumentParser()
    p.add_argument("path")
    p.add_argument("--mp-fit", action="store_true")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    details = ww.WeightWatcher(model=model_from(a.path)).analyze(mp_fit=a.mp_fit)
    details.to_csv(a.out, index=False)


if __name__ == "__main__":
    sys.exit(main())
