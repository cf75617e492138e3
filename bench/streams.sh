#!/usr/bin/env bash
# Durable streams: Girder's journal against Redis's AOF, side by side in one run.
#
# Usage: bench/streams.sh [runs]                 (default: 3 runs)
# Needs: redis-server 7 on PATH, python3, cargo. Builds release (girder, girder-bench).
#
# For each run, each entry size (100 B, 1 KiB) and each durability pairing
#   Girder persistence.fsync=interval (1s) vs  Redis appendonly yes, appendfsync everysec
#   Girder persistence.fsync=always        vs  Redis appendonly yes, appendfsync always
# it starts a fresh server on an empty data directory, runs `girder-bench streams` against
# it (produce: XADD with P connections pipelined K deep; consume: XREADGROUP + XACK with
# C consumers), and stops it; Girder and Redis alternate within the run (the order flips
# every run), so machine noise hits both alike. Both data directories live under
# target/streambench, on the same filesystem. The shared Redis on 6379 is not touched.
#
# Prints a markdown table of median entries/s per (phase, size, policy) and the ratio
# Girder/Redis. A failed measurement (an error reply, a lost entry, a server that did not
# start) is listed with its message and left out of the medians; it never becomes a number.
#
# Tunables (environment): N100 (entries of 100 B, default 1000000), N1K (entries of 1 KiB,
# default 500000), P (producers, 4), K (pipeline, 16), C (consumers, 2), COUNT (100),
# SKIP_BUILD (1: do not build), RANDOM_PAYLOAD (set: random bytes instead of `x` repeated,
# which Redis's AOF rewrite stores LZF-compressed at ~1/50 of its size). GIRDER_*
# variables reach Girder (its configuration).
# The entry counts keep each phase above about a second on a 2-core VM: with fewer, a
# phase ends before the first interval/everysec fsync and measures start-up, not the
# steady state.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

RUNS=${1:-3}
N100=${N100:-1000000}
N1K=${N1K:-500000}
P=${P:-4}
K=${K:-16}
C=${C:-2}
COUNT=${COUNT:-100}

# SKIP_BUILD=1 measures the binaries already in target/release (e.g. while the tree is
# mid-change and does not build).
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release -p girder -p girder-bench
# BENCH_GIRDER measures another girder binary (an A/B of two builds); not GIRDER_*, which
# would be read as Girder configuration.
GIRDER=${BENCH_GIRDER:-target/release/girder}
BENCH=target/release/girder-bench

mkdir -p target/streambench
work=$(mktemp -d "$PWD/target/streambench/run.XXXXXX")
server_pid=""
stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}
trap 'stop_server; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

