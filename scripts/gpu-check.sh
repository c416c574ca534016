#!/usr/bin/env bash
# The checks that need a GPU, prepared for the day a GPU machine is lent: one script, at most
# about 8 minutes on one GPU with 16 cores (a global time budget; a step that would not fit is
# reported as skipped, never left running).
#
#   1. configure and build with CUDA for the local architecture (nvidia-smi's compute_cap) in
#      build-gpu-check/ (build/ is left alone)
#   2. ctest -L gpu: the CUDA instantiations of the kernel tests
#   3. compute-sanitizer memcheck, racecheck and synccheck over a small subset of those tests, and
#      memcheck over a short `trove run --device cuda` (the whole pipeline: its streams, staging
#      slots and tables)
#   4. end to end: a W1-like job (examples/clickstream.yaml on a generated file) on --device cuda
#      and on --device cpu; rows must match (count, min, max and keys exactly, float sums and
#      averages within 1e-9 relative), and the record counts too
#   5. bench_kernels on CUDA (the per-batch step) next to the absl baseline
#   6. trove bench --device cuda at a few fixed rates
#
# Writes summary.md and the raw results (logs, JSON, outputs) under DIR (default gpu-check-out/).
# Exit code: 0 when every step passed, or when there is no usable GPU (it says so, with
# `trove devices`' reason, and runs nothing); 1 when a step failed.
#
# Usage: scripts/gpu-check.sh [--out DIR]
# Environment: BUDGET_S (default 470: total seconds), JOBS (default nproc),
#   EVENTS (default 2000000: events of the end-to-end job)
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=gpu-check-out
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --out=*) out=${1#--out=}; shift ;;
    -h | --help) sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu-check.sh: unknown argument '$1' (usage: scripts/gpu-check.sh [--out DIR])" >&2
       exit 2 ;;
  esac
done
mkdir -p "$out" || exit 1
out=$(cd "$out" && pwd)
summary=$out/summary.md
budget=${BUDGET_S:-470}
jobs=${JOBS:-$(nproc)}
events=${EVENTS:-2000000}
build=$root/build-gpu-check
start=$SECONDS
failed=0
data=$out/w1.jsonl
trove=$build/trove
export root out build jobs data trove cuda_arch

note() { printf '%s\n' "$*" | tee -a "$summary"; }
elapsed() { echo $((SECONDS - start)); }

{
  echo "# trove GPU check"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), $(uname -n), commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo
} >"$summary"

# ---- is there a usable GPU? ----------------------------------------------------------------------
# Without one, say why (nvidia-smi, and build/trove devices when it is built) and run nothing.
no_gpu() {
  note "**No usable GPU: nothing was run.** $1"
  note
  if [[ -x $root/build/trove ]]; then
    note '`build/trove devices`:'
    note '```'
    "$root/build/trove" devices 2>&1 | tee -a "$summary"
    note '```'
  else
    note '(`build/trove` is not built, so `trove devices` could not give its reason: `make build`.)'
  fi
  echo "summary: $summary"
  exit 0
}
if ! command -v nvidia-smi >/dev/null 2>&1; then
  no_gpu "nvidia-smi is not installed (no NVIDIA driver)."
fi
if ! caps=$(nvidia-smi --query-gpu=compute_cap,name,memory.total,driver_version \
  --format=csv,noheader 2>&1) || [[ -z $caps ]]; then
  no_gpu "nvidia-smi fails: $(echo "$caps" | head -3)"
fi
echo "$caps" >"$out/nvidia-smi.txt"
cuda_arch=$(echo "$caps" | head -1 | cut -d, -f1 | tr -d ' .')
if ! [[ $cuda_arch =~ ^[0-9]+$ ]]; then
  no_gpu "nvidia-smi reports no compute capability ('$(echo "$caps" | head -1)')."
