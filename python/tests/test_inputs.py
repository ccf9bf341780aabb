"""What htsr.analyze accepts (modules, state dicts, files, Hugging Face folders), how layers are chosen and named
as WeightWatcher names them, the single-matrix and bring-your-own-eigenvalues APIs, errors, sharded weights
refused, and the GIL released while the engine works."""

from __future__ import annotations

import json
import math
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import WW_FIXTURES, need

SYNTHETIC = WW_FIXTURES / "synthetic.safetensors"


def small_net(torch: Any) -> Any:
    """Nested modules (Sequential inside a module), biases, a BatchNorm with an integer buffer, conv layers."""

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = torch.nn.Sequential(
                torch.nn.Conv2d(3, 16, 3), torch.nn.BatchNorm2d(16), torch.nn.ReLU(), torch.nn.Conv1d(16, 32, 5)
            )
            self.fc1 = torch.nn.Linear(256, 120)
            self.head = torch.nn.Linear(120, 10)

    return Net()


def test_module_rows_are_named_and_numbered_as_weightwatcher_does(htsr: Any, torch: Any) -> None:
    net = small_net(torch)
    df = htsr.analyze(net)
    modules = [name for name, _ in net.named_modules()]
    assert list(df.longname) == ["features.0", "features.3", "fc1", "head"]
    assert list(df.name) == ["0", "3", "fc1", "head"]
    assert list(df.layer_id) == [modules.index(n) for n in df.longname]
    assert list(df.layer_type) == ["conv2d", "conv1d", "dense", "dense"]
    assert (df.status == "success").all()
    assert list(df.rf) == [9, 5, 1, 1]
    # Biases, BatchNorm scales and its integer counter are layers WeightWatcher does not list; htsr says why.
    everything = htsr.analyze(net, include_skipped=True)
    skipped = everything[everything.status == "skipped"]
    assert "features.1.num_batches_tracked" in set(skipped.longname)
    assert all(isinstance(r, str) and r for r in skipped.reason)
    assert "fc1.bias" in set(skipped.longname)


def test_layer_selection_by_regex_ids_and_names(htsr: Any, torch: Any) -> None:
    net = small_net(torch)
    ids = dict(zip(htsr.analyze(net).longname, htsr.analyze(net).layer_id))
    assert list(htsr.analyze(net, layers="^fc|head").longname) == ["fc1", "head"]
    assert list(htsr.analyze(net, layers=[ids["fc1"]]).longname) == ["fc1"]
    assert list(htsr.analyze(net, layers=[-ids["fc1"]]).longname) == ["features.0", "features.3", "head"]
    assert list(htsr.analyze(net, layers=["head", "features.0"]).longname) == ["features.0", "head"]
    # Files: the regex goes to the engine (as `--layers`); ids are WeightWatcher's for the folder holding the file,
    # its `.weight` tensors in sorted order from 0 (test_ww_layer_ids.py checks them against WeightWatcher's).
    file_ids = htsr.analyze(SYNTHETIC)
    assert list(file_ids.layer_id) == list(range(0, 8))
    one = file_ids[file_ids.longname == "rank50_1000x500"].layer_id.iloc[0]
    assert list(htsr.analyze(SYNTHETIC, layers=[int(one)]).longname) == ["rank50_1000x500"]
    assert list(htsr.analyze(SYNTHETIC, layers=["rank50_1000x500"]).layer_id) == [one]
    assert set(htsr.analyze(SYNTHETIC, layers="pareto").longname) == {"pareto_mu1p5_1000x500", "pareto_mu3_1000x500"}
    assert len(htsr.analyze(SYNTHETIC, layers=["no such layer"])) == 0


def test_a_hugging_face_folder_sharded_or_not_reads_like_the_model(htsr: Any, torch: Any, tmp_path: Path) -> None:
    transformers = need("transformers")
    config = transformers.BertConfig(
        vocab_size=96, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=64,
    )
    model = transformers.BertForSequenceClassification(config)
    sharded, single = tmp_path / "sharded", tmp_path / "single"
    model.save_pretrained(sharded, max_shard_size="20KB")
    model.save_pretrained(single)
    assert (sharded / "model.safetensors.index.json").exists()
    assert len(json.loads((sharded / "model.safetensors.index.json").read_text())["weight_map"]) > 10
    assert (single / "model.safetensors").exists()
    from_model = htsr.analyze(model).set_index("longname")
    for folder in (sharded, single):
        from_files = htsr.analyze(folder).set_index("longname")
        assert sorted(from_files.index) == sorted(from_model.index), folder
        for col in ("alpha", "D", "xmin", "num_spikes", "stable_rank", "phase"):
            assert from_files[col].to_dict() == from_model.loc[from_files.index, col].to_dict(), (folder, col)


