#!/usr/bin/env bash
# The node benchmark on one machine (DESIGN §7; issue: throughput): builds `bansos`
# (release), writes a fresh local network (4 validators and 1 observer) under
# BANSOS_BENCH_DIR, starts every node, then from one run on that one network:
#
#   1. peak: `bansos load` far above what the network commits (BANSOS_BENCH_PEAK_RATE,
#      BANSOS_BENCH_PEAK_COUNT), BANSOS_BENCH_PEAK_RUNS times (default 3; the median is
#      the peak): committed tx/s and its ratio to the signature-verification limit the
#      load tool measures on this machine in the same run; the nodes' CPU per committed
#      transaction, and the rate the machine's cores could commit at that cost;
#   2. half of that peak: finality p50/p90/p99 at a rate the network keeps up with;
#   3. overload: BANSOS_BENCH_OVERLOAD_SECS (default 600) at 1.5 x peak, so that every
#      node's memory is watched under sustained overload and the chain grows past
#      1,000,000 transactions for the next two figures;
#   4. the peak RSS of every node, sampled every second through all runs, and under
#      overload its peak in the first and in the last minute (bounded: no growth);
#   5. catch-up: the observer's data is wiped and it syncs the whole chain again
#      (certificates and every signature verified); transactions per second;
#   6. bytes on disk per committed transaction (each node's data directory, after the
#      nodes stop), as written and after `bansos compact`;
#   7. with BANSOS_BENCH_PERF=1, a system-wide `perf` profile of the peak run with call
#      graphs ($dir/perf.data), summarised as CPU per pipeline stage
#      (scripts/profile_stages.py) into $dir/stages.md.
#
# Every figure is printed and written to $dir/results.txt. Load goes to 127.0.0.1 only,
# bounded by the counts. Figures belong in docs/BENCHMARKS.md with the date and machine.
#
# Environment: BANSOS_BENCH_DIR (default /tmp/bansos-bench), BANSOS_BENCH_PEAK_RATE
# (default 100000), BANSOS_BENCH_PEAK_COUNT (default 60000), BANSOS_BENCH_PEAK_RUNS
# (default 3), BANSOS_BENCH_HALF_SECS
# (default 30: the half-peak run lasts about this long), BANSOS_BENCH_OVERLOAD_SECS
# (default 600; 0 skips the overload and measures catch-up and disk on the shorter
# chain), BANSOS_BENCH_P2P (the nodes' `[consensus] p2p_protocol`, default the node's own
# default, broadcast; `gossipsub` to compare), BANSOS_BENCH_SPREAD (default 1: `bansos
# load --spread`; 0: all load to the first validator), BANSOS_BENCH_PERF,
# BANSOS_BENCH_KEEP_DATA (default 0: the nodes' stores, several GB after the overload, are
# removed once measured, all but RocksDB's own LOG and OPTIONS files, which
# scripts/flush_overlap.py reads; the nodes' logs and the results stay; 1 keeps them),
# CARGO_TARGET_DIR (default ./target).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release --locked -p bansos-cli
bansos="$CARGO_TARGET_DIR/release/bansos"
dir="${BANSOS_BENCH_DIR:-/tmp/bansos-bench}"
# Each agent submits to one validator, the agents dealt to the validators in turn (as each
# institution's agents use its own node); BANSOS_BENCH_SPREAD=0 sends everything to the
# first validator instead, which then takes every client request and relays all of it.
spread=(--spread)
if [ "${BANSOS_BENCH_SPREAD:-1}" = 0 ]; then spread=(); fi
peak_rate="${BANSOS_BENCH_PEAK_RATE:-100000}"
peak_count="${BANSOS_BENCH_PEAK_COUNT:-60000}"
peak_runs="${BANSOS_BENCH_PEAK_RUNS:-3}"
if ! [[ "$peak_runs" =~ ^[1-9][0-9]?$ ]]; then
  echo "BANSOS_BENCH_PEAK_RUNS must be a whole number from 1 to 99, not '$peak_runs'" >&2
  exit 2
