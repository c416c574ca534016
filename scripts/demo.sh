#!/usr/bin/env bash
# `make demo`: trove's main job on its embedded default — a million synthetic clickstream events
# (Zipf-skewed users, 5% re-sent duplicates, 2 s of disorder) deduplicated on event_id and
# aggregated per (user, type, 1-minute window) on the best backend available.
set -euo pipefail
trove=${1:-build/trove}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "== trove devices"
"$trove" devices
echo
echo "== trove run -c examples/synthetic.yaml  (1M events -> $out/results.jsonl)"
"$trove" run -c examples/synthetic.yaml --set sink.type=file --set sink.path="$out/results.jsonl" \
  --stats-json "$out/stats.json"
echo
echo "== first result rows"
head -n 5 "$out/results.jsonl"
echo "... $(wc -l < "$out/results.jsonl") rows"
echo
echo "== stats (--stats-json)"
cat "$out/stats.json"