fi
# A CUDA build of trove that already sees no device (e.g. a driver older than the toolkit) knows
# why before anything is built.
if [[ -x $root/build/trove ]] && "$root/build/trove" devices 2>&1 | grep -q 'no usable device' &&
  ! "$root/build/trove" devices 2>&1 | grep -q 'TROVE_CUDA=OFF'; then
  no_gpu "nvidia-smi sees: $(echo "$caps" | head -1); but trove's CUDA runtime does not."
fi
note "GPU: $(echo "$caps" | head -1) → CMAKE_CUDA_ARCHITECTURES=$cuda_arch; budget ${budget} s, $jobs jobs."
note
note "| step | result | seconds |"
note "|---|---|---|"

# Runs one step (a command, or a function of this script) with what is left of the budget (at most
# `limit` seconds): result PASS, FAIL or TIMEOUT in the table, output in $out/<name>.log.
step() {
  local name=$1 limit=$2
  shift 2
  local left=$((budget - $(elapsed)))
  if ((left < 10)); then
    note "| $name | skipped: time budget spent | 0 |"
    failed=1
    return 1
  fi
  ((limit > left)) && limit=$left
  local t0=$SECONDS rc
  if declare -F "$1" >/dev/null; then
    # timeout runs programs, not functions: hand the function to a child bash (the variables it
    # reads are exported).
    timeout --kill-after=10 "$limit" bash -c "$(declare -f "$1"); $(printf '%q ' "$@")" \
      >"$out/$name.log" 2>&1
  else
    timeout --kill-after=10 "$limit" "$@" >"$out/$name.log" 2>&1
  fi
  rc=$?
  local result=PASS
  if ((rc == 124 || rc == 137)); then
    result="TIMEOUT (${limit} s)"
  elif ((rc != 0)); then
    result="FAIL (exit $rc)"
  fi
  [[ $result == PASS ]] || failed=1
  note "| $name | $result | $((SECONDS - t0)) |"
  [[ $result == PASS ]]
}

# ---- 1. build ----------------------------------------------------------------------------------
build_all() {
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DTROVE_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES="$cuda_arch" &&
    cmake --build "$build" -j"$jobs"
}
if ! step build 300 build_all; then
  note
  note "The build failed: see build.log. Nothing else was run."
  exit 1
fi
"$trove" devices >"$out/devices.txt" 2>&1
if grep -q 'no usable device' "$out/devices.txt"; then
  note
  note "**trove's CUDA runtime sees no usable device** (\`$(grep 'no usable' "$out/devices.txt")\`): nothing else was run."
  exit 0
fi

# ---- 2. CUDA kernel tests ----------------------------------------------------------------------
step ctest-gpu 120 bash -c "cd '$build' && ctest -L gpu -j4 --output-on-failure --timeout 60"

# ---- 3. compute-sanitizer ----------------------------------------------------------------------
sanitizer=$(command -v compute-sanitizer || true)
for candidate in /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer; do
  [[ -z $sanitizer && -x $candidate ]] && sanitizer=$candidate
done
# Small tests that still reach every kernel family: copies and reductions, classify, the dedup
# claim protocol and rebuilds, the aggregation table's inserts, extraction and growth, restores.
subset='BackendTest/Cuda.*:ClassifyTest/Cuda.*'
subset+=':DedupSetTest/Cuda.FirstRowWinsAndOtherStatusesAreUntouched'
subset+=':DedupSetTest/Cuda.KeysSharingOneHomeSlot:DedupSetTest/Cuda.RebuildDropsExpiredEntries'
subset+=':AggTableTest/Cuda.StringKeysComeBackByteExact:AggTableTest/Cuda.IntegerAndFloatAggregates'
subset+=':AggTableTest/Cuda.ExtractUpdatedReturnsExactlyTheTouchedGroups'
subset+=':DifferentialTest/Cuda.SingleEvent:DifferentialTest/Cuda.TableGrowthFromTinyCapacity'
subset+=':CheckpointKernelTest/Cuda.RestoreIntoTinyTablesGrowsThem'
cat >"$out/pipeline.yaml" <<'EOF'
source: {type: synthetic, events: 100000, keys: 5000, duplicate_ratio: 0.1, disorder: 2s, span: 5m}
schema: {event_id: u64, user_id: u64, type: string, ts: timestamp_ms, amount: f64}
event_time: ts
dedup: {key: [event_id], ttl: 10m, initial_capacity: 1024}
window: {type: hopping, size: 1m, slide: 30s, allowed_lateness: 5s, initial_capacity: 1024}
group_by: [user_id, type]
aggregates: [count, sum(amount), min(amount), max(amount), avg(amount)]
emit: update
batch: {max_events: 16384}
sink: {type: file, path: /dev/null}
EOF
if [[ -z $sanitizer ]]; then
  note "| compute-sanitizer | skipped: not installed | 0 |"
  failed=1
