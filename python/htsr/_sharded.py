"""Sharded models (FSDP2, FSDP1 with ``use_orig_params=True``, DTensor tensor parallelism and their 2-D
combinations) in spectra and weights mode.

Spectra mode. Every rank of the job calls ``Checkpointer.checkpoint`` for the same step; the layers are assigned
to ranks by cost (``_native.assign_layers`` on the unsharded shapes), and each layer's eigenvalues are computed on
its owner from the whole layer's data, cooperatively, one layer at a time:

1. The ranks exchange (``all_gather_object``, once per checkpoint) which part of each layer they hold: a box of
   global indices per tensor dimension (DTensor: from its mesh coordinate and placements, each placement's own
   split applied to the dimension's indices, so uneven and ``_StridedShard`` splits are exact), or a range of the
   flattened tensor (FSDP1's views into its flat parameter). Ranks holding the same part (replicated mesh
   dimensions, HSDP, a model replicated outside the mesh) are one part: the lowest such rank (the owner, when it
   holds it) stands for it, so nothing is counted twice. The distinct parts must tile the layer exactly.
2. When the parts split only the samples axis of every slice of htsr-engine's matrix plan (the longer side, e.g.
   FSDP's dim-0 split of a tall Linear or of a Conv2D's output channels), the Gram matrix is a sum of the parts'
   Gram matrices: each part's rank computes its own (``_spectra.add_gram``, float64, the plan's scale) and they are
   summed on the owner with ``dist.reduce``. Otherwise the parts are sent to the owner (``dist.send``/``recv``),
   which assembles the layer and runs ``_spectra.device_eigenvalues`` on it, exactly as for an unsharded tensor.
   A layer some rank holds whole is computed by that rank (its owner) without communication.
3. After the collectives, each rank hands the eigenvalues of the layers it owns to the writer, which writes its
   own ``step-N.rank-R-of-W.esd.safetensors``: a rank that dies then loses only its own layers, and the daemon
   lists them as missing. A collective that fails (a peer gone, the process group's timeout) ends this rank's
   collectives for the step: the layers it completed are written, the rest of its layers are recorded as failed
   with the error. A rank that fails locally (out of memory) keeps taking part in every later collective and
   marks its contribution as failed, so the ranks never fall out of step.

No rank holds more than one whole layer, or one Gram matrix, at a time (plus its own shards and one float64 chunk
of ``_spectra.GRAM_CHUNK`` samples).

Weights mode (and the weights half of ``both``) gathers the full, unsharded state dict on rank 0 with
``torch.distributed.checkpoint.state_dict.get_model_state_dict`` (all ranks call it) and writes one ordinary
weights file, unless rank 0's memory would not hold it (``full_weights_budget``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from htsr._spectra import (
    add_gram,
    device_eigenvalues,
    features_are_cols,
    gram_dtype,
    gram_eigenvalues,
    nonfinite_reason,
)
from htsr._tensors import ShardedWeightsError, refuse_zero3, torch_dtype_name

#: Module-wrapper attribute names that never appear in the unsharded model's parameter names (FSDP1, activation
#: checkpointing, torch.compile): a name component equal to one of them is dropped.
WRAPPER_NAMES = ("_fsdp_wrapped_module", "_checkpoint_wrapped_module", "_orig_mod")

#: The default ``full_weights_budget``: this fraction of rank 0's MemAvailable.
FULL_WEIGHTS_MEMORY_FRACTION = 0.5


class FullWeightsTooLargeError(ShardedWeightsError):
    """Weights mode on a sharded model would gather more on rank 0 than its memory allows (see
    ``Checkpointer(full_weights_budget=...)``); ``mode="spectra"`` needs no full copy."""


def clean_name(name: str) -> str:
    """`name` without the module wrappers' components (``_fsdp_wrapped_module.``, ``_checkpoint_wrapped_module.``,
    ``_orig_mod.``): the parameter's name in the unwrapped model."""
    return ".".join(part for part in name.split(".") if part not in WRAPPER_NAMES)


def _event(what: str, index: int, detail: str = "") -> None:
    """A no-op called at fixed points of the collective phase (tests replace it to watch, or to kill a rank
    there): ``"layer"`` before the collectives of the `index`-th layer in name order (`detail`: its name and route,
    ``"name reduce"`` or ``"name gather"``), ``"collectives_done"`` after the last one (`index` = number of
    layers)."""


# --- which tensors, and which part of each one this rank holds ------------------------------------------------------

# A part of a tensor ("desc"), the same on every rank that holds the same elements:
#   ("box", ((kind, ...), ...))  one entry per dimension: ("r", start, stop), or ("i", ((start, stop), ...)) for
#                                indices that are several ranges, in the local tensor's order (_StridedShard). A
#                                whole tensor is a box of full ranges.
#   ("flat", start, stop)        a range of the row-major flattened tensor (FSDP1) that is not a box.
#   ("bad", reason)              a layout this module cannot read (the layer is recorded as failed).
#   None                         this rank holds nothing of the tensor.


