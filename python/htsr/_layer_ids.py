"""WeightWatcher 0.7.7's ``layer_id`` for the inputs that are not a ``torch.nn.Module``: a state dict, a safetensors
file, and a folder of safetensors files (Hugging Face checkpoint, sharded or not), and which files of a folder are
read, in which order.

WeightWatcher numbers a module's layers by their index in ``named_modules()`` (``htsr._analyze._module_layers``).
Everything else goes through its ``PyStateDictLayer`` iterator (``weightwatcher.py``: ``PyStateDictLayer.
get_layer_iterator``, ``PyStateDictDir.get_layer_iterator`` and ``get_layer_map``, ``ModelIterator.__init__``,
``WeightWatcher.infer_model_file_format``), whose rule is:

1. **Keys.** A state dict's keys in the dict's own order. A safetensors file's tensor names in *sorted* order
   (``safe_open(...).keys()`` sorts them; so does ``safetensors.torch.load_file``), not the header's order.
2. **Which keys count.** If any key ends with ``.weight``, exactly the keys that end with ``.weight`` count, whatever
   their rank, shape or dtype (``prelu.weight`` and ``LayerNorm.weight``, 1-D, take ids too); biases and other names
   (``embeddings.position_ids``, ``cls_token``) take none. If no key ends with ``.weight``, every key counts.
3. **Ids.** The counted keys are numbered ``start, start + 1, ...`` in that order. ``start`` is ``start_ids`` when
   it is non-zero (any input kind), else 1 for a state dict and 0 for a folder (WeightWatcher's ``DEFAULT_START_ID``
   is 0 and only ``FRAMEWORK.PYSTATEDICT`` is forced to 1).
4. **A folder** (WeightWatcher's ``PyStateDictDir``): its files are ``model*safetensors`` (shell glob, not
   recursive), or ``adapter_model*safetensors`` when there is none. A *layer map* orders the keys when exactly one
   file matches ``<folder>/model*.safetensors.index.json`` (the index of a Hugging Face sharded checkpoint): the
   ``weight_map``'s shard file names, deduplicated and sorted, and for each of them the ``weight_map`` keys mapped
   to it, in the JSON's own order; the rule of 2. and 3. applies once to that whole list (ids run on across
   shards). Without a layer map each file, in sorted file-name order, is numbered on its own with its sorted keys
   (2. applied per file), and the start of file ``k`` is ``start_{k-1} + (keys counted in files 0..k-1)``:
   WeightWatcher adds its running total again for every file, so the ids of a third shard jump
   (``start_2 = start + 2 * c_0 + c_1``). Two quirks kept: the glob patterns are built by replacing every
   ``safetensors`` in ``<folder>/model*safetensors``, so a folder whose path contains ``safetensors`` never finds
   its index; and more than one matching index means no layer map. (A ``model*layer_map`` file, WeightWatcher's own
   format, takes precedence over the index: one key per line.)

htsr also reads a single safetensors file, which WeightWatcher 0.7.7 does not take (it takes the folder holding
it): a file is numbered as WeightWatcher numbers a folder holding only that file (sorted keys, start 0), and a
spectra file (``*.esd.safetensors``) by its tensors' names the same way, so that it gets the ids of the weights
file it was computed from. Tensors that take no id under this rule but that htsr lists (a 2-D tensor whose name
does not end with ``.weight``, a skipped entry of a spectra file) are numbered after the largest id, in the order
they are read, so that every row has a distinct id and every WeightWatcher id means the same layer.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from htsr import _native

#: WeightWatcher's ``FRAMEWORK`` names of the inputs htsr reads.
PYTORCH = "pytorch"
PYSTATEDICT = "pystatedict"
PYSTATEDICT_DIR = "pystatedict_dir"


def start_id(framework: str, start_ids: int | None) -> int:
    """The first id: ``start_ids`` when non-zero (WeightWatcher tests it for truth), else 1 for a state dict and 0
    for a module, a folder or a file."""
    if start_ids:
        return int(start_ids)
    return 1 if framework == PYSTATEDICT else 0


def counted_keys(keys: Iterable[str]) -> list[str]:
    """The keys that take an id: those ending with ``.weight``, or all of them when none does."""
    keys = list(keys)
    weights = [k for k in keys if k.endswith(".weight")]
    return weights if weights else keys


def number_keys(keys: Iterable[str], start: int) -> dict[str, int]:
    """WeightWatcher's ``PyStateDictLayer`` ids of one state dict (keys in its iteration order)."""
    return {k: start + i for i, k in enumerate(counted_keys(keys))}


