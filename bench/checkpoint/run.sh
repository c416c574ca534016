#!/usr/bin/env bash
# Checkpoint cost and recovery time, end to end, CPU backend.
#
# 1. Throughput: the W1 job of examples/clickstream.yaml (10M events, dedup on event_id with a
#    10m TTL over a 10m span, so every key stays live: ~9.5M dedup entries by the end) file → file,
#    once without checkpoints and once each with checkpoint.interval 10s and 2s, alternating for
#    REPEAT rounds in this one script (the machine is shared and noisy: ratios in one run count).
#    Reported: events/s (trove's own `seconds`, start-up included) and the ratio against no
#    checkpoints, checkpoints written, the last checkpoint's size, the longest data-path pause of a
#    cut and the longest background write.
# 2. Recovery: 12M events of 500k users with 1-hour windows (every group stays open: ~2M groups), a
#    2s interval, run to the end; the last periodic checkpoint (~9.5M dedup keys and
#    ~2M groups) is restored by a second start: `restore_seconds` (load, verify, bulk insert)
#    and the time to the end of the input.
#
# Usage: bench/checkpoint/run.sh [EVENTS]      (default 10000000)
# Environment: REPEAT=2, DIR=${TMPDIR:-/tmp}/trove-ckpt-EVENTS, TROVE=build/trove, KEEP=1 keeps data.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
events=${1:-10000000}
repeat=${REPEAT:-2}
dir=${DIR:-${TMPDIR:-/tmp}/trove-ckpt-$events}
trove=${TROVE:-$root/build/trove}
[[ -x $trove ]] || { echo "no trove binary at $trove: build it first (make)" >&2; exit 1; }
mkdir -p "$dir"
data=$dir/events.jsonl
if [[ ! -s $data ]]; then
  echo "[ckpt] generating $events events" >&2
  "$trove" gen -n "$events" --keys 1000000 --zipf 1.1 --duplicates 0.05 --span 10m --seed 1 -o "$data"
fi
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }
run() {  # name, extra --set arguments...
  local name=$1; shift
  rm -rf "$dir/state" "$dir/out.jsonl"
  "$trove" run -c "$root/examples/clickstream.yaml" -q --set "source.path=$data" \
    --set "sink.path=$dir/out.jsonl" --set "dead_letter.path=$dir/bad.jsonl" "$@" --stats-json "$dir/$name.json" 2>/dev/null
  echo "$name $(field "$dir/$name.json" events_per_second) $(field "$dir/$name.json" checkpoints)" \
    "$(field "$dir/$name.json" checkpoint_bytes) $(field "$dir/$name.json" checkpoint_max_cut_seconds)" \
    "$(field "$dir/$name.json" checkpoint_max_write_seconds)" >> "$dir/results.txt"
}
rm -f "$dir/results.txt"
for ((round = 0; round < repeat; ++round)); do
  run none
  run ckpt10s --set "checkpoint.dir=$dir/state" --set checkpoint.interval=10s
  run ckpt2s --set "checkpoint.dir=$dir/state" --set checkpoint.interval=2s
done
python3 - "$dir/results.txt" <<'PY'
import sys, statistics, collections
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    name, eps, n, size, cut, write = line.split()
    rows[name].append((float(eps), int(n), int(size), float(cut), float(write)))
base = statistics.median(r[0] for r in rows["none"])
print("| run | events/s (median) | vs none | checkpoints | last checkpoint | longest cut pause | longest write |")
print("|---|---|---|---|---|---|---|")
for name in ("none", "ckpt10s", "ckpt2s"):
    r = rows[name]
    eps = statistics.median(x[0] for x in r)
    print(f"| {name} | {eps/1e6:.2f}M | {eps/base:.2f}x | {r[-1][1]} | {r[-1][2]/2**20:.1f} MiB | "
          f"{max(x[3] for x in r)*1000:.0f} ms | {max(x[4] for x in r)*1000:.0f} ms |")
PY
# Recovery from a large state: 12M events over 500k uniform users, 1-hour windows (the window
# holding the whole span stays open: ~2M groups), checkpoints every 2s. The run goes to the end;
# then its final checkpoint (after the end of the input nothing is left in it) is set aside and
# the last periodic one (~9.5M dedup keys, ~2M groups) is restored by a second start.
recovery=$dir/recovery.jsonl
if [[ ! -s $recovery ]]; then
  echo "[ckpt] generating the recovery input" >&2
  "$trove" gen -n $((events * 12 / 10)) --keys 500000 --zipf 0 --duplicates 0.05 --span 10m --seed 2 -o "$recovery"
fi
rm -rf "$dir/state"
common=(-c "$root/examples/clickstream.yaml" -q --set "source.path=$recovery" --set "sink.path=$dir/out.jsonl"
        --set "dead_letter.path=$dir/bad.jsonl" --set "checkpoint.dir=$dir/state"
        --set checkpoint.interval=2s --set window.size=1h)
"$trove" run "${common[@]}" --stats-json "$dir/first.json" 2>/dev/null
newest=$(ls "$dir/state"/checkpoint-*.ckpt | sort | tail -1)
rm -f "$newest"
"$trove" checkpoint list "$dir/state" | head -2
"$trove" run "${common[@]}" --stats-json "$dir/resumed.json" 2>/dev/null
echo
echo "recovery: restore_seconds $(field "$dir/resumed.json" restore_seconds) (checkpoint $(field "$dir/resumed.json" restored_checkpoint): load, verify, bulk insert of both tables), then the rest of the input in $(field "$dir/resumed.json" seconds) s"
[[ ${KEEP:-0} == 1 ]] || rm -rf "$dir/state" "$dir/out.jsonl"
