"""``htsr.history``: a store's history as a pandas DataFrame, while training runs.

The rows are those of ``htsr-watch export --format csv``, read through the daemon that holds the store when one runs
(the daemon serves its store over a socket beside it), else from the store itself, so a notebook can plot alpha
against the loss while the daemon keeps analyzing."""

from __future__ import annotations

import io
import os
from typing import Any

from htsr import _native


def history(source: str | os.PathLike[str] = ".", run: str | None = None, *, token: str | None = None) -> Any:
    """Every stored (run, step, layer) as a DataFrame.

    ``source`` is a watched directory (its store is ``DIR/.htsr``), a store directory, or a daemon's
    ``http://HOST:PORT`` (``htsr-watch DIR --serve ADDR``, or the local end of an SSH tunnel; ``token`` or
    ``HTSR_TOKEN`` when the daemon asks for one). ``run`` keeps one run.

    Columns: ``run``, ``step``, WeightWatcher's ``layer_id``, ``name``, ``longname`` and details columns (``alpha``,
    ``D``, ``num_spikes``, ...), ``status``, ``warning``, ``phase``, ``very_heavy_tailed``, ``reason``, and the
    checkpoint's ``epoch``, ``loss``, ``lr`` and ``batch_size`` as the training loop recorded them. Taken while the
    daemon stores more, the frame holds the checkpoints stored when the call began, each whole.
    """
    import pandas as pd

    source = os.fspath(source)
    data = _native.history_csv(source, run, token if token is not None else os.environ.get("HTSR_TOKEN"))
    # Floats parse exactly (the CSV holds the shortest text that round-trips each value); names stay text even
    # when they look like numbers (a Sequential's layer "0").
    return pd.read_csv(io.BytesIO(data), dtype={"run": str, "name": str, "longname": str}, float_precision="round_trip")
