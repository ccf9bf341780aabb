"""A Lightning ``Callback`` that checkpoints the model for ``htsr-watch`` while ``lightning.pytorch.Trainer`` trains.

    from htsr.lightning import HtsrCallback
    trainer = lightning.pytorch.Trainer(max_epochs=3, callbacks=[HtsrCallback("htsr-runs", every=100)])

Importing this module imports ``lightning`` (the ``lightning`` package's ``lightning.pytorch``).
"""

from __future__ import annotations

import os
from typing import Any

from lightning.pytorch import Callback

from htsr._checkpointer import Checkpointer


class HtsrCallback(Callback):
    """Writes an htsr checkpoint every ``every`` optimizer steps (``trainer.global_step``) and at each training
    epoch's end.

    The arguments are ``htsr.Checkpointer``'s (``mode="spectra"``, ``keep_last``, ``filter``, ...); the rank and
    world size come from the trainer (``global_rank``, ``world_size``). Each file's metadata holds the step, the
    epoch (``trainer.current_epoch``), the first optimizer's learning rate and, when ``training_step`` returns it,
    the loss of the step's last batch. With a sharded strategy (``ModelParallelStrategy``: FSDP2 and tensor
    parallel; ``FSDPStrategy``: FSDP1 with ``use_orig_params``, its default) every process takes part in each
    checkpoint (see ``htsr.Checkpointer``).
    """

    def __init__(self, dir: str | os.PathLike[str] | None = None, run: str | None = None, every: int | None = None, **options: Any) -> None:
        super().__init__()
        self._args = (dir, run, every)
        self._options = options
        self.checkpointer: Checkpointer | None = None

    def _ckpt(self, trainer: Any) -> Checkpointer:
        if self.checkpointer is None:
            dir, run, every = self._args
            options = dict(self._options)
            options.setdefault("rank", (int(trainer.global_rank), int(trainer.world_size)))
            self.checkpointer = Checkpointer(dir, run, every, **options)
        return self.checkpointer

    @staticmethod
    def _lr(trainer: Any) -> float | None:
        optimizers = trainer.optimizers
        if optimizers and optimizers[0].param_groups:
            return float(optimizers[0].param_groups[0]["lr"])
        return None

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if stage == "fit":
            self._ckpt(trainer)

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        ckpt = self._ckpt(trainer)
        step = int(trainer.global_step)
        if not ckpt.is_due(step):
            return
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        ckpt.step(step, pl_module, loss=loss, lr=self._lr(trainer), epoch=int(trainer.current_epoch))

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self._ckpt(trainer).epoch_end(
            int(trainer.global_step), pl_module, lr=self._lr(trainer), epoch=int(trainer.current_epoch)
        )

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if self.checkpointer is not None:
            self.checkpointer.finish()