fi
half_secs="${BANSOS_BENCH_HALF_SECS:-30}"
overload_secs="${BANSOS_BENCH_OVERLOAD_SECS:-600}"
OVERLOAD_SETUP_SECS=120
rm -rf "$dir"
mkdir -p "$dir"
net="$dir/net"
results="$dir/results.txt"
"$bansos" testnet --validators 4 --observers 1 --out "$net" >/dev/null
if [ -n "${BANSOS_BENCH_P2P:-}" ]; then
  for config in "$net"/nodes/*/config.toml; do
    printf '\n[consensus]\np2p_protocol = "%s"\n' "$BANSOS_BENCH_P2P" >>"$config"
  done
fi

pids=()
sampler=""
stop_nodes() {
  [ -n "$sampler" ] && kill "$sampler" 2>/dev/null || true
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop_nodes EXIT INT TERM

# network.json lists each node as {"name", "role", "home", "http", "p2p"}, one field a line.
observer_home="$net/$(grep -A2 '"role": "observer"' "$net/network.json" |
  sed -n 's/.*"home": *"\([^"]*\)".*/\1/p' | head -n1)"
observer_url=$(grep -A3 '"role": "observer"' "$net/network.json" |
  sed -n 's/.*"http": *"\([^"]*\)".*/\1/p' | head -n1)
observer_pid=""
declare -A url_of
for home in "$net"/nodes/*/; do
  home="${home%/}"
  "$bansos" node --home "$home" >"$home/node.log" 2>&1 &
  pids+=($!)
  url_of[$!]="http://$(sed -n 's/^http_listen = "\(.*\)"/\1/p' "$home/config.toml")"
  if [ "$home" = "$observer_home" ]; then observer_pid=$!; fi
done
[ -n "$observer_pid" ] || { echo "no observer in $net/network.json" >&2; exit 1; }
urls=$(sed -n 's/.*"http": *"\([^"]*\)".*/\1/p' "$net/network.json")
first=$(echo "$urls" | head -n1)
# A field of a node's /v1/status.
status_field() {
  curl -fsS "$1/v1/status" 2>/dev/null | sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p"
}
for _ in $(seq 1 120); do
  if curl -fsS "$first/v1/status" 2>/dev/null | grep -q '"height":[1-9]'; then break; fi
  sleep 1
done

# RSS of every node (kB), once a second, until the runs end: in all, then its anonymous
# part (heap: what the node itself holds) and its file part (pages of memory-mapped table
# files, which the kernel reclaims under pressure).
(
  while true; do
    for pid in "${pids[@]}"; do
      rss=$(awk '/^(VmRSS|RssAnon|RssFile):/ {printf " %s", $2}' "/proc/$pid/status" 2>/dev/null || true)
      # Every 10 s, what the node's store says it holds: block cache, memtables, table
      # readers (bytes), the part of the anonymous memory that RocksDB accounts for.
      store=""
      if [ $((SECONDS % 10)) = 0 ]; then
        # A node too busy to answer within 2 s is skipped this time (the sampler must not
        # stop: pipefail and errexit reach into this subshell).
        store=$( (curl -fsS --max-time 2 "${url_of[$pid]}/metrics" 2>/dev/null || true) |
          awk '/^bansos_store_(block_cache|memtable|table_reader)_bytes / {printf " %s", $2}')
      fi
      echo "$(date +%s) $pid ${rss:- 0 0 0}$store"
    done
    sleep 1
  done
) >"$dir/rss.txt" &
sampler=$!

# CPU time (user + system, in clock ticks) of every node so far, and the log's size: their
# differences over the peak run give the nodes' CPU per committed transaction, the figure
# that says how much work a transaction costs besides its signature checks. (Only at peak:
# below it the nodes also spend time waiting for work, and the load tool's setup, during
# which the nodes idle, weighs more.)
nodes_cpu_ticks() {
  local total=0 pid
  for pid in "${pids[@]}"; do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  echo "$total"
}
log_size() { status_field "$first" log_size; }
# Prints the nodes' CPU per committed transaction since ($1 ticks, $2 log size), and the
# most transactions a second the machine's cores could commit at that cost.
report_cpu_per_tx() {
  local ticks=$(($(nodes_cpu_ticks) - $1)) txs=$(($(log_size) - $2))
  awk -v t="$ticks" -v nodes="${#pids[@]}" -v hz="$(getconf CLK_TCK)" -v n="$txs" -v cores="$(nproc)" 'BEGIN {
    us = t / hz * 1e6 / n
    printf "nodes CPU per committed transaction: %.0f us (all %d nodes together, %.1f s for %d tx); at that cost %d cores commit at most %.0f tx/s\n", us, nodes, t / hz, n, cores, cores * 1e6 / us
  }'
}

