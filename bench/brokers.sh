#!/usr/bin/env bash
# Girder's topics against RabbitMQ and NATS JetStream, side by side in each run.
#
# Usage: bench/brokers.sh [runs]          (default: 3 runs; medians are reported)
# Needs: cargo, python3; RabbitMQ on AMQP_URL (default amqp://guest:guest@127.0.0.1:5672/%2f)
# and a NATS server with JetStream on NATS_URL (default nats://127.0.0.1:4222), both
# already running. Builds release (girder, girder-bench) unless SKIP_BUILD=1.
#
# Each run starts a fresh Girder node on an empty data directory under
# target/brokersbench and runs `girder-bench brokers` against girder, rabbitmq and nats
# in turn (the order rotates every run, so machine noise hits all alike):
#   - girder:   a topic of PARTITIONS partitions with fsync=always (girder-never: never); produce requests of
#               WINDOW messages; receive + ack in batches of BATCH;
#   - rabbitmq: a durable quorum queue; persistent publishes with publisher confirms,
#               WINDOW in flight; basic.consume with prefetch BATCH, one ack
#               (multiple=true) per BATCH;
#   - nats:     a file-storage stream; JetStream publishes, WINDOW PubAcks outstanding;
#               a durable pull consumer (AckExplicit) fetching BATCH, each message acked.
# Phases: produce (confirmation latency), consume (drain the backlog), e2e (producers
# and consumers at once, paced at E2E_RATE msgs/s; latency = receive − send timestamp).
# Each queue, topic or stream is fresh per run and deleted at the end.
# A run whose checks fail (an error answer, a lost or duplicated message) is listed and
# left out of the medians.
#
# Same durability, compared pairwise: Girder with fsync=always (answers after fsync)
# against RabbitMQ's quorum queues (confirm after their WAL is fsync'd); Girder with
# fsync=never ("girder-never": answers once written to the OS, survives kill -9, not
# power loss) against NATS JetStream's file store, which acks once the message is written
# and syncs on its own interval (sync_interval, 2 min by default; the NATS 2.9 on this
# machine cannot be told to sync every write).
#
# Tunables: MESSAGES (100000), SIZE (100), PRODUCERS (4), CONSUMERS (4), WINDOW (100),
# BATCH (100), PARTITIONS (4), E2E_MESSAGES (20000), E2E_RATE (5000), THREADS (client
# runtime threads, 1), SYSTEMS ("girder girder-never rabbitmq nats").
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

RUNS=${1:-3}
MESSAGES=${MESSAGES:-100000}
SIZE=${SIZE:-100}
PRODUCERS=${PRODUCERS:-4}
CONSUMERS=${CONSUMERS:-4}
WINDOW=${WINDOW:-100}
BATCH=${BATCH:-100}
PARTITIONS=${PARTITIONS:-4}
E2E_MESSAGES=${E2E_MESSAGES:-20000}
E2E_RATE=${E2E_RATE:-5000}
THREADS=${THREADS:-1}
SYSTEMS=${SYSTEMS:-girder girder-never rabbitmq nats}
AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
NATS_URL=${NATS_URL:-nats://127.0.0.1:4222}

[ "${SKIP_BUILD:-0}" = 1 ] || cargo build --release -p girder -p girder-bench
GIRDER=target/release/girder
BENCH=target/release/girder-bench

mkdir -p target/brokersbench
work=$(mktemp -d "$PWD/target/brokersbench/run.XXXXXX")
pid=""
stop() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=""
  fi
}
trap 'stop; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

# start <dir>: a fresh node; sets pid and base.
start() {
  local dir=$1
  mkdir -p "$dir"
  "$GIRDER" serve --http-addr 127.0.0.1:0 --resp-addr 127.0.0.1:0 --data-dir "$dir/data" \
    --log-format json --log-level warn,girder_http=info 2>"$dir/log" &
  pid=$!
  if base=$(listening_addr "$dir/log" http "$pid"); then
    base="http://$base"
    return 0
  fi
  echo "girder did not start" >&2; cat "$dir/log" >&2; return 1
}

common=(--messages "$MESSAGES" --size "$SIZE" --producers "$PRODUCERS" --consumers "$CONSUMERS"
        --window "$WINDOW" --batch "$BATCH" --e2e-messages "$E2E_MESSAGES" --e2e-rate "$E2E_RATE")

