#!/usr/bin/env bash
# One XADD cell of bench/streams.sh, with what the server did to get there: for an A/B of
# two Girder builds, of a setting, or against Redis, one fresh server per call.
#
# Usage: bench/stream-cell.sh <girder|redis> <always|everysec> <entry bytes> <entries>
#
# Starts a fresh server on an empty data directory (Girder: persistence.fsync always or
# interval 1s; Redis: appendonly yes with that appendfsync), runs `girder-bench streams`
# against it (4 producers pipelined 16 deep, then 2 consumers), and prints one line for the
# produce phase:
#   <server> <entries/s> p99=<ms per pipelined batch> cpu=<server CPU s> fsyncs=<n>
#   disk=<MB written to the block device> dir=<MB on disk at the end>
# cpu and fsyncs cover the produce phase; disk is /proc/diskstats over it (the whole
# device: run nothing else). fsyncs needs `perf` with syscall tracepoints (else "?").
# Run it alternately against the servers compared, several rounds, and compare medians
# of the per-round ratios: the machine changes speed between rounds.
#
# Environment: BENCH_GIRDER (the girder binary, default target/release/girder),
# RANDOM_PAYLOAD (set: incompressible payloads), GIRDER_* (Girder's configuration, e.g.
# GIRDER_PERSISTENCE__COMPACT_MIN_BYTES=1125899906842624 to measure without compaction).
# Builds nothing: `cargo build --release -p girder --bin girder` and
# `cargo build --release -p girder-bench` first.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

server=$1 policy=$2 size=$3 entries=$4
GIRDER=${BENCH_GIRDER:-target/release/girder}
BENCH=target/release/girder-bench
dev=$(df --output=source . | tail -1 | sed 's#^/dev/##')
work=$(mktemp -d "${TMPDIR:-/tmp}/stream-cell.XXXXXX")
mkfifo "$work/fifo"
pid="" perf_pid=""
cleanup() {
  [ -n "$perf_pid" ] && kill -INT "$perf_pid" 2>/dev/null || true
  [ -n "$pid" ] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  rm -rf "$work"
}
trap cleanup EXIT

# Start from a quiet disk: what an earlier run left dirty is written back now.
sync
if [ "$server" = redis ]; then
  start_redis_aof "$policy" "$work/redis"
else
  fsync=interval; [ "$policy" = always ] && fsync=always
  start_girder "$GIRDER" "$work" GIRDER_PERSISTENCE__FSYNC=$fsync \
    GIRDER_PERSISTENCE__FSYNC_INTERVAL=1s >&2
fi

cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
sectors() { awk -v d="$dev" '$3 == d {print $10}' /proc/diskstats; }
cpu0=$(cpu) sec0=$(sectors)
if perf stat -x, -e syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync -p "$pid" \
  -o "$work/perf" true 2>/dev/null; then
  perf stat -x, -e syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync -p "$pid" \
    -o "$work/perf" 2>/dev/null &
  perf_pid=$!
fi
"$BENCH" streams --addr "127.0.0.1:$port" --entries "$entries" --size "$size" \
  --producers 4 --pipeline 16 --consumers 2 --count 100 ${RANDOM_PAYLOAD:+--random-payload} \
  >"$work/fifo" 2>"$work/err" &
bench_pid=$!
# Blocking reads of the client's lines, no polling (a grep and a sleep every 10 ms cost
# a quarter of a core beside the servers measured): sample once the produce phase is out.
exec 3<"$work/fifo"
while IFS= read -r line <&3; do
  printf '%s\n' "$line" >>"$work/out"
  case $line in '{"phase":"produce"'*) break ;; esac
done
cpu1=$(cpu) sec1=$(sectors)
fsyncs="?"
if [ -n "$perf_pid" ]; then
  kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true; perf_pid=""
  fsyncs=$(awk -F, '/fdatasync|fsync/ {s += $1} END {print s}' "$work/perf")
fi
cat <&3 >>"$work/out"
exec 3<&-
wait "$bench_pid" || { echo "$server: girder-bench failed:" >&2; cat "$work/err" >&2; exit 1; }
dir_mb=$(du -sm "$work" | cut -f1)
python3 - "$server" "$work/out" "$cpu0" "$cpu1" "$fsyncs" "$sec0" "$sec1" "$dir_mb" <<'PY'
import json, os, sys
server, out, cpu0, cpu1, fsyncs, sec0, sec1, dir_mb = sys.argv[1:]
tick = os.sysconf("SC_CLK_TCK")
for line in open(out):
    if line.startswith('{"phase":"produce"'):
        j = json.loads(line)
        print(f"{server} {j['entries_per_sec']:.0f} p99={j['batch_p99_us'] / 1000:.2f}"
              f" cpu={(float(cpu1) - float(cpu0)) / tick:.2f} fsyncs={fsyncs}"
              f" disk={(int(sec1) - int(sec0)) * 512 / 1e6:.0f} dir={dir_mb}")
        break
PY
