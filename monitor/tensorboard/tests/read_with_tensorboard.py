"""Reads event files with TensorBoard's own loaders and prints JSON.

Run by tests/tensorboard_reader.rs with the project's Python (.venv/bin/python).

    read_with_tensorboard.py read RUN_DIR
        Prints one JSON object: what TensorBoard's EventAccumulator (every
        size guidance 0, i.e. keep everything) loaded from RUN_DIR, plus the
        plugin name and data class that TensorBoard's data layer
        (plugin_event_accumulator, which migrates legacy values as the
        server does) assigns to each tag, and the migrated scalar values.

    read_with_tensorboard.py text_pb TAG MARKDOWN
        Prints the hex encoding of TensorBoard's own text summary,
        tensorboard.plugins.text.summary_v2.text_pb(TAG, MARKDOWN).
"""

import json
import struct
import sys

import tensorboard
from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.backend.event_processing import plugin_event_accumulator as pea
from tensorboard.compat.proto import summary_pb2
from tensorboard.util import tensor_util


def f32_bits(x):
    return struct.unpack("<I", struct.pack("<f", x))[0]


def read(run_dir):
    acc = ea.EventAccumulator(
        run_dir, size_guidance={k: 0 for k in ea.DEFAULT_SIZE_GUIDANCE}
    )
    acc.Reload()
    tags = acc.Tags()
    out = {
        "tensorboard_version": tensorboard.__version__,
        "file_version": acc.file_version,
        "tags": {k: sorted(v) for k, v in tags.items() if isinstance(v, list)},
        "scalars": [],
        "histograms": [],
        "text": [],
        "data_layer": {},
        "migrated_scalars": [],
    }
    for tag in sorted(tags["scalars"]):
        for ev in acc.Scalars(tag):
            out["scalars"].append(
                {
                    "tag": tag,
                    "step": ev.step,
                    "wall_time": ev.wall_time,
                    "value": ev.value,
                    "bits": f32_bits(ev.value),
                }
            )
    for tag in sorted(tags["histograms"]):
        for ev in acc.Histograms(tag):
            h = ev.histogram_value
            out["histograms"].append(
                {
                    "tag": tag,
                    "step": ev.step,
                    "wall_time": ev.wall_time,
                    "min": h.min,
                    "max": h.max,
                    "num": h.num,
                    "sum": h.sum,
                    "sum_squares": h.sum_squares,
                    "bucket_limit": list(h.bucket_limit),
                    "bucket": list(h.bucket),
                }
            )
    try:
        text_tags = acc.PluginTagToContent("text")
    except KeyError:  # no text summaries at all
        text_tags = {}
    for tag in sorted(text_tags):
        for ev in acc.Tensors(tag):
            arr = tensor_util.make_ndarray(ev.tensor_proto)
            out["text"].append(
                {
                    "tag": tag,
                    "step": ev.step,
                    "wall_time": ev.wall_time,
                    "shape": list(arr.shape),
                    "string": arr.item().decode("utf-8"),
                }
            )

    # The data layer behind TensorBoard's UI.
    pacc = pea.EventAccumulator(
        run_dir, size_guidance={k: 0 for k in pea.DEFAULT_SIZE_GUIDANCE}
    )
    pacc.Reload()
    for tag in sorted(pacc.Tags()["tensors"]):
        md = pacc.SummaryMetadata(tag)
        out["data_layer"][tag] = {
            "plugin": md.plugin_data.plugin_name,
            "data_class": summary_pb2.DataClass.Name(md.data_class),
        }
        if md.data_class == summary_pb2.DATA_CLASS_SCALAR:
            for ev in pacc.Tensors(tag):
                v = tensor_util.make_ndarray(ev.tensor_proto)
                out["migrated_scalars"].append(
                    {
                        "tag": tag,
                        "step": ev.step,
                        "dtype": str(v.dtype),
                        "bits": int(v.reshape(()).view("<u4")),
                    }
                )
    return out


def finite_or_named(v):
    """JSON has no NaN or infinities: they travel as the strings the Rust side reads back."""
    if isinstance(v, float) and v != v:
        return "NaN"
    if isinstance(v, float) and v in (float("inf"), float("-inf")):
        return "Infinity" if v > 0 else "-Infinity"
    if isinstance(v, dict):
        return {k: finite_or_named(x) for k, x in v.items()}
    if isinstance(v, list):
        return [finite_or_named(x) for x in v]
    return v


def main():
    mode = sys.argv[1]
    if mode == "read":
        print(json.dumps(finite_or_named(read(sys.argv[2])), allow_nan=False))
    elif mode == "text_pb":
        from tensorboard.plugins.text.summary_v2 import text_pb

        print(text_pb(sys.argv[2], sys.argv[3]).SerializeToString().hex())
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
