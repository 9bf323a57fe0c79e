#!/usr/bin/env bash
# Chaos run against real processes: scripts/chaos.sh --seed S --duration SECONDS [--rate TX/S]
# [--out DIR]. Four validators and an observer, each in its own network namespace, under
# load, with a seeded schedule of SIGKILL (the proposer included), SIGSTOP, partitions,
# packet loss and a wiped data directory. Checks afterwards: no two blocks at one height,
# every transaction the load tool saw committed is on every node at that height, commits
# resume within 10 s of each healing. Needs root (ip netns, nftables). See
# docs/RELIABILITY.md for the runs so far; the driver is scripts/chaos.py.
set -euo pipefail
cd "$(dirname "$0")/.."

seed="" duration="" extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seed) seed="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --rate|--out) extra+=("$1" "$2"); shift 2 ;;
    *) echo "unknown argument $1 (usage: scripts/chaos.sh --seed S --duration SECONDS [--rate N] [--out DIR])" >&2; exit 2 ;;
  esac
done
if [ -z "$seed" ] || [ -z "$duration" ]; then
  echo "usage: scripts/chaos.sh --seed S --duration SECONDS [--rate N] [--out DIR]" >&2
  exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/chaos.sh needs root for network namespaces and nftables" >&2
  exit 2
fi
if ! command -v nft >/dev/null 2>&1; then
  echo "installing nftables (packet filters for partitions and loss)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables >/dev/null
fi
bin="${BANSOS_BIN:-}"
if [ -z "$bin" ]; then
  bash scripts/setup.sh
  cargo build -p bansos-cli --locked
  target="${CARGO_TARGET_DIR:-target}"
  bin="$(cd "$target" && pwd)/debug/bansos"
fi
out="/tmp/bansos-chaos-$seed"
for ((i = 0; i < ${#extra[@]}; i += 2)); do
  [ "${extra[$i]}" = "--out" ] && out="${extra[$((i + 1))]}"
done
python3 scripts/chaos.py --seed "$seed" --duration "$duration" --bin "$bin" --out "$out" "${extra[@]}"
