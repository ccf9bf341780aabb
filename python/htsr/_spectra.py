"""Spectra mode's device half: a layer's eigenvalues computed by torch on the device that holds the weights.

The computation is htsr-engine's Gram path (docs/ALGORITHMS.md section 2), step for step: the tensor is cut into
matrices by the engine's own ``MatrixPlan`` (its strides, handed over by ``htsr._native.matrix_plan``, so Conv2D
and Conv1d slices are exactly the engine's), every element is multiplied by the plan's scale (conv2d_norm), the
Gram matrix of each slice's smaller side is accumulated in float64 (float32 on request, for devices whose float64
is slow), ``torch.linalg.eigvalsh`` gives its eigenvalues and negatives from rounding are clipped to 0. Only the
(slices x M) eigenvalues leave the device; pooling, ``sv_min`` and ``rank_loss`` are done in Rust by the engine's
rule.

The steps are separate functions (``plan_slices``, ``add_gram``, ``gram_eigenvalues``) so that the sharded path
(``htsr._sharded``) can sum the Gram matrices of several ranks' shards with the same arithmetic.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Samples (rows of the longer side) per Gram update: bounds the float64 copy on the device to one chunk.
GRAM_CHUNK = 4096

#: ``precision`` name -> the torch dtype the Gram matrix is accumulated and solved in.
PRECISIONS = ("f64", "f32")


def gram_dtype(precision: str) -> Any:
    """The torch dtype the Gram matrix of `precision` is accumulated and solved in."""
    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}: expected one of {PRECISIONS}")
    return torch.float64 if precision == "f64" else torch.float32


def nonfinite_reason(nan: int, inf: int) -> str:
    """Why a layer with non-finite weights has no spectrum (htsr-engine's wording)."""
    return f"weights contain {nan} NaN and {inf} infinite values"


def features_are_cols(plan: dict[str, Any]) -> bool:
    """Whether a slice's features (the Gram matrix's side, M) are its columns: samples run along the longer side,
    as in the engine."""
    return plan["cols"] <= plan["rows"]


def plan_slices(t: Any, plan: dict[str, Any]) -> Any:
    """The (slices, rows, cols) view of tensor `t` that the engine's plan reads (no copy when `t` is contiguous)."""
    import torch

    flat = t.detach().contiguous().reshape(-1)
    shape = (plan["slices"], plan["rows"], plan["cols"])
    return torch.as_strided(flat, shape, (plan["slice_stride"], plan["row_stride"], plan["col_stride"]))


def add_gram(s: Any, cols_are_features: bool, scale: float, gram: Any) -> None:
    """Adds the Gram matrices (features x features) of the (slices, rows, cols) view `s`, scaled by `scale`, to
    `gram` (slices x features x features, in the Gram dtype), GRAM_CHUNK samples at a time."""
    with_rows = s.shape[1] if cols_are_features else s.shape[2]
    for start in range(0, with_rows, GRAM_CHUNK):
        stop = min(with_rows, start + GRAM_CHUNK)
        block = s[:, start:stop, :] if cols_are_features else s[:, :, start:stop].transpose(1, 2)
        # One float64 copy of the chunk, scaled in place (the same products as `block.to(dtype) * scale`).
        block = block.to(gram.dtype, copy=True)
        if scale != 1.0:
            block.mul_(scale)
        gram.baddbmm_(block.transpose(1, 2), block)


def gram_eigenvalues(gram: Any) -> np.ndarray:
    """Each slice's eigenvalues (ascending, negatives from rounding clipped to 0) as a float64 host array."""
    import torch

    evals = torch.linalg.eigvalsh(gram, UPLO="L").clamp_min_(0.0)
    return evals.to(device="cpu", dtype=torch.float64).numpy()


def device_eigenvalues(t: Any, plan: dict[str, Any], precision: str = "f64") -> np.ndarray | str:
    """The per-slice eigenvalues (``slices`` x M, each row ascending) of tensor `t` on its own device, or why
    there are none (NaN or infinite weights, counted on the device as htsr-engine counts them). `plan` is
    ``htsr._native.matrix_plan(shape)``."""
    import torch

    dt = gram_dtype(precision)
    with torch.no_grad():
        w = t.detach()
        if not bool(torch.isfinite(w).all()):
            return nonfinite_reason(int(torch.isnan(w).sum()), int(torch.isinf(w).sum()))
        s = plan_slices(w, plan)
        features = plan["cols"] if features_are_cols(plan) else plan["rows"]
        gram = torch.zeros((plan["slices"], features, features), dtype=dt, device=w.device)
        add_gram(s, features_are_cols(plan), plan["scale"], gram)
        return gram_eigenvalues(gram)