else
  for tool in memcheck racecheck synccheck; do
    step "sanitizer-$tool" 75 "$sanitizer" --tool "$tool" --error-exitcode 1 \
      "$build/tests/test_kernels" --gtest_filter="$subset"
  done
  # The whole pipeline on its streams (tiny initial tables: they grow, rebuild and prefetch).
  step sanitizer-memcheck-pipeline 75 "$sanitizer" --tool memcheck --error-exitcode 1 \
    "$trove" run -c "$out/pipeline.yaml" -q --device cuda
fi

# ---- 4. end to end: cuda vs cpu on the same file -----------------------------------------------
e2e_run() {
  local device=$1
  "$trove" run -c "$root/examples/clickstream.yaml" --device "$device" -q \
    --set "source.path=$data" --set "sink.path=$out/w1-$device.jsonl" \
    --set "dead_letter.path=$out/w1-$device-bad.jsonl" --stats-json "$out/w1-$device.stats.json"
}
compare_rows() {
  if command -v python3 >/dev/null 2>&1; then
    python3 - "$out/w1-cuda.jsonl" "$out/w1-cpu.jsonl" "$out/w1-cuda.stats.json" \
      "$out/w1-cpu.stats.json" <<'EOF'
import json, sys
def rows(path):
    out = {}
    for line in open(path):
        if not line.strip():
            continue
        r = json.loads(line)
        key = tuple((k, v) for k, v in r.items()
                    if k not in ("count",) and not k.split("_")[0] in ("sum", "min", "max", "avg"))
        if key in out:
            sys.exit(f"{path}: row emitted twice: {key}")
        out[key] = r
    return out
cuda, cpu = rows(sys.argv[1]), rows(sys.argv[2])
bad = 0
for key in cuda.keys() ^ cpu.keys():
    bad += 1
    if bad <= 10: print("only on", "cuda" if key in cuda else "cpu", key)
worst = 0.0
for key in cuda.keys() & cpu.keys():
    a, b = cuda[key], cpu[key]
    for col in a:
        x, y = a[col], b.get(col)
        if col.startswith(("sum_", "avg_")):
            if x is None or y is None:
                ok = x == y
            else:
                rel = abs(x - y) / max(1.0, abs(x), abs(y))
                worst = max(worst, rel)
                ok = rel <= 1e-9
        else:
            ok = x == y
        if not ok:
            bad += 1
            if bad <= 10: print("differs", key, col, x, y)
sa, sb = json.load(open(sys.argv[3])), json.load(open(sys.argv[4]))
for k in ("in", "accepted", "duplicate", "late", "filtered", "bad", "rows_out", "windows_emitted"):
    if sa.get(k) != sb.get(k):
        bad += 1
        print("stats differ:", k, sa.get(k), sb.get(k))
print(f"{len(cuda)} rows on cuda, {len(cpu)} on cpu, {bad} differences, "
      f"largest relative float difference {worst:.3g}; cuda {sa.get('events_per_second', 0):.0f} "
      f"events/s ({sa.get('device')}), cpu {sb.get('events_per_second', 0):.0f} events/s")
sys.exit(1 if bad else 0)
EOF
  else
    # awk: trove writes flat JSON objects whose strings hold no commas or colons here.
    norm() {
      awk '{ gsub(/[{}]/, ""); n = split($0, f, ","); key = ""; vals = "";
             for (i = 1; i <= n; i++) { split(f[i], kv, ":"); k = kv[1]; gsub(/"/, "", k);
               if (k == "count" || k ~ /^(sum|min|max|avg)_/) vals = vals " " k "=" kv[2];
               else key = key "|" kv[2] }
             print key "\t" vals }' "$1" | sort
    }
    norm "$out/w1-cuda.jsonl" >"$out/w1-cuda.norm"
    norm "$out/w1-cpu.jsonl" >"$out/w1-cpu.norm"
    paste "$out/w1-cuda.norm" "$out/w1-cpu.norm" | awk -F'\t' '
      { if ($1 != $3) { bad++; next }
        na = split($2, a, " "); split($4, b, " ");
        for (i = 1; i <= na; i++) { split(a[i], x, "="); split(b[i], y, "=");
          if (x[1] ~ /^(sum|avg)_/) { d = x[2] - y[2]; d = d < 0 ? -d : d; m = x[2] < 0 ? -x[2] : x[2];
            if (m < 1) m = 1; if (d > 1e-9 * m) bad++ }
          else if (x[2] != y[2]) bad++ } }
      END { printf "%d rows compared, %d differences (awk)\n", NR, bad; exit bad > 0 }'
  fi
}
if step e2e-generate 60 "$trove" gen -n "$events" --keys 100000 --duplicates 0.05 --span 10m \
  --seed 1 -o "$data"; then
  step e2e-cuda 60 e2e_run cuda
  step e2e-cpu 90 e2e_run cpu
  if [[ -s $out/w1-cuda.jsonl && -s $out/w1-cpu.jsonl ]]; then
    step e2e-compare 60 compare_rows
    note "| | $(tail -1 "$out/e2e-compare.log") | |"
  fi
  rm -f "$data"  # large and regenerable (trove gen --seed 1)
