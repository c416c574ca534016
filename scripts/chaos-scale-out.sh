#!/usr/bin/env bash
# chaos-scale-out.sh: kill -9 / scale-out chaos test of a trove consumer group sharing one
# checkpoint.dir (README: "Scale-out: state moves with its partitions").
#
# Usage:  [EVENTS=60000] [RATE=4000] [SEED=1] [KILLS=5] [OUT=/tmp/dir] scripts/chaos-scale-out.sh
#
#   EVENTS     events produced live into topic `events` (default 60000)
#   RATE       producer events/s (default 4000; keep it <= 5000 on a 2-core machine)
#   SEED       seeds both `trove gen` and the disturbance schedule (default 1)
#   KILLS      number of disturbances (default 5; the first five are one of each kind, shuffled);
#              while the producer still runs after them, more random ones follow (up to 3 x KILLS)
#   OUT        output directory (default: a new mktemp -d); logs, results, diffs stay there
#   KEYS, DUPLICATES, SPAN, DISORDER   passed to `trove gen` (500, 0.05, 10m, 2s)
#   FINAL_WAIT seconds between stopping the group and the final exit_at_end run (default 8,
#              > session.timeout.ms, so the mock coordinator has dropped the old members)
#   TROVE      the binary (default build/trove)
#
# What it does:
#   1. `trove broker --topic events --topic results --partitions 8` in its own process.
#   2. `trove gen --kafka ... --rate RATE -n EVENTS` (keyed by user_id) in the background.
#   3. Instances a, b (and c) of consumer group `chaos` on one shared checkpoint.dir, Kafka sink
#      `results`; meanwhile KILLS seeded random disturbances, one after the other:
#        kill9  SIGKILL an instance, restart it after a random delay
#        kill9fast  SIGKILL an instance, restart it, SIGKILL it again 0-400 ms after its take-over
#               (before its first checkpoint of the partitions it claimed), restart it later
#        term   SIGTERM an instance (expect exit 0), restart it after a random delay
#        scale  start a third instance c, SIGTERM it a few seconds after it got partitions
#        stop   SIGSTOP an instance past the session timeout (until the others hold all
#               partitions), SIGCONT: the zombie must exit 1 with "now belongs to member";
#               then restart it
#   4. Once the producer finished: SIGTERM every instance, then one last instance with
#      source.exit_at_end=true runs to the end (emits every window).
#   5. Reference: the same pipeline, fresh group, no checkpoint, exit_at_end, file sink.
#   6. Reads `results` with kcat, takes the LAST row per (user_id, type, window_start) (an upsert)
#      and compares it with the reference; reports keys emitted with two different values.
# Exit code: 0 when everything matched and every exit code was the expected one, else 1.
set -euo pipefail
cd "$(dirname "$0")/.."

TROVE=${TROVE:-build/trove}
EVENTS=${EVENTS:-60000}
RATE=${RATE:-4000}
SEED=${SEED:-1}
KILLS=${KILLS:-5}
KEYS=${KEYS:-500}
DUPLICATES=${DUPLICATES:-0.05}
SPAN=${SPAN:-10m}
DISORDER=${DISORDER:-2s}
FINAL_WAIT=${FINAL_WAIT:-8}
OUT=${OUT:-$(mktemp -d /tmp/chaos-scale-out.XXXXXX)}
SESSION_MS=6000
PARTITIONS=8

mkdir -p "$OUT/logs"
OUT=$(cd "$OUT" && pwd)
STATE="$OUT/state"
TIMELINE="$OUT/timeline.txt"
: >"$TIMELINE"
RANDOM=$SEED   # seeds bash's generator: the same SEED gives the same schedule

declare -A PID=() GENR=() EXITS=()
PROBLEMS=()
broker_pid="" gen_pid=""
T0=$(date +%s%3N)

now_ms() { date +%s%3N; }
log() {
  local t; t=$(now_ms)
  printf '%7.2fs  %s\n' "$(awk -v t="$t" -v z="$T0" 'BEGIN{printf "%.2f", (t - z) / 1000}')" "$*" \
    | tee -a "$TIMELINE"
}
# rnd LO HI: sets R to a seeded random integer in [LO, HI] (no subshell: keeps the sequence).
rnd() { R=$(($1 + RANDOM % ($2 - $1 + 1))); }
sleep_ms() { sleep "$(awk -v m="$1" 'BEGIN{printf "%.3f", m / 1000}')"; }

