#!/usr/bin/env bash
# Many idle connections: what they cost grpc-sync's bench server and tonic's, side by side.
#
#   scripts/flood.sh [--rounds R] [--timeout S] [--inflight N] [--no-pin] [--no-build]
#                    [--out DIR] [COUNT...]
#
# Builds examples/bench_server, examples/conn_flood and tonic's server (the separate workspace
# compare/), then for each round (default 2), each COUNT (default 1000) and each server
# (alternating which goes first): starts a fresh server on a free port (--port 0; the port is
# read from /proc) with the shell's open-files soft limit raised to the hard limit, runs
# conn_flood against it (COUNT idle h2c connections, 5 SayHello calls while they are open, then
# the close) and stops the server. Prints a markdown table: connections established and per
# second, the server's RSS growth per connection, its threads and fds with all open, its RSS
# after the close, the unary latencies while all were open, how long it took to let go of the
# connections; "load" is the 1-minute load average when that run started (the machine's other
# work skews connections per second and latencies, not the memory, thread and fd counts).
# Raw outputs stay in DIR (default target/flood).
#
# As in scripts/compare.sh, the server is pinned to CPU 0 and conn_flood to CPU 1 with taskset
# when there are 2 CPUs or more (--no-pin: not). Needs protoc to build tonic's side: as root it
# apt-installs protobuf-compiler if missing. Every step is bounded (timeouts on each process,
# deadlines on each wait), servers are killed on exit, and all traffic stays on 127.0.0.1.
set -euo pipefail

ROUNDS=2
TIMEOUT=60
INFLIGHT=100
PIN=1
BUILD=1
OUT=target/flood
COUNTS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --inflight) INFLIGHT=$2; shift 2 ;;
    --no-pin) PIN=0; shift ;;
    --no-build) BUILD=0; shift ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    -*) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
    *) COUNTS+=("$1"); shift ;;
  esac
done
[ ${#COUNTS[@]} -gt 0 ] || COUNTS=(1000)
for n in "${COUNTS[@]}" "$ROUNDS" "$TIMEOUT" "$INFLIGHT"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "error: $n is not a positive whole number" >&2; exit 2; }
done

cd "$(dirname "$0")/.."
ROOT=$PWD
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
OURS_SERVER=$ROOT/target/release/examples/bench_server
FLOOD=$ROOT/target/release/examples/conn_flood
TONIC_SERVER=$ROOT/compare/target/release/tonic_server

need() { # need COMMAND DEBIAN-PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing $2 (for $1)" >&2
    (apt-get install -y "$2" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y "$2" >/dev/null; })
  fi
  command -v "$1" >/dev/null 2>&1 || { echo "error: $1 is missing: install Debian's $2" >&2; exit 1; }
}

if [ "$BUILD" = 1 ]; then
  need protoc protobuf-compiler
  echo "building (release)..." >&2
  cargo build --quiet --release --example bench_server --example conn_flood
  cargo build --quiet --release --manifest-path compare/Cargo.toml
fi
for bin in "$OURS_SERVER" "$FLOOD" "$TONIC_SERVER"; do
  [ -x "$bin" ] || { echo "error: $bin is missing (run without --no-build)" >&2; exit 1; }
done

# The servers inherit this shell's limit; each bench server holds a few descriptors per
# connection (grpc-sync 3 at the time of writing, tonic 1).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
MAX=0
for n in "${COUNTS[@]}"; do [ "$n" -gt "$MAX" ] && MAX=$n; done
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((MAX + 100)) ]; then
  echo "error: the open-files limit is $(ulimit -n) (hard $(ulimit -Hn)), too low for $MAX connections: raise the hard limit (as root: ulimit -Hn N, or /etc/security/limits.conf)" >&2
  exit 1
fi

