#!/usr/bin/env bash
# The project's test command: formatting, lints, and every test in the workspace.
#
# The interop tests provision Python grpcio themselves (tests/support/provision.rs): a
# virtualenv in target/pyenv with tests/python/requirements.txt from PyPI, made once and reused;
# GRPC_SYNC_PYTHON, if set, names an interpreter to use instead. This needs Python 3 with venv
# and pip; the tests say so if it is missing.
# The HPACK corpus test reads ../shared/hpack-test-case when GRPC_SYNC_SHARED names it.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "error: $*" >&2; exit 1; }
command -v cargo >/dev/null || die "cargo is not installed (https://rustup.rs)"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
# A proxy in the environment (https_proxy, for PyPI say) must not take the tests' loopback
# traffic: gRPC clients (ours and grpcio) read no_grpc_proxy before no_proxy.
export no_grpc_proxy="${no_grpc_proxy-localhost,127.0.0.1,::1}"
echo "== cargo test"
cargo test --workspace --quiet 2>&1 | tee target/test-output.txt
