#!/usr/bin/env bash
# One server-streaming call of 1 MiB messages through a loopback relay that delays every chunk
# by 10 ms each way (20 ms round trip; this kernel has no netem): MiB/s for raw TCP through the
# same relay (the ceiling), grpc-sync with BDP probing, grpc-sync with fixed 64 KiB windows,
# and tonic with its defaults (compare/). Then the same two grpc-sync rows without the relay
# (loopback, no delay). Medians of --rounds runs of --duration seconds.
#
#   scripts/bdp.sh [--rounds 3] [--duration 10] [--delay-ms 10]
#
# Needs protoc for tonic's side (as root it apt-installs protobuf-compiler). Every process is
# bounded by a timeout and killed on exit; all traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=3
DURATION=10
DELAY=10
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --delay-ms) DELAY=$2; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
if ! command -v protoc >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y protobuf-compiler >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y protobuf-compiler >/dev/null; }
  else
    echo "error: protoc is needed to build tonic's side: install protobuf-compiler" >&2; exit 1
  fi
fi
echo "building (release)..." >&2
cargo build --quiet --release --example bench_server --example bench_client --example delay_relay
(cd compare && cargo build --quiet --release)
R=target/release/examples
T=compare/target/release
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
LIMIT=$((DURATION * 6 + 60))
# Messages per call: long calls (1 GiB), so that the call's own round trip does not count;
# 20 (20 MiB) for the fixed 64 KiB window, which moves a few MiB/s.
LONG=1000

# Reads the first line matching a port from a file, within 10 s.
port_from() { # port_from FILE REGEX
  for _ in $(seq 200); do
    if p=$(grep -oE "$2" "$1" 2>/dev/null | head -1 | grep -oE '[0-9]+$'); then
      [ -n "$p" ] && { echo "$p"; return 0; }
    fi
    sleep 0.05
  done
  echo "error: no port in $1" >&2; cat "$1" >&2; exit 1
}

relay_to() { # relay_to PORT -> prints the relay's port
  local out; out=$(mktemp)
  timeout "$LIMIT" "$R/delay_relay" --to "127.0.0.1:$1" --delay-ms "$DELAY" >"$out" 2>&1 &
  PIDS+=($!)
  port_from "$out" 'PORT [0-9]+'
}

mib() { sed -E 's/.*"mib_per_s":([0-9.]+).*/\1/'; }

declare -A RES
for round in $(seq "$ROUNDS"); do
  echo "round $round/$ROUNDS" >&2
  RES[raw]+=" $(timeout "$LIMIT" "$R/delay_relay" --raw 1 --duration "$DURATION" --delay-ms "$DELAY" | mib)"

  out=$(mktemp)
  timeout "$LIMIT" "$R/bench_server" --port 0 >"$out" 2>&1 &
  PIDS+=($!)
  sp=$(port_from "$out" '127\.0\.0\.1:[0-9]+')
  rp=$(relay_to "$sp")
  RES[bdp]+=" $(timeout "$LIMIT" "$R/bench_client" stream --addr "127.0.0.1:$rp" --count "$LONG" --size 1048576 --duration "$DURATION" | mib)"
  RES[fixed]+=" $(timeout "$LIMIT" "$R/bench_client" stream --addr "127.0.0.1:$rp" --count 20 --size 1048576 --duration "$DURATION" --window 65535 | mib)"
  RES[bdp_lo]+=" $(timeout "$LIMIT" "$R/bench_client" stream --addr "127.0.0.1:$sp" --count "$LONG" --size 1048576 --duration "$DURATION" | mib)"
  RES[fixed1m_lo]+=" $(timeout "$LIMIT" "$R/bench_client" stream --addr "127.0.0.1:$sp" --count "$LONG" --size 1048576 --duration "$DURATION" --window 1048576 | mib)"

  tport=$((20000 + RANDOM % 12000))
  timeout "$LIMIT" "$T/tonic_server" --port "$tport" >/dev/null 2>&1 &
  PIDS+=($!)
  for _ in $(seq 200); do timeout 5 "$R/bench_client" check --addr "127.0.0.1:$tport" >/dev/null 2>&1 && break; sleep 0.05; done
  trp=$(relay_to "$tport")
  RES[tonic]+=" $(timeout "$LIMIT" "$T/tonic_client" stream --addr "127.0.0.1:$trp" --count "$LONG" --size 1048576 --duration "$DURATION" | mib)"
  cleanup; PIDS=()
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }
echo
echo "BDP — $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, relay delay ${DELAY} ms each way, $ROUNDS rounds × ${DURATION} s, ServerStream calls of 1 MiB messages (1000 per call; 20 with the 64 KiB window)"
echo
echo "| what | MiB/s (median) | samples |"
echo "|---|---|---|"
for k in raw bdp fixed tonic bdp_lo fixed1m_lo; do
  case $k in
    raw) name="raw TCP through the relay (ceiling)" ;;
    bdp) name="grpc-sync, BDP probing (default)" ;;
    fixed) name="grpc-sync, fixed 64 KiB windows" ;;
    tonic) name="tonic, defaults" ;;
    bdp_lo) name="grpc-sync, BDP probing, loopback without relay" ;;
    fixed1m_lo) name="grpc-sync, fixed 1 MiB windows (before BDP), loopback without relay" ;;
  esac
  echo "| $name | $(echo "${RES[$k]}" | median) |${RES[$k]} |"
done
