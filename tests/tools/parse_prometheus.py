#!/usr/bin/python3
"""Parses a Prometheus text exposition with the reference parser (Debian's
python3-prometheus-client) and prints one sample per line, `name{k="v",...} value` with the
labels sorted, so that C++ tests can check what a real scraper sees. Also checks what the parser
does not: every histogram's buckets are cumulative and its +Inf bucket equals its _count.
Exit code 0 when the text parses and the checks hold, 1 otherwise (the reason on stderr)."""

import math
import sys

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    sys.exit("python3-prometheus-client is missing: run scripts/install-deps.sh "
             "(apt-get install python3-prometheus-client)")


def escape(value: str) -> str:
    """A label value escaped as in the exposition format, so each sample stays on one line."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def main() -> int:
    text = open(sys.argv[1], encoding="utf-8").read() if len(sys.argv) > 1 else sys.stdin.read()
    try:
        families = list(text_string_to_metric_families(text))
    except Exception as error:  # the parser raises ValueError and friends
        print(f"parse error: {error}", file=sys.stderr)
        return 1
    for family in families:
        if family.type == "histogram":
            buckets = [s for s in family.samples if s.name.endswith("_bucket")]
            counts = [s for s in family.samples if s.name.endswith("_count")]
            previous = -1.0
            for s in buckets:
                if s.value < previous:
                    print(f"{family.name}: bucket le={s.labels['le']} decreases", file=sys.stderr)
                    return 1
                previous = s.value
            if not buckets or buckets[-1].labels.get("le") != "+Inf":
                print(f"{family.name}: no +Inf bucket", file=sys.stderr)
                return 1
            if not counts or counts[0].value != buckets[-1].value:
                print(f"{family.name}: +Inf bucket != _count", file=sys.stderr)
                return 1
        for s in family.samples:
            labels = ",".join(f'{k}="{escape(v)}"' for k, v in sorted(s.labels.items()))
            value = "NaN" if math.isnan(s.value) else repr(s.value)
            print(f"{s.name}{{{labels}}} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
