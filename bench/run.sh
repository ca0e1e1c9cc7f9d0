#!/usr/bin/env bash
# SwiftMesh against nginx and HAProxy in one run: each proxy with one worker
# thread, in front of the same nginx backend, HTTP/1.1 keep-alive (wrk) and
# h2c (h2load). Prints a table and regenerates the generated section of
# docs/benchmarks.md. This is a benchmark, not a test: it fails only when a
# run cannot be measured, never because a number is low.
#
# Usage: bench/run.sh
# Knobs (environment):
#   ROUNDS=3            rounds; each measures every proxy once, the report takes medians
#   DURATION=10s        measured time per proxy, protocol and round (Ns or Nm)
#   LATENCY_DURATION=5s h2c only: the separate run whose per-request log gives p50/p99
#   WARMUP=2s           unmeasured load before each measured run
#   CONNECTIONS=50      wrk connections (one wrk thread)
#   H2_CLIENTS=10       h2load connections (one h2load thread)
#   H2_STREAMS=10       h2load concurrent streams per connection
#   SWIFTMESH_BIN=.build/release/swiftmesh
#   SWIFTMESH_ARGS=     extra arguments appended to `swiftmesh proxy`
#   SKIP_SWIFTMESH=1    measure only nginx and HAProxy (no binary needed)
#   WRITE_DOCS=0|1      rewrite docs/benchmarks.md (default 1; 0 with SKIP_SWIFTMESH)
#   ANCHORS=../shared/bench/anchors.sh   ANCHORS_DIR=/tmp/anchors
#   READY_TIMEOUT=30    seconds to wait for SwiftMesh's /ready
#   SWIFTMESH_PORT_BASE=18094  SwiftMesh's h1 listener; h2c is +1, admin +2
# Raw outputs: bench/results/<timestamp>/ (bench/results/latest points there).
set -u -o pipefail

# The exact command, with the knobs that were set, for the report.
COMMAND="bench/run.sh"
for k in SWIFTMESH_PORT_BASE SWIFTMESH_ARGS SWIFTMESH_BIN SKIP_SWIFTMESH WRITE_DOCS ANCHORS H2_STREAMS H2_CLIENTS CONNECTIONS WARMUP DURATION ROUNDS; do
  [ -n "${!k+x}" ] && COMMAND="$k=$(printf '%q' "${!k}") $COMMAND"
done
BENCH_DIR="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$BENCH_DIR/.." && pwd)"
ANCHORS="${ANCHORS:-$REPO/../shared/bench/anchors.sh}"
ANCHORS_DIR="${ANCHORS_DIR:-/tmp/anchors}"
SWIFTMESH_BIN="${SWIFTMESH_BIN:-$REPO/.build/release/swiftmesh}"
SKIP_SWIFTMESH="${SKIP_SWIFTMESH:-0}"
if [ "$SKIP_SWIFTMESH" = 1 ]; then WRITE_DOCS="${WRITE_DOCS:-0}"; else WRITE_DOCS="${WRITE_DOCS:-1}"; fi
ROUNDS="${ROUNDS:-3}"
CONNECTIONS="${CONNECTIONS:-50}"
H2_CLIENTS="${H2_CLIENTS:-10}"
H2_STREAMS="${H2_STREAMS:-10}"
READY_TIMEOUT="${READY_TIMEOUT:-30}"
DOC="$REPO/docs/benchmarks.md"

# Anchor ports (fixed by anchors.sh) and SwiftMesh's own.
BACKEND_H1=18080 BACKEND_H2=18081
NGINX_H1=18090 HAPROXY_H1=18091 NGINX_H2=18092 HAPROXY_H2=18093
SM_BASE="${SWIFTMESH_PORT_BASE:-18094}"
[[ "$SM_BASE" =~ ^[1-9][0-9]*$ ]] && [ "$SM_BASE" -le 65533 ] || { echo "bench/run.sh: bad SWIFTMESH_PORT_BASE '$SM_BASE'" >&2; exit 1; }
SM_H1=$SM_BASE SM_H2=$((SM_BASE + 1)) SM_ADMIN=$((SM_BASE + 2))