# measure <run> <server> <policy-pair> <size> <entries>
measure() {
  local run=$1 server=$2 pair=$3 size=$4 n=$5
  local dir="$work/$run-$server-$pair-$size" policy
  local tag="run=$run server=$server fsync=$pair size=$size"
  # Start from a quiet disk: the previous cell's dirty pages and deleted files are
  # written back now, not during this one's fsyncs.
  sync
  if [ "$server" = girder ]; then
    policy=interval; [ "$pair" = always ] && policy=always
    mkdir -p "$dir"
    start_girder "$GIRDER" "$dir" GIRDER_PERSISTENCE__FSYNC="$policy" \
      GIRDER_PERSISTENCE__FSYNC_INTERVAL=1s >&2 || {
      server_pid=$pid
      echo "$tag: girder did not start" >>"$work/failures"
      stop_server
      return
    }
  else
    policy=everysec; [ "$pair" = always ] && policy=always
    start_redis_aof "$policy" "$dir" || {
      server_pid=$pid
      echo "$tag: redis did not start" >>"$work/failures"
      stop_server
      return
    }
  fi
  server_pid=$pid
  echo "== $tag port=$port" >&2
  local ok=true
  "$BENCH" streams --addr "127.0.0.1:$port" --entries "$n" --size "$size" \
    --producers "$P" --pipeline "$K" --consumers "$C" --count "$COUNT" \
    ${RANDOM_PAYLOAD:+--random-payload} \
    >"$dir/out" 2>"$dir/err" || ok=false
  if [ "$ok" = false ]; then
    # The client's last word, and the server's own account of why it stopped, if any.
    local why
    if [ "$server" = girder ]; then
      why=$(grep '"level":"ERROR"' "$dir/log" | tail -n 1 | python3 -c '
import json,sys
for l in sys.stdin: print(json.loads(l)["fields"].get("error", ""))' || true)
    else
      why=$(grep ' # ' "$dir/log" | tail -n 1 || true)
    fi
    echo "$tag: $(tail -n 1 "$dir/err")${why:+ — server log: $why}" >>"$work/failures"
  fi
  cat "$dir/out" "$dir/err" >&2
  # A measurement counts only if the whole invocation passed its checks.
  grep '^{' "$dir/out" | sed "s/^{/{\"server\":\"$server\",\"pair\":\"$pair\",\"run\":$run,\"ok\":$ok,/" \
    >>"$work/results.jsonl" || true
  stop_server
  rm -rf "$dir/girder" "$dir"/appendonlydir
}

for run in $(seq 1 "$RUNS"); do
  order="girder redis"; [ $((run % 2)) -eq 0 ] && order="redis girder"
  for size in 100 1024; do
    n=$N100; [ "$size" = 1024 ] && n=$N1K
    for pair in interval always; do
      for server in $order; do
        measure "$run" "$server" "$pair" "$size" "$n"
      done
    done
  done
done

python3 - "$work/results.jsonl" "$RUNS" "$N100" "$N1K" "$P" "$K" "$C" "$COUNT" <<'PY'
import json, os, statistics, sys
path, runs, n100, n1k, p, k, c, count = sys.argv[1:]
rows = [json.loads(l) for l in open(path)] if os.path.exists(path) else []
data = {}
for r in rows:
    if not r["ok"] or r["errors"]:
        continue
    data.setdefault((r["phase"], r["size"], r["pair"]), {}).setdefault(r["server"], []).append(r)
print(f"girder-bench streams: N = {n100} (100 B) / {n1k} (1 KiB), {p} producers pipelined {k} deep, "
      f"{c} consumers with COUNT {count}; median of {runs} runs\n")
print("| phase | entry | Girder fsync | Redis appendfsync | Girder entries/s | Redis entries/s | ratio | Girder p99 ms | Redis p99 ms |")
print("|---|---|---|---|---|---|---|---|---|")
for phase in ("produce", "consume"):
    for size in (100, 1024):
        for pair in ("interval", "always"):
            by = data.get((phase, size, pair), {})
            g, r = by.get("girder", []), by.get("redis", [])
            lat = "batch_p99_us" if phase == "produce" else "round_trip_p99_us"
            def med(xs, f):
                return statistics.median(f(x) for x in xs) if xs else None
            ge, re_ = med(g, lambda x: x["entries_per_sec"]), med(r, lambda x: x["entries_per_sec"])
            gl, rl = med(g, lambda x: x[lat] / 1e3), med(r, lambda x: x[lat] / 1e3)
            fmt = lambda v, s: "failed" if v is None else s.format(v)
            ratio = f"{ge / re_:.2f}×" if ge and re_ else "n/a"
            note = lambda xs: "" if len(xs) == int(runs) else f" ({len(xs)}/{runs} runs)"
            print(f"| {'XADD' if phase == 'produce' else 'XREADGROUP+XACK'} | {'100 B' if size == 100 else '1 KiB'} "
                  f"| {'interval 1s' if pair == 'interval' else 'always'} | {'everysec' if pair == 'interval' else 'always'} "
                  f"| {fmt(ge, '{:,.0f}')}{note(g)} | {fmt(re_, '{:,.0f}')}{note(r)} | {ratio} "
                  f"| {fmt(gl, '{:.2f}')} | {fmt(rl, '{:.2f}')} |")
print()
PY
if [ -s "$work/failures" ]; then
  echo "**Failed measurements** (left out of the medians):"
  echo
  sed 's/^/- /' "$work/failures"
  exit 1
fi
