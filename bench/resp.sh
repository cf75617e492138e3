#!/usr/bin/env bash
# Girder's RESP server against the real Redis, side by side in one run.
#
# Usage: bench/resp.sh [runs] [requests]        (defaults: 3 runs, 1,000,000 requests)
# Environment: TESTS (redis-benchmark -t list, default: the 14 of issue 4), PIPELINES
# (default "16 1"), GIRDER (the binary, default target/release/girder), RAW (a path to
# keep the per-run CSV at).
# Needs: redis-server/redis-benchmark 7 (Redis on 127.0.0.1:6379), a release build
# (`cargo build --release -p girder`). Prints a markdown table of median requests/s and
# p99 latency per test for -P 16 and -P 1, with Girder/Redis ratios. Each test runs on
# the two servers back to back, Redis first in odd runs and Girder first in even ones,
# so machine noise hits both alike.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

RUNS=${1:-3}
REQUESTS=${2:-1000000}
TESTS=${TESTS:-set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange_100,mset}
PIPELINES=${PIPELINES:-16 1}
GIRDER=${GIRDER:-target/release/girder}
[ -x "$GIRDER" ] || cargo build --release -p girder

work=$(mktemp -d)
# Persisted as the reference Redis is (CI starts it with save "" and appendonly no):
# nothing. bench/persistence.sh compares the two with persistence on.
start_girder "$GIRDER" "$work" GIRDER_PERSISTENCE__MODE=none
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT

# Only tests whose command Girder serves: a benchmark of error replies means nothing.
supported=""
for t in ${TESTS//,/ }; do
  cmd=${t%%_*}
  if [ "$(redis-cli -p "$port" command info "$cmd" | head -1)" != "" ]; then
    supported="$supported,$t"
  else
    echo "skipping $t: Girder does not serve ${cmd^^} yet" >&2
  fi
done
TESTS=${supported#,}

for run in $(seq 1 "$RUNS"); do
  # The order flips every run: whichever goes first is not always the one measured
  # on a fresh page cache and a rested machine.
  servers="redis:6379 girder:$port"; [ $((run % 2)) -eq 0 ] && servers="girder:$port redis:6379"
  for pipeline in $PIPELINES; do
    for server in $servers; do
      redis-cli -p "${server#*:}" flushall >/dev/null
    done
    bench_tests_back_to_back "$work/results.csv" "$run" "$pipeline" "$REQUESTS" "$TESTS" $servers
  done
done

[ -n "${RAW:-}" ] && cp "$work/results.csv" "$RAW"

python3 - "$work/results.csv" "$RUNS" "$REQUESTS" <<'PY'
import csv, statistics, sys
rows = list(csv.reader(open(sys.argv[1])))
data = {}
for server, pipeline, run, test, rps, avg, mn, p50, p95, p99, mx in rows:
    data.setdefault((pipeline, test), {}).setdefault(server, {})[run] = (float(rps), float(p99))
print(f"redis-benchmark -n {sys.argv[3]} -r 100000 -c 50, median of {sys.argv[2]} runs")
print("(ratio: of the medians; paired: the median of each run's Girder/Redis, the two")
print("measured back to back)\n")
for pipeline in ("16", "1"):
    print(f"**-P {pipeline}**\n")
    print("| test | Redis req/s | Girder req/s | ratio | paired | Redis p99 ms | Girder p99 ms |")
    print("|---|---|---|---|---|---|---|")
    for (p, test), by in data.items():
        if p != pipeline or "redis" not in by or "girder" not in by:
            continue
        rd, gd = by["redis"], by["girder"]
        r = statistics.median(x[0] for x in rd.values()); g = statistics.median(x[0] for x in gd.values())
        rp = statistics.median(x[1] for x in rd.values()); gp = statistics.median(x[1] for x in gd.values())
        paired = statistics.median(gd[k][0] / rd[k][0] for k in rd if k in gd)
        print(f"| {test} | {r:,.0f} | {g:,.0f} | {g / r:.2f}× | {paired:.2f}× | {rp:.3f} | {gp:.3f} |")
    print()
PY
