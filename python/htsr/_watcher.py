"""``htsr.WeightWatcher``: WeightWatcher 0.7.7's entry point, so that ``import htsr as ww`` runs code written for
``weightwatcher`` (``ww.WeightWatcher(model=model).analyze()``, ``describe()``, ``get_ESD()``, ``get_details()``,
``get_summary()``).

Options whose WeightWatcher default is what htsr computes are accepted; ones that would need something htsr does
not compute (plots, other fits, unpooled conv layers, ...) raise ``NotImplementedError`` naming the option,
rather than returning numbers computed differently. Every other public method of WeightWatcher 0.7.7's class
exists here too and raises ``NotImplementedError`` naming itself and what htsr offers instead.
"""

from __future__ import annotations

import logging
import numbers
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from htsr import _native
from htsr._analyze import LayerSelection, _plan_layers, analyze, describe, get_summary, layer_eigenvalues
from htsr._layer_ids import PYSTATEDICT, PYSTATEDICT_DIR, PYTORCH

logger = logging.getLogger("htsr")

if TYPE_CHECKING:
    import pandas as pd

# WeightWatcher 0.7.7 analyze() keywords htsr honours as WeightWatcher does only at these values.
_ONLY_DEFAULT: dict[str, Any] = {
    "min_size": None,
    "max_size": None,
    "glorot_fix": False,
    "plot": False,
    "conv2d_norm": True,
    "ww2x": False,
    "pool": True,
    "conv2d_fft": False,
    "fft": False,
    "deltas": False,
    "intra": False,
    "vectors": False,
    "channels": None,
    "stacked": False,
    "fix_fingers": False,
    "xmin_max": None,
    "tolerance": 1e-6,
    "pl_package": "ww",
    "xmax": None,
    "base_model": None,
    "inverse": False,
}
# Keywords that change nothing in htsr: the MP fit, detX/ERG and the randomization columns are always there (the
# last with NaN unless randomize=True), savefig goes with plot, sparsify is a plotting option, and peft,
# max_fingers and finger_thresh only matter with their features on.
_IGNORED = {"mp_fit", "detX", "ERG", "savefig", "sparsify", "peft", "max_fingers", "finger_thresh"}


# describe() keywords htsr honours as WeightWatcher does only at these values (glorot_fix and conv2d_norm scale the
# weights, and savefig goes with plots: none of them changes what describe() returns).
_DESCRIBE_ONLY_DEFAULT: dict[str, Any] = {
    "ww2x": False,
    "pool": True,
    "conv2d_fft": False,
    "fft": False,
    "intra": False,
    "channels": None,
    "stacked": False,
    "base_model": None,
    "peft": False,
}
_DESCRIBE_IGNORED = {"min_size", "max_size", "glorot_fix", "savefig", "conv2d_norm"}

# WeightWatcher's layer types: get_ESD(layer="dense") picks the first layer of that type, as its filters do.
_LAYER_TYPES = ("conv2d", "conv1d", "dense", "embedding", "norm")