SERVER_CPU=() FLOOD_CPU=()
if [ "$PIN" = 1 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  SERVER_CPU=(taskset -c 0) FLOOD_CPU=(taskset -c 1)
else
  PIN=0
fi

SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

listen_port() { # listen_port PID: the TCP port the process listens on (from /proc), if any
  local inodes port
  inodes=" $(for f in /proc/"$1"/fd/*; do readlink "$f" 2>/dev/null || true; done |
    sed -nE 's/^socket:\[([0-9]+)\]$/\1/p' | tr '\n' ' ')"
  [ "$inodes" != " " ] || return 1
  # /proc/net/tcp{,6}: local address in field 2 (hex IP:PORT), state in 4 (0A = LISTEN), inode in 10.
  port=$(awk -v inodes="$inodes" '$4 == "0A" && index(inodes, " " $10 " ") { split($2, a, ":"); print a[2]; exit }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null)
  [ -n "$port" ] || return 1
  echo $((16#$port))
}

PORT=
start_server() { # start_server ours|tonic: sets SERVER_PID and PORT
  local bin=$OURS_SERVER log=$OUT/server-$1.log
  [ "$1" = tonic ] && bin=$TONIC_SERVER
  "${SERVER_CPU[@]}" "$bin" --port 0 >"$log" 2>&1 &
  SERVER_PID=$!
  # Wait for its listening socket (deadline 10 s), watching that it is still alive.
  local deadline=$((SECONDS + 10))
  PORT=
  while [ -z "$PORT" ]; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "error: the $1 server exited at start:" >&2; cat "$log" >&2; SERVER_PID=; exit 1
    fi
    PORT=$(listen_port "$SERVER_PID") && break
    PORT=
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "error: the $1 server is not listening after 10 s:" >&2; cat "$log" >&2; exit 1
    fi
    sleep 0.02
  done
}

stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}

json() { # json FIELD < line
  sed -E "s/.*\"$1\":(\"?)([^,\"}]*).*/\2/"
}

RESULTS=$OUT/results.tsv
: >"$RESULTS"
{
  echo "conn_flood — $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "counts ${COUNTS[*]}, $ROUNDS round(s), $INFLIGHT handshakes at once, $([ "$PIN" = 1 ] && echo "server pinned to CPU 0, conn_flood to CPU 1" || echo "no pinning"); grpc-sync bench_server --workers 4 (default), tonic_server default runtime"
} >"$OUT/header.txt"
cat "$OUT/header.txt" >&2

FAILED=0
for round in $(seq "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then order="ours tonic"; else order="tonic ours"; fi
  for count in "${COUNTS[@]}"; do
    for impl in $order; do
      start_server "$impl"
      echo "round $round/$ROUNDS: $impl, $count connections (port $PORT, pid $SERVER_PID)" >&2
      raw=$OUT/$impl-$count-$round.txt
      load=$(cut -d' ' -f1 /proc/loadavg)
      rc=0
      timeout $((TIMEOUT * 4 + 30)) "${FLOOD_CPU[@]}" "$FLOOD" --addr "127.0.0.1:$PORT" \
        --pid "$SERVER_PID" --count "$count" --inflight "$INFLIGHT" --timeout "$TIMEOUT" \
        >"$raw" 2>"$raw.err" || rc=$?
      stop_server
      line=$(tail -n 1 "$raw")
      if [ "${line:0:1}" != "{" ]; then
        echo "error: conn_flood against $impl ($count) exited $rc without a report:" >&2
        cat "$raw" "$raw.err" >&2
        FAILED=1
        continue
      fi
      [ "$rc" = 0 ] || { FAILED=1; echo "warning: conn_flood against $impl ($count) exited $rc: $(sed -E 's/.*"error":"(.*)"}$/\1/' <<<"$line")" >&2; }
      printf '%s\t%s\t%s\t%s\t%s\n' "$impl" "$count" "$round" "$load" "$line" >>"$RESULTS"
    done
  done
done

table() {
  cat "$OUT/header.txt"
  echo
  echo "| server | conns | round | load | established | conn/s | KiB/conn | threads open | fds open | RSS open MiB | RSS after close MiB | unary p50 µs | unary max µs | released s | error |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  while IFS=$'\t' read -r impl count round load line; do
    name=grpc-sync; [ "$impl" = tonic ] && name=tonic
    mib() { awk -v k="$1" 'BEGIN { if (k == "null") print "-"; else printf "%.1f", k / 1024 }'; }
    num() { awk -v x="$1" -v f="$2" 'BEGIN { if (x == "null") print "-"; else printf f, x }'; }
    echo "| $name | $count | $round | $load | $(json established <<<"$line") | $(num "$(json conns_per_s <<<"$line")" %.0f) | $(num "$(json kib_per_conn <<<"$line")" %.1f) | $(json threads_open <<<"$line") | $(json fds_open <<<"$line") | $(mib "$(json rss_open_kib <<<"$line")") | $(mib "$(json rss_closed_kib <<<"$line")") | $(json unary_p50_us <<<"$line") | $(json unary_max_us <<<"$line") | $(json release_secs <<<"$line") | $(sed -E 's/.*"error":"(.*)"}$/\1/; s/\|/\//g' <<<"$line") |"
  done <"$RESULTS"
}
table | tee "$OUT/table.md"
exit "$FAILED"
