#!/usr/bin/env bash
# Cost of several outputs, end to end: the W1 file (bench/e2e/run.sh's data) through
#   single  — the clickstream aggregation alone (the single-output form),
#   two     — `outputs` with that aggregation twice (a second aggregated output at its most
#             expensive: as many groups and result rows as the first),
#   small   — `outputs` with the aggregation and a second one per (type, 10 s) (few result rows),
#   aggfwd  — `outputs` with the aggregation and a forward of the accepted events,
#   fwd     — the forward alone (the single-output forwarding form),
# alternating for REPEAT rounds in one script run (the machine is noisy: compare within a round).
# Prints wall/user/sys seconds per run and the ratios to `single` of the same round (user CPU
# drifts less than wall time on a shared machine).
# Usage: bench/e2e/outputs.sh [EVENTS]   (default 10000000; DIR, TROVE, REPEAT as in run.sh)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
events=${1:-10000000}
repeat=${REPEAT:-2}
dir=${DIR:-${TMPDIR:-/tmp}/trove-outputs-$events}
trove=${TROVE:-$root/build/trove}
[ -x "$trove" ] || { echo "outputs.sh: no $trove (run make first)" >&2; exit 1; }
mkdir -p "$dir"
if [ ! -s "$dir/events.jsonl" ]; then
  "$trove" gen -n "$events" --keys 1000000 --zipf 1.1 --duplicates 0.05 --span 10m --seed 1 \
    > "$dir/events.jsonl"
fi
head="source: { type: file, path: $dir/events.jsonl, format: json }
schema: { event_id: u64, user_id: u64, type: string, ts: timestamp_ms, amount: f64 }
event_time: ts
dedup: { key: [event_id], ttl: 10m }
dead_letter: { path: $dir/bad.jsonl }"
agg="window: { type: tumbling, size: 1m, allowed_lateness: 5s }
    group_by: [user_id, type]
    aggregates: [count, sum(amount), min(amount), max(amount), avg(amount)]"
printf '%s\n%s\nsink: { type: file, path: %s/single.jsonl }\n' "$head" \
  "$(echo "$agg" | sed 's/^    //')" "$dir" > "$dir/single.yaml"
printf '%s\noutputs:\n  - name: a\n    %s\n    sink: { type: file, path: %s/a.jsonl }\n  - name: b\n    %s\n    sink: { type: file, path: %s/b.jsonl }\n' \
  "$head" "$agg" "$dir" "$agg" "$dir" > "$dir/two.yaml"
printf '%s\noutputs:\n  - name: a\n    %s\n    sink: { type: file, path: %s/a.jsonl }\n  - name: per_type\n    window: { type: tumbling, size: 10s, allowed_lateness: 5s }\n    group_by: [type]\n    aggregates: [count, sum(amount)]\n    sink: { type: file, path: %s/per_type.jsonl }\n' \
  "$head" "$agg" "$dir" "$dir" > "$dir/small.yaml"
printf '%s\noutputs:\n  - name: a\n    %s\n    sink: { type: file, path: %s/a.jsonl }\n  - name: clean\n    sink: { type: file, path: %s/clean.jsonl }\n' \
  "$head" "$agg" "$dir" "$dir" > "$dir/aggfwd.yaml"
printf '%s\nsink: { type: file, path: %s/fwd.jsonl }\n' "$head" "$dir" > "$dir/fwd.yaml"
for round in $(seq 1 "$repeat"); do
  single=0
  for c in single two small aggfwd fwd; do
    /usr/bin/time -o "$dir/time.txt" -f "%e %U %S" "$trove" run -c "$dir/$c.yaml" --quiet >/dev/null 2>"$dir/$c.err" || { cat "$dir/$c.err" >&2; exit 1; }
    t=$(tail -1 "$dir/time.txt")
    read -r wall user sys <<< "$t"
    [ "$c" = single ] && single=$wall
    [ "$c" = single ] && single_user=$user
    printf 'round %s  %-7s wall %6.2f s  user %6.2f s  sys %5.2f s  wall/single %.2f  user/single %.2f  %.2fM events/s\n' \
      "$round" "$c" "$wall" "$user" "$sys" "$(awk -v a="$wall" -v b="$single" 'BEGIN { print a / b }')" \
      "$(awk -v a="$user" -v b="$single_user" 'BEGIN { print a / b }')" \
      "$(awk -v n="$events" -v w="$wall" 'BEGIN { print n / w / 1e6 }')"
  done
done
cmp -s "$dir/single.jsonl" "$dir/a.jsonl" && cmp -s "$dir/a.jsonl" "$dir/b.jsonl" &&
  cmp -s "$dir/fwd.jsonl" "$dir/clean.jsonl" && echo "outputs identical to the single-output runs"