alive() {  # alive PID: running (or stopped) and not a zombie
  local p=$1 st
  [[ -n "$p" ]] && kill -0 "$p" 2>/dev/null || return 1
  st=$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null || echo Z)
  [[ "$st" != Z ]]
}
inst_log() { echo "$OUT/logs/$1.${GENR[$1]}.log"; }
is_running() { [[ -n "${PID[$1]:-}" ]] && alive "${PID[$1]}"; }

start_inst() {  # start_inst NAME [extra trove run args...]
  local name=$1; shift
  GENR[$name]=$(( ${GENR[$name]:-0} + 1 ))
  local tag="$name.${GENR[$name]}"
  "$TROVE" run -c "$OUT/chaos.yaml" --stats-json "$OUT/logs/$tag.stats" "$@" \
    >"$OUT/logs/$tag.stdout" 2>"$OUT/logs/$tag.log" &
  PID[$name]=$!
  echo "$tag start $(now_ms) ${PID[$name]}" >>"$OUT/lifetimes.txt"
  log "start $tag (pid ${PID[$name]})"
}

reap() {  # reap NAME EXPECTED: waits for the exited process, records its code
  local name=$1 expected=$2 rc=0 tag="$1.${GENR[$1]}"
  wait "${PID[$name]}" || rc=$?
  echo "$tag end $(now_ms) $rc" >>"$OUT/lifetimes.txt"
  EXITS[$name]="${EXITS[$name]:-}${EXITS[$name]:+ }$tag=$rc"
  log "exit $tag: code $rc (expected $expected)"
  if [[ "$rc" != "$expected" ]]; then
    PROBLEMS+=("$tag exited $rc, expected $expected (log $OUT/logs/$tag.log)")
  fi
  PID[$name]=""
  LAST_RC=$rc
}

wait_exit() {  # wait_exit NAME EXPECTED TIMEOUT_S
  local name=$1 expected=$2 limit=$(( $3 * 10 )) i=0
  while alive "${PID[$name]}" && (( i < limit )); do sleep 0.1; i=$((i + 1)); done
  if alive "${PID[$name]}"; then
    PROBLEMS+=("$name.${GENR[$name]} did not exit within $3 s (SIGKILLed)")
    log "$name.${GENR[$name]} did not exit within $3 s: SIGKILL"
    kill -KILL "${PID[$name]}" 2>/dev/null || true
  fi
  reap "$name" "$expected"
}

held() {  # partitions NAME holds now (its latest assignment, 0 after a revoke)
  local last
  last=$(grep -Eo 'kafka: assigned [0-9]+ partition|revoked from this member' "$(inst_log "$1")" \
           2>/dev/null | tail -n1 || true)
  if [[ "$last" =~ assigned\ ([0-9]+) ]]; then echo "${BASH_REMATCH[1]}"; else echo 0; fi
}
held_by_others() {  # total partitions held by running instances other than $1
  local n=0 other
  for other in "${!PID[@]}"; do
    [[ "$other" == "$1" ]] && continue
    is_running "$other" && n=$((n + $(held "$other")))
  done
  echo "$n"
}
wait_held() {  # wait_held NAME AT_LEAST TIMEOUT_S: 0 if it got there
  local i=0 limit=$(( $3 * 10 ))
  while (( $(held "$1") < $2 )) && (( i < limit )) && is_running "$1"; do
    sleep 0.1; i=$((i + 1))
  done
  (( $(held "$1") >= $2 ))
}