class WeightWatcher:
    """WeightWatcher's class on htsr's engine: ``WeightWatcher(model=m).analyze()`` returns the details DataFrame
    (``htsr.analyze``'s, with htsr's phase columns added), ``describe()`` the layers without their spectra and
    ``get_ESD(layer=...)`` one layer's eigenvalues. ``model`` is a torch module, a state dict, a safetensors file or
    a folder of safetensors files; layer ids are WeightWatcher's (see ``htsr.analyze``)."""

    def __init__(self, model: Any = None, framework: Any = None, base_model: Any = None, log_level: Any = None) -> None:
        if base_model is not None:
            raise NotImplementedError("base_model (delta analysis) is not supported by htsr")
        self.model = model
        self.base_model = None
        self.framework: str | None = None
        if model is not None:
            found = self.infer_framework(model)
            self.framework = found if self.valid_framework(found) else None
        self.details: "pd.DataFrame | None" = None
        self.results = None

    def __repr__(self) -> str:
        return f"\nAnalysis done: {bool(self.results)}"

    def header(self) -> str:
        """WeightWatcher's (empty) header."""
        return ""

    def banner(self) -> str:
        """WeightWatcher's banner: the Python and numpy versions."""
        return f"\n{self.header()}\npython      version {sys.version}\nnumpy       version {np.__version__}"

    @staticmethod
    def valid_framework(framework: Any) -> bool:
        """True for WeightWatcher's framework names (``pytorch``, ``keras``, ``pystatedict``, ...)."""
        return framework in ("keras", PYTORCH, PYSTATEDICT, PYSTATEDICT_DIR, "onnx", "ww_flatfiles")

    @staticmethod
    def infer_framework(model: Any) -> str:
        """WeightWatcher's framework name for `model`: ``pytorch`` for torch objects, ``pystatedict`` for a dict,
        ``pystatedict_dir`` for a folder of ``model*safetensors`` / ``pytorch_model*bin`` files, else ``unknown``
        (WeightWatcher takes no single file; htsr does)."""
        names = [str(c) for c in type(model).__mro__]
        for marker, framework in (("torch", PYTORCH), ("keras", "keras"), ("onnx", "onnx")):
            if any(marker in n for n in names):
                return framework
        if isinstance(model, Mapping) or any("dict" in n for n in names):
            return PYSTATEDICT
        if isinstance(model, (str, os.PathLike)) and os.path.isdir(model):
            import glob

            folder = os.fspath(model)
            for pattern in ("model*safetensors", "adapter_model*safetensors", "pytorch_model*bin", "adapter_model*bin"):
                if glob.glob(f"{folder}/{pattern}"):
                    return PYSTATEDICT_DIR
            if glob.glob(f"{folder}/*weight*npy"):
                return "ww_flatfiles"
            if glob.glob(f"{folder}/*h5"):
                return "keras_h5_file"
        return "unknown"

    def _model(self, model: Any) -> Any:
        """``set_model_``: the model passed, else the one given before (and remembered)."""
        if model is not None:
            self.model = model
            if self.framework is None:
                found = self.infer_framework(model)
                self.framework = found if self.valid_framework(found) else None
        if self.model is None:
            raise ValueError("no model: pass WeightWatcher(model=...) or the method's model=")
        return self.model

    def analyze(
        self,
        model: Any = None,
        layers: LayerSelection = None,
        min_evals: int = 8,
        max_evals: int = 15000,
        max_N: int = 50000,
        randomize: bool = False,
        svd_method: str = "fast",
        fit: str = "PL",
        start_ids: int | None = None,
        **options: Any,
    ) -> "pd.DataFrame":
        """WeightWatcher's ``analyze``: the details of every layer (see ``htsr.analyze`` for the columns)."""
        model = self._model(model)
        for key, value in options.items():
            if key in _IGNORED:
                continue
            if key not in _ONLY_DEFAULT:
                raise TypeError(f"analyze() got an unexpected keyword argument {key!r}")
            if value != _ONLY_DEFAULT[key]:
                raise NotImplementedError(f"analyze({key}={value!r}) is not supported by htsr (only {_ONLY_DEFAULT[key]!r})")
        if fit not in ("PL", "power_law"):
            raise NotImplementedError(f"analyze(fit={fit!r}): htsr fits WeightWatcher's default power law only")
        if svd_method not in ("fast", "accurate"):
            raise NotImplementedError(f"analyze(svd_method={svd_method!r}): htsr has 'fast' and 'accurate'")
        self.details = analyze(
            model,
            layers=None if layers == [] else layers,
            randomize=randomize,
            min_evals=min_evals,
            max_evals=max_evals,
            max_N=max_N,
            accurate=svd_method == "accurate",
            start_ids=start_ids,
        )
        return self.details

    def get_details(self) -> "pd.DataFrame | None":
        """The details of the last ``analyze``."""
        return self.details

    def get_summary(self, details: "pd.DataFrame | None" = None) -> dict[str, float]:
        """The mean of each model-quality metric over the layers of ``details`` (default: the last analysis)."""
        details = self.details if details is None else details
        return {} if details is None else get_summary(details)

    def describe(
        self,
        model: Any = None,
        layers: LayerSelection = None,
        min_evals: int = 8,
        max_evals: int = 15000,
        max_N: int = 50000,
        start_ids: int | None = 0,
        **options: Any,
    ) -> "pd.DataFrame":
        """WeightWatcher's ``describe``: ``analyze`` without the spectra and fits. Returns WeightWatcher's columns
        (``htsr.DESCRIBE_COLUMNS``: ``layer_id``, ``name``, ``M``, ``N``, ``Q``, ``layer_type``, ``longname``,
        ``num_evals``, ``rf``), a row per layer ``analyze`` would list, read from the shapes alone."""
        model = self._model(model)
        for key, value in options.items():
            if key in _DESCRIBE_IGNORED:
                continue
            if key not in _DESCRIBE_ONLY_DEFAULT:
                raise TypeError(f"describe() got an unexpected keyword argument {key!r}")
            if value != _DESCRIBE_ONLY_DEFAULT[key]:
                raise NotImplementedError(
                    f"describe({key}={value!r}) is not supported by htsr (only {_DESCRIBE_ONLY_DEFAULT[key]!r})"
                )
        return describe(
            model,
            layers=None if layers == [] else layers,
            min_evals=min_evals,
            max_evals=max_evals,
            max_N=max_N,
            start_ids=start_ids,
        )

    def get_ESD(self, model: Any = None, layer: Any = None, random: bool = False, params: Any = None) -> Any:
        """WeightWatcher's ``get_ESD``: the eigenvalues of one layer's weight matrices, pooled over a conv layer's
        slices, as a float64 numpy array in ascending order: the squared singular values of W, *without* the
        conv2d normalization ``analyze`` applies (so a Conv2D layer's values are twice those behind its alpha), as
        WeightWatcher returns them.

        ``layer`` is a ``layer_id`` or a layer ``name`` from ``describe()`` (a layer type such as ``"dense"``
        picks the first layer of that type; None the first layer). A layer that ``describe()`` does not list
        returns ``[]`` and logs an error, as in WeightWatcher. ``random=True`` returns the ESD of element-shuffled
        copies of each weight matrix (numpy's global random state, 5 copies pooled when the layer has under 100
        eigenvalues, as WeightWatcher draws them).
        """
        model = self._model(model)
        if params is not None:
            raise NotImplementedError("get_ESD(params=...) is not supported by htsr (only params=None)")
        planned = _plan_layers(model, None, 8, 15000, 50000, None)
        ids = [p.layer.layer_id for p in planned]
        names = [p.layer.name for p in planned]
        if isinstance(layer, numbers.Integral) and layer not in ids:
            logger.error("Can not find layer id %s in valid layer_ids %s", layer, ids)
            return []
        if type(layer) is str and layer not in names:
            logger.error("Can not find layer name %s in valid layer_names %s", layer, names)
            return []
        if isinstance(layer, numbers.Integral):
            chosen = [p for p in planned if p.layer.layer_id == layer]
        elif type(layer) is str and layer in _LAYER_TYPES:
            chosen = [p for p in planned if p.row["layer_type"] == layer]
        elif type(layer) is str:
            chosen = [p for p in planned if p.layer.name == layer]
        else:
            chosen = planned  # WeightWatcher ignores a filter of another type: the first layer
        if not chosen:
            raise ValueError("get_ESD: the model has no layer WeightWatcher would analyze")
        target = chosen[0]
        if not random:
            evals, row = layer_eigenvalues(target)
            if row.get("layer_type") == "conv2d":
                evals = evals / 0.5  # undo conv2d_norm (W * sqrt(1/2)), which get_ESD does not apply
            return evals
        return _random_esd(target)


