#!/usr/bin/env bash
# Short fuzz runs of the RESP parser and command layer (libFuzzer via cargo-fuzz).
#
# Usage: scripts/fuzz.sh [seconds per target]   (default 60)
# New inputs that reach new code are added to fuzz/corpus/<target>; commit them.
# A crash leaves its input in fuzz/artifacts/<target>/ and makes this script fail.
# cargo-fuzz needs nightly features: RUSTC_BOOTSTRAP=1 enables them on the stable
# toolchain this project builds with.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
for target in parse commands; do
  echo "==> fuzzing $target for ${SECONDS_PER_TARGET}s"
  cargo fuzz run "$target" "fuzz/corpus/$target" -- \
    -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -max_len=4096
done
