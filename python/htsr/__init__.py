"""htsr: watch neural-network layers learn.

Analysis (WeightWatcher 0.7.7's ``watcher.analyze()`` on htsr's Rust engine)::

    import htsr
    details = htsr.analyze(model)          # a torch module, a state dict, a safetensors file or HF folder

``htsr.WeightWatcher`` is WeightWatcher's class (``import htsr as ww``); ``htsr.analyze_matrix`` analyzes one
matrix, ``htsr.classify`` eigenvalues you computed.

Training (files for ``htsr-watch DIR``)::

    ckpt = htsr.Checkpointer("htsr-runs", run="baseline", every=100)
    ...
    ckpt.step(step, model, loss=loss, lr=lr, epoch=epoch)    # after optimizer.step()

and ``htsr.hf.HtsrCallback`` (Hugging Face ``Trainer``), ``htsr.lightning.HtsrCallback`` (Lightning).

History (what ``htsr-watch DIR`` stored, read while it runs)::

    df = htsr.history("htsr-runs")         # one row per run, step and layer: alpha, phase, loss, lr, ...
"""

from htsr._analyze import (
    COLUMNS,
    EVIDENCE_COLUMNS,
    Evidence,
    LayerResult,
    analyze,
    analyze_matrix,
    classify,
    get_summary,
)
from htsr._checkpointer import Checkpointer, Outcome
from htsr._history import history
from htsr._native import CheckpointError, WriteError, __version__, set_threads
from htsr._sharded import FullWeightsTooLargeError
from htsr._tensors import ShardedWeightsError
from htsr._watcher import WeightWatcher

__all__ = [
    "COLUMNS",
    "EVIDENCE_COLUMNS",
    "CheckpointError",
    "Checkpointer",
    "Evidence",
    "FullWeightsTooLargeError",
    "LayerResult",
    "Outcome",
    "ShardedWeightsError",
    "WeightWatcher",
    "WriteError",
    "__version__",
    "analyze",
    "analyze_matrix",
    "classify",
    "get_summary",
    "history",
    "set_threads",
]
