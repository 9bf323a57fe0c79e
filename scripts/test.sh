#!/usr/bin/env bash
# Runs every test of the workspace: unit tests, the storage conformance suite, the lifecycle
# invariants, the demo year on RocksDB and in memory, golden hashes and the tidy checks.
# Usage: scripts/test.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo test --workspace --locked "$@"
