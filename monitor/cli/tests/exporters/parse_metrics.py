"""Parses a metrics page (standard input) with prometheus_client's OpenMetrics parser (with --classic: its parser
of the classic text format 0.0.4) and prints JSON.

The parser is strict: a malformed line, a bad escape, a missing `# EOF`, a counter without `_total`... raise,
and this script exits non-zero with the parser's message. Printed: a list of families, each
{"name", "type", "unit", "samples": [{"name", "labels", "value"}]}. Run by tests/exporters.rs with the
project's Python (.venv/bin/python, made by `bash scripts/setup`).
"""

import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families
from prometheus_client.parser import text_string_to_metric_families as classic_families


def main():
    page = sys.stdin.buffer.read().decode("utf-8")
    parse = classic_families if sys.argv[1:] == ["--classic"] else text_string_to_metric_families
    families = []
    for f in parse(page):
        families.append({
            "name": f.name, "type": f.type, "unit": f.unit,
            "samples": [{"name": s.name, "labels": dict(s.labels), "value": s.value} for s in f.samples],
        })
    print(json.dumps(families))


if __name__ == "__main__":
    main()
