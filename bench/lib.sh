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
