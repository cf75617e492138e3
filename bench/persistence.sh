#!/usr/bin/env bash
# Persistence: Girder against Redis configured the same way, side by side in one run.
#
# Usage: bench/persistence.sh [runs] [requests]      (defaults: 3 runs, 1,000,000 requests)
# Needs: redis-server/redis-benchmark 7, python3, a release build (built if missing).
#
# 1. Throughput with every write journaled: Redis `appendonly yes, appendfsync everysec`
#    against Girder `persistence.mode = aof, fsync = interval` (1 s). redis-benchmark
#    -P 16 (`requests`) and -P 1 (a fifth of them), servers alternating within each run.
# 2. The longest pause a client sees while a snapshot of about 1M keys (100-byte values)
#    is taken: BGSAVE on both, probed by a client sending a GET every millisecond. Redis
#    stalls while it forks (its `latest_fork_usec` is printed too); Girder never stops.
# 3. RL.CHECK calls/s against the same GCRA limiter as a Lua script on Redis (EVALSHA):
#    what a Redis user without redis-cell runs.
#
# Both servers get a fresh data directory of their own; the shared Redis on 6379 is not
# used. Prints markdown tables of medians.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

RUNS=${1:-3}
REQUESTS=${2:-1000000}
P1_REQUESTS=$((REQUESTS / 5))
TESTS=set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange_100,mset
BIN=${BENCH_GIRDER:-target/release/girder}
[ -x "$BIN" ] || cargo build --release -p girder
REDIS_PORT=${BENCH_REDIS_PORT:-6392}

work=$(mktemp -d)
mkdir -p "$work/redis"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$work/redis" --save "" \
  --appendonly yes --appendfsync everysec --daemonize yes --logfile "$work/redis.log"
trap 'kill ${pid:-} 2>/dev/null || true; redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
start_girder "$BIN" "$work" GIRDER_PERSISTENCE__MODE=aof GIRDER_PERSISTENCE__FSYNC=interval
for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

port_of() { if [ "$1" = girder ]; then echo "$port"; else echo "$REDIS_PORT"; fi; }

# 1. Throughput with the append-only journal, each test on both servers back to back.
for run in $(seq 1 "$RUNS"); do
  # The order flips every run: whichever goes first is not always the one measured
  # on a fresh page cache and a rested machine.
  servers="redis:$REDIS_PORT girder:$port"
  [ $((run % 2)) -eq 0 ] && servers="girder:$port redis:$REDIS_PORT"
  for pipeline in 16 1; do
    n=$REQUESTS; [ "$pipeline" = 1 ] && n=$P1_REQUESTS
    for server in $servers; do
      redis-cli -p "${server#*:}" flushall >/dev/null
    done
    bench_tests_back_to_back "$work/aof.csv" "$run" "$pipeline" "$n" "$TESTS" $servers
  done
done

# 2. Snapshot pauses, ~1M keys: 1.6M SETs over 1.6M random names leave 1 - 1/e of them.
bgsave_done() { redis-cli -p "$1" info persistence | grep -q '^rdb_bgsave_in_progress:0'; }
for run in $(seq 1 "$RUNS"); do
  for server in redis girder; do
    p=$(port_of $server)
    redis-cli -p "$p" flushall >/dev/null
    redis-benchmark -p "$p" -t set -n 1600000 -r 1600000 -d 100 -c 50 -P 64 -q >/dev/null
    keys=$(redis-cli -p "$p" dbsize)
    # Let a rewrite the load started (either server's, by journal size) finish first.
    while ! redis-cli -p "$p" info persistence | grep -q '^aof_rewrite_in_progress:0'; do sleep 0.2; done
    while ! bgsave_done "$p"; do sleep 0.2; done
    touch "$work/probing"
    python3 bench/probe.py "$p" "$work/probing" >"$work/probe.out" &
    probe=$!
    sleep 1
    t0=$(date +%s%N)
    # A rewrite the server started on its own may still begin first: wait it out.
    for _ in $(seq 1 600); do
      started=$(redis-cli -p "$p" bgsave)
      case "$started" in Background*) break ;; *"in progress"*|*"Another child process is active"*) sleep 0.1 ;; *) echo "BGSAVE on $server: $started" >&2; exit 1 ;; esac
    done
    case "$started" in Background*) ;; *) echo "BGSAVE on $server never started: $started" >&2; exit 1 ;; esac
    sleep 0.2
    while ! bgsave_done "$p"; do sleep 0.05; done
    t1=$(date +%s%N)
    sleep 0.5
    rm -f "$work/probing"
    wait $probe
    fork=$(redis-cli -p "$p" info stats | { grep '^latest_fork_usec:' || true; } | cut -d: -f2 | tr -d '\r')
    echo "$server,$run,$keys,$(cat "$work/probe.out" | tr ' ' ','),$(( (t1 - t0) / 1000000 )),${fork:-0}" >>"$work/snap.csv"
  done
