#!/usr/bin/env bash
# Instructions per proxied h2c request, counted by callgrind: deterministic,
# unlike requests/s on a shared 2-core VM, so it shows what a change to the
# data path costs or saves. It runs the proxy under valgrind twice (N1 and N2
# requests through one listener to the benchmark's nginx h2c backend, started
# by ../shared/bench/anchors.sh) and divides the difference in instructions by
# N2 - N1, so startup and shutdown cancel out.
#
# Usage: bench/instructions.sh [BINARY]     (default .build/release/swiftmesh)
# Knobs: N1=2000 N2=8000; OUT=bench/results/instructions (callgrind files)
# Read the profile: callgrind_annotate "$OUT/callgrind-8000.out" | head -60
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${1:-$REPO/.build/release/swiftmesh}"
N1="${N1:-2000}" N2="${N2:-8000}"
OUT="${OUT:-$REPO/bench/results/instructions}"
ANCHORS="${ANCHORS:-$REPO/../shared/bench/anchors.sh}"
BACKEND_H2=18081 LISTEN=18198 ADMIN=18199
command -v valgrind >/dev/null || { echo "bench/instructions.sh: needs valgrind (apt-get install valgrind)" >&2; exit 1; }
command -v h2load >/dev/null || { echo "bench/instructions.sh: needs h2load (apt-get install nghttp2-client)" >&2; exit 1; }
mkdir -p "$OUT"
curl -s -o /dev/null --http2-prior-knowledge "http://127.0.0.1:$BACKEND_H2/" || "$ANCHORS" start >/dev/null
curl -sf -o /dev/null --http2-prior-knowledge "http://127.0.0.1:$BACKEND_H2/" \
  || { echo "bench/instructions.sh: no h2c backend on 127.0.0.1:$BACKEND_H2" >&2; exit 1; }

# Without debug info valgrind starts in seconds instead of minutes.
cp "$BIN" "$OUT/swiftmesh"; strip --strip-debug "$OUT/swiftmesh"
cat >"$OUT/proxy.yaml" <<YAML
admin: { listen: 127.0.0.1:$ADMIN }
listeners:
  - name: h2
    listen: 127.0.0.1:$LISTEN
    routes: [ { match: { pathPrefix: / }, cluster: backend } ]
clusters:
  - { name: backend, protocol: http2, endpoints: [127.0.0.1:$BACKEND_H2] }
YAML

instructions() { # requests -> total instructions of a run serving that many
  local n=$1 pid
  valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind-$n.out" \
    "$OUT/swiftmesh" proxy --config "$OUT/proxy.yaml" --threads 1 --log-level error >"$OUT/valgrind-$n.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do
    curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$ADMIN/ready" && break
    kill -0 "$pid" 2>/dev/null || { echo "bench/instructions.sh: the proxy exited, see $OUT/valgrind-$n.log" >&2; exit 1; }
    sleep 0.2
  done
  h2load -n "$n" -c10 -m10 "http://127.0.0.1:$LISTEN/" >"$OUT/h2load-$n.out" 2>&1
  kill -INT "$pid"; wait "$pid" || true
  grep -q "status codes: $n 2xx" "$OUT/h2load-$n.out" \
    || { echo "bench/instructions.sh: not every request succeeded, see $OUT/h2load-$n.out" >&2; exit 1; }
  callgrind_annotate "$OUT/callgrind-$n.out" 2>/dev/null | awk '/PROGRAM TOTALS/ && !done {gsub(",", "", $1); print $1; done = 1}'
}
a=$(instructions "$N1"); b=$(instructions "$N2")
echo "instructions per proxied h2c request: $(( (b - a) / (N2 - N1) )) (runs of $N1 and $N2 requests: $a and $b)"
