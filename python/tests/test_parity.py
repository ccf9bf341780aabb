"""htsr.analyze against WeightWatcher 0.7.7's own outputs for the reference matrices (monitor/engine/tests/fixtures/ww)
and against ``htsr-watch analyze --format csv`` on the same weights: on the file, on a real torch.nn.Module holding
the matrices, and on numpy state dicts."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import WW_FIXTURES, cli_csv

SYNTHETIC = WW_FIXTURES / "synthetic.safetensors"
SQUARE = WW_FIXTURES / "square.safetensors"


def ww_csv(pd: Any, name: str) -> Any:
    return pd.read_csv(WW_FIXTURES / name).set_index("name")


def by_name(df: Any) -> Any:
    return df.set_index("longname") if "longname" in df.columns else df.set_index("name")


def module_from(torch: Any, path: Path) -> Any:
    """A torch.nn.Module holding exactly the file's matrices: Linear for 2-D, Conv2d for 4-D, as WeightWatcher
    users build it (bench/ww_analyze.py does the same)."""
    from safetensors.torch import load_file

    model = torch.nn.Module()
    for name, t in load_file(str(path)).items():
        if t.dim() == 2:
            layer = torch.nn.Linear(t.shape[1], t.shape[0], bias=False)
        else:
            layer = torch.nn.Conv2d(t.shape[1], t.shape[0], tuple(t.shape[2:]), bias=False)
        with torch.no_grad():
            layer.weight.copy_(t)
        model.add_module(name.removesuffix(".weight"), layer)
    return model


def assert_rel(what: str, ours: float, theirs: float, tol: float) -> None:
    rel = abs(ours - theirs) / max(abs(theirs), 1e-300)
    assert rel <= tol, f"{what}: htsr {ours!r} vs reference {theirs!r} (relative {rel:.2e} > {tol:.0e})"


def assert_same_numbers(ours: Any, cli: Any, label: str, rel: float = 0.0) -> None:
    """Every column the CLI's CSV and htsr.analyze share agrees, layer by layer (NaN with NaN)."""
    cli = cli[cli.status != "skipped"].set_index("name")
    ours = ours.set_index("longname")
    assert sorted(ours.index) == sorted(cli.index), label
    # layer_id follows WeightWatcher's numbering of each input kind (a module's differs from a file's), so it is
    # compared with WeightWatcher itself in test_ww_layer_ids.py, not across kinds here.
    shared = [c for c in cli.columns if c in ours.columns and c not in ("run", "step", "layer_id", "longname")]
    assert {"alpha", "xmin", "D", "num_spikes", "detX_num", "phase", "mp_softrank", "entropy"} <= set(shared)
    for layer in cli.index:
        for col in shared:
            a, b = ours.at[layer, col], cli.at[layer, col]
            if isinstance(a, str):
                # Text columns: an empty CSV cell reads as NaN.
                expected = "" if isinstance(b, float) and math.isnan(b) else str(b)
                assert a == expected, f"{label} {layer} {col}: {a!r} vs {expected!r}"
            elif isinstance(b, (float, np.floating)) and math.isnan(b):
                assert a is None or (isinstance(a, float) and math.isnan(a)), f"{label} {layer} {col}: {a!r} vs NaN"
            elif isinstance(b, (float, np.floating)) and not float(b).is_integer():
                assert_rel(f"{label} {layer} {col}", float(a), float(b), rel)
            elif isinstance(b, (bool, np.bool_)) or col == "very_heavy_tailed":
                assert bool(a) == bool(b), f"{label} {layer} {col}: {a!r} vs {b!r}"
            elif isinstance(b, (int, np.integer, float, np.floating)):
                assert float(a) == float(b), f"{label} {layer} {col}: {a!r} vs {b!r}"
            else:
                assert str(a) == str(b), f"{label} {layer} {col}: {a!r} vs {b!r}"


def test_alpha_xmin_d_match_weightwatcher_on_a_real_module(htsr: Any, torch: Any, pd: Any) -> None:
    details = htsr.analyze(module_from(torch, SYNTHETIC))
    assert len(details) == 8
    assert list(details.columns) == list(htsr.COLUMNS)
    ours = by_name(details)
    ww = ww_csv(pd, "synthetic_ww_default.csv")
    for name, row in ww.iterrows():
        r = ours.loc[name]
        assert r.status == "success", r.reason
        for col in ("alpha", "xmin", "D"):
            assert_rel(f"{name} {col}", r[col], row[col], 1e-6)
        # (layer_id is not compared: WeightWatcher's model for this CSV held the layers in another order.)
        assert r["name"] == name
        for col in ("N", "M", "rf", "num_evals", "num_pl_spikes", "layer_type", "warning"):
            expected = "" if col == "warning" and isinstance(row[col], float) else row[col]
            assert r[col] == expected, f"{name} {col}: {r[col]!r} vs {expected!r}"
        for col in ("norm", "lambda_max", "stable_rank", "log_spectral_norm"):
            assert_rel(f"{name} {col}", r[col], row[col], 1e-9)
        assert r.has_esd and r.phase


