"""``htsr.analyze``: WeightWatcher's ``watcher.analyze()`` details from htsr's Rust engine, for a torch module, a
state dict (torch tensors or numpy arrays), a safetensors file or a Hugging Face checkpoint folder; and
``analyze_matrix`` / ``classify`` for one matrix or for eigenvalues you bring.

Every number comes from the engine (``htsr._native``), which is the one ``htsr-watch analyze`` runs: the same file
gives the same rows as ``htsr-watch analyze FILE --format csv``.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Union

import numpy as np

from htsr import _native
from htsr._layer_ids import PYTORCH, IdAssigner, plan_path, start_id, state_dict_ids
from htsr._tensors import is_torch_module, refuse_sharded_module, tensor_bytes, torch_dtype_name, unwrap

if TYPE_CHECKING:
    import pandas as pd

# The phase evidence that is not already a WeightWatcher column (alpha, D, num_spikes and mp_softrank are).
EVIDENCE_COLUMNS: tuple[str, ...] = (
    "n_tail",
    "frac_outside",
    "edge_mass",
    "normalized_stable_rank",
    "zero_fraction",
)

# Export columns a one-shot analysis has no use for (the store's run and step, and the checkpoint's training
# numbers), and the three WeightWatcher columns placed first.
_NOT_ANALYZE_COLUMNS = frozenset(
    ("run", "step", "layer_id", "name", "longname", "epoch", "loss", "lr", "batch_size")
)

#: The DataFrame's columns, in order: WeightWatcher's ``layer_id``, ``name``, ``longname``, then htsr's export row
#: (htsr-contracts' ``ExportRow``: WeightWatcher 0.7.7's details columns, the mp_fit, ERG/detX and randomize
#: columns, ``status``, ``warning``, and htsr's ``phase``, ``very_heavy_tailed``, ``reason``), WeightWatcher's
#: ``has_esd``, the phase evidence, and the tensor's ``tensor`` name, ``shape`` and ``dtype``.
COLUMNS: tuple[str, ...] = (
    ("layer_id", "name", "longname")
    + tuple(c for c in _native.EXPORT_COLUMNS if c not in _NOT_ANALYZE_COLUMNS)
    + ("has_esd",)
    + EVIDENCE_COLUMNS
    + ("tensor", "shape", "dtype")
)

# Columns that hold text, flags or lists rather than numbers.
_NON_NUMERIC = frozenset(
    ("name", "longname", "layer_type", "status", "warning", "phase", "very_heavy_tailed", "reason", "has_esd")
    + ("tensor", "shape", "dtype")
)

#: What ``layers=`` accepts: None (every layer), a regular expression searched in each layer's full name, or
#: WeightWatcher's list of layer ids (all >= 0: keep those; all < 0: drop those) and/or layer names.
LayerSelection = Union[None, str, Sequence[Union[int, str]]]


@dataclass(frozen=True)
class _Layer:
    """One tensor to analyze: WeightWatcher's id and short name, htsr's full name, and how to get its bytes."""

    layer_id: int
    name: str
    longname: str
    tensor: str
    get: Callable[[], Any]
    #: Which of a path's sources (``htsr._layer_ids.PathPlan.sources``) holds the tensor; 0 otherwise.
    source: int = 0


@dataclass(frozen=True)
class Evidence:
    """The numbers behind a layer's phase (see docs/PHASES.md): the power law's alpha, D and tail size
    (``n_tail``), the eigenvalues outside the Marchenko-Pastur bulk (``spikes``, and their fraction), the share of
    those that hug the bulk edge (``edge_mass``), the MP soft rank, the stable rank scaled so that a random matrix
    gives about 1, and the fraction of (numerically) zero eigenvalues. None marks a number that does not exist
    (no power-law fit, no spikes)."""

    alpha: float | None
    D: float | None
    n_tail: int | None
    spikes: int | None
    frac_outside: float | None
    edge_mass: float | None
    mp_softrank: float | None
    normalized_stable_rank: float | None
    zero_fraction: float | None


@dataclass(frozen=True)
class LayerResult:
    """One layer's analysis: ``row`` holds the same columns as a row of ``htsr.analyze()`` (index it like a pandas
    row: ``result["alpha"]``), ``eigenvalues`` the pooled ESD, ascending, when one was computed."""

    row: dict[str, Any]
    eigenvalues: np.ndarray | None = field(default=None, repr=False)

    def __getitem__(self, column: str) -> Any:
        return self.row[column]

    @property
    def phase(self) -> str | None:
        """The training phase (``random_like`` ... ``rank_collapse``, ``insufficient``), None when not analyzed."""
        return self.row.get("phase")

    @property
    def alpha(self) -> float | None:
        """The power-law exponent of the ESD tail (WeightWatcher's alpha); None when the fit failed."""
        return self.row.get("alpha")

    @property
    def status(self) -> str:
        """``success``, ``failed`` or ``skipped`` (see ``reason``)."""
        return self.row["status"]

    @property
    def evidence(self) -> Evidence | None:
        """The evidence for ``phase`` (None for a layer with no phase: skipped, or not a spectrum)."""
        e = self.row.get("evidence")
        if e is None:
            return None
        return Evidence(
            alpha=e["alpha"],
            D=e["D"],
            n_tail=e["n_tail"],
            spikes=e["spikes"],
            frac_outside=e["frac_outside"],
            edge_mass=e["edge_mass"],
            mp_softrank=e["mp_softrank"],
            normalized_stable_rank=e["normalized_stable_rank"],
            zero_fraction=e["zero_fraction"],
        )

    def to_series(self) -> "pd.Series":
        """The row as a pandas Series indexed by ``htsr.COLUMNS``."""
        import pandas as pd

        return pd.Series({c: self.row.get(c) for c in COLUMNS})


def analyze(
    model_or_weights: Any,
    *,
    layers: LayerSelection = None,
    randomize: bool = False,
    seed: int | None = None,
    min_evals: int = 8,
    max_evals: int = 15000,
    max_N: int = 50000,
    accurate: bool = False,
    square_mp: str = "htsr",
    include_skipped: bool = False,
    start_ids: int | None = None,
) -> "pd.DataFrame":
    """Analyzes every layer as WeightWatcher's ``watcher.analyze()`` does, on htsr's engine.

    ``model_or_weights`` is a ``torch.nn.Module`` (its ``state_dict()``), a state dict (name -> torch tensor or
    numpy array), the path of a ``.safetensors`` file (a spectra file ``*.esd.safetensors`` too), or a Hugging Face
    checkpoint folder (``model.safetensors.index.json`` with its shards, or ``model.safetensors``).

    Returns one row per layer with WeightWatcher's details columns (``layer_id``, ``name``, ``longname``, ``N``,
    ``M``, ``alpha``, ``xmin``, ``D``, ..., the ``mp_fit``, ``ERG`` and ``randomize`` columns) plus htsr's
    ``phase``, ``very_heavy_tailed``, ``reason`` and the phase evidence: ``htsr.COLUMNS``. Layers WeightWatcher
    would not list (1-D tensors, integer tensors, outside ``min_evals``/``max_evals``/``max_N``) are left out
    unless ``include_skipped``. A file's ``__metadata__`` is in ``df.attrs["metadata"]``.

    ``layers``: None, a regular expression searched in each layer's full name (``longname``), or WeightWatcher's
    list of layer ids and/or names. ``randomize`` adds the comparison with an element-shuffled copy (``seed``,
    default 0: reproducible, unlike WeightWatcher's). ``accurate`` computes eigenvalues from singular values
    instead of the Gram matrix (WeightWatcher's method, slower; the same above the Gram path's rounding floor).
    ``square_mp="ww"`` reproduces WeightWatcher's Marchenko-Pastur fit of square layers.

    ``layer_id`` is WeightWatcher 0.7.7's: a module's index in ``named_modules()``; for a state dict, the position
    among its keys that end with ``.weight`` (all keys when none does), from 1; for a safetensors file or folder,
    the same over the tensor names in sorted order (a sharded folder in its index's order), from 0
    (``htsr._layer_ids`` has the whole rule). A tensor WeightWatcher gives no id but htsr lists gets one after the
    largest. ``start_ids``, when non-zero, is the first id, as in WeightWatcher. Rows come in ``layer_id`` order.
    A dict holding a ``"state_dict"`` dict is read as that state dict, as WeightWatcher does.
    """
    import pandas as pd

    started = time.perf_counter()
    opts: dict[str, Any] = dict(
        min_evals=int(min_evals),
        max_evals=int(max_evals),
        max_n=int(max_N),
        randomize_seed=(int(seed or 0) if randomize else None),
        accurate=bool(accurate),
        square_mp=square_mp,
    )
    metadata: dict[str, str] = {}
    if isinstance(model_or_weights, (str, os.PathLike)):
        rows, metadata = _from_path(model_or_weights, layers, opts, start_ids)
    else:
        rows = _analyze_layers(_in_memory_layers(model_or_weights, start_ids), layers, opts)
    if not include_skipped:
        rows = [r for r in rows if r["status"] != "skipped"]
    # WeightWatcher's row order is its id order (a file's sorted names, a module's named_modules()).
    rows.sort(key=lambda r: r["layer_id"])
    df = pd.DataFrame.from_records(rows, columns=list(COLUMNS))
    # A number column with no value at all (the randomize columns without randomize=True) holds NaN, as in
    # WeightWatcher's frames, not None.
    for col in COLUMNS:
        if col not in _NON_NUMERIC and df[col].dtype == object:
            df[col] = pd.to_numeric(df[col])
    df.attrs["metadata"] = metadata
    df.attrs["seconds"] = time.perf_counter() - started
    return df


def analyze_matrix(
    matrix: Any,
    *,
    name: str = "matrix",
    randomize: bool = False,
    seed: int | None = None,
    accurate: bool = False,
    square_mp: str = "htsr",
) -> LayerResult:
    """Analyzes one weight matrix (numpy array, torch tensor, or anything ``numpy.asarray`` takes).

    A float64 numpy matrix is read in place whatever its strides (a transposed or sliced view is not copied); other
    inputs are read as their bytes, in their own dtype (a 3-D or 4-D kernel is sliced and pooled as a Conv1d or
    Conv2D layer). No size filter applies. Returns a ``LayerResult`` with the row, the phase, its evidence and the
    eigenvalues.
    """
    randomize_seed = int(seed or 0) if randomize else None
    if isinstance(matrix, np.ndarray) and matrix.dtype == np.float64 and matrix.ndim == 2:
        row, evals = _native.analyze_matrix(
            name, matrix, randomize_seed=randomize_seed, accurate=accurate, square_mp=square_mp
        )
    else:
        t = tensor_bytes(name, matrix)
        row, evals = _native.analyze_tensor(
            name,
            t.dtype,
            list(t.shape),
            t.data,
            min_evals=0,
            max_evals=2**63 - 1,
            max_n=2**63 - 1,
            randomize_seed=randomize_seed,
            accurate=accurate,
            square_mp=square_mp,
            with_eigenvalues=True,
        )
    row.update(layer_id=0, longname=row["name"])
    return LayerResult(row, evals)


def classify(
    eigenvalues: Any,
    *,
    N: int,
    M: int | None = None,
    rf: int = 1,
    name: str = "layer",
    layer_type: str | None = None,
    sv_min: float | None = None,
    rank_loss: int | None = None,
    square_mp: str = "htsr",
) -> LayerResult:
    """Fits and classifies eigenvalues you computed yourself: lambda = squared singular values of W (no 1/N), all
    ``rf`` slices pooled (``M * rf`` values), ``N`` and ``M`` one slice's larger and smaller side (``M`` defaults to
    ``len(eigenvalues) // rf``).

    Returns what ``htsr.analyze`` reports for a layer with this spectrum: power law, Marchenko-Pastur fit, metrics,
    the phase and its ``evidence``. ``sv_min`` and ``rank_loss`` default to the single-slice values (smallest
    singular value; eigenvalues under ``lambda_max * N * eps``); pass the per-slice values for pooled slices.
    """
    evals = np.ascontiguousarray(np.asarray(eigenvalues, dtype=np.float64).reshape(-1))
    if M is None:
        M = len(evals) // max(int(rf), 1)
    row, out = _native.classify(
        evals,
        n=int(N),
        m=int(M),
        rf=int(rf),
        name=name,
        layer_type=layer_type,
        sv_min=sv_min,
        rank_loss=rank_loss,
        square_mp=square_mp,
    )
    row.update(layer_id=0, longname=row["name"])
    return LayerResult(row, out)


def get_summary(details: "pd.DataFrame") -> dict[str, float]:
    """WeightWatcher's ``get_summary``: the mean of each model-quality metric over the layers (NaN-free)."""
    metrics = ("log_norm", "alpha", "alpha_weighted", "log_alpha_norm", "log_spectral_norm", "stable_rank", "mp_softrank")
    return {m: float(details[m].mean()) for m in metrics if m in details.columns}


#: The columns of WeightWatcher 0.7.7's ``describe()``, in its order (``layer_id``, ``name``, then the rest sorted, as
#: its ``pd.concat`` onto an empty frame leaves them).
DESCRIBE_COLUMNS: tuple[str, ...] = ("layer_id", "name", "M", "N", "Q", "layer_type", "longname", "num_evals", "rf")

# Safetensors dtypes the engine skips (they hold no weights).
_INTEGER_DTYPES = frozenset(("BOOL", "U8", "I8", "I16", "U16", "I32", "U32", "I64", "U64"))


@dataclass(frozen=True)
class _Planned:
    """A layer ``describe`` lists: its ``_Layer``, its describe row, and the path source that holds it (if any)."""

    layer: _Layer
    row: dict[str, Any]
    path: Path | None


def describe(
    model_or_weights: Any,
    *,
    layers: LayerSelection = None,
    min_evals: int = 8,
    max_evals: int = 15000,
    max_N: int = 50000,
    start_ids: int | None = None,
) -> "pd.DataFrame":
    """WeightWatcher's ``describe()``: the layers ``analyze`` would list, with their shape and no spectrum.

    Columns ``DESCRIBE_COLUMNS``: ``layer_id``, ``name``, ``M``, ``N``, ``Q`` (N/M), ``layer_type``, ``longname``,
    ``num_evals`` (M x rf) and ``rf``; the same rows, ids and names as ``analyze`` (same arguments), from the
    shapes alone: no weight is read, except for a spectra file, whose layers are described by its analysis.
    """
    import pandas as pd

    rows = [p.row for p in _plan_layers(model_or_weights, layers, min_evals, max_evals, max_N, start_ids)]
    df = pd.DataFrame.from_records(rows, columns=list(DESCRIBE_COLUMNS))
    if df.empty:
        df = df.astype({c: "int64" for c in ("layer_id", "M", "N", "num_evals", "rf")} | {"Q": "float64"})
    return df


def _plan_layers(
    model_or_weights: Any,
    layers: LayerSelection,
    min_evals: int,
    max_evals: int,
    max_N: int,
    start_ids: int | None,
) -> list[_Planned]:
    """The layers ``analyze`` would list (not skipped), in ``layer_id`` order, planned from their shapes."""
    limits = dict(min_evals=int(min_evals), max_evals=int(max_evals), max_n=int(max_N))
    path_sources: list[Path] = []
    if isinstance(model_or_weights, (str, os.PathLike)):
        plan, listed, _ = _path_layers(model_or_weights, start_ids)
        path_sources = [s.path for s in plan.sources]
        if any(p.name.endswith(".esd.safetensors") for p in path_sources):
            return _planned_from_analysis(model_or_weights, layers, limits, start_ids)
        candidates = [(layer, *layer.get()) for layer in _select(listed, layers)]
    else:
        candidates = []
        for layer in _select(_in_memory_layers(model_or_weights, start_ids), layers):
            value = layer.get()
            candidates.append((layer, _dtype_name(value), [int(d) for d in getattr(value, "shape", ())]))
    out = []
    for layer, dtype, shape in candidates:
        if dtype in _INTEGER_DTYPES:
            continue
        plan = _native.matrix_plan(list(shape), **limits)
        if plan.get("skipped") is not None:
            continue
        n, m, rf = int(plan["N"]), int(plan["M"]), int(plan["slices"])
        row = dict(
            layer_id=layer.layer_id,
            name=layer.name,
            M=m,
            N=n,
            Q=n / m if m > 0 else -1.0,
            layer_type=plan["kind"],
            longname=layer.longname,
            num_evals=m * rf,
            rf=rf,
        )
        out.append(_Planned(layer, row, path_sources[layer.source] if path_sources else None))
    out.sort(key=lambda p: p.layer.layer_id)
    return out


def _planned_from_analysis(
    path: str | os.PathLike[str], layers: LayerSelection, limits: dict[str, int], start_ids: int | None
) -> list[_Planned]:
    """A spectra file's layers as its analysis describes them (it holds eigenvalues, not shapes)."""
    details = analyze(path, layers=layers, start_ids=start_ids, min_evals=limits["min_evals"],
                      max_evals=limits["max_evals"], max_N=limits["max_n"])
    plan = plan_path(path, start_ids)
    out = []
    for r in details.to_dict("records"):
        n, m, rf = int(r["N"]), int(r["M"]), int(r["rf"])
        layer = _Layer(int(r["layer_id"]), r["name"], r["longname"], r["tensor"], _const(None))
        row = dict(layer_id=layer.layer_id, name=layer.name, M=m, N=n, Q=n / m if m > 0 else -1.0,
                   layer_type=r["layer_type"], longname=layer.longname, num_evals=m * rf, rf=rf)
        out.append(_Planned(layer, row, plan.sources[0].path))
    return out


def _dtype_name(value: Any) -> str | None:
    """The safetensors dtype name of an in-memory tensor or array (None: one the engine cannot be handed)."""
    from htsr._tensors import _NUMPY_DTYPES, is_torch_tensor

    if is_torch_tensor(value):
        return torch_dtype_name(value)
    return _NUMPY_DTYPES.get(np.asarray(value).dtype.name)


def layer_eigenvalues(planned: _Planned, *, accurate: bool = True) -> tuple[np.ndarray, dict[str, Any]]:
    """A described layer's pooled eigenvalues (ascending) as ``analyze`` computes them, and its analysis row."""
    opts: dict[str, Any] = dict(min_evals=0, max_evals=2**63 - 1, max_n=2**63 - 1, accurate=accurate)
    layer = planned.layer
    if planned.path is not None:
        _, results, _ = _native.analyze_path(str(planned.path), names=[layer.longname], with_eigenvalues=True,
                                             **opts)
        matches = [(row, ev) for row, ev in results if (row.get("tensor") or row["name"]) == layer.tensor]
        row, evals = matches[0] if matches else results[0]
    else:
        t = tensor_bytes(layer.tensor, layer.get())
        row, evals = _native.analyze_tensor(layer.tensor, t.dtype, list(t.shape), t.data, with_eigenvalues=True,
                                            **opts)
    if evals is None:
        raise ValueError(f"layer {layer.layer_id} {layer.longname!r} has no eigenvalues: {row.get('reason')}")
    return np.asarray(evals, dtype=np.float64), row


# --- inputs ---------------------------------------------------------------------------------------------------------


def _in_memory_layers(model_or_weights: Any, start_ids: int | None) -> list[_Layer]:
    """The layers of a torch module or a state dict, numbered as WeightWatcher numbers them."""
    if is_torch_module(model_or_weights):
        return _module_layers(model_or_weights, start_ids)
    if isinstance(model_or_weights, Mapping):
        return _state_dict_layers(model_or_weights, start_ids)
    raise TypeError(
        f"htsr.analyze takes a torch.nn.Module, a state dict, or the path of a safetensors file or Hugging Face "
        f"folder; got {type(model_or_weights).__name__} (for one matrix use htsr.analyze_matrix)"
    )


def _module_layers(model: Any, start_ids: int | None) -> list[_Layer]:
    """A module's state dict, with WeightWatcher's ids (index in ``named_modules()``) and short names."""
    model = unwrap(model)
    refuse_sharded_module(model)
    start = start_id(PYTORCH, start_ids)
    module_index = {name: i for i, (name, _) in enumerate(model.named_modules())}
    out = []
    for tensor, value in model.state_dict().items():
        longname = _layer_name(tensor)
        owner = tensor.rsplit(".", 1)[0] if "." in tensor else ""
        layer_id = start + module_index.get(owner, module_index.get(longname, 0))
        out.append(_Layer(layer_id, longname.rsplit(".", 1)[-1], longname, tensor, _const(value)))
    return out


def _state_dict_layers(state: Mapping[str, Any], start_ids: int | None) -> list[_Layer]:
    """A state dict's entries in order, with WeightWatcher's ``PyStateDictLayer`` ids (``htsr._layer_ids``)."""
    inner = state.get("state_dict") if "state_dict" in state else None
    if isinstance(inner, Mapping):
        state = inner  # WeightWatcher's set_model_ (its issue 243): a checkpoint dict holding the state dict
    for tensor in state:
        if not isinstance(tensor, str):
            raise TypeError(f"state dict keys must be tensor names (str), got {tensor!r}")
    ids = state_dict_ids(list(state), start_ids)
    out = []
    for tensor, value in state.items():
        longname = _layer_name(tensor)
        out.append(_Layer(ids(tensor), longname, longname, tensor, _const(value)))
    return out


def _from_path(
    path: str | os.PathLike[str], layers: LayerSelection, opts: dict[str, Any], start_ids: int | None
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """A safetensors file or a folder, through the engine's own reader (as ``htsr-watch analyze``), numbered as
    WeightWatcher numbers it (``htsr._layer_ids``). A folder WeightWatcher reads file by file (shards without
    an index) is read the same way, one engine call per file."""
    plan, listed, ids = _path_layers(path, start_ids)
    selected: list[set[str] | None] = [None] * len(plan.sources)
    if layers is not None and not isinstance(layers, str):
        selected = [set() for _ in plan.sources]
        for layer in _select(listed, layers):
            selected[layer.source].add(layer.longname)
    regex = layers if isinstance(layers, str) else None
    metadata: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, source in enumerate(plan.sources):
        names = selected[i]
        if names is not None and not names:
            continue
        meta, results, _ = _native.analyze_path(
            str(source.path), layers=regex, names=None if names is None else sorted(names), **opts
        )
        for key, value in dict(meta).items():
            metadata.setdefault(key, value)
        for row, _ in results:
            tensor = row.get("tensor") or row["name"]
            if plan.first_wins and len(plan.sources) > 1:
                if tensor in seen:
                    continue  # WeightWatcher reads a name from the first file that holds it
                seen.add(tensor)
            key = tensor if plan.first_wins else (i, tensor)
            # Layers a spectra file describes without a tensor (skipped ones) get ids after the tensors'.
            row.update(layer_id=ids(key), longname=row["name"])
            rows.append(row)
    return rows, metadata


def _path_layers(path: str | os.PathLike[str], start_ids: int | None) -> tuple[Any, list[_Layer], IdAssigner]:
    """The sources WeightWatcher reads for `path`, every tensor they hold (as ``_Layer``, in read order) and the
    ids: WeightWatcher's, then the tensors it does not number after them in read order."""
    plan = plan_path(path, start_ids)
    numbered: dict[object, int] = {}
    for i, source in enumerate(plan.sources):
        for tensor, layer_id in source.ids.items():
            numbered.setdefault(tensor if plan.first_wins else (i, tensor), layer_id)
    ids = IdAssigner(numbered, plan.start)
    listed: list[_Layer] = []
    seen: set[str] = set()
    for i, source in enumerate(plan.sources):
        for tensor, dtype, shape in _native.list_tensors(str(source.path)):
            if plan.first_wins:
                if tensor in seen:
                    continue
                seen.add(tensor)
            name = _layer_name(tensor)
            layer_id = ids(tensor if plan.first_wins else (i, tensor))
            listed.append(_Layer(layer_id, name, name, tensor, _const((dtype, list(shape))), source=i))
    return plan, listed, ids


def _analyze_layers(all_layers: list[_Layer], layers: LayerSelection, opts: dict[str, Any]) -> list[dict[str, Any]]:
    """Analyzes the selected layers one at a time: only one layer's host copy (if any) is alive at once."""
    rows = []
    for layer in _select(all_layers, layers):
        value = layer.get()
        try:
            t = tensor_bytes(layer.tensor, value)
        except TypeError as e:
            rows.append(_unreadable(layer, value, str(e)))
            continue
        row, _ = _native.analyze_tensor(layer.tensor, t.dtype, list(t.shape), t.data, **opts)
        del t
        row.update(layer_id=layer.layer_id, name=layer.name, longname=layer.longname)
        rows.append(row)
    return rows


def _unreadable(layer: _Layer, value: Any, reason: str) -> dict[str, Any]:
    """The row of a tensor whose dtype the engine cannot be handed (complex, quantized): failed, with the reason."""
    return {
        "layer_id": layer.layer_id,
        "name": layer.name,
        "longname": layer.longname,
        "tensor": layer.tensor,
        "layer_type": "other",
        "shape": [int(d) for d in getattr(value, "shape", ())],
        "dtype": str(getattr(value, "dtype", "")),
        "status": "failed",
        "warning": "",
        "reason": reason,
        "has_esd": False,
    }


def _select(all_layers: list[_Layer], layers: LayerSelection) -> list[_Layer]:
    """WeightWatcher's ``layers=`` filter (ids and/or names), or a regular expression on the full name."""
    if layers is None:
        return all_layers
    if isinstance(layers, str):
        pattern = re.compile(layers)
        return [layer for layer in all_layers if pattern.search(layer.longname)]
    if not isinstance(layers, Iterable):
        raise TypeError(f"layers must be None, a regular expression, or a list of ids and names; got {layers!r}")
    ids = [x for x in layers if isinstance(x, (int, np.integer)) and not isinstance(x, bool)]
    names = {x for x in layers if isinstance(x, str)}
    if len(ids) + len(names) != len(list(layers)):
        raise TypeError(f"layers must hold layer ids (int) and names (str); got {layers!r}")
    if not ids and not names:
        return all_layers
    if ids and all(i < 0 for i in ids) and not names:
        dropped = {-int(i) for i in ids}
        return [layer for layer in all_layers if layer.layer_id not in dropped]
    kept = {int(i) for i in ids if i >= 0}
    return [layer for layer in all_layers if layer.layer_id in kept or layer.name in names or layer.longname in names]


def _layer_name(tensor: str) -> str:
    """htsr's layer name: the tensor name without a trailing ``.weight`` (the engine's rule)."""
    return tensor.removesuffix(".weight")


def _const(value: Any) -> Callable[[], Any]:
    return lambda: value


__all__ = [
    "COLUMNS",
    "DESCRIBE_COLUMNS",
    "EVIDENCE_COLUMNS",
    "Evidence",
    "LayerResult",
    "LayerSelection",
    "analyze",
    "analyze_matrix",
    "classify",
    "describe",
    "get_summary",
]
