"""htsr.analyze(model) against WeightWatcher 0.7.7's watcher.analyze() in one Python process, on the same torch
models, for scripts/bench-python-vs-weightwatcher.

Models: the reference matrices (monitor/engine/tests/fixtures/ww/synthetic.safetensors, as Linear and Conv2d
layers; WeightWatcher with mp_fit=True, which htsr always computes) and one 4096x4096 float32 Linear layer
(Gaussian, seed 1; WeightWatcher's defaults). Imports are done before any clock starts, so the times are the
analyses alone. Thread limits are the caller's environment (OMP/OPENBLAS/MKL_NUM_THREADS) plus
torch.set_num_threads and htsr.set_threads, all set to --threads.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import weightwatcher as ww
from safetensors.torch import load_file

import htsr

ROOT = Path(__file__).resolve().parents[1]
SYNTHETIC = ROOT / "monitor" / "engine" / "tests" / "fixtures" / "ww" / "synthetic.safetensors"


def reference_model() -> torch.nn.Module:
    """The reference matrices as WeightWatcher users build a model (bench/ww_analyze.py does the same)."""
    model = torch.nn.Module()
    for name, t in load_file(str(SYNTHETIC)).items():
        t = t.to(torch.float32)
        if t.dim() == 2:
            layer = torch.nn.Linear(t.shape[1], t.shape[0], bias=False)
        else:
            layer = torch.nn.Conv2d(t.shape[1], t.shape[0], tuple(t.shape[2:]), bias=False)
        with torch.no_grad():
            layer.weight.copy_(t)
        model.add_module(name.removesuffix(".weight").replace(".", "_"), layer)
    return model


def big_model(n: int = 4096) -> torch.nn.Module:
    w = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32) / np.sqrt(n)
    model = torch.nn.Module()
    model.add_module("w4096", torch.nn.Linear(n, n, bias=False))
    with torch.no_grad():
        model.w4096.weight.copy_(torch.from_numpy(w))
    return model


def timed(f):
    started = time.perf_counter()
    out = f()
    return out, time.perf_counter() - started


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    htsr.set_threads(a.threads)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(var) != str(a.threads):
            print(f"warning: {var} is {os.environ.get(var)!r}, not {a.threads}: set it before starting Python", file=sys.stderr)
    # A warm-up on a small model, so that neither side pays for first-call lazy work (imports inside functions).
    small = torch.nn.Sequential(torch.nn.Linear(64, 128))
    ww.WeightWatcher(model=small).analyze()
    htsr.analyze(small)

    print("| model | WeightWatcher | s | htsr.analyze s | speed-up | max alpha diff |")
    print("|---|---|---|---|---|---|")
    for label, make, kwargs in (
        ("synthetic.safetensors (the 8 reference layers)", reference_model, {"mp_fit": True}),
        ("one 4096x4096 float32 Linear", big_model, {}),
    ):
        model = make()
        theirs, t_ww = timed(lambda: ww.WeightWatcher(model=model).analyze(**kwargs))
        ours, t_htsr = timed(lambda: htsr.analyze(model))
        mine = dict(zip(ours.longname, ours.alpha))
        worst = max(abs(mine[n] - a) / abs(a) for n, a in zip(theirs.longname, theirs.alpha) if a > 0)
        call = "analyze(mp_fit=True)" if kwargs else "analyze()"
        print(f"| {label} | {call} | {t_ww:.2f} | {t_htsr:.2f} | {t_ww / t_htsr:.1f}x | {worst:.1e} |")
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    print(f"threads: {a.threads}; machine: {os.cpu_count()} cores, {cpu}; htsr {htsr.__version__}, weightwatcher {ww.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
