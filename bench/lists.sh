#!/usr/bin/env bash
# One long list against the real Redis: LPUSH of N elements onto one key (redis-benchmark
# -P 16, 50 clients), then the memory the list takes. The longest request shows whether a
# push ever stalls the server (a list that reallocates itself whole as it grows does).
#
# Usage: bench/lists.sh [runs] [elements]          (defaults: 3 runs, 8,000,000)
# Environment: GIRDER (the binary, default target/release/girder), BASE (a second Girder
# binary to compare, e.g. the build before a change; optional).
# Needs: redis-server/redis-benchmark 7 (Redis on 127.0.0.1:6379), a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

RUNS=${1:-3}
N=${2:-8000000}
GIRDER=${GIRDER:-target/release/girder}
[ -x "$GIRDER" ] || cargo build --release -p girder
servers="redis girder"
[ -n "${BASE:-}" ] && servers="$servers base"

echo "LPUSH of $N elements onto one list, redis-benchmark -c 50 -P 16"
echo
echo "| run | server | req/s | p99 ms | max ms | used_memory MB |"
echo "|---|---|---|---|---|---|"
for run in $(seq 1 "$RUNS"); do
  for server in $servers; do
    work=$(mktemp -d)
    if [ "$server" = redis ]; then
      p=6379
      redis-cli -p $p flushall >/dev/null
    else
      bin=$GIRDER
      [ "$server" = base ] && bin=$BASE
      start_girder "$bin" "$work" GIRDER_PERSISTENCE__MODE=none
      p=$port
    fi
    row=$(redis-benchmark -p "$p" -t lpush -n "$N" -c 50 -P 16 -q --csv | tail -1 | tr -d '"')
    mem=$(redis-cli -p "$p" info memory | awk -F: '/^used_memory:/ {printf "%.1f", $2/1e6}')
    IFS=, read -r _ rps _ _ _ _ p99 max <<<"$row"
    echo "| $run | $server | $rps | $p99 | $max | $mem |"
    if [ "$server" = redis ]; then
      redis-cli -p $p flushall >/dev/null
    else
      kill "$pid"
      wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
  done
done
