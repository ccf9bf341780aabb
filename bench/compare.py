"""Largest relative alpha difference between WeightWatcher's CSV and htsr's CSV (matched by layer name)."""
import csv
import sys


def rows(path, key):
    with open(path, newline="") as f:
        return {r[key].replace(".", "_"): r for r in csv.DictReader(f)}


ww = rows(sys.argv[1], "name")
ht = rows(sys.argv[2], "name")
worst = 0.0
for name, r in ww.items():
    h = ht.get(name)
    if h is None or not r["alpha"] or not h["alpha"]:
        continue
    a, b = float(r["alpha"]), float(h["alpha"])
    worst = max(worst, abs(a - b) / abs(a))
print(f"{worst:.1e} over {len(ww)} layers")
