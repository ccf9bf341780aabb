"""Type stubs of htsr._native, the Rust extension (python/src). See the Rust doc comments for details."""

from os import PathLike
from typing import Any

import numpy as np
import numpy.typing as npt

__version__: str
EXPORT_COLUMNS: list[str]
#: The environment variables the writers read: DIR, EVERY, RUN, MODE -> HTSR_DIR, ...
ENV: dict[str, str]

class CheckpointError(ValueError): ...
class WriteError(OSError): ...

def set_threads(n: int) -> None: ...

_Row = dict[str, Any]
_Layer = tuple[_Row, npt.NDArray[np.float64] | None]

def analyze_path(
    path: str | PathLike[str],
    *,
    min_evals: int = 8,
    max_evals: int = 15000,
    max_n: int = 50000,
    layers: str | None = None,
    names: list[str] | None = None,
    randomize_seed: int | None = None,
    accurate: bool = False,
    square_mp: str = "htsr",
    with_eigenvalues: bool = False,
) -> tuple[dict[str, str], list[_Layer], float]: ...
def list_tensors(path: str | PathLike[str]) -> list[tuple[str, str, list[int]]]: ...
def analyze_tensor(
    name: str,
    dtype: str,
    shape: list[int],
    data: npt.NDArray[np.uint8],
    *,
    min_evals: int = 8,
    max_evals: int = 15000,
    max_n: int = 50000,
    randomize_seed: int | None = None,
    accurate: bool = False,
    square_mp: str = "htsr",
    with_eigenvalues: bool = False,
) -> _Layer: ...
def analyze_matrix(
    name: str,
    matrix: npt.NDArray[np.float64],
    *,
    randomize_seed: int | None = None,
    accurate: bool = False,
    square_mp: str = "htsr",
    with_eigenvalues: bool = True,
) -> _Layer: ...
def classify(
    eigenvalues: npt.NDArray[np.float64],
    *,
    n: int,
    m: int,
    rf: int = 1,
    name: str = "layer",
    layer_type: str | None = None,
    sv_min: float | None = None,
    rank_loss: int | None = None,
    square_mp: str = "htsr",
) -> _Layer: ...
def matrix_plan(shape: list[int], *, min_evals: int = 8, max_evals: int = 15000, max_n: int = 50000) -> dict[str, Any]: ...
def assign_layers(
    layers: list[tuple[str, list[int]]], world: int, *, min_evals: int = 8, max_evals: int = 15000, max_n: int = 50000
) -> dict[str, int]: ...
def rank_from_env() -> tuple[int, int]: ...

class Writer:
    def __init__(
        self,
        dir: str | PathLike[str],
        run: str,
        *,
        queue: int = 2,
        when_behind: str = "wait",
        keep_last: int | None = None,
        metadata: dict[str, str] | None = None,
        rank: tuple[int, int] | None = None,
        min_evals: int = 8,
        max_evals: int = 15000,
        max_n: int = 50000,
    ) -> None: ...
    @staticmethod
    def resolve(
        dir: str | PathLike[str] | None = None,
        run: str | None = None,
        every: int | None = None,
        mode: str | None = None,
        world: int = 1,
    ) -> tuple[str, str, int, str]: ...
    @property
    def run(self) -> str: ...
    @property
    def run_dir(self) -> str: ...
    @property
    def rank(self) -> tuple[int, int]: ...
    def reserve(self) -> tuple[str, float]: ...
    def release(self) -> None: ...
    def submit_weights(
        self,
        step: int,
        tensors: list[tuple[str, str, list[int], npt.NDArray[np.uint8]]],
        *,
        epoch: int | None = None,
        loss: float | None = None,
        lr: float | None = None,
        batch_size: int | None = None,
    ) -> None: ...
    def submit_spectra(
        self,
        step: int,
        device: list[tuple[str, str, list[int], npt.NDArray[np.float64], str]],
        cpu: list[tuple[str, str, list[int], npt.NDArray[np.uint8]]],
        skipped: list[tuple[str, str, list[int], str, bool]],
        assignment: dict[str, int],
        *,
        epoch: int | None = None,
        loss: float | None = None,
        lr: float | None = None,
        batch_size: int | None = None,
    ) -> None: ...
    def take_error(self) -> None: ...
    def flush(self) -> None: ...
    def finish(self) -> tuple[int, int]: ...
    def stats(self) -> tuple[int, int]: ...

def history_csv(source: str, run: str | None = None, token: str | None = None) -> bytes: ...
