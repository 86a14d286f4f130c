#!/usr/bin/env bash
# usage: scripts/bench-dev.sh SHARDS [--kinesis] [--http2] [--sign] -- bench args...
#
# Starts a fresh `braid dev` (gRPC and the Kinesis HTTP API on), creates the stream `bench` with
# SHARDS shards (gRPC), runs `braid bench --stream bench ARGS` and prints the server's CPU time
# during the bench, its CPU per requested record, the bench client's CPU, the CPU everything
# else on the machine used meanwhile (other builds: compare runs only when it is near 0), RSS,
# the data size and the load average.
#
#   --kinesis   put through node 1's Kinesis HTTP API over HTTP/1.1 (--kinesis-endpoint)
#   --http2     the same over HTTP/2 with prior knowledge (h2c) (implies --kinesis)
#   --sign      the cluster verifies SigV4 signatures (one bench key) and the bench signs
#               every request (implies --kinesis)
#
# Environment: BRAID_BIN (target/release/braid), BENCH_BASE_PORT (7401: gRPC 7401-7403),
# BENCH_KINESIS_BASE_PORT (4567: 4567-4569), BENCH_DATA_DIR (/tmp/bench-data, or
# /tmp/bench-data-PORT with another base port; emptied first).
# A server already on those ports (another run, or one left behind) is not killed: the script
# stops with a message; choose other ports to run next to it.
set -u
B=${BRAID_BIN:-target/release/braid}
PORT=${BENCH_BASE_PORT:-7401}
if [ "$PORT" = 7401 ]; then DATA=${BENCH_DATA_DIR:-/tmp/bench-data}; else DATA=${BENCH_DATA_DIR:-/tmp/bench-data-$PORT}; fi
KPORT=${BENCH_KINESIS_BASE_PORT:-4567}
KEY=benchkey:benchsecret
SHARDS=$1; shift
KINESIS=() DEV_KEYS=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    case $1 in
        --kinesis) [ ${#KINESIS[@]} -eq 0 ] && KINESIS=(--kinesis-endpoint "http://127.0.0.1:$KPORT") ;;
        --http2) [ ${#KINESIS[@]} -eq 0 ] && KINESIS=(--kinesis-endpoint "http://127.0.0.1:$KPORT"); HTTP2=(--http2) ;;
        --sign) [ ${#KINESIS[@]} -eq 0 ] && KINESIS=(--kinesis-endpoint "http://127.0.0.1:$KPORT"); DEV_KEYS=(--kinesis-access-key $KEY); SIGN=(--kinesis-access-key $KEY) ;;
        *) echo "unknown option $1 (before --)" >&2; exit 2 ;;
    esac
    shift
done
[ $# -gt 0 ] && shift   # the --
KINESIS+=(${HTTP2[@]+"${HTTP2[@]}"} ${SIGN[@]+"${SIGN[@]}"})
RECORDS=100000
prev=
for a in "$@"; do [ "$prev" = --records ] && RECORDS=$a; prev=$a; done

for p in $PORT $((PORT+1)) $((PORT+2)) $KPORT $((KPORT+1)) $((KPORT+2)); do
    if ss -Hltn "sport = :$p" 2>/dev/null | grep -q .; then
        echo "port $p is in use (another braid dev?); set BENCH_BASE_PORT/BENCH_KINESIS_BASE_PORT" >&2
        exit 1
    fi
done
export BRAID_ENDPOINT=127.0.0.1:$PORT,127.0.0.1:$((PORT+1)),127.0.0.1:$((PORT+2))
rm -rf "$DATA"
$B dev --data-dir "$DATA" --base-port $PORT --kinesis-base-port $KPORT ${DEV_KEYS[@]+"${DEV_KEYS[@]}"} > /tmp/bench-dev.$PORT.log 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null' EXIT
sleep 3
# A server that could not bind (a port taken since the check) exits: do not bench whatever
# else answers on those ports.
if ! kill -0 $PID 2>/dev/null; then
    echo "braid dev exited; tail of /tmp/bench-dev.$PORT.log:" >&2; tail -5 /tmp/bench-dev.$PORT.log >&2; exit 1
fi
$B stream create bench --shards $SHARDS > /dev/null || exit 1; sleep ${BENCH_SETTLE_S:-0}
ticks() { awk '{print $14+$15}' /proc/$PID/stat; }
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }
# CPU seconds of this shell's finished children, from `times` (a builtin: it must run in this
# shell, not in a $(...) subshell).
TIMES=$(mktemp)
children_cpu() { tail -1 "$TIMES" | awk '{split($1,a,/[ms]/); split($2,b,/[ms]/); print a[1]*60+a[2]+b[1]*60+b[2]}'; }
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
times > "$TIMES"; C0=$(children_cpu); A0=$(busy); T0=$(ticks); W0=$(date +%s.%N)
$B bench --stream bench ${KINESIS[@]+"${KINESIS[@]}"} "$@"
if ! kill -0 $PID 2>/dev/null; then
    echo "braid dev died during the bench; tail of /tmp/bench-dev.$PORT.log:" >&2; tail -5 /tmp/bench-dev.$PORT.log >&2; exit 1
fi
T1=$(ticks); A1=$(busy); times > "$TIMES"; C1=$(children_cpu); rm -f "$TIMES"; W1=$(date +%s.%N)
HZ=$(getconf CLK_TCK)
CPU=$(echo "($T1-$T0)/$HZ" | bc -l)
CLIENT=$(echo "$C1-$C0" | bc -l)
OTHER=$(echo "($A1-$A0)/$HZ-$CPU-$CLIENT" | bc -l)
echo "server_cpu_s=$(echo "$CPU" | cut -c1-6) wall_s=$(echo "$W1-$W0" | bc -l | cut -c1-6) server_us_per_record=$(echo "$CPU*1000000/$RECORDS" | bc -l | cut -c1-6) rss_kb=$(grep VmRSS /proc/$PID/status | awk '{print $2}')"
echo "client_cpu_s=$(echo "$CLIENT" | cut -c1-6) other_cpu_s=$(echo "$OTHER" | cut -c1-6)"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
du -sh "$DATA" | cut -f1
kill $PID; wait $PID 2>/dev/null
trap - EXIT
