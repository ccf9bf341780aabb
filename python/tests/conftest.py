"""Shared fixtures of the htsr Python tests: the reference files, the real ``htsr-watch`` binary, and helpers that
run the daemon on a directory and read its export back.

Nothing here skips: a missing dependency or binary fails with what to run (``bash scripts/setup`` installs the
Python side; ``scripts/test`` builds the binary).
"""

from __future__ import annotations

import importlib
import io
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
WW_FIXTURES = REPO / "monitor" / "engine" / "tests" / "fixtures" / "ww"


def need(module: str) -> Any:
    """Imports `module`, failing the test (not skipping it) with the fix when it is missing."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        pytest.fail(f"cannot import {module} ({e}): run `bash scripts/setup`", pytrace=False)


@pytest.fixture(scope="session")
def htsr() -> Any:
    """The installed htsr package (the wheel scripts/setup builds)."""
    return need("htsr")


@pytest.fixture(scope="session")
def torch() -> Any:
    t = need("torch")
    t.manual_seed(0)
    return t


@pytest.fixture(scope="session")
def pd() -> Any:
    return need("pandas")


def watch_binary() -> Path:
    """The htsr-watch binary: $HTSR_WATCH, else the cargo target directory's debug build."""
    if os.environ.get("HTSR_WATCH"):
        path = Path(os.environ["HTSR_WATCH"])
    else:
        target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
        path = target / "debug" / "htsr-watch"
    if not path.is_file():
        pytest.fail(
            f"{path} is missing: build it with `cargo build -p htsr-watch` (scripts/test does), or point "
            "HTSR_WATCH at an htsr-watch binary",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def htsr_watch() -> Path:
    return watch_binary()


def run_watch(binary: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Runs htsr-watch with `args`, failing the test with its output when it exits non-zero (and `check`)."""
    p = subprocess.run([str(binary), *args], capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"})
    if check and p.returncode != 0:
        pytest.fail(f"htsr-watch {' '.join(args)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}", pytrace=False)
    return p


def watched_export(binary: Path, directory: Path) -> Any:
    """Runs the daemon once over `directory` (``htsr-watch DIR --headless --once``) and returns its store's CSV
    export as a DataFrame."""
    import pandas as pd

    run_watch(binary, str(directory), "--headless", "--once")
    out = run_watch(binary, "export", "--db", str(directory / ".htsr"), "--format", "csv")
    # Layer names such as "0" (a Sequential's first layer) stay names, not numbers; floats parse exactly.
    return pd.read_csv(io.StringIO(out.stdout), dtype={"run": str, "name": str}, float_precision="round_trip")


def cli_csv(binary: Path, path: Path, *args: str) -> Any:
    """``htsr-watch analyze PATH --format csv`` as a DataFrame (its exit code may be 1 for a failed layer)."""
    import pandas as pd

    out = run_watch(binary, "analyze", str(path), "--format", "csv", *args, check=False)
    if out.returncode not in (0, 1):
        pytest.fail(f"htsr-watch analyze {path} exited {out.returncode}: {out.stderr}", pytrace=False)
    return pd.read_csv(io.StringIO(out.stdout), dtype={"run": str, "name": str}, float_precision="round_trip")
