#!/usr/bin/env bash
# Does a node returning after minutes away slow the producers down while it catches up?
#
#   scripts/catchup-bench.sh [DOWN_SECS] [RATE_WHILE_DOWN]
#
# Runs three `braid node` processes (the deploy/local configs, data under $WORK), a stream of 4
# shards, and closed-loop producers (`braid bench`, 8 producers, PutRecords of 500, 256-byte
# records) in three phases:
#   A  all three nodes up: throughput baseline (BENCH_RECORDS records)
#   -  node c killed (SIGKILL); DOWN_SECS of writes at RATE_WHILE_DOWN records/s build its backlog
#   C  node c restarted: the same bench again at once, while node c catches up
# and reports each phase's records/s, the backlog node c had to fetch, and when it caught up.
# Needs a release build (cargo build --release -p braid). Numbers go to docs/perf/.
set -euo pipefail
DOWN_SECS=${1:-120}
RATE=${2:-20000}
BENCH_RECORDS=${BENCH_RECORDS:-300000}
B=${BRAID_BIN:-target/release/braid}
WORK=${WORK:-/tmp/braid-catchup}
E=127.0.0.1:7401,127.0.0.1:7402
pkill -9 -f -- "node --config $WORK/" 2>/dev/null && sleep 1 || true
rm -rf "$WORK"; sync; mkdir -p "$WORK"
for n in a b c; do
  sed "s|./braid-data/node-$n|$WORK/node-$n|" deploy/local/node-$n.toml > "$WORK/node-$n.toml"
done
start() { "$B" node --config "$WORK/node-$1.toml" >> "$WORK/node-$1.log" 2>&1 & echo $! > "$WORK/node-$1.pid"; }
bench() { "$B" --endpoint $E bench --stream catchup --size 256 --producers 8 --batch 500 --json "$@"; }
for n in a b c; do start $n; done
sleep 3
"$B" --endpoint $E stream create catchup --shards 4 > /dev/null
bench --records 50000 > /dev/null  # warm-up
rate_of() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(round(d["records_per_s"]))'; }
lag_of_c() {
  "$B" --endpoint $E cluster status --json | python3 -c '
import json,sys
d=json.load(sys.stdin)
print(sum(r["lag"] for s in d["shards"] if s["stream_name"]=="catchup" for r in s["replicas"] if r["node_id"]==3))'
}
echo "phase A (all up):"
A=$(bench --records "$BENCH_RECORDS" | rate_of); echo "  $A records/s"
kill -9 "$(cat "$WORK/node-c.pid")"
echo "node c killed; writing at $RATE records/s for ${DOWN_SECS}s"
bench --records $((RATE * DOWN_SECS)) --rate "$RATE" > /dev/null
BACKLOG=$(du -sm "$WORK/node-a" | cut -f1)
start c
T0=$(date +%s.%N)
echo "node c restarted; phase C at once:"
C_JSON=$(bench --records "$BENCH_RECORDS")
C=$(echo "$C_JSON" | rate_of)
T1=$(date +%s.%N)
echo "  $C records/s (ran $(echo "$T1-$T0" | bc | cut -c1-5)s)"
until [ "$(lag_of_c)" = "0" ]; do sleep 0.5; done
T2=$(date +%s.%N)
echo "node c caught up $(echo "$T2-$T0" | bc | cut -c1-5)s after restart (leader data ${BACKLOG} MiB)"
echo "phase A again (all up, caught up):"
A2=$(bench --records "$BENCH_RECORDS" | rate_of); echo "  $A2 records/s"
echo "slowdown during catch-up vs baseline: $(python3 -c "print(f'{(1-$C/(($A+$A2)/2))*100:.1f}%')")"
for n in a b c; do kill "$(cat "$WORK/node-$n.pid")" 2>/dev/null || true; done
wait 2>/dev/null || true
