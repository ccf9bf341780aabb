"""Spectra mode's device half: a layer's eigenvalues computed by torch on the device that holds the weights.

The computation is htsr-engine's Gram path (docs/ALGORITHMS.md section 2), step for step: the tensor is cut into
matrices by the engine's own ``MatrixPlan`` (its strides, handed over by ``htsr._native.matrix_plan``, so Conv2D
and Conv1d slices are exactly the engine's), every element is multiplied by the plan's scale (conv2d_norm), the
Gram matrix of each slice's smaller side is accumulated in float64 (float32 on request, for devices whose float64
is slow), ``torch.linalg.eigvalsh`` gives its eigenvalues and negatives from rounding are clipped to 0. Only the
(slices x M) eigenvalues leave the device; pooling, ``sv_min`` and ``rank_loss`` are done in Rust by the engine's
rule.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Samples (rows of the longer side) per Gram update: bounds the float64 copy on the device to one chunk.
GRAM_CHUNK = 4096

#: ``precision`` name -> the torch dtype the Gram matrix is accumulated and solved in.
PRECISIONS = ("f64", "f32")

def device_eigenvalues(t: Any, plan: dict[str, Any], precision: str = "f64") -> np.ndarray | str:
    """The per-slice eigenvalues (``slices`` x M, each row ascending) of tensor `t` on its own device, or why
    there are none (NaN or infinite weights, counted on the device as htsr-engine counts them). `plan` is
    ``htsr._native.matrix_plan(shape)``."""
    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}: expected one of {PRECISIONS}")
    dt = torch.float64 if precision == "f64" else torch.float32
    with torch.no_grad():
        w = t.detach()
        if not bool(torch.isfinite(w).all()):
            nan, inf = int(torch.isnan(w).sum()), int(torch.isinf(w).sum())
            return f"weights contain {nan} NaN and {inf} infinite values"
        flat = w.contiguous().reshape(-1)
        slices, rows, cols = plan["slices"], plan["rows"], plan["cols"]
        s = torch.as_strided(flat, (slices, rows, cols), (plan["slice_stride"], plan["row_stride"], plan["col_stride"]))
        # Samples run along the longer side and the Gram matrix is features x features, as in the engine.
        features_are_cols = cols <= rows
        samples, features = (rows, cols) if features_are_cols else (cols, rows)
        gram = torch.zeros((slices, features, features), dtype=dt, device=w.device)
        for start in range(0, samples, GRAM_CHUNK):
            stop = min(samples, start + GRAM_CHUNK)
            block = s[:, start:stop, :] if features_are_cols else s[:, :, start:stop].transpose(1, 2)
            block = block.to(dt) * plan["scale"]
            gram.baddbmm_(block.transpose(1, 2), block)
        evals = torch.linalg.eigvalsh(gram, UPLO="L").clamp_min_(0.0)
        return evals.to(device="cpu", dtype=torch.float64).numpy()