def test_errors_name_the_problem(htsr: Any, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        htsr.analyze(tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(htsr.CheckpointError, match="bad.safetensors"):
        htsr.analyze(bad)
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        htsr.analyze(tmp_path)
    with pytest.raises(TypeError, match="analyze_matrix"):
        htsr.analyze(np.zeros((4, 4)))
    nan = np.random.default_rng(0).normal(size=(50, 20))
    nan[3, 4] = np.nan
    df = htsr.analyze({"w": nan})
    assert list(df.status) == ["failed"] and "NaN" in df.reason.iloc[0]


def test_analyze_matrix_reads_strided_views_in_place_and_agrees_with_copies(htsr: Any) -> None:
    rng = np.random.default_rng(3)
    w = rng.normal(size=(300, 120)) / np.sqrt(300)
    view = w.T[::1, :]  # transposed: Fortran-ordered view of the same memory
    assert not view.flags.c_contiguous
    a = htsr.analyze_matrix(view, name="wt")
    b = htsr.analyze_matrix(np.ascontiguousarray(view), name="wt")
    c = htsr.analyze_matrix(w.astype(np.float32))
    assert a.status == "success" and a.phase == "random_like"
    assert a.eigenvalues.shape == (120,)
    np.testing.assert_allclose(a.eigenvalues, b.eigenvalues, rtol=0, atol=1e-12 * a.eigenvalues[-1])
    assert a["alpha"] == pytest.approx(b["alpha"], rel=1e-12)
    assert c["alpha"] == pytest.approx(a["alpha"], rel=1e-5)
    assert a.to_series()["alpha"] == a.alpha


def test_classify_gives_what_the_matrix_gives(htsr: Any) -> None:
    rng = np.random.default_rng(5)
    w = rng.normal(size=(400, 100)) / 20 + np.outer(rng.normal(size=400), rng.normal(size=100)) / 4
    from_matrix = htsr.analyze_matrix(w)
    evals = np.linalg.svd(w, compute_uv=False) ** 2
    got = htsr.classify(evals, N=400)
    assert got.row["M"] == 100 and got.row["rf"] == 1
    assert got.phase == from_matrix.phase
    for col in ("alpha", "xmin", "D", "sigma_mp", "mp_softrank", "stable_rank"):
        assert got[col] == pytest.approx(from_matrix[col], rel=1e-9), col
    assert got["num_spikes"] == from_matrix["num_spikes"]
    ev = got.evidence
    assert (ev.spikes, ev.n_tail) == (from_matrix.evidence.spikes, from_matrix.evidence.n_tail)
    assert ev.edge_mass == pytest.approx(from_matrix.evidence.edge_mass, rel=1e-9)
    assert ev.alpha == got.alpha and ev.n_tail == got["n_tail"] and ev.spikes == got["num_spikes"] > 0
    assert 0 < ev.frac_outside <= 1 and ev.edge_mass is not None
    with pytest.raises(ValueError, match="M=99"):
        htsr.classify(evals, N=400, M=99)
    with pytest.raises(ValueError, match="negative"):
        htsr.classify(np.concatenate([evals[:-1], [-1.0]]), N=400)
    with pytest.raises(ValueError, match="not finite"):
        htsr.classify(np.concatenate([evals[:-1], [np.inf]]), N=400)


def test_weightwatcher_class_runs_weightwatcher_code(htsr: Any, torch: Any) -> None:
    import htsr as ww

    watcher = ww.WeightWatcher(model=small_net(torch))
    details = watcher.analyze(mp_fit=True)
    summary = watcher.get_summary(details)
    assert set(summary) >= {"alpha", "log_norm", "stable_rank", "mp_softrank"}
    assert summary["alpha"] == pytest.approx(details.alpha.mean())
    assert watcher.get_details() is details
    with pytest.raises(NotImplementedError, match="plot"):
        watcher.analyze(plot=True)
    with pytest.raises(TypeError, match="unexpected"):
        watcher.analyze(no_such_option=1)


def test_sharded_weights_are_refused(htsr: Any, torch: Any, tmp_path: Path) -> None:
    dist = torch.distributed
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import DTensor, Shard

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        mesh = init_device_mesh("cpu", (1,))
        shard = DTensor.from_local(torch.randn(64, 32), mesh, [Shard(0)])
        with pytest.raises(htsr.ShardedWeightsError, match="DTensor"):
            htsr.analyze({"fc.weight": shard})
        from torch.distributed.fsdp import fully_shard

        net = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.Linear(64, 8))
        fully_shard(net)
        with pytest.raises(htsr.ShardedWeightsError, match="FSDP"):
            htsr.analyze(net)
        # The Checkpointer reads sharded models (test_sharded.py): on a world of one, every part is whole.
        with htsr.Checkpointer(tmp_path, run="fsdp", every=1, mode="both") as ckpt:
            ckpt.step(1, net)
        names = sorted(p.name for p in (tmp_path / "fsdp").iterdir())
        assert names == ["step-000000001.esd.safetensors", "step-000000001.safetensors"]
        from safetensors.torch import load_file

        weights = load_file(str(tmp_path / "fsdp" / "step-000000001.safetensors"))
        assert sorted(weights) == ["0.weight", "1.weight"]
        assert all(torch.equal(weights[n], p.full_tensor()) for n, p in net.named_parameters() if p.dim() == 2)
    finally:
        dist.destroy_process_group()


def test_the_engine_runs_without_the_gil(htsr: Any) -> None:
    # With a switch interval far longer than the test, a thread holding the GIL keeps it until it blocks or
    # releases it. The worker signals `started`, then calls the engine: the main thread can only observe the
    # worker still inside the engine (`done` not yet set) if the engine released the GIL.
    w = np.random.default_rng(1).normal(size=(2500, 1500))
    started, done = threading.Event(), threading.Event()

    def work() -> None:
        started.set()
        htsr.analyze_matrix(w)
        done.set()

    old = sys.getswitchinterval()
    sys.setswitchinterval(1000.0)
    try:
        worker = threading.Thread(target=work)
        worker.start()
        started.wait()
        inside = not done.is_set()
        worker.join()
    finally:
        sys.setswitchinterval(old)
    assert inside, "the main thread could not run while the engine worked: the GIL was held"
    assert done.is_set()


def test_columns_are_weightwatchers_plus_htsrs(htsr: Any, pd: Any) -> None:
    ww_cols = set(pd.read_csv(WW_FIXTURES / "synthetic_ww_default.csv").columns)
    for extra in ("synthetic_ww_mpfit.csv", "synthetic_ww_erg.csv", "synthetic_ww_randomize.csv"):
        ww_cols |= set(pd.read_csv(WW_FIXTURES / extra).columns)
    assert ww_cols <= set(htsr.COLUMNS), ww_cols - set(htsr.COLUMNS)
    assert {"phase", "very_heavy_tailed", "reason", *htsr.EVIDENCE_COLUMNS} <= set(htsr.COLUMNS)
    df = htsr.analyze(SYNTHETIC)
    assert df.attrs["metadata"]["about"].startswith("synthetic")
    assert not math.isnan(df.alpha.mean())


def test_deepspeed_zero3_partitions_are_refused_not_dropped(htsr: Any, torch: Any, tmp_path: Path) -> None:
    # What DeepSpeed's zero.Init leaves on a parameter outside GatheredParameters: an empty placeholder marked with
    # ds_id and the full shape in ds_shape (DeepSpeed itself cannot be installed here without its CUDA build).
    net = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.Linear(64, 8))
    for i, p in enumerate(net.parameters()):
        p.ds_shape = p.shape
        p.ds_id = i
        p.data = torch.empty(0)
    with pytest.raises(htsr.ShardedWeightsError, match=r"ZeRO-3 .*\(64, 32\)"):
        htsr.analyze(net)
    with htsr.Checkpointer(tmp_path, run="zero3", every=1) as ckpt:
        with pytest.raises(htsr.ShardedWeightsError, match="GatheredParameters"):
            ckpt.step(1, net)
    assert not (tmp_path / "zero3").exists() or not list((tmp_path / "zero3").iterdir())