def _random_esd(target: Any) -> np.ndarray:
    """WeightWatcher's ``random_eigenvalues`` for one layer: each weight matrix (each slice of a conv kernel)
    shuffled element-wise with ``np.random.shuffle``, its eigenvalues from the engine, all pooled and sorted;
    5 replicas when the layer has fewer than 100 eigenvalues (``n_comp``), else 1."""
    from htsr._tensors import tensor_bytes

    layer = target.layer
    if target.path is not None and target.path.name.endswith(".esd.safetensors"):
        raise NotImplementedError("get_ESD(random=True) shuffles weights; a spectra file holds eigenvalues only")
    if target.path is not None:
        weights = _read_tensor(target.path, layer.tensor)
    else:
        weights = layer.get()
    t = tensor_bytes(layer.tensor, weights)
    flat = _decode(t.dtype, t.data)
    plan = _native.matrix_plan(list(t.shape), min_evals=0, max_evals=2**63 - 1, max_n=2**63 - 1)
    rows, cols, slices = int(plan["rows"]), int(plan["cols"]), int(plan["slices"])
    ss, rs, cs = int(plan["slice_stride"]), int(plan["row_stride"]), int(plan["col_stride"])
    mats = [
        np.lib.stride_tricks.as_strided(
            flat[k * ss :], shape=(rows, cols), strides=(rs * flat.itemsize, cs * flat.itemsize), writeable=False
        ).copy()
        for k in range(slices)
    ]
    n_comp = int(plan["M"]) * slices
    replicas = 5 if n_comp < 100 else 1
    out = []
    for _ in range(replicas):
        for w in mats:
            shuffled = w.flatten()
            np.random.shuffle(shuffled)
            _, evals = _native.analyze_matrix(
                layer.tensor, shuffled.reshape(w.shape), accurate=True, with_eigenvalues=True
            )
            out.append(np.asarray(evals, dtype=np.float64))
    return np.sort(np.concatenate(out))