@dataclass
class Piece:
    """One selected tensor as this rank sees it."""

    name: str
    """The unsharded model's name (wrappers' components removed)."""
    shape: tuple[int, ...]
    """The global (unsharded) shape."""
    dtype: str | None
    """Its safetensors dtype name (None: none exists)."""
    local: Any
    """This rank's data: a plain torch tensor shaped as `desc`'s box (or 1-D for a "flat" desc), or None."""
    desc: Any
    """Which part of the tensor `local` is (see above)."""
    sharded: bool
    """A DTensor or FSDP1 parameter (False: a plain tensor every rank holds whole)."""


def _whole(shape: tuple[int, ...]) -> tuple[str, tuple[tuple[str, int, int], ...]]:
    return ("box", tuple(("r", 0, int(n)) for n in shape))


def _index_entry(idx: Any) -> tuple[Any, ...]:
    """A dimension's indices (in the local tensor's order) as a desc entry: a range, or the ranges they run in."""
    runs: list[list[int]] = []
    for v in (int(v) for v in idx.tolist()):
        if runs and runs[-1][1] == v:
            runs[-1][1] = v + 1
        else:
            runs.append([v, v + 1])
    if len(runs) == 1:
        return ("r", runs[0][0], runs[0][1])
    return ("i", tuple((a, b) for a, b in runs))


def _dtensor_part(p: Any) -> tuple[Any, Any]:
    """(desc, local tensor) of a DTensor on this rank."""
    import torch

    shape = tuple(int(n) for n in p.shape)
    mesh, placements = p.device_mesh, tuple(p.placements)
    coord = mesh.get_coordinate()
    if coord is None:
        return None, None
    idx: list[Any] = [None] * len(shape)
    for mesh_dim, placement in enumerate(placements):
        if placement.is_replicate():
            continue
        if placement.is_partial():
            return ("bad", f"placement {placement}: each rank holds a partial sum, not a part of the layer"), None
        dim, split = getattr(placement, "dim", None), getattr(placement, "_split_tensor", None)
        if dim is None or split is None:
            return ("bad", f"placement {placement} is not a shard this version of htsr can read"), None
        # The placement's own split (what DTensor used to cut the tensor) applied to the dimension's indices.
        current = idx[dim] if idx[dim] is not None else torch.arange(shape[dim])
        chunks, _ = split(current.view([1] * dim + [-1]), mesh.size(mesh_dim), with_padding=False, contiguous=False)
        k = int(coord[mesh_dim])
        idx[dim] = chunks[k].reshape(-1) if k < len(chunks) else current[:0]
    local = p.to_local().detach()
    sizes = tuple(shape[d] if i is None else int(i.numel()) for d, i in enumerate(idx))
    if tuple(local.shape) != sizes:
        return ("bad", f"local shape {tuple(local.shape)} does not match placements {placements} ({sizes})"), None
    if 0 in sizes:
        return None, None
    entries = tuple(("r", 0, shape[d]) if i is None else _index_entry(i) for d, i in enumerate(idx))
    return ("box", entries), local


