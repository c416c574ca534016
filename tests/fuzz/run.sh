#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/CMakeLists.txt) into $FUZZ_BUILD and runs each for
# $FUZZ_TIME seconds, one after the other, then prints per target: executions, coverage (cov/ft
# from libFuzzer's final stats) and crashes. Exits 1 when any target found a crash, a hang
# (over $FUZZ_TIMEOUT seconds on one input) or a sanitizer report; the inputs are saved as
# $FUZZ_BUILD/artifacts/<target>-crash-*, -timeout-*, -leak-*, ... (README, "Fuzzing").
#
#   FUZZ_TIME=60 FUZZ_TARGETS="json_decoder csv_decoder config metrics checkpoint" tests/fuzz/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

FUZZ_TIME=${FUZZ_TIME:-60}
FUZZ_BUILD=${FUZZ_BUILD:-build-fuzz}
FUZZ_TARGETS=${FUZZ_TARGETS:-json_decoder csv_decoder config metrics checkpoint}
FUZZ_TIMEOUT=${FUZZ_TIMEOUT:-10}
FUZZ_ARGS=${FUZZ_ARGS:-}

# clang and its libFuzzer/sanitizer runtime are Debian packages; install them when missing.
if ! dpkg-query -W -f='${Status}\n' clang libclang-rt-14-dev 2>/dev/null | grep -c "install ok installed" |
    grep -q 2; then
  echo "fuzz: installing clang and libclang-rt-14-dev"
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends clang libclang-rt-14-dev
fi

if [[ ! -f $FUZZ_BUILD/CMakeCache.txt ]]; then
  cmake -S tests/fuzz -B "$FUZZ_BUILD" -DCMAKE_CXX_COMPILER=clang++
fi
cmake --build "$FUZZ_BUILD" -j"${FUZZ_JOBS:-$(nproc)}"

declare -A dict=([json_decoder]=json [csv_decoder]=csv [config]=yaml [checkpoint]=checkpoint)
# The config target's cost grows with the YAML's length (yaml-cpp scans it character by character):
# 2 KiB holds every seed (1.3 KiB at most) and any realistic config, instead of libFuzzer's 4 KiB.
declare -A max_len=([config]=2048)
mkdir -p "$FUZZ_BUILD/artifacts" "$FUZZ_BUILD/logs"
summary=()
failed=0
for target in $FUZZ_TARGETS; do
  corpus="$FUZZ_BUILD/corpus/$target"  # grows across runs; the checked-in seeds stay as they are
  mkdir -p "$corpus"
  log="$FUZZ_BUILD/logs/$target.log"
  args=(-max_total_time="$FUZZ_TIME" -timeout="$FUZZ_TIMEOUT" -print_final_stats=1
        -artifact_prefix="$FUZZ_BUILD/artifacts/$target-")
  [[ -n ${dict[$target]:-} ]] && args+=(-dict="tests/fuzz/dict/${dict[$target]}.dict")
  [[ -n ${max_len[$target]:-} ]] && args+=(-max_len="${max_len[$target]}")
  before=$(find "$FUZZ_BUILD/artifacts" -name "$target-*" | wc -l)
  echo "=== fuzz_$target for ${FUZZ_TIME}s (log: $log)"
  rc=0
  # shellcheck disable=SC2086
  "$FUZZ_BUILD/fuzz_$target" "${args[@]}" $FUZZ_ARGS "$corpus" "tests/fuzz/corpus/$target" \
    >"$log" 2>&1 || rc=$?
  after=$(find "$FUZZ_BUILD/artifacts" -name "$target-*" | wc -l)
  crashes=$((after - before))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
  if ((rc != 0 || crashes > 0)); then
    failed=1
    grep -E 'ERROR:|SUMMARY:|check failed|runtime error' "$log" | head -5 | sed 's/^/    /'
  fi
  summary+=("$(printf '%-14s executions %-10s exec/s %-7s %-18s crashes %s%s' "$target" \
    "${execs:-?}" "${rate:-?}" "${cov:-cov: ? ft: ?}" "$crashes" "$( ((rc)) && echo " (exit $rc)")")")
done

echo "=== fuzz summary (${FUZZ_TIME}s per target)"
printf '  %s\n' "${summary[@]}"
if ((failed)); then
  echo "fuzz: FAILED: reproduce with $FUZZ_BUILD/fuzz_<target> <artifact> (see $FUZZ_BUILD/artifacts)"
  exit 1
fi
echo "fuzz: no crash, hang or sanitizer report"
