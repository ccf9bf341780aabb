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

from htsr import _native, _sharded
from htsr._spectra import PRECISIONS, device_eigenvalues
from htsr._tensors import (
    ShardedWeightsError,
    is_torch_module,
    is_torch_tensor,
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
    rank writes into the same one.

    Sharded models (FSDP2 ``fully_shard``, FSDP1 with ``use_orig_params=True``, DTensor tensor parallelism and
    their 2-D combinations; the model passed may be the FSDP-wrapped module): every rank of the process group must
    call ``step``/``checkpoint`` for the same steps. In spectra mode the ranks compute each layer's exact
    eigenvalues together with torch.distributed collectives, one layer at a time, each layer's eigensolve on the
    rank that owns it, and each rank writes its own layers' file (``htsr._sharded`` describes how). In weights
    mode rank 0 gathers the full state dict and writes one ordinary file with the unsharded names, or raises
    ``htsr.FullWeightsTooLargeError`` (on every rank) when rank 0's memory would not hold it: the gathered state
    dict plus the writer's copy of the checkpointed tensors must fit ``full_weights_budget`` bytes (default: half
    of rank 0's MemAvailable at that checkpoint, or ``HTSR_FULL_WEIGHTS_BUDGET``). Names are stored without the
    ``_fsdp_wrapped_module.``, ``_checkpoint_wrapped_module.`` and ``_orig_mod.`` components.

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
        full_weights_budget: int | None = None,
    ) -> None:
        if rank is None:
            rank = _rank_from_process_group()
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
        self.full_weights_budget = full_weights_budget
        self.last_checkpoint: int | None = None
        self._assignment: dict[str, int] | None = None
        self._exchanged: dict[str, Any] = {}  # the ranks' parts of a sharded model's layers, from the last exchange
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
        if is_torch_module(model):
            model = unwrap(model)
        pieces = _sharded.select(
            model, min_dims=self.min_dims, trainable_only=self.trainable_only, filter=self.filter
        )
        if _sharded.is_sharded(pieces):
            outcome = self._checkpoint_sharded(step, model, pieces, info)
        else:
            tensors = [(q.name, q.local) for q in pieces]
            outcome = Outcome.NOT_DUE
            if self.mode != "spectra" and self.rank == 0:
                outcome = self._write_weights(step, tensors, info)
            if self.mode != "weights":
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


    # --- sharded models -------------------------------------------------------------------------------------------

    def _checkpoint_sharded(
        self, step: int, model: Any, pieces: list[_sharded.Piece], info: dict[str, Any]
    ) -> Outcome:
        """A checkpoint of a sharded model: every rank of the process group takes part."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            raise ShardedWeightsError("sharded tensors (DTensor or FSDP) but no torch.distributed process group")
        ours, theirs = self._writer.rank, (dist.get_rank(), dist.get_world_size())
        if ours != theirs:
            raise ValueError(
                f"this Checkpointer is rank {ours[0]} of {ours[1]} but torch.distributed says rank {theirs[0]} of "
                f"{theirs[1]}: a sharded model needs the process group's ranks (pass rank=(dist.get_rank(), "
                "dist.get_world_size()), or create the Checkpointer after init_process_group)"
            )
        outcome = Outcome.NOT_DUE
        if self.mode != "spectra":
            if not is_torch_module(model):
                raise ShardedWeightsError(
                    "weights mode needs the sharded model itself (a torch.nn.Module) to gather its full state dict; "
                    "use mode=\"spectra\" for a state dict of DTensors"
                )
            outcome = self._write_full_weights(step, model, pieces, info)
        if self.mode != "weights":
            outcome = _combine(outcome, self._write_sharded_spectra(step, pieces, info))
        return outcome

    def _write_full_weights(
        self, step: int, model: Any, pieces: list[_sharded.Piece], info: dict[str, Any]
    ) -> Outcome:
        """Rank 0 writes the full state dict's selected tensors; every rank returns rank 0's outcome."""
        import torch.distributed as dist

        rank = self.rank
        decision: Any = None
        if rank == 0:
            problem = _sharded.full_weights_check(model, pieces, self.full_weights_budget)
            if problem is not None:
                decision = ("refuse", problem)
            else:
                decision = ("write", self._reserve().value)
        box = [decision]
        reserved = decision is not None and decision[0] == "write" and decision[1] != Outcome.SKIPPED.value
        try:
            dist.broadcast_object_list(box, src=0)
        except BaseException:
            if reserved:
                self._writer.release()
            raise
        kind, detail = box[0]
        if kind == "refuse":
            raise _sharded.FullWeightsTooLargeError(detail)
        outcome = Outcome(detail)
        if outcome is Outcome.SKIPPED:
            return outcome
        try:
            state = _sharded.full_state_dict(model)
            payload = []
            if rank == 0:
                for q in pieces:
                    if q.name not in state:
                        raise ShardedWeightsError(f"{q.name!r} is missing from the full state dict")
                    b = tensor_bytes(q.name, state[q.name])
                    payload.append((q.name, b.dtype, list(b.shape), b.data))
        except BaseException:
            if reserved:
                self._writer.release()
            raise
        if rank == 0:
            self._writer.submit_weights(step, payload, **info)
        del state, payload
        return outcome

    def _write_sharded_spectra(self, step: int, pieces: list[_sharded.Piece], info: dict[str, Any]) -> Outcome:
        """Every rank computes its layers' spectra with the others (htsr._sharded) and writes its own file."""
        rank, world = self._writer.rank
        names = [q.name for q in pieces]
        if self._assignment is None or sorted(self._assignment) != names:
            shapes = [(q.name, list(q.shape)) for q in pieces]
            self._assignment = _native.assign_layers(shapes, world, **self._limits)
        assignment = self._assignment
        outcome = self._reserve()
        reserved = outcome is not Outcome.SKIPPED
        try:
            failure = None
            try:
                descs, any_skip = _sharded.exchange(pieces, not reserved, self._exchanged)
            except _sharded._PeerFailure as e:
                descs, any_skip, failure = None, not reserved, str(e)
            if any_skip:
                # Every rank skips together: a rank alone in its collectives would wait for the others.
                if reserved:
                    self._writer.release()
                return Outcome.SKIPPED
            device, cpu, skipped = _sharded.compute_spectra(
                pieces,
                assignment,
                rank=rank,
                world=world,
                limits=self._limits,
                precision=self.precision,
                spectra_on_device=self.spectra_on_device,
                descs=descs,
                failure=failure,
            )
        except BaseException:
            if reserved:
                self._writer.release()
            raise
        self._writer.submit_spectra(step, device, cpu, skipped, assignment, **info)
        return outcome


def _rank_from_process_group() -> tuple[int, int] | None:
    """(rank, world) of an initialized torch.distributed process group when the launcher's environment names no
    ranks (e.g. processes started with ``torch.multiprocessing.spawn``); None otherwise."""
    import sys

    if _native.rank_from_env()[1] > 1 or "torch.distributed" not in sys.modules:
        return None
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return dist.get_rank(), dist.get_world_size()
    return None


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
