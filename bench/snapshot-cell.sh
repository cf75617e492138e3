#!/usr/bin/env bash
# One BGSAVE of about 1M keys on a fresh server, with what it cost: for an A/B of two
# Girder builds, or against Redis.
#
# Usage: bench/snapshot-cell.sh <girder|redis> [persistence mode, Girder only: snapshot]
#
# Loads `redis-benchmark -t set -n 1600000 -r 1600000 -d 100` (leaving 1 - 1/e of 1.6M
# names), waits out any rewrite the load started, then runs BGSAVE while bench/probe.py
# sends a GET every millisecond, and prints:
#   <server> keys=<n> max=<ms> p999=<ms> probes=<n> bgsave=<ms> dir=<MB on disk at the end>
# Girder runs with `persistence.mode = snapshot` unless told otherwise (then its data
# directory holds the snapshot and nothing else); Redis with its RDB and no AOF.
# Environment: BENCH_GIRDER (default target/release/girder). Builds nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

server=$1 mode=${2:-snapshot}
work=$(mktemp -d "${TMPDIR:-/tmp}/snapshot-cell.XXXXXX")
pid=""
cleanup() {
  [ -n "$pid" ] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  rm -rf "$work"
}
trap cleanup EXIT

if [ "$server" = redis ]; then
  mkdir -p "$work/redis"
  port=$(free_port)
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$work/redis" --logfile "$work/redis/log" &
  pid=$!
  for _ in $(seq 1 100); do
    [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && break
    sleep 0.1
  done
else
  start_girder "${BENCH_GIRDER:-target/release/girder}" "$work" \
    GIRDER_PERSISTENCE__MODE="$mode" GIRDER_PERSISTENCE__FSYNC=interval >&2
fi

info() { redis-cli -p "$port" info persistence; }
redis-benchmark -p "$port" -t set -n 1600000 -r 1600000 -d 100 -c 50 -P 64 -q >/dev/null
while ! info | grep -q '^aof_rewrite_in_progress:0'; do sleep 0.2; done
while ! info | grep -q '^rdb_bgsave_in_progress:0'; do sleep 0.2; done
touch "$work/probing"
python3 bench/probe.py "$port" "$work/probing" >"$work/probe.out" &
probe=$!
sleep 1
t0=$(date +%s%N)
redis-cli -p "$port" bgsave >/dev/null
sleep 0.2
while ! info | grep -q '^rdb_bgsave_in_progress:0'; do sleep 0.05; done
t1=$(date +%s%N)
sleep 0.5
rm -f "$work/probing"
wait "$probe"
read -r max p999 probes <"$work/probe.out"
echo "$server keys=$(redis-cli -p "$port" dbsize) max=$max p999=$p999 probes=$probes" \
  "bgsave=$(((t1 - t0) / 1000000)) dir=$(du -sm "$work" | cut -f1)"
