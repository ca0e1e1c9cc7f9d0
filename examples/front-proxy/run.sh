#!/usr/bin/env bash
# The demo's services without a mesh, for docs/tutorial.md: three user
# instances (127.0.0.1:50051-50053), two alive instances (:50061-50062) and
# the gateway (http://127.0.0.1:8080), with one of these between the
# gateway and the instances:
#   direct       the gateway calls user-1 and alive-1 only (no balancing)
#   l4           HAProxy in TCP mode (l4-haproxy.cfg): balances connections
#   front-proxy  a SwiftMesh proxy (proxy.yaml): balances every call
#   client-side  the gateway itself, given every instance's address
# Then count who answered: examples/front-proxy/spread.sh. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/../.."
MODE="${1:-front-proxy}"
BIN="${SWIFTMESH_BIN:-.build/release/swiftmesh}"
[ -x "$BIN" ] || scripts/build

if curl -fs http://127.0.0.1:8080/alive >/dev/null 2>&1; then
  echo "something already answers at http://127.0.0.1:8080: stop the previous run.sh first" >&2
  exit 1
fi

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

for i in 1 2 3; do "$BIN" example user --listen "127.0.0.1:5005$i" --instance "user-$i" --log-level warning & pids+=($!); done
for i in 1 2; do "$BIN" example alive --listen "127.0.0.1:5006$i" --instance "alive-$i" --log-level warning & pids+=($!); done

case "$MODE" in
  direct)
    user=127.0.0.1:50051; alive=127.0.0.1:50061 ;;
  l4)
    command -v haproxy >/dev/null || { echo "run.sh l4 needs haproxy (apt-get install haproxy)" >&2; exit 1; }
    haproxy -f examples/front-proxy/l4-haproxy.cfg & pids+=($!)
    user=127.0.0.1:10000; alive=127.0.0.1:10002 ;;
  front-proxy)
    "$BIN" proxy --config examples/front-proxy/proxy.yaml --log-level warning & pids+=($!)
    user=127.0.0.1:10000; alive=127.0.0.1:10000 ;;
  client-side)
    user=127.0.0.1:50051,127.0.0.1:50052,127.0.0.1:50053; alive=127.0.0.1:50061,127.0.0.1:50062 ;;
  *)
    echo "usage: $0 direct|l4|front-proxy|client-side" >&2; exit 2 ;;
esac
"$BIN" example gateway --listen 127.0.0.1:8080 --user "$user" --alive "$alive" --log-level warning & pids+=($!)

ready=""
for _ in $(seq 1 100); do
  if curl -fs http://127.0.0.1:8080/alive >/dev/null 2>&1; then ready=1; break; fi
  sleep 0.1
done
if [ -z "$ready" ]; then
  echo "the gateway did not answer GET /alive within 10 s (ports in use?)" >&2
  exit 1
fi
echo "the gateway is at http://127.0.0.1:8080 ($MODE); try examples/front-proxy/spread.sh. Ctrl-C stops everything."
wait
