#!/usr/bin/env bash
# grpc-sync against tonic, side by side in one run (issue 7).
#
#   scripts/compare.sh [--rounds N] [--duration S] [--quick] [--workers N] [--out DIR]
#   scripts/compare.sh --report [--out DIR]    # reprint the table of a previous run's samples
#
# Builds grpc-sync's bench binaries (examples/bench_{server,client}.rs) and tonic's (the separate
# workspace compare/), then runs every scenario for both implementations, alternating which goes
# first, for N rounds (default 5; --quick: 2 rounds of 1 s). The server is pinned to CPU 0 and
# the load to CPU 1 with taskset. Scenarios:
#
#   server  h2load (nghttp2-client) → SayHello over h2c at 1 conn × 1 stream, 4 conns × 32
#           streams, 64 conns × 1 stream; req/s, mean latency, server CPU µs per request (from
#           /proc/<pid>/stat before and after);
#   client  each bench client → the tonic server, 1 and 16 callers sharing one channel, and the
#           same against the grpc-sync server; calls/s, and calls per client CPU-second;
#   stream  each client → its own server, ServerStream 100k × 1 KiB and 1k × 1 MiB.
#
# Prints a markdown table of medians, the ratio of the medians (ours / tonic) and the median of
# the per-round ratios (each round runs both back to back, so that one resists a noisy machine
# better), and keeps the raw samples in DIR (default target/compare). Needs h2load and protoc (tonic-prost-build): as root it
# apt-installs nghttp2-client and protobuf-compiler if missing, otherwise it says what to install.
# Every run is bounded (timeouts on every process) and all traffic stays on 127.0.0.1.
set -euo pipefail

ROUNDS=5
DURATION=3
WARMUP=1
WORKERS=${GRPC_SYNC_BENCH_WORKERS:-4}
OUT=target/compare
QUICK=0
REPORT_ONLY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --report) REPORT_ONLY=1; shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ "$QUICK" = 1 ]; then ROUNDS=2; DURATION=1; WARMUP=0.3; fi

cd "$(dirname "$0")/.."
ROOT=$PWD
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

need() { # need COMMAND DEBIAN-PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing $2 (for $1)" >&2
    (apt-get install -y "$2" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y "$2" >/dev/null; })
  fi
  command -v "$1" >/dev/null 2>&1 || { echo "error: $1 is missing: install Debian's $2" >&2; exit 1; }
}
if [ "$REPORT_ONLY" = 0 ]; then
need h2load nghttp2-client
need protoc protobuf-compiler
need taskset util-linux
if [ "$(nproc)" -lt 2 ]; then echo "error: needs 2 CPUs for the pinning" >&2; exit 1; fi

echo "building (release)..." >&2
cargo build --quiet --release --example bench_server --example bench_client
cargo build --quiet --release --manifest-path compare/Cargo.toml
echo "grpc-sync vs tonic — $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), load average at start $(cut -d' ' -f1-3 /proc/loadavg); $ROUNDS rounds × ${DURATION}s alternating; server pinned to CPU 0, load to CPU 1; grpc-sync --workers $WORKERS" >"$OUT/header.txt"
fi
OURS_SERVER=$ROOT/target/release/examples/bench_server
OURS_CLIENT=$ROOT/target/release/examples/bench_client
TONIC_SERVER=$ROOT/compare/target/release/tonic_server
TONIC_CLIENT=$ROOT/compare/target/release/tonic_client

# The h2load request body: a gRPC frame (flag 0, length 7) holding HelloRequest{name: "world"}.
REQ=$OUT/hello.grpc
printf '\x00\x00\x00\x00\x07\x0a\x05world' >"$REQ"

# Below Linux's ephemeral range (32768 and up), so that no client socket of this machine can
# be holding the port we pick.
PORT=$((20000 + RANDOM % 12000))
SERVER_PID=
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

cpu_ticks() { # utime + stime of a process, in clock ticks (1/100 s)
  awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

start_server() { # start_server ours|tonic
  PORT=$((PORT + 1))
  local bin=$OURS_SERVER args=(--port "$PORT" --workers "$WORKERS")
  if [ "$1" = tonic ]; then bin=$TONIC_SERVER; args=(--port "$PORT"); fi
  taskset -c 0 "$bin" "${args[@]}" >"$OUT/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 100); do
    if timeout 5 taskset -c 1 "$OURS_CLIENT" check --addr "127.0.0.1:$PORT" >/dev/null 2>&1; then return 0; fi
    sleep 0.05
  done
  echo "error: $1 server did not come up" >&2; cat "$OUT/server.log" >&2; exit 1
}

stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}

