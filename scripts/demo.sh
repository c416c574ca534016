#!/usr/bin/env bash
# `make demo`: the sidecar story on one machine. An embedded Kafka broker (`trove broker`,
# librdkafka's mock cluster on loopback), a million synthetic clickstream events produced into
# topic `events` (Zipf-skewed users, 5% re-sent duplicates, 2 s of disorder), trove consuming
# them, deduplicating on event_id and aggregating per (user, type, 1-minute window) on the best
# backend available, and producing one result message per group and window into `results`.
set -euo pipefail
trove=${1:-build/trove}
events=${DEMO_EVENTS:-1000000}
out=$(mktemp -d)
broker_pid=""
cleanup() {
  [[ -n "$broker_pid" ]] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null
  rm -rf "$out"
}
trap cleanup EXIT

echo "== trove devices"
"$trove" devices
echo
# 32 partitions: the mock cluster keeps only ~5 MiB per partition, and 1M events are ~95 MB.
echo "== trove broker --topic events --topic results --partitions 32   (in the background)"
"$trove" broker --topic events --topic results --partitions 32 >"$out/broker.addr" 2>"$out/broker.log" &
broker_pid=$!
for _ in $(seq 100); do [[ -s "$out/broker.addr" ]] && break; sleep 0.05; done
brokers=$(head -n1 "$out/broker.addr")
echo "   bootstrap servers: $brokers"
echo
echo "== trove gen -n $events --kafka $brokers --topic events"
"$trove" gen -n "$events" --keys 100000 --duplicates 0.05 --disorder 2s --span 10m -q \
  --kafka "$brokers" --topic events
echo "   produced $events events"
echo
echo "== trove run -c examples/kafka.yaml   (events -> dedup + windows -> results; exit_at_end)"
"$trove" run -c examples/kafka.yaml --set source.brokers="$brokers" --set sink.brokers="$brokers" \
  --set source.exit_at_end=true --set dead_letter.path="$out/bad.jsonl" --stats-json "$out/stats.json"
echo
echo "== last result messages in topic results  (key -> value)"
if command -v kcat >/dev/null; then
  kcat -b "$brokers" -C -t results -p 0 -o -3 -e -q -f '%k -> %s\n' 2>/dev/null || true
else
  echo "   (install kcat to see them: apt-get install kcat)"
fi
echo
echo "== stats (--stats-json)"
cat "$out/stats.json"
