#!/usr/bin/env bash
# Eviction: hit ratio on a Zipf workload and memory held to the limit, Girder against
# Redis configured the same way, side by side in one run.
#
# Usage: bench/eviction.sh [runs] [maxmemory] [memory-limit] [throughput-runs]
#        (defaults: 3 runs, 8mb for the hit ratios, 100mb for the memory table and the
#        throughput, as many throughput runs as runs; 0 runs skips the hit ratios)
# Needs: redis-server 7, python3 with redis-py, a release build (built if missing).
#
# 1. Hit ratio (bench/hitratio.py): a cache-aside client over 500,000 keys with Zipf
#    skew 0.99, 1,000,000 requests (the first quarter warms up), 100-byte values; both
#    servers under the same maxmemory with allkeys-lru, then allkeys-lfu, 5 samples.
#    Each is compared with an exact LRU of the size it held. One seed per run.
# 3. Throughput while evicting (after section 2, each server full at `memory-limit`):
#    redis-benchmark SET of random new keys (every write evicts) and GET, -P 16 and -P 1,
#    servers alternating within each run; medians of `runs`.
# 2. Memory: the same servers under `memory-limit` after redis-benchmark writes
#    3,000,000 random 100-byte SETs from 50 clients (far past the limit, allkeys-lru):
#    used memory, and RSS above what the process had at start, against the limit.
#
# Both servers get a fresh data directory of their own; the shared Redis on 6379 is not
# used. Prints markdown tables.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

RUNS=${1:-3}
MAXMEMORY=${2:-8mb}
MEMORY_LIMIT=${3:-100mb}
THROUGHPUT_RUNS=${4:-$RUNS}
BIN=${BENCH_GIRDER:-target/release/girder}
[ -x "$BIN" ] || cargo build --release -p girder
REDIS_PORT=${BENCH_REDIS_PORT:-6393}

work=$(mktemp -d)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$work" --save "" \
  --appendonly no --maxmemory "$MAXMEMORY" --maxmemory-policy allkeys-lru \
  --daemonize yes --logfile "$work/redis.log"
trap 'kill ${pid:-} 2>/dev/null || true; redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
start_girder "$BIN" "$work" GIRDER_PERSISTENCE__MODE=none GIRDER_MEMORY__MAXMEMORY="$MAXMEMORY" \
  GIRDER_MEMORY__MAXMEMORY_POLICY=allkeys-lru
for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

base_girder=$(redis-cli -p "$port" info memory | tr -d '\r' | awk -F: '$1=="used_memory_rss"{print $2}')
base_redis=$(redis-cli -p "$REDIS_PORT" info memory | tr -d '\r' | awk -F: '$1=="used_memory_rss"{print $2}')

echo "## Hit ratio, maxmemory $MAXMEMORY, Zipf 0.99 over 500,000 keys ($RUNS runs)"
echo
echo "| server, policy | keys held | hit ratio | exact LRU of that size | vs exact |"
echo "|---|---|---|---|---|"
for policy in allkeys-lru allkeys-lfu; do
  for p in "$port" "$REDIS_PORT"; do
    redis-cli -p "$p" config set maxmemory-policy "$policy" >/dev/null
  done
  for run in $(seq 1 "$RUNS"); do
    python3 bench/hitratio.py "127.0.0.1:$port" "girder $policy (seed $run)" \
      --keys 500000 --requests 1000000 --seed "$run"
    python3 bench/hitratio.py "127.0.0.1:$REDIS_PORT" "redis $policy (seed $run)" \
      --keys 500000 --requests 1000000 --seed "$run"
  done
done

echo
echo "## Memory after 3,000,000 random 100-byte SETs, maxmemory $MEMORY_LIMIT, allkeys-lru"
echo
echo "| server | keys held | used_memory | RSS at start | RSS | (RSS - RSS at start) / maxmemory |"
echo "|---|---|---|---|---|---|"
for p in "$port" "$REDIS_PORT"; do
  redis-cli -p "$p" config set maxmemory "$MEMORY_LIMIT" >/dev/null
done
limit=$(redis-cli -p "$REDIS_PORT" config get maxmemory | tail -1)
for server in girder redis; do
  if [ $server = girder ]; then p=$port base=$base_girder; else p=$REDIS_PORT base=$base_redis; fi
  redis-cli -p "$p" flushall >/dev/null
  redis-cli -p "$p" config set maxmemory-policy allkeys-lru >/dev/null
  redis-benchmark -p "$p" -t set -n 3000000 -r 100000000 -d 100 -c 50 -P 16 -q >/dev/null 2>&1
  used=$(redis-cli -p "$p" info memory | tr -d '\r' | awk -F: '$1=="used_memory"{print $2}')
  rss=$(redis-cli -p "$p" info memory | tr -d '\r' | awk -F: '$1=="used_memory_rss"{print $2}')
  keys=$(redis-cli -p "$p" dbsize)
  echo "| $server | $keys | $used | $base | $rss | $(python3 -c "print(f'{($rss-$base)/$limit:.3f}')") |"
done

echo
echo "## Throughput while evicting, maxmemory $MEMORY_LIMIT, allkeys-lru (medians of $THROUGHPUT_RUNS)"
echo
for run in $(seq 1 "$THROUGHPUT_RUNS"); do
  for pipeline in 16 1; do
    n=1000000; [ "$pipeline" = 1 ] && n=200000
    for server in redis girder; do
      if [ $server = girder ]; then p=$port; else p=$REDIS_PORT; fi
      redis-benchmark -p "$p" -t set,get -n "$n" -r 100000000 -d 100 -c 50 -P "$pipeline" -q --csv \
        | tail -n +2 | sed "s/^/$server,$pipeline,$run,/" >>"$work/evicting.csv"
    done
  done
done
python3 - "$work/evicting.csv" <<'PY'
import csv, statistics, sys
rows = {}
for server, pipeline, run, test, rps, *rest in csv.reader(open(sys.argv[1])):
    rows.setdefault((test.strip('"'), int(pipeline)), {}).setdefault(server, []).append(float(rps.strip('"')))
print("| test | -P | Redis req/s | Girder req/s | ratio |")
print("|---|---|---|---|---|")
for (test, p), by in sorted(rows.items(), key=lambda kv: (-kv[0][1], kv[0][0])):
    r, g = statistics.median(by["redis"]), statistics.median(by["girder"])
    print(f"| {test} | {p} | {r:,.0f} | {g:,.0f} | {g / r:.2f}x |")
PY