read -r -a systems <<<"$SYSTEMS"
for run in $(seq 1 "$RUNS"); do
  # Rotate the order: run 1 girder rabbitmq nats, run 2 rabbitmq nats girder, ...
  n=${#systems[@]}
  order=()
  for i in $(seq 0 $((n - 1))); do order+=("${systems[$(((i + run - 1) % n))]}"); done
  for system in "${order[@]}"; do
    dir="$work/$run-$system"
    mkdir -p "$dir"
    args=(--system "$system")
    case $system in
      girder|girder-never)
        if ! start "$dir"; then
          echo "run $run $system: the node did not start" >>"$work/failures"; stop; continue
        fi
        fsync=always
        [ "$system" = girder-never ] && fsync=never
        args=(--system girder --base "$base" --partitions "$PARTITIONS" --fsync "$fsync") ;;
      rabbitmq) args+=(--amqp "$AMQP_URL") ;;
      nats) args+=(--nats "$NATS_URL") ;;
    esac
    echo "== run $run $system" >&2
    ok=true
    "$BENCH" --threads "$THREADS" brokers "${args[@]}" "${common[@]}" >"$dir/out" 2>"$dir/err" || ok=false
    [ "$ok" = true ] || echo "run $run $system: $(tail -n 1 "$dir/err")" >>"$work/failures"
    cat "$dir/out" "$dir/err" >&2
    grep '^{' "$dir/out" | sed "s/^{/{\"run\":$run,\"ok\":$ok,/; s/\"system\":\"girder\"/\"system\":\"$system\"/" >>"$work/results.jsonl" || true
    stop
    rm -rf "$dir/data"
  done
done

python3 - "$work/results.jsonl" "$RUNS" "$MESSAGES" "$SIZE" "$PRODUCERS" "$CONSUMERS" "$WINDOW" \
  "$BATCH" "$PARTITIONS" "$E2E_MESSAGES" "$E2E_RATE" <<'PY'
import json, os, statistics, sys
path, runs, msgs, size, prod, cons, window, batch, parts, e2e_n, e2e_rate = sys.argv[1:]
rows = [json.loads(l) for l in open(path)] if os.path.exists(path) else []
rows = [r for r in rows if r["ok"] and r["errors"] == 0]
def med(system, phase, field):
    xs = [r[field] for r in rows if r["system"] == system and r["phase"] == phase and r[field] is not None]
    return (statistics.median(xs), len(xs)) if xs else (None, 0)
print(f"girder-bench brokers: {msgs} messages of {size} B, {prod} producers × {window} in flight, "
      f"{cons} consumers × batch {batch}, Girder {parts} partitions; e2e {e2e_n} messages at {e2e_rate}/s; "
      f"median of {runs} runs\n")
cols = ["phase", "metric", "girder (fsync always)", "rabbitmq (quorum)", "girder (fsync never)",
        "nats (file)", "girder always / rabbitmq", "girder never / nats"]
print("| " + " | ".join(cols) + " |")
print("|" + "---|" * len(cols))
metrics = [("produce", "msgs/s", "msgs_per_sec"), ("produce", "p50 ms", "p50_ms"),
           ("produce", "p99 ms", "p99_ms"), ("consume", "msgs/s", "msgs_per_sec"),
           ("e2e", "msgs/s", "msgs_per_sec"), ("e2e", "p50 ms", "p50_ms"),
           ("e2e", "p99 ms", "p99_ms"), ("e2e", "max ms", "max_ms")]
for phase, label, field in metrics:
    vals = {}
    cells = []
    for system in ("girder", "rabbitmq", "girder-never", "nats"):
        v, n = med(system, phase, field)
        vals[system] = v
        if v is None:
            cells.append("failed")
        else:
            s = f"{v:,.0f}" if field == "msgs_per_sec" else f"{v:.2f}"
            cells.append(s + ("" if n == int(runs) else f" ({n}/{runs} runs)"))
    ratio = lambda a, b: f"{a / b:.2f}×" if a is not None and b else "n/a"
    # Ratios for throughput and the p99 columns only.
    if field in ("msgs_per_sec", "p99_ms"):
        cells += [ratio(vals["girder"], vals["rabbitmq"]), ratio(vals["girder-never"], vals["nats"])]
    else:
        cells += ["", ""]
    print(f"| {phase} | {label} | " + " | ".join(cells) + " |")
print()
PY
if [ -s "$work/failures" ]; then
  echo; echo "**Failed runs** (left out):"; sed 's/^/- /' "$work/failures"; exit 1
fi
