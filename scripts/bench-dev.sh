#!/usr/bin/env bash
# usage: run.sh SHARDS -- bench args...   (starts a fresh braid dev, creates stream, runs bench, prints server CPU)
set -u
B=${BRAID_BIN:-target/release/braid}
SHARDS=$1; shift; shift
pkill -9 -f 'release/braid dev' 2>/dev/null; sleep 0.5
rm -rf /tmp/bench-data
$B dev --data-dir /tmp/bench-data > /tmp/bench-dev.log 2>&1 &
PID=$!
sleep 3
$B stream create bench --shards $SHARDS > /dev/null
ticks() { awk '{print $14+$15}' /proc/$PID/stat; }
T0=$(ticks); W0=$(date +%s.%N)
$B bench --stream bench "$@"
T1=$(ticks); W1=$(date +%s.%N)
HZ=$(getconf CLK_TCK)
echo "server_cpu_s=$(echo "($T1-$T0)/$HZ" | bc -l | cut -c1-6) wall_s=$(echo "$W1-$W0" | bc -l | cut -c1-6) rss_kb=$(grep VmRSS /proc/$PID/status | awk '{print $2}')"
du -sh /tmp/bench-data | cut -f1
kill $PID; wait $PID 2>/dev/null