class IdAssigner:
    """Ids for keys WeightWatcher numbers, and fresh ids after the largest one for the others."""

    def __init__(self, ids: dict[object, int], start: int) -> None:
        self.ids = ids
        self.next = max(ids.values(), default=start - 1) + 1

    def __call__(self, key: object) -> int:
        got = self.ids.get(key)
        if got is None:
            got = self.ids[key] = self.next
            self.next += 1
        return got


@dataclass(frozen=True)
class Source:
    """One thing the engine opens (a safetensors file, or a folder through ``model.safetensors.index.json``), and
    WeightWatcher's id of each of its tensors it numbers (by tensor name)."""

    path: Path
    ids: dict[str, int]


@dataclass(frozen=True)
class PathPlan:
    """What to read for a path and how WeightWatcher numbers it: the sources in order, whether a tensor name seen
    in an earlier source hides the same name in a later one (a layer map reads each name once), and the start."""

    sources: list[Source]
    first_wins: bool
    start: int


def sorted_names(path: Path) -> list[str]:
    """A safetensors file's tensor names, sorted as ``safe_open(...).keys()`` returns them."""
    return sorted(name for name, _, _ in _native.list_tensors(str(path)))


def plan_path(path: str | os.PathLike[str], start_ids: int | None) -> PathPlan:
    """How WeightWatcher 0.7.7 numbers `path` (a file, or a folder as its ``PyStateDictDir`` reads it)."""
    p = Path(path)
    start = start_id(PYSTATEDICT_DIR, start_ids)
    if not p.is_dir():
        return PathPlan([Source(p, number_keys(sorted_names(p), start))], True, start)
    fileglob = _files_glob(os.fspath(path))
    files = sorted(glob.glob(fileglob)) if fileglob else []
    if not files:
        bins = glob.glob(os.path.join(glob.escape(os.fspath(path)), "*.bin"))
        extra = " (htsr reads safetensors, not pickled .bin/.pt files)" if bins else ""
        raise FileNotFoundError(
            f"{path}: a Hugging Face checkpoint folder holds model.safetensors.index.json (sharded) or "
            f"model*.safetensors; found neither{extra}"
        )
    layer_map = _layer_map(fileglob)
    if layer_map:
        ids = number_keys(layer_map, start)
        index = p / "model.safetensors.index.json"
        if index.is_file() and _index_keys(index) == layer_map:
            # The engine reads the folder through the index, exactly the tensors the index maps to each shard.
            return PathPlan([Source(p, ids)], True, start)
        # WeightWatcher reads the map's tensors from every `*model*safetensors` file, first file first.
        shards = sorted(glob.glob(os.path.join(glob.escape(os.fspath(path)), "*model*safetensors")))
        return PathPlan([Source(Path(f), ids) for f in shards], True, start)
    sources = []
    current, yielded = start, 0
    for f in files:
        current += yielded  # WeightWatcher's running total, added again for every file
        ids = number_keys(sorted_names(Path(f)), current)
        yielded += len(ids)
        sources.append(Source(Path(f), ids))
    return PathPlan(sources, False, start)


def _files_glob(folder: str) -> str | None:
    """``WeightWatcher.infer_model_file_format``'s glob for safetensors files, or None when it finds none."""
    for pattern in (f"{folder}/model*safetensors", f"{folder}/adapter_model*safetensors"):
        if glob.glob(pattern):
            return pattern
    return None


def _layer_map(fileglob: str) -> list[str]:
    """``PyStateDictDir.get_layer_map``: a ``model*layer_map`` file's lines, else the index's keys shard by shard
    (shards sorted, keys in the JSON's order), else nothing. Its globs replace every "safetensors" in the whole
    pattern, the folder's path included (WeightWatcher does)."""
    maps = glob.glob(fileglob.replace("safetensors", "layer_map"))
    indexes = glob.glob(fileglob.replace("safetensors", ".safetensors.index.json"))
    if len(maps) == 1 and os.path.exists(maps[0]):
        with open(maps[0]) as f:
            return [line.strip() for line in f]
    if len(indexes) == 1 and os.path.exists(indexes[0]):
        return _index_keys(Path(indexes[0]))
    return []


def _index_keys(index: Path) -> list[str]:
    """The keys of an index's ``weight_map``: shard file names deduplicated and sorted, each shard's keys in the
    order the JSON lists them."""
    weight_map: dict[str, str] = json.loads(index.read_text())["weight_map"]
    return [k for shard in sorted(set(weight_map.values())) for k, v in weight_map.items() if v == shard]


def state_dict_ids(keys: Sequence[str], start_ids: int | None) -> IdAssigner:
    """Ids for a state dict's keys (dict order): WeightWatcher's, then the uncounted ones after them."""
    start = start_id(PYSTATEDICT, start_ids)
    return IdAssigner(dict(number_keys(keys, start)), start)