fi

# ---- 5. bench_kernels on CUDA --------------------------------------------------------------------
if [[ -x $build/bench/bench_kernels ]]; then
  step bench-kernels 60 "$build/bench/bench_kernels" --benchmark_filter='BM_absl_baseline|cuda' \
    --benchmark_counters_tabular=true --benchmark_out="$out/bench_kernels.json" \
    --benchmark_out_format=json
fi

# ---- 6. trove bench at fixed rates --------------------------------------------------------------
step trove-bench 75 "$trove" bench --device cuda --rates 1M,4M,16M --duration 5s --warmup 2s \
  --baseline-events 0 --out "$out/trove-bench" -q

# ---- summary -----------------------------------------------------------------------------------
note
note "Total: $(elapsed) s of a ${budget} s budget."
if [[ -f $out/ctest-gpu.log ]]; then
  note
  note "ctest -L gpu: $(grep -E 'tests passed|tests failed' "$out/ctest-gpu.log" | tail -1)"
fi
for tool in memcheck racecheck synccheck memcheck-pipeline; do
  f=$out/sanitizer-$tool.log
  [[ -f $f ]] && note "compute-sanitizer $tool: $(grep -E 'ERROR SUMMARY' "$f" | tail -1)"
done
if [[ -f $out/bench_kernels.log ]]; then
  note
  note '### bench_kernels (CUDA)'
  note '```'
  grep -E 'BM_|Benchmark' "$out/bench_kernels.log" | tee -a "$summary"
  note '```'
fi
if [[ -f $out/trove-bench/results.md ]]; then
  note
  note '### trove bench --device cuda'
  cat "$out/trove-bench/results.md" >>"$summary"
fi
echo "summary: $summary"
exit "$failed"
