#!/usr/bin/env python3
"""How many nodes of a local network flush RocksDB memtables at the same time.

Usage: scripts/flush_overlap.py NET_DIR   (a `bansos testnet --out` directory after a run)

Reads each node's RocksDB log (NET_DIR/nodes/*/data/ledger/LOG): the `flush_started` and
`flush_finished` events of memtables holding over 1 MB, and the column family each flush
job names. Prints each node's flushes (family @ start + duration, seconds from the first
flush of any node), then, of the time any node was flushing (sampled every 10 ms), the
share with one, two, ... nodes flushing at once. Nodes that share a machine and flush
together take its cores together (docs/BENCHMARKS.md).
"""
import glob
import json
import re
import sys

FLUSH_BYTES_MIN = 1_000_000
SAMPLE_MICROS = 10_000


def node_flushes(log_path):
    """(start, end, family, bytes) of each finished flush over FLUSH_BYTES_MIN, in µs."""
    started, family = {}, {}
    flushes = []
    with open(log_path, errors="replace") as log:
        for line in log:
            named = re.search(r"\[(\w+)\] \[JOB (\d+)\] Flushing memtable", line)
            if named:
                family[int(named.group(2))] = named.group(1)
            if "EVENT_LOG_v1" not in line:
                continue
            event = json.loads(line[line.index("{"):])
            job = event.get("job")
            if event.get("event") == "flush_started":
                if event["total_data_size"] > FLUSH_BYTES_MIN:
                    started[job] = (event["time_micros"], event["total_data_size"])
            elif event.get("event") == "flush_finished" and job in started:
                start, size = started.pop(job)
                flushes.append((start, event["time_micros"], family.get(job, "?"), size))
    return sorted(flushes)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    logs = sorted(glob.glob(f"{sys.argv[1]}/nodes/*/data/ledger/LOG"))
    runs = {path.split("/")[-4]: node_flushes(path) for path in logs}
    spans = [f for flushes in runs.values() for f in flushes]
    if not spans:
        sys.exit(f"no flush over {FLUSH_BYTES_MIN} bytes in {sys.argv[1]}/nodes/*/data/ledger/LOG")
    first = min(start for start, *_ in spans)
    last = max(end for _, end, *_ in spans)
    for node, flushes in runs.items():
        busy = sum(end - start for start, end, *_ in flushes) / 1e6
        listed = ", ".join(
            f"{family}@{(start - first) / 1e6:.1f}+{(end - start) / 1e6:.2f}"
            for start, end, family, _ in flushes
        )
        print(f"{node}: {len(flushes)} flushes, {busy:.1f} s flushing: {listed}")
    at_once = {}
    for t in range(first, last, SAMPLE_MICROS):
        n = sum(any(s <= t < e for s, e, *_ in flushes) for flushes in runs.values())
        if n:
            at_once[n] = at_once.get(n, 0) + 1
    total = sum(at_once.values())
    shares = ", ".join(f"{n}: {count / total:.0%}" for n, count in sorted(at_once.items()))
    print(f"nodes flushing at once, share of the time any node flushed: {shares}")


if __name__ == "__main__":
    main()
