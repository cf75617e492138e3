# Shared by the bench scripts (source it).

# listening_addr <log> <service> [pid]: prints the address a Girder node started with
# `--log-format json` logged for <service> ("resp" or "http"), waiting up to 10 s (less
# if process <pid> dies first); fails if it never did.
listening_addr() {
  local log=$1 service=$2 pid=${3:-} addr
  for _ in $(seq 1 100); do
    addr=$(python3 -c '
import json,sys
for l in open(sys.argv[1]):
    try: v=json.loads(l)
    except ValueError: continue
    f=v.get("fields",{})
    if f.get("message")=="listening" and f.get("service")==sys.argv[2]: print(f["addr"]); break
' "$log" "$service")
    if [ -n "$addr" ]; then
      echo "$addr"
      return 0
    fi
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      break
    fi
    sleep 0.1
  done
  return 1
}

# start_girder <binary> <work> [VAR=value ...]: starts `<binary> serve` on port 0 with the
# given environment, its data in <work>/girder, its JSON log in <work>/log; sets `pid`
# and `port` (its RESP port), or prints the log and fails.
start_girder() {
  local bin=$1 work=$2
  shift 2
  env "$@" "$bin" serve --resp-addr 127.0.0.1:0 --http-addr 127.0.0.1:0 \
    --data-dir "$work/girder" --log-format json --log-level warn,girder_resp=info \
    2>"$work/log" &
  pid=$!
  port=$(listening_addr "$work/log" resp "$pid") || true
  port=${port##*:}
  [ -n "$port" ] || { echo "girder did not start"; cat "$work/log"; return 1; }
}

# free_port: prints a TCP port that is free on 127.0.0.1 now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_redis_aof <appendfsync> <dir>: starts a redis-server with `appendonly yes`, the
# given appendfsync, no save points, its files and log in <dir>; sets `pid` and `port`,
# or prints the log and fails.
start_redis_aof() {
  local policy=$1 dir=$2
  mkdir -p "$dir"
  port=$(free_port)
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly yes \
    --appendfsync "$policy" --dir "$dir" --logfile "$dir/log" &
  pid=$!
  for _ in $(seq 1 100); do
    [ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "redis did not start:" >&2
  cat "$dir/log" >&2
  return 1
}

# bench_tests_back_to_back <csv> <run> <pipeline> <requests> <tests> <name:port>...:
# runs each redis-benchmark test of the comma-separated <tests> on every listed server
# in turn before the next test, appending `name,pipeline,run,<redis-benchmark csv row>`
# lines to <csv>. This machine's speed changes by a third for tens of seconds at a time:
# a pair measured seconds apart sees the same machine, a whole suite per server (a
# minute each) often did not. Tests go in redis-benchmark's own order, so LPOP/RPOP pop
# what LPUSH/RPUSH pushed, SPOP what SADD added and ZPOPMIN what ZADD added.
bench_tests_back_to_back() {
  local csv=$1 run=$2 pipeline=$3 n=$4 tests=$5 t server
  shift 5
  for t in set get incr lpush rpush lpop rpop sadd hset spop zadd zpopmin lrange_100 \
    lrange_300 lrange_500 lrange_600 mset; do
    case ",$tests," in *",$t,"*) ;; *) continue ;; esac
    for server in "$@"; do
      redis-benchmark -p "${server#*:}" -t "$t" -n "$n" -r 100000 -c 50 -P "$pipeline" -q --csv \
        | tail -n +2 | sed "s/^/${server%%:*},$pipeline,$run,/" >>"$csv"
    done
  done
}
