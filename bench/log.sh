#!/usr/bin/env bash
# girder-log append throughput against dd on the same disk, in one run.
#
# Usage: bench/log.sh [rounds] [mb]          (defaults: 3 rounds, 512 MB)
# Each round runs `dd bs=1M conv=fdatasync` (write + one fdatasync) and the
# `append_mbps` example (1 KiB records, FsyncPolicy::Interval(1000ms), timed
# until sync() returns) alternately, so machine noise hits both alike. Prints
# a markdown table of the medians and the ratio. The directory is on the same
# disk as the repository (target/logbench) and is deleted afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${1:-3}
MB=${2:-512}
EXAMPLE=target/release/examples/append_mbps
[ -x "$EXAMPLE" ] || flock /tmp/cargo.lock cargo build --release -p girder-log --example append_mbps
DIR=target/logbench
rm -rf "$DIR"
mkdir -p "$DIR"
trap 'rm -rf "$DIR"' EXIT

dd_mbps=()
log_mbps=()
sync; sleep 1
for r in $(seq 1 "$ROUNDS"); do
  # dd reports bytes and seconds on its last line; MB/s = bytes / 1e6 / s.
  line=$(dd if=/dev/zero of="$DIR/dd.bin" bs=1M count="$MB" conv=fdatasync 2>&1 | tail -1)
  rm -f "$DIR/dd.bin"
  # Let the deletion and any writeback settle so neither side pays for the other.
  sync; sleep 1
  dd_mbps+=("$(echo "$line" | awk '{printf "%.1f", $1 / 1e6 / $(NF-3)}')")
  # The example writes MB * 1e6 bytes of payload; its MB/s is payload bytes / 1e6 / s.
  out=$("$EXAMPLE" --dir "$DIR/log" --mb "$((MB * 1048576 / 1000000))" --size 1024 --policy interval:1000)
  rm -rf "$DIR/log"
  sync; sleep 1
  log_mbps+=("$(echo "$out" | awk '{print $1}')")
  echo "round $r: dd ${dd_mbps[-1]} MB/s, girder-log ${log_mbps[-1]} MB/s ($out)" >&2
done

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
dd_med=$(median "${dd_mbps[@]}")
log_med=$(median "${log_mbps[@]}")
ratio=$(awk -v a="$log_med" -v b="$dd_med" 'BEGIN {printf "%.0f%%", 100 * a / b}')

echo "| what | rounds | median MB/s | all rounds |"
echo "|---|---|---|---|"
echo "| dd bs=1M count=$MB conv=fdatasync | $ROUNDS | $dd_med | ${dd_mbps[*]} |"
echo "| girder-log append_mbps, 1 KiB records, Interval(1000ms), until sync() | $ROUNDS | $log_med | ${log_mbps[*]} |"
echo "| ratio girder-log / dd (target >= 50%) | | $ratio | |"