die() { echo "bench/run.sh: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }

seconds() { # 10 | 10s | 2m -> integer seconds
  local v="$1" n
  case "$v" in *s) n="${v%s}" ;; *m) n="${v%m}"; [[ "$n" =~ ^[0-9]+$ ]] && n=$((n * 60)) ;; *) n="$v" ;; esac
  [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -gt 0 ] || die "not a duration: '$v' (use e.g. 10s)"
  echo "$n"
}
DUR="$(seconds "${DURATION:-10s}")" || exit 1
WARM="$(seconds "${WARMUP:-2s}")" || exit 1
LAT="$(seconds "${LATENCY_DURATION:-5s}")" || exit 1
for n in "$ROUNDS" "$CONNECTIONS" "$H2_CLIENTS" "$H2_STREAMS" "$READY_TIMEOUT"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "not a positive integer: '$n'"
done

# ------------------------------------------------------------------ tools
need_install=0
for t in nginx haproxy wrk h2load curl; do command -v "$t" >/dev/null || need_install=1; done
if [ "$need_install" = 1 ]; then
  log "installing nginx-light haproxy wrk nghttp2-client curl"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    nginx-light haproxy wrk nghttp2-client curl >/dev/null || die "could not install the load tools"
fi
command -v python3 >/dev/null || die "python3 is required (bench/report.py)"
[ -f "$ANCHORS" ] || die "anchors script not found at $ANCHORS (set ANCHORS=)"

# ------------------------------------------------------------------ cleanup
SM_PID="" SAMPLER_PID="" LOAD_PID="" ANCHORS_STARTED=0
stop_pid() { # pid: TERM, bounded wait, KILL, reap (only our own children)
  local pid="$1" i
  kill -TERM "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
  for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  return 0
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "$LOAD_PID" ] && stop_pid "$LOAD_PID"
  [ -n "$SAMPLER_PID" ] && stop_pid "$SAMPLER_PID"
  if [ -n "$SM_PID" ]; then log "stopping swiftmesh (pid $SM_PID)"; stop_pid "$SM_PID"; fi
  if [ "$ANCHORS_STARTED" = 1 ]; then "$ANCHORS" stop >/dev/null 2>&1 || true; log "anchors stopped"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------ results dir
STAMP="$(date -u +%Y%m%d-%H%M%S)"
OUT="$BENCH_DIR/results/$STAMP"
mkdir -p "$OUT" || die "cannot create $OUT"
ln -sfn "$STAMP" "$BENCH_DIR/results/latest"
log "raw outputs in $OUT"

is_listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
body_ok() { # curl args... -> 0 if the backend's body came back
  [ "$(curl -s --max-time 3 "$@" 2>/dev/null)" = "hello from backend" ]
}

# ------------------------------------------------------------------ anchors
if body_ok "http://127.0.0.1:$NGINX_H1/" && body_ok "http://127.0.0.1:$HAPROXY_H1/"; then
  log "anchors already running; reusing them (they will be left running)"
else
  log "starting anchors ($ANCHORS)"
  ANCHORS_STARTED=1
  (cd "$OUT" && "$ANCHORS" start) >"$OUT/anchors.log" 2>&1
  grep -q started "$OUT/anchors.log" || { cat "$OUT/anchors.log" >&2; die "anchors did not start"; }
fi
for u in "$NGINX_H1" "$HAPROXY_H1" "$BACKEND_H1"; do
  body_ok "http://127.0.0.1:$u/" || die "no backend body through 127.0.0.1:$u"
done
for u in "$NGINX_H2" "$HAPROXY_H2" "$BACKEND_H2"; do
  body_ok --http2-prior-knowledge "http://127.0.0.1:$u/" || die "no backend body over h2c through 127.0.0.1:$u"
done