def _flat_part(p: Any, shape: tuple[int, ...], info: Any) -> tuple[Any, Any]:
    """(desc, local tensor) of an FSDP1 ``use_orig_params`` parameter on this rank."""
    local = p.detach()
    if tuple(local.shape) == shape:
        # Unsharded views (NO_SHARD, or inside summon_full_params): every rank holds the whole tensor.
        return _whole(shape), local
    if local.numel() == 0:
        return None, None
    if info is None or not info.in_shard:
        return ("bad", f"an FSDP1 view of {local.numel()} elements with no shard information"), None
    start, stop = int(info.intra_param_start_idx), int(info.intra_param_end_idx) + 1
    if stop - start != local.numel():
        return ("bad", f"FSDP1 shard [{start}, {stop}) but a local view of {local.numel()} elements"), None
    row = math.prod(shape[1:])
    if row and start % row == 0 and stop % row == 0:
        # Whole rows of dim 0: a box.
        entries = (("r", start // row, stop // row), *(("r", 0, n) for n in shape[1:]))
        return ("box", entries), local.reshape((stop - start) // row, *shape[1:])
    return ("flat", start, stop), local


def _fsdp1_params(model: Any) -> dict[int, tuple[tuple[int, ...], Any]]:
    """id(parameter) -> (its unsharded shape, its FSDP1 shard info) for the parameters FSDP1 manages."""
    fsdp = _fsdp1_class()
    found: dict[int, tuple[tuple[int, ...], Any]] = {}
    if fsdp is None:
        return found
    for module in model.modules():
        if not isinstance(module, fsdp):
            continue
        handle = getattr(module, "_handle", None)
        if handle is None:
            continue
        flat = handle.flat_param
        if getattr(flat, "_params", None) is None:
            raise ShardedWeightsError(
                "an FSDP1 module was wrapped with use_orig_params=False: its parameters are flattened together, "
                "and htsr reads them only through the original parameters. Wrap with use_orig_params=True "
                "(the default of Hugging Face Trainer and Lightning), or use FSDP2 (fully_shard)."
            )
        infos = list(getattr(flat, "_shard_param_infos", [None] * len(flat._params)))
        for param, shape, info in zip(flat._params, flat._shapes, infos):
            found[id(param)] = (tuple(int(n) for n in shape), info)
        for param, shared in zip(flat._shared_params or [], flat._shared_param_infos or []):
            prim = getattr(shared[4], shared[3], None)
            if prim is not None and id(prim) in found:
                found[id(param)] = found[id(prim)]
    return found


def _fsdp1_class() -> Any:
    import sys

    if "torch.distributed.fsdp" not in sys.modules:
        return None
    from torch.distributed.fsdp import FullyShardedDataParallel

    return FullyShardedDataParallel


def is_dtensor(t: Any) -> bool:
    """True for a DTensor (FSDP2, tensor parallel)."""
    return any(c.__name__ == "DTensor" for c in type(t).__mro__)


def select(
    model: Any,
    *,
    min_dims: int,
    trainable_only: bool,
    filter: Callable[[str], bool] | None,
) -> list[Piece]:
    """The tensors a checkpoint holds, sorted by their unsharded names: a module's parameters (wrappers' names
    removed, FSDP1 parameters at their unsharded shapes) or a state dict's entries. Raises ShardedWeightsError for a
    layout htsr cannot read (FSDP1 flat parameters, ShardedTensor)."""
    from htsr._tensors import is_torch_module

    pieces: list[Piece] = []
    if is_torch_module(model):
        fsdp1 = _fsdp1_params(model)
        for raw, p in model.named_parameters():
            if trainable_only and not p.requires_grad:
                continue
            pieces.append(_piece(clean_name(raw), p, fsdp1.get(id(p))))
    elif isinstance(model, Mapping):
        for k, v in model.items():
            pieces.append(_piece(str(k), v, None))
    else:
        raise TypeError(f"Checkpointer needs a torch.nn.Module or a state dict, got {type(model).__name__}")
    pieces = [q for q in pieces if len(q.shape) >= min_dims and (filter is None or filter(q.name))]
    names = [q.name for q in pieces]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"two tensors share the name {twice[0]!r} once the wrappers' prefixes are removed")
    return sorted(pieces, key=lambda q: q.name)


def _piece(name: str, t: Any, fsdp1: tuple[tuple[int, ...], Any] | None) -> Piece:
    kinds = {c.__name__ for c in type(t).__mro__}
    if "FlatParameter" in kinds or getattr(t, "_is_flat_param", False):
        raise ShardedWeightsError(
            f"{name!r} is an FSDP1 flat parameter (use_orig_params=False): several layers flattened together. "
            "Wrap with use_orig_params=True, or use FSDP2 (fully_shard)."
        )
    if "ShardedTensor" in kinds:
        raise ShardedWeightsError(
            f"{name!r} is a ShardedTensor (an FSDP1 sharded state dict): pass the model itself, or a full state dict."
        )
    refuse_zero3(name, t)
    dtype = torch_dtype_name(t) if hasattr(t, "dtype") and hasattr(t, "element_size") else None
    if "DTensor" in kinds:
        desc, local = _dtensor_part(t)
        return Piece(name, tuple(int(n) for n in t.shape), dtype, local, desc, True)
    if fsdp1 is not None:
        shape, info = fsdp1
        desc, local = _flat_part(t, shape, info)
        return Piece(name, shape, dtype, local, desc, True)
    shape = tuple(int(n) for n in getattr(t, "shape", ()))
    return Piece(name, shape, dtype, t, _whole(shape), False)


def is_sharded(pieces: list[Piece]) -> bool:
    """Whether any of these tensors is sharded (then every rank must take part in each checkpoint)."""
    return any(q.sharded for q in pieces)


# --- geometry of a part ---------------------------------------------------------------------------------------------


def _runs(e: tuple[Any, ...]) -> tuple[tuple[int, int], ...]:
    """A desc entry's indices as (start, stop) ranges."""
    return ((e[1], e[2]),) if e[0] == "r" else e[1]


def _entry_len(e: tuple[Any, ...]) -> int:
    return sum(b - a for a, b in _runs(e))


def _entries_overlap(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    return any(max(x0, y0) < min(x1, y1) for x0, x1 in _runs(a) for y0, y1 in _runs(b))


def _entry_index(e: tuple[Any, ...], device: Any) -> Any:
    import torch

    return torch.cat([torch.arange(a, b, device=device) for a, b in _runs(e)])


def _volume(desc: Any) -> int:
    if desc[0] == "flat":
        return desc[2] - desc[1]
    return math.prod(_entry_len(e) for e in desc[1])


def _box_shape(desc: Any) -> tuple[int, ...]:
    return tuple(_entry_len(e) for e in desc[1])


def _flat_span(desc: Any, shape: tuple[int, ...]) -> tuple[int, int] | None:
    """The [start, stop) range of the flattened tensor that `desc` is, when it is one contiguous range."""
    if desc[0] == "flat":
        return desc[1], desc[2]
    entries = desc[1]
    if not entries:
        return 0, 1
    strides = [math.prod(shape[d + 1 :]) for d in range(len(shape))]
    full = [e == ("r", 0, shape[d]) for d, e in enumerate(entries)]
    last = max((d for d in range(len(shape)) if not full[d]), default=-1)
    if last < 0:
        return 0, math.prod(shape)
    if entries[last][0] != "r" or any(entries[d][0] != "r" or _entry_len(entries[d]) != 1 for d in range(last)):
        return None
    start = sum(entries[d][1] * strides[d] for d in range(last + 1))
    return start, start + _entry_len(entries[last]) * strides[last]


def _tiling_problem(descs: list[Any], shape: tuple[int, ...]) -> str | None:
    """Why the distinct parts `descs` do not cover the tensor exactly once, or None when they do."""
    numel = math.prod(shape)
    if sum(_volume(d) for d in descs) != numel:
        return f"the ranks' distinct parts hold {sum(_volume(d) for d in descs)} elements of {numel}"
    if any(d[0] == "flat" for d in descs):
        spans = [_flat_span(d, shape) for d in descs]
        if any(s is None for s in spans):
            return "the ranks' parts mix flat ranges with boxes that are not ranges"
        end = 0
        for start, stop in sorted(spans):  # type: ignore[type-var]
            if start != end:
                return f"the ranks' flat ranges leave a gap or overlap at element {end}"
            end = stop
        return None
    for i, a in enumerate(descs):
        for b in descs[:i]:
            if all(_entries_overlap(x, y) for x, y in zip(a[1], b[1])):
                return "two ranks' parts overlap but differ"
    return None


def axis_dims(plan: dict[str, Any], shape: tuple[int, ...]) -> dict[str, tuple[int, ...]] | None:
    """Which tensor dimensions each axis of htsr-engine's matrix plan runs over ("slices", "rows", "cols"; merged
    dimensions in row-major order), checked against the plan's strides; None when the plan is not such a
    regrouping (then parts are always gathered whole)."""
    n = len(shape)
    if n == 2:
        dims = {"slices": (), "rows": (0,), "cols": (1,)}
    elif n == 3:
        dims = {"slices": (2,), "rows": (0,), "cols": (1,)}
    elif n == 4 and plan["rows"] == shape[0]:
        dims = {"slices": (2, 3), "rows": (0,), "cols": (1,)}
    elif n == 4:
        dims = {"slices": (0, 1), "rows": (2,), "cols": (3,)}
    else:
        return None
    strides = [math.prod(shape[d + 1 :]) for d in range(n)]
    for axis, key in (("slices", "slice_stride"), ("rows", "row_stride"), ("cols", "col_stride")):
        group = dims[axis]
        length = math.prod(shape[d] for d in group)
        if length != plan[axis]:
            return None
        if length > 1 and strides[group[-1]] != plan[key]:
            return None
    if sorted(d for group in dims.values() for d in group) != list(range(n)):
        return None
    return dims


def local_slices(local: Any, dims: dict[str, tuple[int, ...]]) -> Any:
    """The (slices, rows, cols) view of a part holding every slice (its slice dimensions whole), laid out as the
    engine's plan reads the whole tensor."""
    t = local.contiguous()
    order = (*dims["slices"], *dims["rows"], *dims["cols"])
    t = t.permute(order)
    size = lambda group: math.prod(local.shape[d] for d in group)  # noqa: E731
    return t.reshape(size(dims["slices"]), size(dims["rows"]), size(dims["cols"]))


def _place(target: Any, entries: tuple[Any, ...], data: Any) -> None:
    """Copies `data` (shaped as the box `entries`) into its place in `target` (the whole tensor)."""
    import torch

    for d, e in enumerate(entries):
        if e[0] == "r":
            target = target.narrow(d, e[1], e[2] - e[1])
    listed = [d for d, e in enumerate(entries) if e[0] == "i"]
    if not listed:
        target.copy_(data)
        return
    d = listed[0]
    index = _entry_index(entries[d], target.device)
    if len(listed) == 1:
        target.index_copy_(d, index, data)
        return
    # Several listed dimensions: one index of the first at a time (ranges are already narrowed).
    rest = tuple(("r", 0, target.shape[k]) if e[0] == "r" else e for k, e in enumerate(entries) if k != d)
    for k, i in enumerate(index.tolist()):
        _place(target.select(d, i), rest, data.select(d, k))


# --- the collective phase -------------------------------------------------------------------------------------------


class _PeerFailure(Exception):
    """A collective of this checkpoint failed: no more collectives for it."""


def _comm(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - whatever the backend raises for a lost peer or a timeout
        first = (str(e).strip().splitlines() or [""])[0]
        raise _PeerFailure(f"{type(e).__name__}: {first[:300]}") from e


def _comm_device() -> Any:
    """Where messages live, the same on every rank: the CPU for a gloo process group, else this rank's current
    accelerator (NCCL and the like)."""
    import torch
    import torch.distributed as dist

    if str(dist.get_backend()) == "gloo":
        return torch.device("cpu")
    accelerator = torch.accelerator.current_accelerator() if hasattr(torch, "accelerator") else None
    if accelerator is None:
        return torch.device("cpu")
    return torch.device(accelerator.type, torch.accelerator.current_device_index())


@dataclass
class Route:
    """How the ranks compute one layer (the same on every rank)."""

    how: str
    """"skip" (no spectrum; nothing to communicate), "local" (the owner holds it whole), "reduce" or "gather"."""
    parts: list[tuple[Any, int]]
    """The distinct parts and the rank that stands for each (reduce, gather)."""
    reason: str | None = None
    """Why there is no spectrum ("skip"), and whether that is a failure."""
    failed: bool = False


def route(shape: tuple[int, ...], dtype: str | None, plan: dict[str, Any], descs: list[Any], owner: int) -> Route:
    """How the ranks compute a layer of `shape`, from every rank's part of it (`descs[rank]`) and its owner."""
    if dtype is None:
        return Route("skip", [], "its dtype has no safetensors equivalent")
    if plan.get("skipped") is not None:
        return Route("skip", [], plan["skipped"])
    bad = next((d[1] for d in descs if d is not None and d[0] == "bad"), None)
    if bad is not None:
        return Route("skip", [], f"sharded layout not readable: {bad}", failed=True)
    holders: dict[Any, list[int]] = {}
    for r, d in enumerate(descs):
        if d is not None:
            holders.setdefault(d, []).append(r)
    problem = _tiling_problem(list(holders), shape)
    if problem is not None:
        return Route("skip", [], f"sharded layout not readable: {problem}", failed=True)
    if descs[owner] == _whole(shape):
        return Route("local", [])
    # One rank stands for each distinct part: the owner when it holds that part, else the lowest rank that does.
    parts = [(d, owner if owner in ranks else ranks[0]) for d, ranks in holders.items()]
    parts.sort(key=lambda item: item[1])
    dims = axis_dims(plan, shape)
    if dims is not None and len(parts) > 1 and all(d[0] == "box" for d, _ in parts):
        samples = dims["rows"] if features_are_cols(plan) else dims["cols"]
        if all(e == ("r", 0, shape[k]) for d, _ in parts for k, e in enumerate(d[1]) if k not in samples):
            return Route("reduce", parts)
    return Route("gather", parts)


def compute_spectra(
    pieces: list[Piece],
    assignment: Mapping[str, int],
    *,
    rank: int,
    world: int,
    limits: Mapping[str, int],
    precision: str,
    spectra_on_device: bool,
    descs: list[list[Any]] | None,
    failure: str | None = None,
) -> tuple[list[Any], list[Any], list[Any]]:
    """This rank's share of a sharded checkpoint's spectra: ``(device, cpu, skipped)`` lists for
    ``Writer.submit_spectra``. Every rank calls it with the same layers in the same order; `descs[r][i]` is rank
    r's part of layer i (from the exchange), or None when the exchange failed (`failure` says why: then only the
    layers this rank holds whole are computed)."""
    from htsr import _native
    from htsr._tensors import tensor_bytes

    device: list[Any] = []
    cpu: list[Any] = []
    skipped: list[Any] = []
    broken = failure
    dt = gram_dtype(precision)
    for i, q in enumerate(pieces):
        owner = assignment.get(q.name, 0)
        mine = owner == rank
        shape = list(q.shape)
        dtype = q.dtype or ""
        plan = _native.matrix_plan(shape, **limits)
        if descs is not None:
            r = route(q.shape, q.dtype, plan, [d[i] for d in descs], owner)
        else:
            # The exchange failed: what needs no other rank (a skip, a layer held whole) is still done.
            r = route(q.shape, q.dtype, plan, [q.desc if k == rank else None for k in range(world)], rank)
            if r.how != "local" and not (r.how == "skip" and not r.failed):
                r = Route("skip", [], f"not computed: a collective failed ({broken})", failed=True)
        if r.how == "skip":
            if mine:
                skipped.append((q.name, dtype, shape, r.reason, r.failed))
            continue
        if r.how == "local":
            if mine:
                try:
                    _local_layer(q, plan, precision, spectra_on_device, device, cpu, skipped, tensor_bytes)
                except Exception as e:  # noqa: BLE001 - this layer fails, the checkpoint goes on
                    skipped.append((q.name, dtype, shape, f"{type(e).__name__}: {e}", True))
            continue
        if broken is not None:
            if mine:
                skipped.append((q.name, dtype, shape, f"not computed: a collective failed ({broken})", True))
            continue
        _event("layer", i, f"{q.name} {r.how}")
        try:
            if r.how == "reduce":
                result = _reduce_layer(q, plan, r.parts, owner, rank, dt)
            else:
                result = _gather_layer(q, plan, r.parts, owner, rank, precision)
        except _PeerFailure as e:
            broken = str(e)
            result = f"not computed: a collective failed ({broken})"
        except Exception as e:  # noqa: BLE001 - where in the exchange this rank stopped is unknown: no more
            broken = f"rank {rank}: {type(e).__name__}: {e}"
            result = f"not computed: {broken}"
        if mine:
            if isinstance(result, np.ndarray):
                device.append((q.name, dtype, shape, result, precision))
            else:
                skipped.append((q.name, dtype, shape, result, True))
        del result
    _event("collectives_done", len(pieces))
    return device, cpu, skipped


def _local_layer(
    q: Piece,
    plan: dict[str, Any],
    precision: str,
    spectra_on_device: bool,
    device: list[Any],
    cpu: list[Any],
    skipped: list[Any],
    tensor_bytes: Callable[[str, Any], Any],
) -> None:
    """The owner holds the whole layer: as the unsharded path computes it (htsr-engine on the writer thread for a
    CPU tensor, torch on its device otherwise)."""
    from htsr._tensors import is_torch_tensor

    t, shape = q.local, list(q.shape)
    if not is_torch_tensor(t) or (t.device.type == "cpu" and not spectra_on_device):
        b = tensor_bytes(q.name, t.reshape(q.shape))
        cpu.append((q.name, b.dtype, list(b.shape), b.data))
        return
    evals = device_eigenvalues(t.reshape(q.shape), plan, precision)
    if isinstance(evals, str):
        skipped.append((q.name, q.dtype, shape, evals, True))
    else:
        device.append((q.name, q.dtype, shape, evals, precision))


def _reduce_layer(
    q: Piece, plan: dict[str, Any], parts: list[tuple[Any, int]], owner: int, rank: int, dt: Any
) -> np.ndarray | str:
    """Sums the parts' Gram matrices on the owner (``dist.reduce``): the owner gets the eigenvalues or why there are
    none; other ranks get ""."""
    import torch
    import torch.distributed as dist

    features = plan["cols"] if features_are_cols(plan) else plan["rows"]
    slices = plan["slices"]
    n = slices * features * features
    comm = _comm_device()
    error = ""
    try:
        # Gram entries, then [NaN count, infinite count, ranks that failed].
        buf = torch.zeros(n + 3, dtype=dt, device=comm)
    except Exception as e:  # noqa: BLE001 - out of memory: nothing to contribute, and no buffer to reduce into
        raise _PeerFailure(f"rank {rank} could not allocate the Gram matrix: {type(e).__name__}: {e}") from e
    if any(holder == rank for _, holder in parts):
        try:
            with torch.no_grad():
                w = q.local
                nan, inf = int(torch.isnan(w).sum()), int(torch.isinf(w).sum())
                if nan + inf == 0:
                    dims = axis_dims(plan, q.shape)
                    assert dims is not None
                    s = local_slices(w, dims)
                    if w.device == comm:
                        add_gram(s, features_are_cols(plan), plan["scale"], buf[:n].view(slices, features, features))
                    else:
                        gram = torch.zeros((slices, features, features), dtype=dt, device=w.device)
                        add_gram(s, features_are_cols(plan), plan["scale"], gram)
                        buf[:n].copy_(gram.reshape(-1))
                        del gram
                buf[n], buf[n + 1] = nan, inf
        except Exception as e:  # noqa: BLE001 - reported to the owner through the buffer
            error = f"{type(e).__name__}: {e}"
            buf.zero_()
            buf[n + 2] = 1
    _comm(lambda: dist.reduce(buf, dst=owner, op=dist.ReduceOp.SUM))
    if rank != owner:
        return error
    nan, inf, failed = (int(round(float(v))) for v in buf[n:].tolist())
    if failed:
        return f"{failed} rank(s) could not compute their part of the Gram matrix" + (f" ({error})" if error else "")
    if nan + inf:
        return nonfinite_reason(nan, inf)
    try:
        return gram_eigenvalues(buf[:n].view(slices, features, features))
    except Exception as e:  # noqa: BLE001
        return f"eigenvalues failed: {type(e).__name__}: {e}"


def _gather_layer(
    q: Piece, plan: dict[str, Any], parts: list[tuple[Any, int]], owner: int, rank: int, precision: str
) -> np.ndarray | str:
    """Sends the parts to the owner (``dist.send``/``recv``: a status, then the data), which assembles the layer
    and computes its eigenvalues as for an unsharded tensor. Other ranks get ""."""
    import torch
    import torch.distributed as dist

    comm = _comm_device()
    if rank != owner:
        for desc, holder in parts:
            if holder != rank:
                continue
            try:
                data, ok = _part_bytes(q.local, comm), 1
            except Exception:  # noqa: BLE001 - the owner is told, and records the layer as failed
                data, ok = None, 0
            status = torch.tensor([ok], dtype=torch.int64, device=comm)
            _comm(lambda: dist.send(status, dst=owner))
            if data is not None:
                _comm(lambda: dist.send(data, dst=owner))
        return ""
    torch_dtype = q.local.dtype if q.local is not None else _torch_dtype(q.dtype)
    error = None
    try:
        full = torch.empty(q.shape, dtype=torch_dtype, device=comm)
    except Exception as e:  # noqa: BLE001 - the parts are still received (into scratch), so the ranks stay in step
        full, error = None, f"could not allocate the whole layer: {type(e).__name__}: {e}"
    for desc, holder in parts:
        span = _flat_span(desc, q.shape)
        size = _volume(desc) * torch.empty((), dtype=torch_dtype).element_size()
        if holder == rank:
            if full is not None:
                try:
                    _put(full, desc, span, q.local.detach().to(comm))
                except Exception as e:  # noqa: BLE001
                    error = error or f"could not place its own part: {type(e).__name__}: {e}"
            continue
        status = torch.zeros(1, dtype=torch.int64, device=comm)
        _comm(lambda: dist.recv(status, src=holder))
        if int(status.item()) != 1:
            error = error or f"rank {holder} could not send its part"
            continue
        if full is not None and span is not None:
            target = full.view(-1)[span[0] : span[1]].view(torch.uint8)
            _comm(lambda: dist.recv(target, src=holder))
        else:
            try:
                scratch = torch.empty(size, dtype=torch.uint8, device=comm)
            except Exception as e:  # noqa: BLE001 - the part cannot be received: this rank leaves the exchange
                raise _PeerFailure(f"rank {rank} could not receive a part: {type(e).__name__}: {e}") from e
            _comm(lambda: dist.recv(scratch, src=holder))
            if full is not None:
                shaped = scratch.view(torch_dtype)
                _put(full, desc, span, shaped.view(_box_shape(desc)) if desc[0] == "box" else shaped)
            del scratch
    if error is not None or full is None:
        return error or "no layer"
    try:
        return device_eigenvalues(full, plan, precision)
    except Exception as e:  # noqa: BLE001
        return f"eigenvalues failed: {type(e).__name__}: {e}"


def _part_bytes(local: Any, comm: Any) -> Any:
    """A part's data as the bytes sent to the owner (contiguous, on the messages' device)."""
    import torch

    return local.detach().to(comm).contiguous().reshape(-1).view(torch.uint8)


def _put(full: Any, desc: Any, span: tuple[int, int] | None, data: Any) -> None:
    if desc[0] == "flat":
        full.view(-1)[desc[1] : desc[2]].copy_(data.reshape(-1))
    elif span is not None:
        full.view(-1)[span[0] : span[1]].copy_(data.reshape(-1))
    else:
        _place(full, desc[1], data.reshape(_box_shape(desc)))


def _torch_dtype(name: str | None) -> Any:
    """The torch dtype of a safetensors dtype name."""
    import torch

    from htsr._tensors import _TORCH_DTYPES

    by_name = {v: k for k, v in _TORCH_DTYPES.items()}
    return getattr(torch, by_name[name or "F32"])


def exchange(pieces: list[Piece], skip: bool, cache: dict[str, Any]) -> tuple[list[list[Any]] | None, bool]:
    """Every rank's parts of the layers (``descs[r][i]``), and whether any rank skips this checkpoint (then no
    parts: None). One ``all_gather_object`` of a digest of each rank's parts, and a second one of the parts
    themselves only when a digest differs from the last exchange's (`cache`, kept by the caller). Raises
    ShardedWeightsError (on every rank alike) when the ranks' layers differ, _PeerFailure when a collective
    fails."""
    import hashlib

    import torch.distributed as dist

    world = dist.get_world_size()
    layers = [(q.name, q.shape, q.dtype) for q in pieces]
    descs = [q.desc for q in pieces]
    digest = hashlib.sha256(repr((layers, descs)).encode()).hexdigest()
    small: list[Any] = [None] * world
    _comm(lambda: dist.all_gather_object(small, (skip, digest)))
    if any(s for s, _ in small):
        return None, True
    digests = tuple(d for _, d in small)
    if cache.get("digests") == digests:
        return cache["descs"], False
    full: list[Any] = [None] * world
    _comm(lambda: dist.all_gather_object(full, (layers, descs)))
    for r, (other, _) in enumerate(full):
        if other != full[0][0]:
            diff = sorted(set(other) ^ set(full[0][0]))
            raise ShardedWeightsError(
                f"ranks 0 and {r} checkpoint different tensors ({diff[:3]}...): every rank must pass the same "
                "model with the same options"
            )
    cache.clear()
    cache.update(digests=digests, descs=[d for _, d in full])
    return cache["descs"], False


# --- weights mode ---------------------------------------------------------------------------------------------------


def mem_available() -> int | None:
    """MemAvailable from /proc/meminfo in bytes (None where there is none)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def state_dict_bytes(model: Any) -> int:
    """The bytes of the model's full (unsharded) state dict: every parameter at its unsharded shape, and every
    buffer."""
    fsdp1 = _fsdp1_params(model)
    total = 0
    for _, p in model.named_parameters():
        numel = math.prod(fsdp1[id(p)][0]) if id(p) in fsdp1 else p.numel()
        total += numel * p.element_size()
    for _, b in model.named_buffers():
        total += b.numel() * b.element_size()
    return total


def full_weights_check(model: Any, pieces: list[Piece], budget: int | None) -> str | None:
    """Why rank 0 must not gather the full state dict (None: it may). Rank 0 holds the gathered state dict plus
    the writer's copy of the selected tensors: that must fit `budget` bytes, by default
    FULL_WEIGHTS_MEMORY_FRACTION of MemAvailable (no limit where /proc/meminfo is missing)."""
    gathered = state_dict_bytes(model)
    selected = sum(math.prod(q.shape) * _itemsize(q) for q in pieces)
    need = gathered + selected
    if budget is None:
        env = os.environ.get("HTSR_FULL_WEIGHTS_BUDGET", "").strip()
        if env:
            budget = int(env)
    where = f"full_weights_budget={budget}"
    if budget is None:
        available = mem_available()
        if available is None:
            return None
        budget = int(available * FULL_WEIGHTS_MEMORY_FRACTION)
        where = f"{FULL_WEIGHTS_MEMORY_FRACTION:g} x MemAvailable of rank 0 ({_gb(available)})"
    if need <= budget:
        return None
    return (
        f"writing the weights of this sharded model gathers its full state dict on rank 0: {_gb(gathered)}, plus "
        f"{_gb(selected)} for the writer's copy of the checkpointed tensors, {_gb(need)} in all, over the budget of "
        f"{_gb(budget)} ({where}). Use mode=\"spectra\" (each layer's eigenvalues, computed by the ranks "
        "together without a full copy), or raise the budget with Checkpointer(full_weights_budget=<bytes>) or "
        "HTSR_FULL_WEIGHTS_BUDGET."
    )


def _itemsize(q: Piece) -> int:
    if q.local is not None and hasattr(q.local, "element_size"):
        return int(q.local.element_size())
    import torch

    return torch.empty((), dtype=_torch_dtype(q.dtype)).element_size()


def _gb(n: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size / 10:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} bytes"


def _fsdp1_on_cpu(model: Any) -> bool:
    """Whether FSDP1 computes on the CPU somewhere in `model` (``device_id=torch.device("cpu")``)."""
    fsdp = _fsdp1_class()
    return fsdp is not None and any(
        isinstance(m, fsdp) and getattr(getattr(m, "compute_device", None), "type", None) == "cpu"
        for m in model.modules()
    )


def full_state_dict(model: Any) -> dict[str, Any]:
    """The full, unsharded state dict on rank 0 (CPU tensors, clean names); empty on the other ranks. Every rank
    must call it.

    ``get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))``, except for
    FSDP1 computing on the CPU, where torch 2.13's ``offload_to_cpu`` crashes (a segmentation fault in FSDP1's
    full state dict hook, whose clone reads a freed unsharded parameter): there FSDP1's own full state dict with
    ``rank0_only=True, offload_to_cpu=False`` gives the same tensors (already on the CPU) to rank 0 alone."""
    if _fsdp1_on_cpu(model):
        import warnings

        from torch.distributed.fsdp import FullStateDictConfig, StateDictType

        fsdp = _fsdp1_class()
        config = FullStateDictConfig(offload_to_cpu=False, rank0_only=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # FSDP1's deprecation and "rank0_only without offload" warnings
            with fsdp.state_dict_type(model, StateDictType.FULL_STATE_DICT, config):
                state = model.state_dict()
        return {clean_name(k): v for k, v in state.items()}
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
