"""Spectra mode: the eigenvalues the Checkpointer writes (torch on the tensor's device, or htsr-engine on the writer
thread for CPU tensors) are the ones htsr-engine computes from the same weights, to 1e-9 of lambda_max; the
spectra file follows the contract (names per rank, metadata, assignment) and reads back as the weights do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import cli_csv, watched_export

LAYERS = ["conv.weight", "conv1.weight", "fc.weight", "half.weight", "low_rank.weight"]


def model(torch: Any, low_rank: bool = True) -> Any:
    """Every layer kind the engine slices: Conv2D (conv2d_norm), Conv1d, dense, a bf16 layer, and (unless
    `low_rank` is false) a rank-5 layer, whose 43 zero eigenvalues leave too few for a power-law fit."""
    torch.manual_seed(1)
    net = torch.nn.Module()
    net.conv = torch.nn.Conv2d(8, 24, 3)
    net.conv1 = torch.nn.Conv1d(12, 20, 5)
    net.fc = torch.nn.Linear(96, 150)
    net.half = torch.nn.Linear(64, 40).to(torch.bfloat16)
    if low_rank:
        net.low_rank = torch.nn.Linear(48, 80, bias=False)
        with torch.no_grad():
            net.low_rank.weight.copy_(torch.randn(80, 5) @ torch.randn(5, 48))
    return net


def read_spectra(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    from safetensors import safe_open

    with safe_open(str(path), "np") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata())


def reference(htsr: Any, torch: Any, net: Any) -> dict[str, Any]:
    """htsr-engine's analysis of each weight tensor (its eigenvalues and row), in the tensor's own dtype."""
    return {name: htsr.analyze_matrix(p.detach(), name=name) for name, p in net.named_parameters() if p.dim() >= 2}


def check_against_weights(
    htsr: Any, evals: dict[str, np.ndarray], meta: dict[str, str], ref: dict[str, Any], precision: str, tol: float
) -> None:
    for name, r in ref.items():
        m = json.loads(meta[f"htsr.spectrum.{name}"])
        assert m["skipped"] is None and m["failed"] is None, (name, m)
        lam_max = r.eigenvalues[-1]
        ours = evals[name]
        assert ours.dtype == np.float64 and ours.shape == r.eigenvalues.shape, name
        assert np.all(np.diff(ours) >= 0), f"{name}: not ascending"
        worst = np.max(np.abs(ours - r.eigenvalues)) / lam_max
        assert worst <= tol, f"{name}: eigenvalues differ by {worst:.2e} of lambda_max"
        row = r.row
        assert (m["N"], m["M"], m["rf"], m["kind"]) == (row["N"], row["M"], row["rf"], row["layer_type"]), name
        assert m["shape"] == row["shape"] and m["dtype"] == row["dtype"] and m["precision"] == precision, name
        assert m["rank_loss"] == row["rank_loss"], name
        assert abs(m["sv_min"] ** 2 - row["sv_min"] ** 2) <= tol * lam_max, name


def test_torch_on_the_device_computes_the_engines_eigenvalues(htsr: Any, torch: Any, tmp_path: Path) -> None:
    net = model(torch)
    with htsr.Checkpointer(tmp_path, run="dev", every=1, mode="spectra", spectra_on_device=True) as ckpt:
        assert ckpt.step(1, net) == "queued"
    assert sorted(p.name for p in (tmp_path / "dev").iterdir()) == ["step-000000001.esd.safetensors"]
    evals, meta = read_spectra(tmp_path / "dev" / "step-000000001.esd.safetensors")
    assert sorted(evals) == LAYERS
    assert meta["htsr.kind"] == "spectra" and meta["htsr.spectra.format"] == "1" and meta["htsr.step"] == "1"
    assert (meta["htsr.rank"], meta["htsr.world_size"]) == ("0", "1") and meta["htsr.run"] == "dev"
    ref = reference(htsr, torch, net)
    check_against_weights(htsr, evals, meta, ref, "f64", 1e-9)
    assert ref["low_rank.weight"].row["rank_loss"] == 43
    assert all(json.loads(meta[f"htsr.spectrum.{n}"])["hash"] == "" for n in LAYERS)


def test_cpu_tensors_go_through_the_engine_on_the_writer_thread(htsr: Any, torch: Any, tmp_path: Path) -> None:
    net = model(torch)
    with htsr.Checkpointer(tmp_path, run="cpu", every=1, mode="both") as ckpt:
        ckpt.step(1, net)
    names = sorted(p.name for p in (tmp_path / "cpu").iterdir())
    assert names == ["step-000000001.esd.safetensors", "step-000000001.safetensors"]
    evals, meta = read_spectra(tmp_path / "cpu" / "step-000000001.esd.safetensors")
    check_against_weights(htsr, evals, meta, reference(htsr, torch, net), "f64", 0.0)
    hashes = {json.loads(meta[f"htsr.spectrum.{n}"])["hash"] for n in LAYERS}
    assert len(hashes) == len(LAYERS) and all(len(h) == 64 for h in hashes)


def test_float32_gram_is_recorded(htsr: Any, torch: Any, tmp_path: Path) -> None:
    net = model(torch)
    with htsr.Checkpointer(
        tmp_path, run="f32", every=1, mode="spectra", spectra_on_device=True, precision="f32"
    ) as ckpt:
        ckpt.step(1, net)
    evals, meta = read_spectra(tmp_path / "f32" / "step-000000001.esd.safetensors")
    ref = reference(htsr, torch, net)
    for name, r in ref.items():
        m = json.loads(meta[f"htsr.spectrum.{name}"])
        assert m["precision"] == "f32"
        assert np.max(np.abs(evals[name] - r.eigenvalues)) <= 1e-5 * r.eigenvalues[-1], name
    with pytest.raises(ValueError, match="precision"):
        htsr.Checkpointer(tmp_path, run="x", precision="f16")


def test_ranks_share_the_layers_by_cost(htsr: Any, torch: Any, tmp_path: Path) -> None:
    net = model(torch)
    files = []
    for rank in (0, 1):
        with htsr.Checkpointer(tmp_path, run="ddp", every=5, mode="spectra", rank=(rank, 2)) as ckpt:
            assert ckpt.step(5, net) == "queued"
        files.append(tmp_path / "ddp" / f"step-000000005.rank-{rank}-of-2.esd.safetensors")
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == sorted(f.name for f in files)
    (e0, m0), (e1, m1) = read_spectra(files[0]), read_spectra(files[1])
    assignment = json.loads(m0["htsr.spectra.assignment"])
    assert assignment == json.loads(m1["htsr.spectra.assignment"])
    assert sorted(assignment) == LAYERS and set(assignment.values()) == {0, 1}
    assert set(e0).isdisjoint(e1) and sorted([*e0, *e1]) == LAYERS
    assert all(assignment[n] == 0 for n in e0) and all(assignment[n] == 1 for n in e1)
    assert (m1["htsr.rank"], m1["htsr.world_size"]) == ("1", "2")
    ref = reference(htsr, torch, net)
    check_against_weights(htsr, e0, m0, {n: ref[n] for n in e0}, "f64", 0.0)
    check_against_weights(htsr, e1, m1, {n: ref[n] for n in e1}, "f64", 0.0)


def test_skipped_layers_say_why_and_the_file_reads_back(
    htsr: Any, torch: Any, htsr_watch: Path, tmp_path: Path
) -> None:
    net = model(torch)
    net.tiny = torch.nn.Linear(4, 3)
    with torch.no_grad():
        net.fc.weight[0, 0] = float("nan")
    with htsr.Checkpointer(tmp_path, run="skip", every=1, mode="spectra", spectra_on_device=True) as ckpt:
        ckpt.step(1, net)
    path = tmp_path / "skip" / "step-000000001.esd.safetensors"
    evals, meta = read_spectra(path)
    assert "fc.weight" not in evals and "tiny.weight" not in evals
    assert json.loads(meta["htsr.spectrum.fc.weight"])["failed"] == "weights contain 1 NaN and 0 infinite values"
    assert "min_evals" in json.loads(meta["htsr.spectrum.tiny.weight"])["skipped"]
    # The engine reads the spectra file back as it reads the weights.
    from_spectra = htsr.analyze(path, include_skipped=True).set_index("longname")
    assert from_spectra.at["fc", "status"] == "failed"
    assert from_spectra.at["tiny", "status"] == "skipped"
    weights = htsr.analyze(dict(net.named_parameters())).set_index("longname")
    for layer in ("conv", "conv1", "half", "low_rank"):
        for col in ("phase", "status", "rank_loss", "num_spikes"):
            assert from_spectra.at[layer, col] == weights.at[layer, col], (layer, col)
        for col in ("alpha", "xmin", "D", "stable_rank", "sv_min"):
            assert from_spectra.at[layer, col] == pytest.approx(weights.at[layer, col], rel=1e-6, nan_ok=True), (layer, col)
    assert from_spectra.at["low_rank", "phase"] == "rank_collapse"
    cli = cli_csv(htsr_watch, path).set_index("name")
    assert cli.at["conv", "alpha"] == pytest.approx(from_spectra.at["conv", "alpha"], rel=1e-12)


def test_the_daemon_stores_spectra_checkpoints(htsr: Any, torch: Any, htsr_watch: Path, tmp_path: Path) -> None:
    # Without the rank-5 layer, whose failed power-law fit would make `--once` exit 1.
    net = model(torch, low_rank=False)
    layers = [n for n in LAYERS if n != "low_rank.weight"]
    ckpt = htsr.Checkpointer(tmp_path, run="live", every=2, mode="spectra", spectra_on_device=True)
    for step in range(1, 7):
        ckpt.step(step, net)
    ckpt.finish()
    export = watched_export(htsr_watch, tmp_path)
    assert sorted(set(export.step)) == [2, 4, 6]
    assert sorted(export[export.step == 2].name) == sorted(n.removesuffix(".weight") for n in layers)
    weights = htsr.analyze(dict(net.named_parameters())).set_index("longname")
    last = export[export.step == 6].set_index("name")
    for layer in last.index:
        assert last.at[layer, "alpha"] == pytest.approx(weights.at[layer, "alpha"], rel=1e-6), layer
