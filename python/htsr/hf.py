"""A Hugging Face ``TrainerCallback`` that checkpoints the model for ``htsr-watch`` while ``Trainer`` trains.

    from htsr.hf import HtsrCallback
    trainer = Trainer(model=model, args=args, train_dataset=ds, callbacks=[HtsrCallback("htsr-runs", every=100)])

Importing this module imports ``transformers``.
"""

from __future__ import annotations

import os
from typing import Any

from transformers import TrainerCallback

from htsr import _native
from htsr._checkpointer import Checkpointer


class HtsrCallback(TrainerCallback):
    """Writes an htsr checkpoint every ``every`` optimizer steps (``state.global_step``) and at each epoch's end.

    The arguments are ``htsr.Checkpointer``'s (``mode="spectra"``, ``keep_last``, ``filter``, ...); the rank and
    world size come from the ``TrainingArguments`` (``process_index``, ``world_size``), and with several processes
    the run defaults to ``run_name``, else the output folder's name, so that every rank writes into one run. Each file's metadata holds
    the step, the epoch (whole epochs completed), the learning rate the step used, the effective batch size
    (``train_batch_size * gradient_accumulation_steps``), and the training loss when the step is a logging step
    (the loss ``Trainer`` logs, averaged since the previous log). Under FSDP (``fsdp_config`` version 1 with
    ``use_orig_params``, the default, or 2) the model ``Trainer`` passes is the sharded one, and every process
    takes part in each checkpoint (see ``htsr.Checkpointer``).
    """

    def __init__(self, dir: str | os.PathLike[str] | None = None, run: str | None = None, every: int | None = None, **options: Any) -> None:
        self._args = (dir, run, every)
        self._options = options
        self.checkpointer: Checkpointer | None = None
        self._lr: float | None = None
        # A due step that logs waits for `on_log` (which follows `on_step_end`) to have its loss; it is written by
        # `on_step_begin` of the next step at the latest, before the weights change again.
        self._pending: tuple[int, Any, str] | None = None
        self._last_logged: int | None = None
        self._last_loss: float | None = None

    def _ckpt(self, args: Any) -> Checkpointer:
        if self.checkpointer is None:
            dir, run, every = self._args
            options = dict(self._options)
            options.setdefault("rank", (int(args.process_index), int(args.world_size)))
            if run is None and not os.environ.get(_native.ENV["RUN"]) and options["rank"][1] > 1:
                # Every rank must write into one run: Trainer's run name, else its output folder's name.
                run = args.run_name or os.path.basename(os.path.normpath(args.output_dir))
            self.checkpointer = Checkpointer(dir, run, every, **options)
        return self.checkpointer

    def _info(self, args: Any, state: Any, loss: float | None = None) -> dict[str, Any]:
        if loss is None and self._last_logged == int(state.global_step):
            loss = self._last_loss
        epoch = state.epoch
        return dict(
            loss=loss,
            lr=self._lr,
            epoch=None if epoch is None else int(epoch + 1e-9),
            batch_size=int(args.train_batch_size) * int(args.gradient_accumulation_steps) * int(args.world_size),
        )

    def _flush_pending(self, args: Any, state: Any, loss: float | None = None) -> None:
        if self._pending is not None:
            step, model, kind = self._pending
            self._pending = None
            ckpt = self._ckpt(args)
            info = self._info(args, state, loss)
            if kind == "epoch":
                ckpt.epoch_end(step, model, **info)
            else:
                ckpt.checkpoint(step, model, **info)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._ckpt(args)

    def on_optimizer_step(self, args: Any, state: Any, control: Any, optimizer: Any = None, **kwargs: Any) -> None:
        # After optimizer.step() and before the scheduler's step: the learning rate this step used.
        if optimizer is not None and optimizer.param_groups:
            self._lr = float(optimizer.param_groups[0]["lr"])

    def _will_log(self, state: Any, control: Any) -> bool:
        """Whether Trainer logs the current step right after this event (its own condition)."""
        return bool(control.should_log) and self._last_logged != int(state.global_step)

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._flush_pending(args, state)

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        ckpt = self._ckpt(args)
        step = int(state.global_step)
        if model is None or not ckpt.is_due(step):
            return
        if self._will_log(state, control):
            self._pending = (step, model, "step")
        else:
            ckpt.checkpoint(step, model, **self._info(args, state))

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if logs and "loss" in logs:
            self._last_logged, self._last_loss = int(state.global_step), float(logs["loss"])
        if self._pending is not None and self._pending[0] == int(state.global_step) and logs and "loss" in logs:
            self._flush_pending(args, state, float(logs["loss"]))

    def on_epoch_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        self._flush_pending(args, state)
        ckpt = self._ckpt(args)
        step = int(state.global_step)
        if model is None or not ckpt.at_epoch_end or ckpt.last_checkpoint == step:
            return
        if self._will_log(state, control):
            self._pending = (step, model, "epoch")
        else:
            ckpt.epoch_end(step, model, **self._info(args, state))

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._flush_pending(args, state)
        if self.checkpointer is not None:
            self.checkpointer.finish()