# The peak of one run varies by a fifth from run to run on a shared machine (10,900-16,500
# tx/s on the two cores of docs/BENCHMARKS.md), and half of it sets the rate finality is
# measured at: the median of BANSOS_BENCH_PEAK_RUNS runs (the lower middle one for an even
# count) is the peak. Each run's CPU per transaction is printed.
: >"$results"
peaks=()
for run in $(seq 1 "$peak_runs"); do
  echo "== peak, run $run of $peak_runs: $peak_count transactions at $peak_rate tx/s" | tee -a "$results"
  cpu_before=$(nodes_cpu_ticks)
  log_before=$(log_size)
  # Seeds 2 and 3 are the half-peak's and the overload's households.
  seed=$((run == 1 ? 1 : run + 2))
  if [ "${BANSOS_BENCH_PERF:-0}" = 1 ] && [ "$run" = 1 ]; then
    perf record -a --call-graph dwarf,8192 -F 99 -o "$dir/perf.data" -- \
      "$bansos" load --net "$net" --node "$first" "${spread[@]}" --rate "$peak_rate" --count "$peak_count" \
      --seed "$seed" | tee "$dir/peak.txt"
  else
    "$bansos" load --net "$net" --node "$first" "${spread[@]}" --rate "$peak_rate" --count "$peak_count" \
      --seed "$seed" | tee "$dir/peak.txt"
  fi
  cat "$dir/peak.txt" >>"$results"
  report_cpu_per_tx "$cpu_before" "$log_before" | tee -a "$results"
  peaks+=("$(sed -n 's/^committed throughput: \([0-9]*\) tx\/s.*/\1/p' "$dir/peak.txt")")
done
peak=$(printf '%s\n' "${peaks[@]}" | sort -n | sed -n "$(((peak_runs + 1) / 2))p")
echo "peak: $peak tx/s, the median of ${peaks[*]} tx/s" | tee -a "$results"
half=$((peak / 2))
half_count=$((half * half_secs))
echo "== half of peak: $half_count transactions at $half tx/s" | tee -a "$results"
"$bansos" load --net "$net" --node "$first" "${spread[@]}" --rate "$half" --count "$half_count" --seed 2 |
  tee -a "$results"

overload_start=$(date +%s)
before_overload=$(curl -fsS "$first/v1/checkpoint" | sed -n '2p')
if [ "$overload_secs" -gt 0 ]; then
  over_rate=$((peak * 3 / 2))
  over_count=$((over_rate * overload_secs))
  # The most one `bansos load` run takes (client/src/load.rs LOAD_TXS_MAX).
  if [ "$over_count" -gt 4000000 ]; then over_count=4000000; fi
  echo "== overload: $over_rate tx/s for $overload_secs s (then the load tool is stopped)" |
    tee -a "$results"
  # Under overload the network commits less than is offered: the run would outlast its
  # time, so it is stopped then (exit 124 from timeout is the expected end). The load tool
  # first registers its keys and signs everything (OVERLOAD_SETUP_SECS allows for it).
  status=0
  timeout "$((overload_secs + OVERLOAD_SETUP_SECS))" "$bansos" load --net "$net" --node "$first" "${spread[@]}" --rate "$over_rate" \
    --count "$over_count" --seed 3 --agents 256 >"$dir/overload.txt" 2>&1 || status=$?
  if [ "$status" -ne 124 ] && [ "$status" -ne 0 ]; then
    cat "$dir/overload.txt" >&2
    exit "$status"
  fi
  echo "committed during the overload: $(($(curl -fsS "$first/v1/checkpoint" | sed -n '2p') - before_overload)) transactions" |
    tee -a "$results"
  # The load tool's own summary, when it ended before the time ran out (its transactions,
  # at most LOAD_TXS_MAX, all committed or refused): how long the overload really lasted.
  grep -E '^(submitted|committed throughput)' "$dir/overload.txt" | sed 's/^/the load tool: /' |
    tee -a "$results" || true
