"""A Lightning run on two CPU processes (under torchrun, gloo) with ModelParallelStrategy, which applies FSDP2
(fully_shard over the data-parallel mesh) in ``configure_model``, and htsr.lightning.HtsrCallback in mode "both"
every 2 steps (test_sharded.py). argv[1]: the output folder."""

from __future__ import annotations

import sys

import lightning.pytorch as pl
import torch

import htsr.lightning


class Model(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a = torch.nn.Linear(16, 64)  # 64 x 16: dim 0 is the samples axis (Gram matrices summed)
        self.b = torch.nn.Linear(64, 24)  # 24 x 64: dim 0 is the features axis (gathered)

    def configure_model(self) -> None:
        from torch.distributed.fsdp import fully_shard

        mesh = self.device_mesh["data_parallel"]
        for m in (self.a, self.b):
            fully_shard(m, mesh=mesh)
        fully_shard(self, mesh=mesh)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], i: int) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.mse_loss(self.b(torch.relu(self.a(x))), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.05)


def main() -> None:
    from lightning.pytorch.strategies import ModelParallelStrategy

    g = torch.Generator().manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(32, 16, generator=g), torch.randn(32, 24, generator=g))
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy=ModelParallelStrategy(data_parallel_size=2, tensor_parallel_size=1),
        max_steps=4,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[htsr.lightning.HtsrCallback(sys.argv[1], run="pl", every=2, mode="both")],
    )
    trainer.fit(Model(), torch.utils.data.DataLoader(data, batch_size=4))


if __name__ == "__main__":
    main()