pids_of() { # proxy -> the pids whose RSS counts for it
  local master c
  case "$1" in
    nginx) master="$(cat "$ANCHORS_DIR/proxy.pid" 2>/dev/null)" || return 1
           echo "$master"; for c in $(pgrep -P "$master"); do echo "$c"; done ;;
    haproxy) cat "$ANCHORS_DIR/haproxy.pid" 2>/dev/null || return 1 ;;
    swiftmesh) [ -n "$SM_PID" ] && echo "$SM_PID" ;;
  esac
}
rss_kib() { # pids... -> summed VmRSS in KiB
  local sum=0 p k v _
  for p in "$@"; do
    [ -r "/proc/$p/status" ] || continue
    while read -r k v _; do [ "$k" = VmRSS: ] && sum=$((sum + v)); done <"/proc/$p/status"
  done
  echo "$sum"
}
status_kib() { # pid field -> that /proc/PID/status field in KiB (RssAnon, RssFile, ...)
  local k v _
  while read -r k v _; do [ "$k" = "$2:" ] && { echo "$v"; return; }; done <"/proc/$1/status"
  echo 0
}
start_sampler() { # outfile pids...: summed VmRSS every 0.2s, one sample a line (report.py takes the peak)
  local out="$1"; shift
  : >"$out"
  ( while :; do echo "$(rss_kib "$@")" >>"$out"; sleep 0.2; done ) &
  SAMPLER_PID=$!
}
stop_sampler() { [ -n "$SAMPLER_PID" ] && stop_pid "$SAMPLER_PID"; SAMPLER_PID=""; }

# ------------------------------------------------------------------ swiftmesh
PROXIES="nginx haproxy"
if [ "$SKIP_SWIFTMESH" != 1 ]; then
  [ -x "$SWIFTMESH_BIN" ] || die "no SwiftMesh binary at $SWIFTMESH_BIN (run scripts/build, set SWIFTMESH_BIN=, or SKIP_SWIFTMESH=1)"
  "$SWIFTMESH_BIN" proxy --help >/dev/null 2>&1 || die "'$SWIFTMESH_BIN proxy --help' failed"
  for p in "$SM_H1" "$SM_H2" "$SM_ADMIN"; do
    is_listening "$p" && die "port 127.0.0.1:$p is already in use (another SwiftMesh? set SWIFTMESH_PORT_BASE=)"
  done
  cat >"$OUT/swiftmesh.yaml" <<YAML
admin: { listen: 127.0.0.1:$SM_ADMIN }
listeners:
  - name: h1
    listen: 127.0.0.1:$SM_H1
    routes: [ { match: { pathPrefix: / }, cluster: h1 } ]
  - name: h2
    listen: 127.0.0.1:$SM_H2
    routes: [ { match: { pathPrefix: / }, cluster: h2 } ]
clusters:
  - { name: h1, protocol: http1, endpoints: [127.0.0.1:$BACKEND_H1] }
  - { name: h2, protocol: http2, endpoints: [127.0.0.1:$BACKEND_H2] }
YAML
  # shellcheck disable=SC2086  # SWIFTMESH_ARGS is a word list on purpose
  "$SWIFTMESH_BIN" proxy --config "$OUT/swiftmesh.yaml" --threads 1 ${SWIFTMESH_ARGS:-} \
    >"$OUT/swiftmesh.log" 2>&1 </dev/null &
  SM_PID=$!
  log "swiftmesh started (pid $SM_PID), waiting for /ready"
  deadline=$((SECONDS + READY_TIMEOUT))
  until [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$SM_ADMIN/ready")" = 200 ]; do
    if ! kill -0 "$SM_PID" 2>/dev/null; then
      wait "$SM_PID"; rc=$?; SM_PID=""
      tail -n 30 "$OUT/swiftmesh.log" >&2; die "swiftmesh exited with $rc before /ready"
    fi
    [ "$SECONDS" -lt "$deadline" ] || { tail -n 30 "$OUT/swiftmesh.log" >&2; die "no 200 from /ready within ${READY_TIMEOUT}s"; }
    sleep 0.2
  done
  rss_kib "$SM_PID" >"$OUT/swiftmesh-ready.rss"
  body_ok "http://127.0.0.1:$SM_H1/" || { tail -n 30 "$OUT/swiftmesh.log" >&2; die "no backend body through swiftmesh h1 (:$SM_H1)"; }
  body_ok --http2-prior-knowledge "http://127.0.0.1:$SM_H2/" \
    || { tail -n 30 "$OUT/swiftmesh.log" >&2; die "no backend body through swiftmesh h2c (:$SM_H2)"; }
  # A short, light warm-up (a few hundred requests per listener), then idle RSS.
  h2load --h1 -n 200 -c 2 "http://127.0.0.1:$SM_H1/" >"$OUT/swiftmesh-idle-warmup.out" 2>&1
  h2load -n 200 -c 2 -m 2 "http://127.0.0.1:$SM_H2/" >>"$OUT/swiftmesh-idle-warmup.out" 2>&1
  sleep 1
  rss_kib "$SM_PID" >"$OUT/swiftmesh-idle.rss"
  # What the idle RSS is made of: the process's own memory (heap, stacks)
  # and the pages of the binary it maps, which the page cache shares.
  status_kib "$SM_PID" RssAnon >"$OUT/swiftmesh-idle-anon.rss"
  status_kib "$SM_PID" RssFile >"$OUT/swiftmesh-idle-file.rss"
  log "swiftmesh RSS: $(cat "$OUT/swiftmesh-ready.rss") KiB at /ready, $(cat "$OUT/swiftmesh-idle.rss") KiB idle after warm-up"
  PROXIES="$PROXIES swiftmesh"
