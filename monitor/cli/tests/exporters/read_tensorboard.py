"""Reads an htsr LOGDIR the way TensorBoard does and prints what it finds as JSON.

    read_tensorboard.py LOGDIR

TensorBoard's EventMultiplexer finds the runs (every folder holding event files) and loads each with every
size guidance 0 (keep every point, no sampling). Printed: {run: {"scalars": [...], "histograms": [...],
"text": [...]}}, each point with its tag, step and wall time. Run by tests/exporters.rs with the project's
Python (.venv/bin/python, made by `bash scripts/setup`).
"""

import json
import sys

from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.backend.event_processing import event_multiplexer as em
from tensorboard.util import tensor_util


def main(logdir):
    mux = em.EventMultiplexer(size_guidance={k: 0 for k in ea.DEFAULT_SIZE_GUIDANCE})
    mux.AddRunsFromDirectory(logdir)
    mux.Reload()
    out = {}
    for run, tags in sorted(mux.Runs().items()):
        acc = mux.GetAccumulator(run)
        r = {"scalars": [], "histograms": [], "text": []}
        for tag in sorted(tags["scalars"]):
            for ev in acc.Scalars(tag):
                r["scalars"].append({"tag": tag, "step": ev.step, "wall_time": ev.wall_time, "value": ev.value})
        for tag in sorted(tags["histograms"]):
            for ev in acc.Histograms(tag):
                h = ev.histogram_value
                r["histograms"].append({
                    "tag": tag, "step": ev.step, "wall_time": ev.wall_time, "min": h.min, "max": h.max,
                    "num": h.num, "sum": h.sum, "bucket_limit": list(h.bucket_limit), "bucket": list(h.bucket),
                })
        try:
            text_tags = acc.PluginTagToContent("text")
        except KeyError:  # no text summaries in this run
            text_tags = {}
        for tag in sorted(text_tags):
            for ev in acc.Tensors(tag):
                s = tensor_util.make_ndarray(ev.tensor_proto).item().decode("utf-8")
                r["text"].append({"tag": tag, "step": ev.step, "string": s})
        out[run] = r
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
