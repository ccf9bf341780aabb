"""``htsr.WeightWatcher``: WeightWatcher 0.7.7's entry point, so that ``import htsr as ww`` runs code written for
``weightwatcher`` (``ww.WeightWatcher(model=model).analyze()``, ``get_details()``, ``get_summary()``).

Options whose WeightWatcher default is what htsr computes are accepted; ones that would need something htsr does
not compute (plots, other fits, unpooled conv layers, ...) raise ``NotImplementedError`` naming the option,
rather than returning numbers computed differently.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from htsr._analyze import LayerSelection, analyze, get_summary

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


class WeightWatcher:
    """WeightWatcher's class on htsr's engine: ``WeightWatcher(model=m).analyze()`` returns the details DataFrame
    (``htsr.analyze``'s, with htsr's phase columns added)."""

    def __init__(self, model: Any = None, framework: Any = None, base_model: Any = None, log_level: Any = None) -> None:
        if base_model is not None:
            raise NotImplementedError("base_model (delta analysis) is not supported by htsr")
        self.model = model
        self.details: "pd.DataFrame | None" = None

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
        model = model if model is not None else self.model
        if model is None:
            raise ValueError("no model: pass WeightWatcher(model=...) or analyze(model=...)")
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