fi

# ------------------------------------------------------------------ metadata
cpu_busy_pct() { # share of all cores busy over one second, from /proc/stat
  local _c u1 n1 s1 i1 w1 q1 sq1 st1 u2 n2 s2 i2 w2 q2 sq2 st2 busy total
  read -r _c u1 n1 s1 i1 w1 q1 sq1 st1 _ </proc/stat; sleep 1
  read -r _c u2 n2 s2 i2 w2 q2 sq2 st2 _ </proc/stat
  busy=$(( (u2+n2+s2+q2+sq2+st2) - (u1+n1+s1+q1+sq1+st1) ))
  total=$(( busy + (i2+w2) - (i1+w1) ))
  echo $(( total > 0 ? 100 * busy / total : 0 ))
}
BUSY="$(cpu_busy_pct)"
if [ "$BUSY" -gt 20 ]; then
  log "WARNING: the machine is ${BUSY}% busy before any load (another job is running?); numbers will be noisy"
fi
first_line() { "$@" 2>&1 | head -n 1; }
WRK_CMD="wrk -t1 -c$CONNECTIONS -d${DUR}s --latency URL"
# h2load reports no percentiles of its own; its per-request log costs the
# load generator CPU that, on a small machine, a CPU-bound proxy would have
# used. So requests/s come from a run without the log, and p50/p99 from a
# second, shorter run with it.
H2LOAD_CMD="h2load -t1 -c$H2_CLIENTS -m$H2_STREAMS -D $DUR URL (requests/s), then -D $LAT --log-file=FILE (p50/p99)"
{
  echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "nproc=$(nproc)"
  echo "cpu=$(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo | head -n 1)"
  echo "kernel=$(uname -r)"
  echo "mem_total=$(awk '/^MemTotal:/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
  echo "loadavg=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "busy_before=$BUSY"
  echo "command=$COMMAND"
  echo "rounds=$ROUNDS"
  echo "duration=$DUR"
  echo "warmup=$WARM"
  echo "connections=$CONNECTIONS"
  echo "h2_clients=$H2_CLIENTS"
  echo "h2_streams=$H2_STREAMS"
  echo "wrk_cmd=$WRK_CMD"
  echo "h2load_cmd=$H2LOAD_CMD"
  echo "nginx_version=$(first_line nginx -v | sed 's/^nginx version: //')"
  echo "haproxy_version=$(first_line haproxy -v | awk '{print $1, $3}')"
  echo "wrk_version=$(first_line wrk -v | awk '{print $1, $2}')"
  echo "h2load_version=$(first_line h2load --version)"
  if [ "$SKIP_SWIFTMESH" != 1 ]; then
    v="$(timeout 5 "$SWIFTMESH_BIN" --version 2>/dev/null)" && v="$(echo "$v" | head -n 1)" || v=""
    echo "swiftmesh_version=${v:-(no --version)}"
  else
    echo "swiftmesh_version=not run"
  fi
  rev="$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo 'no commit')"
  [ -n "$(git -C "$REPO" status --porcelain 2>/dev/null | head -n 1)" ] && rev="$rev + uncommitted changes"
  echo "git_rev=$rev"
} >"$OUT/meta.env"

