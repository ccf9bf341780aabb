"""``htsr.Checkpointer``: the Python counterpart of the tch hook (``htsr-tch-hook``), for a plain PyTorch loop and
behind the Hugging Face and Lightning callbacks.

Every ``every`` steps it hands the model's weights (or, in spectra mode, their eigenvalues) to the Rust writer
(``htsr._native.Writer``: htsr-writer's background ``CheckpointWriter``), which names, fills in the ``htsr.*``
metadata and writes the file atomically on its own thread, exactly as the tch hook does. ``htsr-watch DIR`` then
analyzes each file as it lands.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from htsr import _native
from htsr._spectra import PRECISIONS, device_eigenvalues
from htsr._tensors import (
    is_torch_module,
    is_torch_tensor,
    refuse_sharded_module,
    refuse_sharded_tensor,
    tensor_bytes,
    torch_dtype_name,
    unwrap,
)


class Outcome(str, enum.Enum):
    """What one ``Checkpointer.step`` (or ``epoch_end``, ``checkpoint``) call did."""

    NOT_DUE = "not_due"
    """No checkpoint is due at this step."""
    QUEUED = "queued"
    """A snapshot was taken and queued for writing without waiting."""
    WAITED = "waited"
    """The writer was behind; the step waited for it, then queued the snapshot."""
    SKIPPED = "skipped"
    """The writer was behind and ``when_behind="skip"``: no checkpoint for this step."""


MODES = ("weights", "spectra", "both")


class Checkpointer:
    """Writes checkpoints of a model for ``htsr-watch`` every ``every`` steps, off the training thread.

    Files go to ``dir/run/``: ``step-000000100.safetensors`` (weights) and/or ``step-000000100.esd.safetensors``
    (spectra; ``step-….rank-R-of-W.esd.safetensors`` per rank in a distributed run), with ``htsr.step``,
    ``htsr.run``, ``htsr.wall_time`` and the ``loss``, ``lr``, ``epoch``, ``batch_size`` you pass in their
    metadata. ``dir``, ``run``, ``every`` and ``mode`` default to ``HTSR_DIR``, ``HTSR_RUN``, ``HTSR_EVERY`` and
    ``HTSR_MODE`` when set, else ``htsr-runs``, ``run-<unix seconds>``, 100 and ``weights``.

    ``mode="spectra"`` writes each layer's eigenvalues instead of its weights, computed in this process exactly as
    htsr-engine computes them from weights: on the tensor's own device with torch for accelerator tensors (only
    the eigenvalues leave the device), by htsr-engine on the writer thread for CPU tensors (``spectra_on_device``
    computes those with torch too). ``precision="f32"`` accumulates the device's Gram matrix in float32 (recorded
    in the file). In a distributed data-parallel run (``RANK``/``WORLD_SIZE`` or ``SLURM_PROCID``/
    ``SLURM_NTASKS``, or ``rank=(r, world)``), rank 0 writes the weights and every rank computes the spectra of its
    share of the layers, balanced by cost; there the run must be named (``run`` or ``HTSR_RUN``), so that every
    rank writes into the same one. Sharded weights (FSDP, tensor parallel) raise ``ShardedWeightsError``.

    Which tensors: parameters with at least ``min_dims`` dimensions, trainable ones only unless
    ``trainable_only=False``, passing ``filter(name)``; a state dict (name -> tensor or array) works too. At most
    ``queue`` snapshots are pending at once; when the writer falls behind, a step waits (``when_behind="wait"``)
    or skips its checkpoint (``"skip"``). A failed write (disk full) is raised as ``htsr.WriteError`` by the next
    call, and training can go on.
    """

    def __init__(
        self,
        dir: str | os.PathLike[str] | None = None,
        run: str | None = None,
        every: int | None = None,
        *,
        mode: str | None = None,
        at_epoch_end: bool = True,
        filter: Callable[[str], bool] | None = None,
        trainable_only: bool = True,
        min_dims: int = 2,
        keep_last: int | None = None,
        metadata: Mapping[str, Any] | None = None,
        queue: int = 2,
        when_behind: str = "wait",
        rank: tuple[int, int] | None = None,
        precision: str = "f64",
        spectra_on_device: bool = False,
        min_evals: int = 8,
        max_evals: int = 15000,
        max_N: int = 50000,
    ) -> None:
        world = rank[1] if rank is not None else _native.rank_from_env()[1]
        dir_, run_, every_, mode_ = _native.Writer.resolve(
            None if dir is None else os.fspath(dir), run, None if every is None else int(every), mode, world
        )
        if precision not in PRECISIONS:
            raise ValueError(f"precision={precision!r}: expected one of {PRECISIONS}")
        self._limits = dict(min_evals=int(min_evals), max_evals=int(max_evals), max_n=int(max_N))
        self._writer = _native.Writer(
            dir_,
            run_,
            queue=int(queue),
            when_behind=when_behind,
            keep_last=keep_last,
            metadata={str(k): str(v) for k, v in (metadata or {}).items()},
            rank=rank,
            **self._limits,
        )
        self.every: int = every_
        self.mode: str = mode_
        self.at_epoch_end = at_epoch_end
        self.filter = filter
        self.trainable_only = trainable_only
        self.min_dims = min_dims
        self.precision = precision
        self.spectra_on_device = spectra_on_device
        self.last_checkpoint: int | None = None
        self._assignment: dict[str, int] | None = None
        self._counts = {"queued": 0, "waited": 0, "skipped": 0}
        self._finished = False

    # --- what the user sees ---------------------------------------------------------------------------------------

    @property
    def run(self) -> str:
        """The run name (the subdirectory of ``dir``)."""
        return self._writer.run

    @property
    def run_dir(self) -> Path:
        """Where the files go: ``dir/run``."""
        return Path(self._writer.run_dir)

    @property
    def rank(self) -> int:
        """This process's rank (0 without a distributed launcher)."""
        return self._writer.rank[0]

    @property
    def world_size(self) -> int:
        """The number of ranks (1 without a distributed launcher)."""
        return self._writer.rank[1]

    @property
    def stats(self) -> dict[str, int]:
        """Checkpoints ``queued``, ``waited`` (queued after waiting), ``skipped``; files ``written``, ``failed``."""
        written, failed = self._writer.stats()
        return {**self._counts, "written": written, "failed": failed}

    def is_due(self, step: int) -> bool:
        """Whether ``step`` is a checkpoint step (a multiple of ``every``, not yet written)."""
        return self.every != 0 and step % self.every == 0 and self.last_checkpoint != step

    def step(
        self,
        step: int,
        model: Any,
        *,
        loss: Any = None,
        lr: float | None = None,
        epoch: int | None = None,
        batch_size: int | None = None,
    ) -> Outcome:
        """Call once per training step, after the optimizer step: checkpoints when ``step`` is due. ``loss`` may
        be a tensor; it is read (``.item()``) only on checkpoint steps."""
        if not self.is_due(step):
            self._writer.take_error()
            return Outcome.NOT_DUE
        return self.checkpoint(step, model, loss=loss, lr=lr, epoch=epoch, batch_size=batch_size)

    def epoch_end(
        self,
        step: int,
        model: Any,
        *,
        loss: Any = None,
        lr: float | None = None,
        epoch: int | None = None,
        batch_size: int | None = None,
    ) -> Outcome:
        """Call at the end of an epoch: checkpoints ``step`` when ``at_epoch_end`` and none was written for it."""
        if not self.at_epoch_end or self.last_checkpoint == step:
            self._writer.take_error()
            return Outcome.NOT_DUE
        return self.checkpoint(step, model, loss=loss, lr=lr, epoch=epoch, batch_size=batch_size)

    def checkpoint(
        self,
        step: int,
        model: Any,
        *,
        loss: Any = None,
        lr: float | None = None,
        epoch: int | None = None,
        batch_size: int | None = None,
    ) -> Outcome:
        """Checkpoints ``step`` now, whatever the interval. Raises ``htsr.WriteError`` for an earlier failed write
        (this step was still handled)."""
        if self._finished:
            raise RuntimeError("this Checkpointer is finished")
        info = dict(epoch=_opt_int(epoch), loss=_opt_float(loss), lr=_opt_float(lr), batch_size=_opt_int(batch_size))
        tensors = self._selected(model)
        weights = self.mode != "spectra" and self.rank == 0
        spectra = self.mode != "weights"
        outcome = Outcome.NOT_DUE
        if weights:
            outcome = self._write_weights(step, tensors, info)
        if spectra:
            outcome = _combine(outcome, self._write_spectra(step, tensors, info))
        if outcome not in (Outcome.SKIPPED, Outcome.NOT_DUE):
            self.last_checkpoint = step
        if outcome is not Outcome.NOT_DUE:
            self._counts[outcome.value] += 1
        # An earlier write's error takes precedence; this step was still handled as `outcome` says.
        self._writer.take_error()
        return outcome

    def flush(self) -> None:
        """Waits until every queued checkpoint is written; raises a pending ``htsr.WriteError``."""
        self._writer.flush()

    def finish(self) -> dict[str, int]:
        """Writes what is queued, stops the writer thread and returns ``stats``; raises a pending write error."""
        if not self._finished:
            self._finished = True
            self._writer.finish()
        return self.stats

    close = finish

    def __enter__(self) -> "Checkpointer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()

    def __repr__(self) -> str:
        return f"Checkpointer(run_dir={str(self.run_dir)!r}, every={self.every}, mode={self.mode!r})"

    # --- internals ------------------------------------------------------------------------------------------------

    def _selected(self, model: Any) -> list[tuple[str, Any]]:
        """The tensors a checkpoint holds, sorted by name (as the tch hook's)."""
        if is_torch_module(model):
            model = unwrap(model)
            refuse_sharded_module(model)
            items = [
                (name, p)
                for name, p in model.named_parameters()
                if p.dim() >= self.min_dims and (p.requires_grad or not self.trainable_only)
            ]
        elif isinstance(model, Mapping):
            items = [(str(k), v) for k, v in model.items() if len(getattr(v, "shape", ())) >= self.min_dims]
        else:
            raise TypeError(f"Checkpointer needs a torch.nn.Module or a state dict, got {type(model).__name__}")
        if self.filter is not None:
            items = [(n, t) for n, t in items if self.filter(n)]
        for name, t in items:
            refuse_sharded_tensor(name, t)
        return sorted(items, key=lambda item: item[0])

    def _reserve(self) -> Outcome:
        kind, _ = self._writer.reserve()
        return Outcome(kind)

    def _write_weights(self, step: int, tensors: list[tuple[str, Any]], info: dict[str, Any]) -> Outcome:
        outcome = self._reserve()
        if outcome is Outcome.SKIPPED:
            return outcome
        try:
            payload = []
            for name, t in tensors:
                b = tensor_bytes(name, t)
                payload.append((name, b.dtype, list(b.shape), b.data))
        except BaseException:
            self._writer.release()
            raise
        self._writer.submit_weights(step, payload, **info)
        return outcome

    def _write_spectra(self, step: int, tensors: list[tuple[str, Any]], info: dict[str, Any]) -> Outcome:
        rank, world = self._writer.rank
        if self._assignment is None:
            shapes = [(name, [int(d) for d in t.shape]) for name, t in tensors]
            self._assignment = _native.assign_layers(shapes, world, **self._limits)
        assignment = self._assignment
        mine = [(n, t) for n, t in tensors if assignment.get(n, rank) == rank]
        outcome = self._reserve()
        if outcome is Outcome.SKIPPED:
            return outcome
        try:
            device, cpu, skipped = [], [], []
            for name, t in mine:
                shape = [int(d) for d in t.shape]
                torch_tensor = is_torch_tensor(t)
                dtype = torch_dtype_name(t) if torch_tensor else None
                if torch_tensor and dtype is None:
                    skipped.append((name, "", shape, f"dtype {t.dtype} has no safetensors equivalent", False))
                elif torch_tensor and (t.device.type != "cpu" or self.spectra_on_device):
                    plan = _native.matrix_plan(shape, **self._limits)
                    if plan["skipped"] is not None:
                        skipped.append((name, dtype, shape, plan["skipped"], False))
                        continue
                    evals = device_eigenvalues(t, plan, self.precision)
                    if isinstance(evals, str):
                        skipped.append((name, dtype, shape, evals, True))
                    else:
                        device.append((name, dtype, shape, evals, self.precision))
                else:
                    b = tensor_bytes(name, t)
                    cpu.append((name, b.dtype, list(b.shape), b.data))
        except BaseException:
            self._writer.release()
            raise
        self._writer.submit_spectra(step, device, cpu, skipped, assignment, **info)
        return outcome


def _combine(first: Outcome, second: Outcome) -> Outcome:
    """The outcome of a step that wrote weights (`first`) and spectra (`second`), as the tch hook combines them."""
    if first is Outcome.NOT_DUE:
        return second
    if second is Outcome.WAITED and first in (Outcome.QUEUED, Outcome.WAITED):
        return Outcome.WAITED
    return first


def _opt_float(x: Any) -> float | None:
    if x is None:
        return None
    if hasattr(x, "item"):
        x = x.item()
    return float(x)


def _opt_int(x: Any) -> int | None:
    if x is None:
        return None
    if hasattr(x, "item"):
        x = x.item()
    return int(x)