done

# 3. RL.CHECK against a GCRA limiter in Lua on Redis.
sha=$(redis-cli -p "$REDIS_PORT" script load "
local limit, period = tonumber(ARGV[1]), tonumber(ARGV[2])
local emission = period / limit
local t = redis.call('TIME'); local now = t[1] * 1000 + t[2] / 1000
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + emission
local allow_at = new_tat - period
if now < allow_at then return {0, 0, math.ceil(tat - now), math.ceil(allow_at - now)} end
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(new_tat - now))
return {1, math.floor((now - allow_at) / emission), math.ceil(new_tat - now), -1}")
for run in $(seq 1 "$RUNS"); do
  for pipeline in 16 1; do
    n=$REQUESTS; [ "$pipeline" = 1 ] && n=$P1_REQUESTS
    redis-cli -p "$REDIS_PORT" flushall >/dev/null
    redis-benchmark -p "$REDIS_PORT" -n "$n" -r 100000 -c 50 -P "$pipeline" -q --csv \
      evalsha "$sha" 1 rl:__rand_int__ 100 1000 | tail -n +2 | sed "s/^/redis,$pipeline,$run,/" >>"$work/rl.csv"
    redis-benchmark -p "$port" -n "$n" -r 100000 -c 50 -P "$pipeline" -q --csv \
      RL.CHECK rl:__rand_int__ gcra 100 1000 | tail -n +2 | sed "s/^/girder,$pipeline,$run,/" >>"$work/rl.csv"
  done
done

python3 - "$work" "$RUNS" "$REQUESTS" "$P1_REQUESTS" <<'PY'
import csv, statistics, sys, os
work, runs, n16, n1 = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
med = statistics.median
def table(path, title, name=None):
    data = {}
    for row in csv.reader(open(os.path.join(work, path))):
        server, pipeline, run, test, rps, p99 = row[0], row[1], row[2], name or row[3], row[4], row[9]
        data.setdefault((pipeline, test), {}).setdefault(server, {})[run] = (float(rps), float(p99))
    print(title + "\n")
    for pipeline in ("16", "1"):
        n = n16 if pipeline == "16" else n1
        print(f"**-P {pipeline}** (-n {n} -r 100000 -c 50, median of {runs} runs)\n")
        print("| test | Redis req/s | Girder req/s | ratio | paired | Redis p99 ms | Girder p99 ms |")
        print("|---|---|---|---|---|---|---|")
        for (p, test), by in data.items():
            if p != pipeline or "redis" not in by or "girder" not in by:
                continue
            rd, gd = by["redis"], by["girder"]
            r = med(x[0] for x in rd.values()); g = med(x[0] for x in gd.values())
            rp = med(x[1] for x in rd.values()); gp = med(x[1] for x in gd.values())
            paired = med(gd[k][0] / rd[k][0] for k in rd if k in gd)
            print(f"| {test} | {r:,.0f} | {g:,.0f} | {g / r:.2f}× | {paired:.2f}× | {rp:.3f} | {gp:.3f} |")
        print()
table("aof.csv", "### Every write journaled: Redis appendonly yes + appendfsync everysec, Girder mode = aof + fsync = interval (1 s)")
print("### Longest pause during BGSAVE of ~1M keys (GET probe every 1 ms)\n")
print("| server | keys | max probe ms | p99.9 probe ms | probes | snapshot ms | Redis latest_fork_usec |")
print("|---|---|---|---|---|---|---|")
rows = {}
for server, run, keys, mx, p999, count, ms, fork in csv.reader(open(os.path.join(work, "snap.csv"))):
    rows.setdefault(server, []).append((int(keys), float(mx), float(p999), int(count), int(ms), int(fork)))
for server, rs in rows.items():
    fork = f"{med(r[5] for r in rs):,.0f}" if server == "redis" else "—"
    print(f"| {server} | {med(r[0] for r in rs):,.0f} | {med(r[1] for r in rs):.2f} | {med(r[2] for r in rs):.2f} | {med(r[3] for r in rs):,.0f} | {med(r[4] for r in rs):,.0f} | {fork} |")
print(f"\nmedians of {runs} runs; each run's max is the longest single GET while the snapshot ran\n")
table("rl.csv", "### Rate limiting: RL.CHECK (GCRA, 100 per 1000 ms, 100k keys) vs the same GCRA as a Lua script on Redis (EVALSHA)", "gcra check")
PY