cleanup() {
  local name
  for name in "${!PID[@]}"; do
    if [[ -n "${PID[$name]}" ]] && kill -0 "${PID[$name]}" 2>/dev/null; then
      kill -CONT "${PID[$name]}" 2>/dev/null || true
      kill -KILL "${PID[$name]}" 2>/dev/null || true
    fi
  done
  [[ -n "$gen_pid" ]] && kill "$gen_pid" 2>/dev/null || true
  [[ -n "$broker_pid" ]] && kill "$broker_pid" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

# ---- 1. broker ------------------------------------------------------------------------------
"$TROVE" broker --topic events --topic results --partitions "$PARTITIONS" \
  >"$OUT/broker.addr" 2>"$OUT/broker.log" &
broker_pid=$!
for _ in $(seq 200); do [[ -s "$OUT/broker.addr" ]] && break; sleep 0.05; done
BROKERS=$(head -n1 "$OUT/broker.addr")
[[ "$BROKERS" =~ ^[0-9.]+:[0-9]+$ ]] || { echo "no broker address: $(cat "$OUT/broker.log")" >&2; exit 1; }
log "broker at $BROKERS (pid $broker_pid); OUT=$OUT SEED=$SEED EVENTS=$EVENTS RATE=$RATE KILLS=$KILLS"

# ---- configs ----------------------------------------------------------------------------------
common() {  # common GROUP EXIT_AT_END
  cat <<EOF
source:
  type: kafka
  brokers: "$BROKERS"
  topics: [events]
  group_id: $1
  exit_at_end: $2
  format: json
  properties: {session.timeout.ms: "$SESSION_MS", heartbeat.interval.ms: "500"}
schema: {event_id: u64, user_id: u64, type: string, ts: timestamp_ms, amount: f64}
event_time: ts
dedup: {key: [event_id], ttl: 1h}
window: {type: tumbling, size: 1m, allowed_lateness: 5s}
group_by: [user_id, type]
aggregates: [count, sum(amount), min(amount), max(amount)]
emit: final
EOF
}
{ common chaos false
  echo "sink: {type: kafka, topic: results, format: json}"
  echo "checkpoint: {dir: \"$STATE\", interval: 500ms}"
} >"$OUT/chaos.yaml"
{ common "reference-$SEED-$$" true
  echo "sink: {type: file, path: \"$OUT/reference.jsonl\", format: json}"
} >"$OUT/reference.yaml"
"$TROVE" validate -c "$OUT/chaos.yaml" >/dev/null
"$TROVE" validate -c "$OUT/reference.yaml" >/dev/null

# ---- 2./3. group + live producer + disturbances ----------------------------------------------
start_inst a
start_inst b
for _ in $(seq 300); do   # until a and b split all partitions (<= 30 s)
  ha=$(held a) hb=$(held b)
  (( ha > 0 && hb > 0 && ha + hb == PARTITIONS )) && break
  sleep 0.1
done
log "group settled: a holds $(held a), b holds $(held b)"

"$TROVE" gen --kafka "$BROKERS" --topic events --rate "$RATE" -n "$EVENTS" --keys "$KEYS" \
  --duplicates "$DUPLICATES" --span "$SPAN" --disorder "$DISORDER" --seed "$SEED" -q \
  >"$OUT/gen.log" 2>&1 &
gen_pid=$!
log "producer started (pid $gen_pid): $EVENTS events at $RATE/s"

producing() { alive "$gen_pid"; }
pick_victim() {  # sets VICTIM to a random running instance of a, b that holds partitions
  local c=() n i=0
  is_running a || is_running b || start_inst a
  while (( i < 200 )); do   # a rebalance (revoke .. assign) takes a few s: wait for holders
    c=()
    for n in a b; do is_running "$n" && (( $(held "$n") > 0 )) && c+=("$n"); done
    (( ${#c[@]} > 0 )) && break
    sleep 0.1; i=$((i + 1))
  done
  if (( ${#c[@]} == 0 )); then for n in a b; do is_running "$n" && c+=("$n"); done; fi
  rnd 0 $(( ${#c[@]} - 1 )); VICTIM=${c[$R]}
}
other_of() { [[ "$1" == a ]] && echo b || echo a; }

kinds=(kill9 term scale stop kill9fast)
for i in 4 3 2 1; do rnd 0 "$i"; t=${kinds[$i]}; kinds[$i]=${kinds[$R]}; kinds[$R]=$t; done
SCHEDULE=()
for (( k = 0; k < KILLS; k++ )); do
  if (( k < 5 )); then SCHEDULE+=("${kinds[$k]}"); else
    all=(kill9 term scale stop kill9fast); rnd 0 4; SCHEDULE+=("${all[$R]}"); fi
done
log "schedule: ${SCHEDULE[*]}"
DISTURBANCES=()

k=0
while (( k < KILLS )) || { producing && (( k < 3 * KILLS )); }; do
  if (( k < KILLS )); then kind=${SCHEDULE[$k]}; else
    all=(kill9 term scale stop kill9fast); rnd 0 4; kind=${all[$R]}; fi
  k=$((k + 1))
  rnd 500 3000; sleep_ms "$R"
  during=$(producing && echo "during production" || echo "after production")
  case $kind in
    kill9)
      pick_victim; v=$VICTIM
      log "DISTURB kill9 $v.${GENR[$v]} ($during, holds $(held "$v"))"
      kill -KILL "${PID[$v]}"; wait_exit "$v" 137 10 2>/dev/null
      rnd 300 5000; log "  restart $v in ${R} ms"; sleep_ms "$R"; start_inst "$v"
      DISTURBANCES+=("kill9 $v ($during), restart after ${R}ms");;
    kill9fast)
      pick_victim; v=$VICTIM
      log "DISTURB kill9fast $v.${GENR[$v]} ($during, holds $(held "$v"))"
      kill -KILL "${PID[$v]}"; wait_exit "$v" 137 10 2>/dev/null
      start_inst "$v"; vlog=$(inst_log "$v")
      for _ in $(seq 300); do grep -q "kafka: took over" "$vlog" && break; sleep 0.1; done
      rnd 0 400; sleep_ms "$R"
      log "  SIGKILL $v ${R} ms after: $(grep -m1 -o 'took over [0-9]* partition(s), [0-9]* with state' "$vlog" || echo 'no take-over yet')"
      kill -KILL "${PID[$v]}"; wait_exit "$v" 137 10 2>/dev/null
      d=$R; rnd 300 9000; log "  restart $v in ${R} ms"; sleep_ms "$R"; start_inst "$v"
      DISTURBANCES+=("kill9fast $v ($during): restarted, SIGKILLed ${d}ms after its take-over, restart after ${R}ms");;
    term)
      pick_victim; v=$VICTIM
      log "DISTURB term $v.${GENR[$v]} ($during, holds $(held "$v"))"
      kill -TERM "${PID[$v]}"; wait_exit "$v" 0 45
      rnd 300 4000; log "  restart $v in ${R} ms"; sleep_ms "$R"; start_inst "$v"
      DISTURBANCES+=("term $v ($during), restart after ${R}ms");;
    scale)
      log "DISTURB scale: start c ($during)"
      start_inst c
      if wait_held c 1 30; then log "  c holds $(held c)"; else log "  c got no partition in 30 s"; fi
      rnd 1000 6000; log "  stop c in ${R} ms"; sleep_ms "$R"
      kill -TERM "${PID[c]}"; wait_exit c 0 45
      DISTURBANCES+=("scale: c ran $(( R / 1000 ))s+ after it got partitions ($during)");;
    stop)
      pick_victim; v=$VICTIM; o=$(other_of "$v")
      if ! is_running "$o"; then start_inst "$o"; wait_held "$o" 1 30 || true; fi
      log "DISTURB stop $v.${GENR[$v]} ($during, holds $(held "$v"); $o holds $(held "$o"))"
      kill -STOP "${PID[$v]}"; t_stop=$(now_ms)
      rnd $(( SESSION_MS + 1000 )) $(( SESSION_MS + 4000 )); min_pause=$R
      while :; do
        el=$(( $(now_ms) - t_stop ))
        (( el >= min_pause && $(held_by_others "$v") == PARTITIONS )) && break
        (( el > 45000 )) && { log "  others never took all partitions in 45 s"; break; }
        sleep 0.1
      done
      sleep 2   # the new owner has checkpointed them
      log "  SIGCONT $v after $(( $(now_ms) - t_stop )) ms (others hold $(held_by_others "$v"))"
      kill -CONT "${PID[$v]}"
      zlog=$(inst_log "$v"); wait_exit "$v" 1 45
      if grep -q "now belongs to member" "$zlog"; then
        log "  zombie $v fenced: $(grep -m1 'now belongs to member' "$zlog")"; zres="fenced"
      else
        PROBLEMS+=("zombie $v: no 'now belongs to member' in $zlog"); zres="NOT fenced"
      fi
      rnd 300 3000; sleep_ms "$R"; start_inst "$v"
      DISTURBANCES+=("stop $v ($during), SIGCONT after pause; zombie exit $LAST_RC, $zres");;
  esac
done

gen_rc=0; wait "$gen_pid" || gen_rc=$?; gen_pid=""
log "producer finished: code $gen_rc ($(tail -n1 "$OUT/gen.log"))"
(( gen_rc == 0 )) || PROBLEMS+=("trove gen exited $gen_rc")

# ---- 4. stop the group, one last instance to the end ----------------------------------------
sleep 1
for name in a b c; do
  if is_running "$name"; then kill -TERM "${PID[$name]}"; fi
done
for name in a b c; do
  if [[ -n "${PID[$name]:-}" ]]; then wait_exit "$name" 0 45; fi
done
log "group stopped; waiting ${FINAL_WAIT}s for the coordinator to drop the old members"
sleep "$FINAL_WAIT"
start_inst final --set source.exit_at_end=true
wait_exit final 0 180
"$TROVE" checkpoint list "$STATE" >"$OUT/checkpoints.txt" 2>&1 || true

# ---- 5. reference -----------------------------------------------------------------------------
rc=0
"$TROVE" run -c "$OUT/reference.yaml" --stats-json "$OUT/reference.stats" \
  >/dev/null 2>"$OUT/reference.log" || rc=$?
log "reference run: code $rc, $(wc -l <"$OUT/reference.jsonl") rows"
(( rc == 0 )) || PROBLEMS+=("reference run exited $rc")

# ---- 6. read results, compare -----------------------------------------------------------------
kcat -b "$BROKERS" -C -t results -e -q -f '%p\t%o\t%T\t%s\n' >"$OUT/results.tsv" 2>"$OUT/kcat.log"
log "results topic: $(wc -l <"$OUT/results.tsv") rows"

export OUT
cmp_rc=0
python3 - <<'PY' || cmp_rc=$?
import json, os, sys
from collections import defaultdict
out = os.environ["OUT"]
AGG = ("count", "sum_amount", "min_amount", "max_amount")
def key(r): return (r["user_id"], r["type"], r["window_start"])

# lifetimes: which instance runs were alive when a row was produced
life = {}
for line in open(f"{out}/lifetimes.txt"):
    tag, what, ms, extra = line.split()
    life.setdefault(tag, [None, None])[0 if what == "start" else 1] = int(ms)
def alive_at(ts):
    return [t for t, (s, e) in sorted(life.items()) if s <= ts and (e is None or ts <= e + 200)]

rows = []  # (partition, offset, ts, raw, parsed)
for line in open(f"{out}/results.tsv"):
    p, o, ts, raw = line.rstrip("\n").split("\t", 3)
    rows.append((int(p), int(o), int(ts), raw, json.loads(raw)))
by_key = defaultdict(list)
for r in rows:
    by_key[key(r[4])].append(r)
# the LAST row per key: results of one key go to one partition (keyed), so offset order is
# production order; sort by (produce time, offset) all the same
last = {k: max(v, key=lambda r: (r[2], r[1]))[4] for k, v in by_key.items()}
ref = {}
for line in open(f"{out}/reference.jsonl"):
    r = json.loads(line)
    if key(r) in ref: print("reference has a duplicate key", key(r))
    ref[key(r)] = r

missing = sorted(set(ref) - set(last))
extra = sorted(set(last) - set(ref))
differing = [k for k in sorted(set(ref) & set(last))
             if any(ref[k][a] != last[k][a] for a in AGG)]
multi = {k: v for k, v in by_key.items() if len({r[3] for r in v}) > 1}
multi_last_wrong = [k for k in multi if k in differing]
dup_rows = sum(len(v) - len({r[3] for r in v}) for v in by_key.values())

with open(f"{out}/diff.txt", "w") as f:
    for name, ks in (("MISSING", missing), ("EXTRA", extra), ("DIFFERING", differing)):
        for k in ks:
            f.write(f"{name} {k}\n  ref : {json.dumps(ref.get(k))}\n  last: {json.dumps(last.get(k))}\n")
            for p, o, ts, raw, _ in by_key.get(k, []):
                f.write(f"    row p{p}@{o} t={ts} alive={alive_at(ts)} {raw}\n")
    for k, v in sorted(multi.items()):
        f.write(f"MULTI-VALUED {k} (ref {json.dumps({a: ref.get(k, {}).get(a) for a in AGG})})\n")
        for p, o, ts, raw, _ in v:
            f.write(f"    row p{p}@{o} t={ts} alive={alive_at(ts)} {raw}\n")

print(f"rows in topic        {len(rows)}  (exact duplicate rows: {dup_rows})")
print(f"distinct keys        {len(by_key)}")
print(f"reference keys       {len(ref)}")
print(f"missing              {len(missing)}")
print(f"extra                {len(extra)}")
print(f"differing (last row) {len(differing)}")
print(f"multi-valued keys    {len(multi)}  (of them last row wrong: {len(multi_last_wrong)})")
bad = missing or extra or differing or multi
if bad: print(f"details: {out}/diff.txt")
sys.exit(1 if bad else 0)
PY

echo
echo "== disturbances (seed $SEED)"
for d in "${DISTURBANCES[@]}"; do echo "  $d"; done
echo "== exit codes"
for name in a b c final; do echo "  $name: ${EXITS[$name]:-(never ran)}"; done
for f in "$OUT"/logs/final.*.stats "$OUT/reference.stats"; do
  [[ -f "$f" ]] && echo "  $(basename "$f"): $(jq -c '{in,accepted,duplicate,late,rows_out,restored_checkpoint}' "$f")"
done
if (( ${#PROBLEMS[@]} )); then
  echo "== problems"; for p in "${PROBLEMS[@]}"; do echo "  $p"; done
fi
echo "== OUT: $OUT   (timeline.txt, logs/, results.tsv, reference.jsonl, checkpoints.txt, diff.txt)"
if (( cmp_rc != 0 || ${#PROBLEMS[@]} )); then echo "RESULT: FAIL"; exit 1; fi
echo "RESULT: PASS"