def _decode(dtype: str, data: np.ndarray) -> np.ndarray:
    """A tensor's bytes as float64 values (bf16 widened through float32)."""
    if dtype == "BF16":
        return (data.view(np.uint16).astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    kinds = {"F64": np.float64, "F32": np.float32, "F16": np.float16}
    if dtype not in kinds:
        raise NotImplementedError(f"get_ESD(random=True) reads F64, F32, F16 and BF16 weights, not {dtype}")
    return data.view(kinds[dtype]).astype(np.float64)


def _read_tensor(path: Any, tensor: str) -> Any:
    """One tensor of a safetensors file or sharded folder (for get_ESD(random=True) on a path), read with the
    safetensors package."""
    try:
        from safetensors import safe_open
    except ImportError as e:  # pragma: no cover - safetensors comes with every torch install htsr is used with
        raise NotImplementedError("get_ESD(random=True) on a file needs the safetensors package") from e
    if os.path.isdir(path):  # a sharded folder the engine reads through its index: the shard holding the tensor
        import json

        with open(os.path.join(path, "model.safetensors.index.json")) as f:
            path = os.path.join(path, json.load(f)["weight_map"][tensor])
    with safe_open(str(path), framework="pt") as f:
        return f.get_tensor(tensor)


def _unsupported(name: str, instead: str) -> Callable[..., Any]:
    def method(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"WeightWatcher.{name}() is not implemented by htsr: {instead}")

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"Not implemented by htsr (WeightWatcher 0.7.7 has it): {instead}"
    return staticmethod(method)


_INTERNAL = (
    "a WeightWatcher internal step; htsr's engine does the whole analysis: use analyze(), describe(), get_ESD(), "
    "htsr.analyze_matrix(W) or htsr.classify(eigenvalues, N=...)"
)
_NO_WEIGHT_EDITS = "htsr analyzes weights and never changes them (no SVD smoothing or sharpening)"
_NO_VECTORS = "htsr computes eigenvalues, not eigenvectors (no vector metrics)"
_NO_DELTAS = (
    "htsr has no model comparison or base_model deltas: analyze both models with analyze() and compare the frames"
)
_FILES = (
    "htsr reads safetensors files and folders directly (analyze('model.safetensors') or analyze(folder)); "
    "convert pickled .bin/.h5/.npy weights to safetensors first"
)
_NO_PLOTS = "htsr does not plot; `htsr-watch report` draws ESDs and alpha histories"

#: Every public method of WeightWatcher 0.7.7's class that htsr does not implement, with what to use instead.
NOT_IMPLEMENTED: dict[str, str] = {
    "SVDSmoothing": _NO_WEIGHT_EDITS,
    "SVDSharpness": _NO_WEIGHT_EDITS,
    "apply_svd_smoothing": _NO_WEIGHT_EDITS,
    "apply_svd_sharpness": _NO_WEIGHT_EDITS,
    "smooth_W": _NO_WEIGHT_EDITS,
    "smooth_W_alt": _NO_WEIGHT_EDITS,
    "replace_layer_weights": _NO_WEIGHT_EDITS,
    "analyze_vectors": _NO_VECTORS,
    "apply_analyze_eigenvectors": _NO_VECTORS,
    "vector_metrics": _NO_VECTORS,
    "iterate_vectors": _NO_VECTORS,
    "valid_vectors": _NO_VECTORS,
    "distances": _NO_DELTAS,
    "matrix_distance": _NO_DELTAS,
    "model_deltas": _NO_DELTAS,
    "same_models": _NO_DELTAS,
    "make_delta_layer_iterator": _NO_DELTAS,
    "make_peft_layer_iterator": "htsr has no PEFT/LoRA layer pairing: " + _NO_DELTAS,
    "analyze_pytorch_bins": _FILES,
    "describe_pytorch_bins": _FILES,
    "apply_watcher_to_pytorch_bins": _FILES,
    "extract_pytorch_bins": _FILES,
    "extract_pytorch_statedict_": _FILES,
    "extract_safetensors_config_": _FILES,
    "read_pystatedict_config": _FILES,
    "write_pystatedict_config": _FILES,
    "found_pystate_config": _FILES,
    "read_keras_h5_file": _FILES,
    "infer_model_file_format": _FILES,
    "load_framework_imports": "htsr needs no framework imports: it reads torch tensors, numpy arrays and safetensors",
    "apply_plot_esd": _NO_PLOTS,
    "apply_plot_deltaEs": _NO_PLOTS,
    "plot_random_esd": _NO_PLOTS,
    "fit_powerlaw": "use htsr.classify(eigenvalues, N=...) for WeightWatcher's power-law fit (alpha, xmin, D, ...)",
    "mp_fit": "use htsr.classify(eigenvalues, N=..., M=...) for the Marchenko-Pastur fit columns",
    "get_Weights": "read the weights from the model itself: model.state_dict()[tensor] (the 'tensor' column of "
    "analyze())",
    "get_framework_layer": "use the model's own module: dict(model.named_modules())[longname]",
    "layer_type_from_str": "htsr's layer_type column holds the type as text ('dense', 'conv1d', 'conv2d')",
    "set_model_": "pass the model to WeightWatcher(model=...) or to analyze/describe/get_ESD(model=...)",
    "make_layer_iterator": _INTERNAL,
    "combined_eigenvalues": _INTERNAL,
    "random_eigenvalues": "use get_ESD(layer, random=True), or analyze(randomize=True) for the rand_* columns",
    "apply_normalize_Wmats": _INTERNAL,
    "apply_FFT": _INTERNAL,
    "apply_esd": _INTERNAL,
    "apply_random_esd": _INTERNAL,
    "apply_permute_W": _INTERNAL,
    "apply_unpermute_W": _INTERNAL,
    "apply_detX": _INTERNAL,
    "apply_powerlaw": _INTERNAL,
    "apply_mp_fit": _INTERNAL,
    "apply_norm_metrics": _INTERNAL,
    "valid_params": _INTERNAL,
    "normalize_params": _INTERNAL,
    "normalize_evals": _INTERNAL,
    "glorot_norm_fix": _INTERNAL,
    "glorot_norm_check": _INTERNAL,
}

for _name, _instead in NOT_IMPLEMENTED.items():
    setattr(WeightWatcher, _name, _unsupported(_name, _instead))
del _name, _instead
