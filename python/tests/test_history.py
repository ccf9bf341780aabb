"""``htsr.history``: the stored history as a DataFrame, from the store itself and through a running daemon (its socket
and its TCP listener), equal to ``htsr-watch export`` and carrying the training loop's loss, lr and batch size."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import run_watch

#: Guards against a hang only; every wait is for a condition.
HANG = 120.0


def train(htsr: Any, torch: Any, directory: Path, steps: range, run: str = "h") -> list[tuple[int, float, float]]:
    """Writes checkpoints of a small model at `steps`, with loss, lr and batch size; returns (step, loss, lr)."""
    model = torch.nn.Sequential(torch.nn.Linear(40, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
    ckpt = htsr.Checkpointer(directory, run=run, every=1)
    written = []
    for step in steps:
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.01 * torch.randn_like(p))
        loss, lr = 1.0 / step, 0.1 / (1 + step)
        ckpt.checkpoint(step, model, loss=loss, lr=lr, epoch=step // 10, batch_size=32)
        written.append((step, loss, lr))
    ckpt.finish()
    return written


def cli_export(binary: Path, source: str) -> Any:
    import pandas as pd

    out = run_watch(binary, "export", source, "--format", "csv")
    return pd.read_csv(
        io.StringIO(out.stdout), dtype={"run": str, "name": str, "longname": str}, float_precision="round_trip"
    )


def test_history_of_a_store_is_its_export_with_the_training_numbers(
    htsr: Any, torch: Any, pd: Any, htsr_watch: Path, tmp_path: Path
) -> None:
    written = train(htsr, torch, tmp_path, range(1, 4))
    run_watch(htsr_watch, str(tmp_path), "--headless", "--once")
    df = htsr.history(tmp_path)
    assert list(df.columns) == list(htsr._native.EXPORT_COLUMNS)
    assert len(df) == 3 * 2, df
    pd.testing.assert_frame_equal(df, cli_export(htsr_watch, str(tmp_path)))
    # The store directory itself names the same history.
    pd.testing.assert_frame_equal(df, htsr.history(tmp_path / ".htsr"))
    for step, loss, lr in written:
        rows = df[df["step"] == step]
        assert set(rows["name"]) == {"0", "2"}
        assert (rows["loss"] == loss).all() and (rows["lr"] == lr).all(), rows[["loss", "lr"]]
        assert (rows["batch_size"] == 32).all() and (rows["epoch"] == step // 10).all()
    assert df["alpha"].notna().all()
    assert list(htsr.history(tmp_path, run="h")["run"].unique()) == ["h"]
    with pytest.raises(FileNotFoundError, match="no run"):
        htsr.history(tmp_path, run="nope")
    with pytest.raises(FileNotFoundError, match="no store"):
        htsr.history(tmp_path / "nothing-here")


class Daemon:
    """``htsr-watch DIR --headless`` in the background, killed with the test."""

    def __init__(self, binary: Path, directory: Path, log: Path, *extra: str) -> None:
        self.log = log
        self.proc = subprocess.Popen(
            [str(binary), str(directory), "--headless", *extra],
            stdout=subprocess.DEVNULL,
            stderr=open(log, "w"),
            env={**os.environ, "NO_COLOR": "1", "HTSR_LOG": "info"},
        )

    def wait_for(self, pattern: str) -> re.Match[str]:
        deadline = time.monotonic() + HANG
        while time.monotonic() < deadline:
            m = re.search(pattern, self.log.read_text())
            if m:
                return m
            assert self.proc.poll() is None, self.log.read_text()
            time.sleep(0.02)
        pytest.fail(f"no {pattern!r} in the daemon's log:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=HANG)


def test_history_reads_through_a_running_daemon_by_socket_and_by_url(
    htsr: Any, torch: Any, pd: Any, htsr_watch: Path, tmp_path: Path
) -> None:
    train(htsr, torch, tmp_path, range(1, 3))
    daemon = Daemon(htsr_watch, tmp_path, tmp_path / "daemon.log", "--serve", "127.0.0.1:0")
    try:
        port = int(daemon.wait_for(r"serve: http://127\.0\.0\.1:(\d+)/").group(1))
        daemon.wait_for(r"stored run=h step=2")
        # The daemon holds the store: history goes through its socket, and equals the CLI's export.
        during = htsr.history(tmp_path)
        assert sorted(during["step"].unique()) == [1, 2]
        pd.testing.assert_frame_equal(during, cli_export(htsr_watch, str(tmp_path)))
        # A checkpoint written now appears in the history while training goes on.
        train(htsr, torch, tmp_path, range(3, 4))
        deadline = time.monotonic() + HANG
        while 3 not in set(htsr.history(tmp_path)["step"]):
            assert time.monotonic() < deadline, "step 3 never appeared"
            time.sleep(0.05)
        by_url = htsr.history(f"http://127.0.0.1:{port}")
        pd.testing.assert_frame_equal(by_url, htsr.history(tmp_path))
    finally:
        daemon.stop()
    # After the daemon stops, the store read directly gives the same rows.
    pd.testing.assert_frame_equal(htsr.history(tmp_path), by_url)
    with pytest.raises(ConnectionError):
        htsr.history(f"http://127.0.0.1:{port}")
