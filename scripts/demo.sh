#!/usr/bin/env bash
# The newcomer's first command: install what the build needs, build `bansos`, write a local
# 4-validator network (plus one observer) under data/demo, and replay the synthetic demo year
# through the ledger core into a RocksDB store, printing sample tracking codes.
#
# Running the validators under consensus with the HTTP API and explorer is the node issue;
# this script will start them once it lands.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release --locked --workspace --bins
bansos="$CARGO_TARGET_DIR/release/bansos"
data="${BANSOS_DEMO_DIR:-data/demo}"
if [ -e "$data" ]; then
  echo "removing the previous demo network in $data"
  rm -rf "$data"
fi
"$bansos" testnet --validators 4 --observers 1 --out "$data"
"$bansos" demo replay --net "$data" --households "${BANSOS_DEMO_HOUSEHOLDS:-600}"
