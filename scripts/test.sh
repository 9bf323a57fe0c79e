#!/usr/bin/env bash
# Runs every test of the workspace, both tiers:
#   fast tier  — unit tests, in-process API tests, the storage conformance suite, the
#                lifecycle invariants, the demo year, golden hashes, tidy checks
#                (what plain `cargo test` runs; needs no ports);
#   slow tier  — the multi-process cluster tests (`#[ignore]`d in plain `cargo test`),
#                switched on here with libtest's --include-ignored.
# Usage: scripts/test.sh [cargo test arguments] [-- test-binary arguments]
#   e.g. scripts/test.sh -- cluster_name      (one test by name, both tiers)
#        BANSOS_FAST_ONLY=1 scripts/test.sh   (the fast tier alone)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

cargo_args=()
test_args=()
seen_separator=0
for arg in "$@"; do
  if [ "$seen_separator" = 0 ] && [ "$arg" = "--" ]; then
    seen_separator=1
  elif [ "$seen_separator" = 0 ]; then
    cargo_args+=("$arg")
  else
    test_args+=("$arg")
  fi
done
if [ "${BANSOS_FAST_ONLY:-0}" != 1 ]; then
  test_args=(--include-ignored "${test_args[@]}")
fi
cargo test --workspace --locked "${cargo_args[@]}" -- "${test_args[@]}"
