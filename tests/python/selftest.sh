#!/usr/bin/env bash
# Python <-> Python self-test of the interop scripts: servers.py serves, clients.py checks.
# Proves the scripts themselves are right before they are pointed at grpc-sync. Not run by CI
# (tests/python_selftest.rs runs the helloworld part of it through the Rust harness).
#
# Usage: tests/python/selftest.sh [SERVICE...]     (default: each service, then "all")
# Env:   PYTHON (default $GRPC_SYNC_PYTHON, then target/pyenv/bin/python)
#        GRPC_SYNC_PROTO_DIR (default proto/)
set -euo pipefail
cd "$(dirname "$0")/../.."

PY=${PYTHON:-${GRPC_SYNC_PYTHON:-target/pyenv/bin/python}}
[ -x "$PY" ] || PY=$(command -v "$PY") || { echo "error: no Python with grpcio at $PY (set PYTHON, or run \`cargo test --test python_selftest\` once to provision target/pyenv)" >&2; exit 1; }
GEN=target/python-gen
"$PY" tests/python/gen.py "$GEN" helloworld.proto route_guide.proto calculator.proto format_data.proto

services=("$@")
[ ${#services[@]} -gt 0 ] || services=(helloworld route_guide calculator format_data all)

failed=0
for service in "${services[@]}"; do
  echo "== $service"
  # coproc gives the server a stdin pipe that stays open until we close it, as the Rust
  # harness does; closing it is how the server is told to stop.
  coproc SERVER { exec "$PY" tests/python/servers.py --service "$service" --gen "$GEN"; }
  server_pid=$SERVER_PID
  if ! read -r -t 30 line <&"${SERVER[0]}" || [[ $line != PORT\ * ]]; then
    echo "FAIL $service: server did not print its PORT line (got: ${line:-nothing})" >&2
    kill "$server_pid" 2>/dev/null || true
    failed=1
    continue
  fi
  port=${line#PORT }
  timeout 300 "$PY" tests/python/clients.py --service "$service" --port "$port" --gen "$GEN" || failed=1
  exec {SERVER[1]}>&-
  wait "$server_pid" || { echo "FAIL $service: server exited with status $?" >&2; failed=1; }
done

if [ "$failed" = 0 ]; then echo "selftest: all passed"; else echo "selftest: FAILED" >&2; fi
exit "$failed"
