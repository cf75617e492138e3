#!/usr/bin/env bash
# The scheduler end to end: enqueue -> claim -> complete throughput over HTTP, and the
# start lateness of delayed jobs, on the embedded SQLite store (synchronous = FULL:
# every answer is after an fsync'd commit) and on PostgreSQL (the local server, a fresh
# database per run; synchronous_commit as the server has it, on by default).
#
# Usage: bench/jobs.sh [runs]          (default: 3 runs; medians are reported)
# Needs: cargo, python3, psql and a PostgreSQL server (PG_ADMIN, default
# postgres://postgres@127.0.0.1:5432/postgres; STORES=sqlite skips it). Builds release
# (girder, girder-bench) unless SKIP_BUILD=1.
#
# Each run starts a fresh node on an empty data directory under target/jobsbench and runs
#   1. per-job requests: POST /v1/jobs per job (4 producers), claim batch 32, one
#      POST /v1/jobs/{id}/complete per job (4 workers);
#   2. batched requests: POST /v1/jobs/batch of 100 (4 producers), claim batch 100,
#      one POST /v1/jobs/complete per claim (4 workers);
#   3. lateness, on a fresh node: 1000 jobs due 0.2-2 s after enqueue, 4 long-polling
#      workers.
# A run whose checks fail (a lost, duplicated or leftover job) is listed and left out.
#
# Tunables: JOBS (per-job phase, 20000), BATCH_JOBS (batched phase, 100000), LATE (1000),
# STORES ("sqlite postgres").
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

RUNS=${1:-3}
JOBS=${JOBS:-20000}
BATCH_JOBS=${BATCH_JOBS:-100000}
LATE=${LATE:-1000}
STORES=${STORES:-sqlite postgres}
PG_ADMIN=${PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
PG_DB=girder_jobsbench_$$
[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release -p girder -p girder-bench
GIRDER=target/release/girder
BENCH=target/release/girder-bench

mkdir -p target/jobsbench
work=$(mktemp -d "$PWD/target/jobsbench/run.XXXXXX")
pid=""
stop() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=""
  fi
}
trap 'stop; rm -rf "$work"; [[ " $STORES " == *" postgres "* ]] && psql "$PG_ADMIN" -q -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true' EXIT

start() {
  local dir=$1 store=$2
  mkdir -p "$dir"
  local url=""
  if [ "$store" = postgres ]; then
    psql "$PG_ADMIN" -q -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" -c "CREATE DATABASE $PG_DB" >/dev/null
    url="${PG_ADMIN%/*}/$PG_DB"
  fi
  GIRDER_SCHEDULER__STORE=$url "$GIRDER" serve --http-addr 127.0.0.1:0 --resp-addr 127.0.0.1:0 --data-dir "$dir/data" \
    --log-format json --log-level warn,girder_http=info 2>"$dir/log" &
  pid=$!
  if base=$(listening_addr "$dir/log" http "$pid"); then
    base="http://$base"
    return 0
  fi
  echo "girder did not start" >&2; cat "$dir/log" >&2; return 1
}

for run in $(seq 1 "$RUNS"); do
  for store in $STORES; do
  for mode in single batched lateness; do
    dir="$work/$run-$store-$mode"
    start "$dir" "$store"
    if [ "$mode" = single ]; then
      args=(--jobs "$JOBS" --batch 32 --late-jobs 0)
    elif [ "$mode" = lateness ]; then
      # A fresh node that has done nothing else: the target is for an idle node. The
      # throughput phase is a short warm-up of 1,000 jobs.
      args=(--jobs 1000 --batch 32 --late-jobs "$LATE")
    else
      args=(--jobs "$BATCH_JOBS" --batch 100 --enqueue-batch 100 --complete-batch --late-jobs 0)
    fi
    echo "== run $run $store $mode" >&2
    if "$BENCH" jobs --base "$base" --producers 4 --workers 4 "${args[@]}" >"$dir/out" 2>"$dir/err"; then
      grep '^{' "$dir/out" | sed "s/^{/{\"run\":$run,\"store\":\"$store\",\"mode\":\"$mode\",/" >>"$work/results.jsonl"
    else
      echo "run $run $store $mode: $(tail -n 1 "$dir/err")" >>"$work/failures"
    fi
    cat "$dir/out" >&2
    stop
    rm -rf "$dir/data"
  done
  done
done

python3 - "$work/results.jsonl" "$RUNS" <<'PY'
import json, os, statistics, sys
path, runs = sys.argv[1], int(sys.argv[2])
rows = [json.loads(l) for l in open(path)] if os.path.exists(path) else []
def med(xs): return statistics.median(xs) if xs else float("nan")
print(f"girder-bench jobs, 4 producers, 4 workers; median of {runs} runs\n")
print("| store | requests | jobs | jobs/s (median) | per run |")
print("|---|---|---|---|---|")
for store in ("sqlite", "postgres"):
    for mode, label in (("single", "one request per enqueue and per complete; claim 32"),
                        ("batched", "enqueue 100 per request; claim 100; one complete request per claim")):
        rs = [r for r in rows if r["store"] == store and r["mode"] == mode and r["phase"] == "throughput"]
        if rs:
            print(f"| {store} | {label} | {rs[0]['jobs']:,} | {med([r['jobs_per_sec'] for r in rs]):,.0f} | "
                  + ", ".join(f"{r['jobs_per_sec']:,.0f}" for r in rs) + " |")
print()
for store in ("sqlite", "postgres"):
    ls = [r for r in rows if r["store"] == store and r["phase"] == "lateness"]
    if ls:
        print(f"Start lateness, {store} ({ls[0]['jobs']} jobs due 0.2–2 s after enqueue, 4 long-polling workers, idle node): "
              f"p50 {med([r['p50_ms'] for r in ls]):.0f} ms, p99 {med([r['p99_ms'] for r in ls]):.0f} ms, "
              f"max {med([r['max_ms'] for r in ls]):.0f} ms (medians over runs; per run p99: "
              + ", ".join(str(r['p99_ms']) for r in ls) + ")\n")
PY
if [ -s "$work/failures" ]; then
  echo; echo "**Failed runs** (left out):"; sed 's/^/- /' "$work/failures"; exit 1
fi
