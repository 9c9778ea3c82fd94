#!/usr/bin/env bash
# The project's test command: formatting, lints, and every test in the workspace.
#
# Interop tests talk to Python grpcio; this script provisions it in a virtualenv under
# target/pyenv (from PyPI) and points the tests at it through GRPC_SYNC_PYTHON.
# The HPACK corpus test reads ../shared/hpack-test-case when GRPC_SYNC_SHARED names it.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "error: $*" >&2; exit 1; }
command -v cargo >/dev/null || die "cargo is not installed (https://rustup.rs)"
PY=${PYTHON:-python3}
command -v "$PY" >/dev/null || die "python3 is required for the grpcio interop tests; install Python 3 with pip"

venv=target/pyenv
if [ ! -x "$venv/bin/python" ]; then
  "$PY" -m venv "$venv" || die "could not create a virtualenv with $PY -m venv (on Debian: apt-get install python3-venv)"
fi
if ! "$venv/bin/python" -c 'import grpc, google.protobuf' 2>/dev/null; then
  echo "== installing grpcio into $venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt \
    || die "pip could not install tests/python/requirements.txt"
fi
export GRPC_SYNC_PYTHON="$PWD/$venv/bin/python"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== cargo test"
cargo test --workspace --quiet 2>&1 | tee target/test-output.txt
