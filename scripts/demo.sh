#!/usr/bin/env bash
# The newcomer's first command: installs what the build needs, builds `bansos` (release),
# writes a local network under data/demo (4 validators: Kemensos, Pemda Banyuwangi, Bank
# BRI, BPK; plus one observer), starts every node, loads the synthetic demo year through
# the API, prints the URLs and sample tracking codes, and keeps the network running until
# Ctrl-C, which stops every node cleanly.
#
# Environment: BANSOS_DEMO_DIR (default data/demo), BANSOS_DEMO_HOUSEHOLDS (default 600),
# CARGO_TARGET_DIR (default ./target).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
# Only the `bansos` binary: a workspace build would unify in the test-only byzantine feature.
cargo build --release --locked -p bansos-cli
bansos="$CARGO_TARGET_DIR/release/bansos"
data="${BANSOS_DEMO_DIR:-data/demo}"
if [ -e "$data" ]; then
  echo "removing the previous demo network in $data"
  rm -rf "$data"
fi
"$bansos" testnet --validators 4 --observers 1 --out "$data"

pids=()
stop() {
  trap - INT TERM EXIT
  echo
  echo "stopping the network"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped; logs are in $data/nodes/*/node.log"
  exit 0
}
trap stop INT TERM EXIT

for home in "$data"/nodes/*/; do
  home="${home%/}"
  "$bansos" node --home "$home" >"$home/node.log" 2>&1 &
  pids+=($!)
done

urls=$(sed -n 's/.*"http": *"\([^"]*\)".*/\1/p' "$data/network.json")
first=$(echo "$urls" | head -n1)
echo "waiting for the validators to commit their first block"
for _ in $(seq 1 120); do
  if curl -fsS "$first/v1/status" 2>/dev/null | grep -q '"height":[1-9]'; then break; fi
  for pid in "${pids[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "a node exited during start-up; its log:" >&2
      tail -n 20 "$data"/nodes/*/node.log >&2
      exit 1
    fi
  done
  sleep 1
done

"$bansos" demo load --net "$data" --households "${BANSOS_DEMO_HOUSEHOLDS:-600}"

# The observer (listed last) serves the explorer like every node; it holds no vote.
explorer=$(echo "$urls" | tail -n1)
code=$(head -n 1 "$data/sample-tracking-codes.txt" | cut -d' ' -f1)
echo
echo "the explorer: $explorer/   (English: $explorer/?lang=en)"
echo "  look up a sample code: $explorer/?kode=$code"
echo "  region totals: $explorer/wilayah"
echo
echo "the network is running:"
for url in $urls; do
  echo "  $url/v1/status   $url/metrics   $url/openapi.json"
done
echo "  blocks: $first/v1/blocks/latest?txs=hashes   checkpoint: $first/v1/checkpoint"
echo "  audit: $bansos audit verify --home $data/nodes/bpk"
echo "         $bansos audit verify --node $first --key $data/keys/bpk.key --genesis $data/genesis.json"
echo "  policy for offline proofs: $data/tlog-policy (bansos audit check-proof FILE --policy ...)"
service=$(sed -n 's/.*"http": *"\([^"]*\)".*/\1/p' "$data/network.json" | while read -r url; do
  curl -fsS "$url/v1/pseudonym/key" >/dev/null 2>&1 && { echo "$url"; break; }; done)
if [ -n "$service" ]; then
  echo "  import a spreadsheet (pseudonyms from the service at $service; results beside a copy):"
  echo "    cp docs/examples/propose.csv /tmp/usulan.csv && $bansos import /tmp/usulan.csv --step propose \\"
  echo "      --key $data/keys/pemda-3510.key --pseudonym-service $service --node $first"
fi
echo "sample tracking codes ($data/sample-tracking-codes.txt):"
head -n 5 "$data/sample-tracking-codes.txt" | sed 's/^/  /'
echo "  a citizen's timeline with proofs (JSON): $explorer/v1/track/$code"
echo "logs: $data/nodes/*/node.log — press Ctrl-C to stop"
# Returns when a node exits (or on Ctrl-C, through the trap).
wait -n "${pids[@]}" || true
echo "a node exited; see its log in $data/nodes/*/node.log" >&2
