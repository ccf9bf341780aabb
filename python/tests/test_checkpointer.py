"""htsr.Checkpointer in a real training loop of a small torch model, with the real daemon storing every checkpoint it
writes; file names, metadata, keep_last, the environment, ranks and write errors as the tch hook has them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import watched_export


def mlp(torch: Any, dtype: Any = None) -> Any:
    net = torch.nn.Sequential(torch.nn.Linear(40, 64), torch.nn.ReLU(), torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    return net if dtype is None else net.to(dtype)


def train(torch: Any, net: Any, ckpt: Any, steps: int, steps_per_epoch: int = 10, snapshots: dict | None = None) -> list[Any]:
    """SGD on a fixed random regression task; `ckpt.step(step + 1, ...)` after each update, `epoch_end` per epoch."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(256, 40, generator=gen)
    y = torch.randint(0, 10, (256,), generator=gen)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    outcomes = []
    for step in range(steps):
        idx = torch.randint(0, 256, (32,), generator=gen)
        loss = torch.nn.functional.cross_entropy(net(x[idx].to(next(net.parameters()).dtype)).float(), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        outcome = ckpt.step(step + 1, net, loss=loss, lr=0.05, epoch=step // steps_per_epoch, batch_size=32)
        if snapshots is not None and outcome != "not_due":
            snapshots[step + 1] = {k: v.detach().clone() for k, v in net.state_dict().items()}
        outcomes.append(outcome)
        if (step + 1) % steps_per_epoch == 0:
            ckpt.epoch_end(step + 1, net, loss=loss, lr=0.05, epoch=step // steps_per_epoch)
    return outcomes


def test_a_plain_loop_writes_what_the_daemon_stores(htsr: Any, torch: Any, htsr_watch: Path, tmp_path: Path) -> None:
    from safetensors import safe_open

    net = mlp(torch)
    snapshots: dict[int, Any] = {}
    ckpt = htsr.Checkpointer(tmp_path, run="mlp", every=4, metadata={"model": "mlp", "htsr.seed": 0})
    outcomes = train(torch, net, ckpt, steps=25, snapshots=snapshots)
    stats = ckpt.finish()
    # Every 4 steps, and the ends of epochs 1 and 2 (step 10 and 20; 20 is also a multiple of 4).
    due = sorted({s for s in range(1, 26) if s % 4 == 0} | {10, 20})
    files = sorted(p.name for p in (tmp_path / "mlp").iterdir())
    assert files == [f"step-{s:09d}.safetensors" for s in due]
    assert outcomes.count("queued") + outcomes.count("waited") == len([s for s in due if s % 4 == 0])
    assert stats["written"] == len(due) and stats["failed"] == 0
    with safe_open(str(tmp_path / "mlp" / "step-000000008.safetensors"), "pt") as f:
        meta = f.metadata()
        assert sorted(f.keys()) == ["0.weight", "2.weight", "4.weight"]
    assert meta["htsr.step"] == "8" and meta["htsr.run"] == "mlp" and meta["htsr.epoch"] == "0"
    assert meta["htsr.batch_size"] == "32" and float(meta["htsr.lr"]) == 0.05 and float(meta["htsr.loss"]) > 0
    assert meta["htsr.model"] == "mlp" and meta["htsr.seed"] == "0" and float(meta["htsr.wall_time"]) > 1.6e9
    # The file holds the weights of that step, bit for bit.
    for step in (4, 12, 24):
        written = htsr.analyze(tmp_path / "mlp" / f"step-{step:09d}.safetensors")
        live = htsr.analyze({k: v for k, v in snapshots[step].items() if v.dim() >= 2})
        assert dict(zip(written.longname, written.alpha)) == dict(zip(live.longname, live.alpha)), step
    export = watched_export(htsr_watch, tmp_path)
    stored = export.groupby("step").name.apply(sorted).to_dict()
    assert sorted(stored) == due
    assert all(names == ["0", "2", "4"] for names in stored.values())
    assert (export.run == "mlp").all() and not export.duplicated(["step", "name"]).any()


def test_environment_defaults_and_bf16_weights(htsr: Any, torch: Any, tmp_path: Path, monkeypatch: Any) -> None:
    from safetensors import safe_open

    monkeypatch.setenv("HTSR_DIR", str(tmp_path))
    monkeypatch.setenv("HTSR_RUN", "from-env")
    monkeypatch.setenv("HTSR_EVERY", "3")
    net = mlp(torch, torch.bfloat16)
    with htsr.Checkpointer() as ckpt:
        assert (ckpt.run_dir, ckpt.every, ckpt.mode) == (tmp_path / "from-env", 3, "weights")
        assert ckpt.step(3, net) == "queued" and ckpt.step(3, net) == "not_due" and ckpt.step(4, net) == "not_due"
    with safe_open(str(tmp_path / "from-env" / "step-000000003.safetensors"), "pt") as f:
        assert f.get_tensor("0.weight").dtype == torch.bfloat16
        assert torch.equal(f.get_tensor("0.weight"), net[0].weight.detach())
    monkeypatch.setenv("HTSR_EVERY", "often")
    with pytest.raises(ValueError, match="HTSR_EVERY"):
        htsr.Checkpointer()
    monkeypatch.setenv("HTSR_EVERY", "3")
    monkeypatch.setenv("HTSR_MODE", "sometimes")
    with pytest.raises(ValueError, match="HTSR_MODE"):
        htsr.Checkpointer()
    with pytest.raises(ValueError, match="path component"):
        htsr.Checkpointer(tmp_path, run="a/b")


def test_keep_last_filter_frozen_layers_and_numpy_state_dicts(htsr: Any, torch: Any, tmp_path: Path) -> None:
    from safetensors import safe_open

    net = mlp(torch)
    net[0].weight.requires_grad_(False)
    ckpt = htsr.Checkpointer(tmp_path, run="k", every=1, keep_last=2, filter=lambda n: not n.startswith("4."))
    for step in range(1, 6):
        ckpt.step(step, net)
    ckpt.finish()
    assert sorted(p.name for p in (tmp_path / "k").iterdir()) == ["step-000000004.safetensors", "step-000000005.safetensors"]
    with safe_open(str(tmp_path / "k" / "step-000000005.safetensors"), "pt") as f:
        assert sorted(f.keys()) == ["2.weight"]
    arrays = {"enc.weight": np.random.default_rng(0).normal(size=(30, 20)).astype(np.float32), "enc.bias": np.zeros(30)}
    with htsr.Checkpointer(tmp_path, run="np", every=1) as ckpt2:
        ckpt2.step(1, arrays)
    with safe_open(str(tmp_path / "np" / "step-000000001.safetensors"), "np") as f:
        assert list(f.keys()) == ["enc.weight"] and np.array_equal(f.get_tensor("enc.weight"), arrays["enc.weight"])


def test_other_ranks_write_no_weights(htsr: Any, torch: Any, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with htsr.Checkpointer(tmp_path, run="ddp", every=1) as ckpt:
        assert (ckpt.rank, ckpt.world_size) == (1, 2)
        assert ckpt.step(1, mlp(torch)) == "not_due"
    assert not list((tmp_path / "ddp").iterdir())
    # Each rank's clock would name its own default run: several ranks must share a named one.
    with pytest.raises(ValueError, match="HTSR_RUN"):
        htsr.Checkpointer(tmp_path, every=1)
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ValueError, match="RANK"):
        htsr.Checkpointer(tmp_path, run="ddp", every=1)


def test_a_failed_write_is_raised_by_the_next_call_and_training_goes_on(htsr: Any, torch: Any, tmp_path: Path) -> None:
    import shutil

    net = mlp(torch)
    ckpt = htsr.Checkpointer(tmp_path, run="gone", every=1)
    ckpt.step(1, net)
    ckpt.flush()
    shutil.rmtree(tmp_path / "gone")
    # The write fails on the writer thread; this step or the flush after it raises it, whichever comes later.
    with pytest.raises(htsr.WriteError, match="step-000000002"):
        ckpt.step(2, net)
        ckpt.flush()
    (tmp_path / "gone").mkdir()
    assert ckpt.step(3, net) == "queued"
    stats = ckpt.finish()
    assert stats["failed"] == 1 and stats["written"] == 2
    assert sorted(p.name for p in (tmp_path / "gone").iterdir()) == ["step-000000003.safetensors"]