# ------------------------------------------------------------------ load
url_for() { # proto proxy
  case "$1-$2" in
    h1-nginx) echo "http://127.0.0.1:$NGINX_H1/" ;;  h2-nginx) echo "http://127.0.0.1:$NGINX_H2/" ;;
    h1-haproxy) echo "http://127.0.0.1:$HAPROXY_H1/" ;; h2-haproxy) echo "http://127.0.0.1:$HAPROXY_H2/" ;;
    h1-swiftmesh) echo "http://127.0.0.1:$SM_H1/" ;; h2-swiftmesh) echo "http://127.0.0.1:$SM_H2/" ;;
  esac
}
LIMIT=$((DUR + WARM + 60)) # hard bound on any one load-generator run
load() { # proto seconds url outfile [logfile (h2 only)] -> exit status of the generator
  # Run in the background and `wait`, so a signal to this script is handled at
  # once (cleanup stops the generator) instead of after the run.
  if [ "$1" = h1 ]; then
    timeout -k 5 "$LIMIT" wrk -t1 -c"$CONNECTIONS" -d"$2"s --latency "$3" >"$4" 2>"$4.err" &
  else
    timeout -k 5 "$LIMIT" h2load -t1 -c"$H2_CLIENTS" -m"$H2_STREAMS" -D "$2" ${5:+--log-file="$5"} "$3" >"$4" 2>"$4.err" &
  fi
  LOAD_PID=$!
  wait "$LOAD_PID"; local rc=$?
  LOAD_PID=""
  return "$rc"
}
# Each round measures every proxy once; the starting proxy rotates, so none
# is always measured first (or right after the same neighbour).
read -r -a ORDER <<<"$PROXIES"
for round in $(seq 1 "$ROUNDS"); do
  for proto in h1 h2; do
    for i in "${!ORDER[@]}"; do
      proxy="${ORDER[$(( (i + round - 1) % ${#ORDER[@]} ))]}"
      url="$(url_for "$proto" "$proxy")"
      base="$OUT/$proto-$proxy.r$round"
      if [ "$proxy" = swiftmesh ] && ! kill -0 "$SM_PID" 2>/dev/null; then
        log "$proto $proxy: swiftmesh is no longer running; skipping"
        echo "swiftmesh exited" >"$base.out"; echo 1 >"$base.rc"; continue
      fi
      read -r -a pids <<<"$(pids_of "$proxy" | tr '\n' ' ')"
      [ "${#pids[@]}" -gt 0 ] || die "no pid found for $proxy"
      load "$proto" "$WARM" "$url" "$base.warmup.out"
      start_sampler "$base.rss" "${pids[@]}"
      load "$proto" "$DUR" "$url" "$base.out"
      echo $? >"$base.rc"
      stop_sampler
      if [ "$proto" = h2 ]; then
        load h2 "$LAT" "$url" "$base.latency.out" "$base.log" || echo $? >"$base.rc"
      fi
      printf 'round %s  %-3s %-10s %s\n' "$round" "$proto" "$proxy" \
        "$(python3 "$BENCH_DIR/report.py" line "$proto" "$base.out" "$base.log")" >&2
      sleep 1
    done
  done
done
if [ -n "$SM_PID" ]; then sleep 1; rss_kib "$SM_PID" >"$OUT/swiftmesh-after-load.rss"; fi

# ------------------------------------------------------------------ report
echo
if [ "$WRITE_DOCS" = 1 ]; then
  python3 "$BENCH_DIR/report.py" render "$OUT" "$DOC"; rc=$?
  log "updated ${DOC#"$REPO"/}"
else
  python3 "$BENCH_DIR/report.py" render "$OUT" ""; rc=$?
  log "docs/benchmarks.md left unchanged (WRITE_DOCS=$WRITE_DOCS)"
fi
exit "$rc"