def test_mp_fit_and_erg_columns_match_weightwatcher(htsr: Any, torch: Any, pd: Any) -> None:
    ours = by_name(htsr.analyze(module_from(torch, SYNTHETIC)))
    mp = ww_csv(pd, "synthetic_ww_mpfit.csv")
    for name, row in mp.iterrows():
        assert ours.at[name, "num_spikes"] == row["num_spikes"], name
        for col in ("sigma_mp", "W_scale", "bulk_max", "bulk_min", "mp_softrank"):
            assert_rel(f"{name} {col}", ours.at[name, col], row[col], 1e-6)
    erg = ww_csv(pd, "synthetic_ww_erg.csv")
    for name, row in erg.iterrows():
        assert ours.at[name, "detX_num"] == row["detX_num"], name
        assert ours.at[name, "num_ERG_spikes"] == row["num_ERG_spikes"], name
        if name != "rank50_1000x500":
            # The exact rank-50 layer's tail starts among its 450 zero eigenvalues, which are float32 rounding
            # noise: the Gram path does not resolve them (docs/ALGORITHMS.md section 2), WeightWatcher's SVD does.
            assert_rel(f"{name} detX_val", ours.at[name, "detX_val"], row["detX_val"], 1e-6)


def test_the_file_gives_the_clis_numbers(htsr: Any, htsr_watch: Path, pd: Any) -> None:
    for path in (SYNTHETIC, SQUARE):
        cli = cli_csv(htsr_watch, path)
        assert_same_numbers(htsr.analyze(path), cli, path.name)
        assert_same_numbers(htsr.analyze(str(path)), cli, path.name)


def test_a_module_and_numpy_state_dicts_give_the_clis_numbers(htsr: Any, torch: Any, htsr_watch: Path) -> None:
    from safetensors.numpy import load_file

    cli = cli_csv(htsr_watch, SYNTHETIC)
    assert_same_numbers(htsr.analyze(module_from(torch, SYNTHETIC)), cli, "module", rel=1e-12)
    arrays = load_file(str(SYNTHETIC))
    assert_same_numbers(htsr.analyze(arrays), cli, "numpy state dict", rel=1e-12)
    # Non-contiguous arrays (a Fortran-ordered copy of each matrix) are read through one contiguous copy per
    # layer: same bytes, same numbers.
    fortran = {k: np.asfortranarray(v) for k, v in arrays.items()}
    assert not all(a.flags.c_contiguous for a in fortran.values() if a.ndim == 2)
    assert_same_numbers(htsr.analyze(fortran), cli, "Fortran-ordered state dict", rel=1e-12)
    tensors = {k: torch.from_numpy(v) for k, v in arrays.items()}
    assert_same_numbers(htsr.analyze(tensors), cli, "torch state dict", rel=1e-12)


def test_half_precision_layers_match_the_cli_on_the_same_dtype(
    htsr: Any, torch: Any, htsr_watch: Path, tmp_path: Path
) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(SYNTHETIC))
    for dtype in (torch.bfloat16, torch.float16):
        low = {k: v.to(dtype).contiguous() for k, v in tensors.items()}
        path = tmp_path / f"{str(dtype).removeprefix('torch.')}.safetensors"
        save_file(low, str(path))
        cli = cli_csv(htsr_watch, path)
        model = torch.nn.Module()
        src = module_from(torch, SYNTHETIC).to(dtype)
        for name, child in src.named_children():
            model.add_module(name, child)
        ours = htsr.analyze(model)
        assert set(ours.dtype) == {"BF16" if dtype == torch.bfloat16 else "F16"}
        assert_same_numbers(ours, cli, str(dtype), rel=1e-12)


@pytest.mark.parametrize("name", ["gaussian_iid_1000x500", "gaussian_plus_rank5_1000x500"])
def test_randomize_columns_repeat_with_a_seed_and_match_the_cli(
    htsr: Any, htsr_watch: Path, name: str
) -> None:
    a = htsr.analyze(SYNTHETIC, layers=name, randomize=True, seed=7)
    b = htsr.analyze(SYNTHETIC, layers=name, randomize=True, seed=7)
    assert len(a) == 1
    assert a.rand_distance.iloc[0] == b.rand_distance.iloc[0]
    assert not math.isnan(a.rand_distance.iloc[0])
    cli = cli_csv(htsr_watch, SYNTHETIC, "--layers", name, "--randomize", "--seed", "7")
    assert_same_numbers(a, cli, f"{name} randomized")
    plain = htsr.analyze(SYNTHETIC, layers=name)
    assert math.isnan(plain.rand_distance.iloc[0])
