#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for SECONDS each (default 60), one after another.
#
#   scripts/fuzz.sh [SECONDS]
#
# Installs cargo-fuzz from crates.io if it is missing. cargo-fuzz wants a nightly toolchain
# (for -Zsanitizer); on a stable toolchain RUSTC_BOOTSTRAP=1 lets it use the nightly flags.
# Corpora grow in fuzz/corpus/<target>/ (ignored by git); a crashing input is saved in
# fuzz/artifacts/<target>/ and makes this script exit non-zero once every target has run.
# Regression inputs in fuzz/regressions/<target>/ are replayed first; each run starts from the
# committed minimized corpus fuzz/seeds/<target>/ as well. Not part of CI (but
# tests/fuzz_corpus.rs replays every saved input in plain `cargo test`).
set -euo pipefail

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
    echo "usage: $0 [SECONDS]   (SECONDS: a positive whole number, default 60)" >&2
    exit 2
fi
cd "$(dirname "$0")/../fuzz"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz not found: installing it (cargo install cargo-fuzz)" >&2
    if ! cargo install cargo-fuzz; then
        echo "error: could not install cargo-fuzz with 'cargo install cargo-fuzz'" >&2
        exit 1
    fi
fi
export RUSTC_BOOTSTRAP=1

targets=$(cargo fuzz list)
echo "building: $(echo "$targets" | tr '\n' ' ')"
cargo fuzz build -O

failed=()
for t in $targets; do
    if [ -d "regressions/$t" ] && [ -n "$(ls -A "regressions/$t")" ]; then
        echo "=== $t: replaying regressions/$t"
        if ! cargo fuzz run -O "$t" "regressions/$t"/* -- -runs=1; then
            failed+=("$t (regression)")
            continue
        fi
    fi
    echo "=== $t: ${seconds}s"
    mkdir -p "corpus/$t"
    seeds=()
    if [ -d "seeds/$t" ]; then
        seeds=("seeds/$t")
    fi
    # New inputs go to the first folder (corpus/, ignored by git); seeds/ is only read.
    if ! cargo fuzz run -O "$t" "corpus/$t" ${seeds[@]+"${seeds[@]}"} -- -max_total_time="$seconds" \
        -print_final_stats=1; then
        failed+=("$t")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "all targets ran ${seconds}s without a crash"