fi
overload_end=$(date +%s)

kill "$sampler" 2>/dev/null || true
sampler=""
echo "== peak RSS per node, in all (anonymous + file-mapped MiB; then the store's block cache + memtables + table readers, and the rest of the anonymous memory): all runs; the overload's first minute; its last minute" |
  tee -a "$results"
for pid in "${pids[@]}"; do
  awk -v p="$pid" -v s="$((overload_start + OVERLOAD_SETUP_SECS))" -v e="$overload_end" \
    -v ran="$overload_secs" -f scripts/rss_windows.awk \
    "$dir/rss.txt" | tee -a "$results"
done

# The processes that ran the peak (the profile's nodes), before the observer is restarted.
node_pids=("${pids[@]}")
committed=$(curl -fsS "$first/v1/checkpoint" | sed -n '2p')
echo "== catch-up: the observer syncs $committed transactions from scratch" | tee -a "$results"
kill -TERM "$observer_pid"
wait "$observer_pid" 2>/dev/null || true
rm -rf "$observer_home/data"
sync_start=$(date +%s.%N)
"$bansos" node --home "$observer_home" >"$observer_home/node-catch-up.log" 2>&1 &
for i in "${!pids[@]}"; do
  if [ "${pids[$i]}" = "$observer_pid" ]; then pids[$i]=$!; fi
done
observer_pid=$!
synced=0
while [ "${synced:-0}" -lt "$committed" ]; do
  sleep 0.2
  synced=$(status_field "$observer_url" log_size)
  if ! kill -0 "$observer_pid" 2>/dev/null; then
    echo "the observer stopped while syncing; see $observer_home/node-catch-up.log" >&2
    exit 1
  fi
done
awk -v n="$synced" -v s="$sync_start" -v e="$(date +%s.%N)" \
  'BEGIN {printf "synced %d transactions in %.1f s: %.0f tx/s (from process start)\n", n, e - s, n / (e - s)}' |
  tee -a "$results"

committed=$(curl -fsS "$first/v1/checkpoint" | sed -n '2p')
stop_nodes
pids=()
echo "== disk: $committed transactions in the log; bytes as written, then after bansos compact" |
  tee -a "$results"
for home in "$net"/nodes/*/; do
  home="${home%/}"
  written=$(du -sb "$home/data" | cut -f1)
  parts=$(cd "$home/data" && du -sb -- * | awk '{printf "%s %s, ", $2, $1}')
  "$bansos" compact --home "$home" >"$dir/compact.txt"
  compacted=$(du -sb "$home/data" | cut -f1)
  echo "$(basename "$home"): $((written / committed)) B/tx written ($parts), $((compacted / committed)) B/tx compacted ($compacted bytes)" |
    tee -a "$results"
  # Where the compacted store's bytes are, per column family.
  awk -v n="$committed" '/^  [a-z_]*: [0-9]* bytes$/ {printf "  %s %.0f B/tx\n", $1, $2 / n}' \
    "$dir/compact.txt" | tee -a "$results"
done
if [ "${BANSOS_BENCH_KEEP_DATA:-0}" != 1 ]; then
  for home in "$net"/nodes/*/; do
    find "${home%/}/data" -type f ! -name 'LOG*' ! -name 'OPTIONS-*' -delete
  done
  echo "removed the nodes' stores but RocksDB's LOG and OPTIONS files (BANSOS_BENCH_KEEP_DATA=1 keeps them)"
fi
if [ "${BANSOS_BENCH_PERF:-0}" = 1 ]; then
  perf script -i "$dir/perf.data" -F comm,pid,tid,ip,sym 2>/dev/null |
    scripts/profile_stages.py "${node_pids[@]}" | tee "$dir/stages.md" | tee -a "$results"
fi
echo "results: $results"