json() { # json FIELD < line
  sed -E "s/.*\"$1\":(\"?)([^,\"}]*).*/\2/"
}

# Medians per scenario and implementation, and the ratio ours / tonic.
report() { # report SAMPLES-FILE
  cat "$OUT/header.txt" 2>/dev/null || true
  echo "(load average when the table was printed: $(cut -d' ' -f1-3 /proc/loadavg))"
  echo
  echo "| scenario | grpc-sync | tonic | ratio of medians | median of per-round ratios | grpc-sync detail (medians) | tonic detail (medians) | rounds |"
  echo "|---|---|---|---|---|---|---|---|"
  awk -F'\t' '
    function median(key,    n, i, j, t, a) {
      n = split(vals[key], a, " ")
      for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    {
      key = $2 SUBSEP $3
      vals[key] = (key in vals) ? vals[key] " " $4 : $4
      per[$2, $3, $1] = $4; if (!(($2, $1) in rseen)) { rseen[$2, $1] = 1; rounds[$2] = rounds[$2] " " $1 }
      unit[$2] = $5; cnt[key]++
      if (!($2 in seen)) { seen[$2] = 1; order[++ns] = $2 }
      m = split($6, kv, " ")
      for (i = 1; i <= m; i++) {
        split(kv[i], p, "="); ek = key SUBSEP p[1]
        vals[ek] = (ek in vals) ? vals[ek] " " p[2] : p[2]
        if (!((key, p[1]) in hasx)) { hasx[key, p[1]] = 1; xs[key] = xs[key] " " p[1] }
      }
    }
    function detail(key,    n, i, f, out) {
      n = split(xs[key], f, " "); out = ""
      for (i = 1; i <= n; i++) out = out (i > 1 ? ", " : "") f[i] " " median(key SUBSEP f[i])
      return out
    }
    END {
      for (s = 1; s <= ns; s++) {
        sc = order[s]; o = sc SUBSEP "ours"; t = sc SUBSEP "tonic"
        mo = median(o); mt = median(t)
        n = split(rounds[sc], rs, " "); rk = sc SUBSEP "ratio"; delete vals[rk]
        for (i = 1; i <= n; i++) if (per[sc, "tonic", rs[i]] > 0 && ((sc, "ours", rs[i]) in per)) {
          r = per[sc, "ours", rs[i]] / per[sc, "tonic", rs[i]]
          vals[rk] = (rk in vals) ? vals[rk] " " r : r
        }
        printf "| %s | %.0f %s | %.0f %s | %.2f× | %.2f× | %s | %s | %d |\n", sc, mo, unit[sc], mt, unit[sc], (mt > 0 ? mo / mt : 0), median(rk), detail(o), detail(t), cnt[o]
      }
    }' "$1"
}


RESULTS=$OUT/samples.tsv
if [ "$REPORT_ONLY" = 1 ]; then report "$RESULTS"; exit 0; fi
: >"$RESULTS"
record() { # record ROUND SCENARIO IMPL VALUE UNIT EXTRA
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RESULTS"
}

h2load_run() { # h2load_run CONNS STREAMS SECONDS -> prints "succeeded req_per_s mean_us"
  local out ms
  ms=$(awk -v s="$3" 'BEGIN { printf "%dms", s * 1000 }')
  out=$(timeout 120 taskset -c 1 h2load -c "$1" -m "$2" -t 1 -D "$ms" -d "$REQ" \
    -H 'content-type: application/grpc' -H 'te: trailers' \
    "http://127.0.0.1:$PORT/helloworld.Greeter/SayHello" 2>&1) || { echo "$out" >&2; return 1; }
  local ok rps mean
  ok=$(echo "$out" | sed -nE 's/^requests: .* ([0-9]+) succeeded.*/\1/p')
  rps=$(echo "$out" | sed -nE 's/^finished in [^,]*, ([0-9.]+) req\/s.*/\1/p')
  mean=$(echo "$out" | awk '/^time for request:/ { v=$6; if (v ~ /us$/) { sub(/us/,"",v) } else if (v ~ /ms$/) { sub(/ms/,"",v); v*=1000 } else if (v ~ /s$/) { sub(/s/,"",v); v*=1e6 } print v }')
  echo "$ok $rps $mean"
}

server_scenarios() { # server_scenarios ROUND IMPL
  local round=$1 impl=$2 spec c m name c0 c1 res ok rps mean
  start_server "$impl"
  for spec in "1 1" "4 32" "64 1"; do
    set -- $spec; c=$1; m=$2; name="server ${c}x${m}"
    h2load_run "$c" "$m" "$WARMUP" >/dev/null
    c0=$(cpu_ticks "$SERVER_PID")
    res=$(h2load_run "$c" "$m" "$DURATION")
    c1=$(cpu_ticks "$SERVER_PID")
    read -r ok rps mean <<<"$res"
    record "$round" "$name" "$impl" "$rps" "req/s" \
      "mean_us=$mean cpu_us_per_req=$(awk -v a="$c0" -v b="$c1" -v n="$ok" 'BEGIN { printf "%.2f", (b - a) * 10000 / (n > 0 ? n : 1) }')"
  done
  stop_server
}

client_scenarios() { # client_scenarios ROUND IMPL SERVER-NAME (against the server running now)
  local round=$1 impl=$2 target=$3 n bin line rpcs cpu
  bin=$OURS_CLIENT; [ "$impl" = tonic ] && bin=$TONIC_CLIENT
  for n in 1 16; do
    line=$(timeout 120 taskset -c 1 "$bin" unary --addr "127.0.0.1:$PORT" --concurrency "$n" \
      --duration "$DURATION" --warmup "$WARMUP")
    rpcs=$(json rpcs <<<"$line"); cpu=$(json cpu_s <<<"$line")
    record "$round" "client ${n} caller(s) → $target" "$impl" "$(json rps <<<"$line")" "calls/s" \
      "p50_us=$(json p50_us <<<"$line") p99_us=$(json p99_us <<<"$line") cpu_us_per_call=$(awk -v c="$cpu" -v n="$rpcs" 'BEGIN { printf "%.2f", c * 1e6 / (n > 0 ? n : 1) }')"
    # The client's own efficiency, whatever the server's speed: calls per CPU-second of the
    # client process (higher is better).
    record "$round" "client ${n} caller(s) → $target, calls per client CPU-s" "$impl" \
      "$(awk -v c="$cpu" -v n="$rpcs" 'BEGIN { printf "%.0f", (c > 0 ? n / c : 0) }')" "calls/CPU-s" ""
  done
}

stream_scenarios() { # stream_scenarios ROUND IMPL (own client → own server)
  local round=$1 impl=$2 bin spec line
  bin=$OURS_CLIENT; [ "$impl" = tonic ] && bin=$TONIC_CLIENT
  start_server "$impl"
  for spec in "100000 1024 msgs_per_s msgs/s 1KiB" "1000 1048576 mib_per_s MiB/s 1MiB"; do
    set -- $spec
    line=$(timeout 300 taskset -c 1 "$bin" stream --addr "127.0.0.1:$PORT" --count "$1" --size "$2" \
      --duration "$DURATION")
    record "$round" "stream $1 × $5" "$impl" "$(json "$3" <<<"$line")" "$4" \
      "cpu_s=$(json cpu_s <<<"$line") secs=$(json secs <<<"$line")"
  done
  stop_server
}

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for round in $(seq "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then order="ours tonic"; else order="tonic ours"; fi
  echo "round $round/$ROUNDS ($order first)" >&2
  for impl in $order; do server_scenarios "$round" "$impl"; done
  start_server tonic
  for impl in $order; do client_scenarios "$round" "$impl" tonic; done
  stop_server
  # The same against our server, which has more headroom on one core than tonic's: shows the
  # clients' own limits where the tonic server caps both.
  start_server ours
  for impl in $order; do client_scenarios "$round" "$impl" grpc-sync; done
  stop_server
  for impl in $order; do stream_scenarios "$round" "$impl"; done
done

report "$RESULTS" | tee "$OUT/table.md"
