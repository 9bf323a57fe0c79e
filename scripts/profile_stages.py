#!/usr/bin/env python3
"""CPU per stage of the node pipeline, from a system-wide `perf` profile with call graphs.

Usage: perf script -i perf.data | scripts/profile_stages.py NODE_PID...

Each sample is given to one stage: the first stage in STAGES whose pattern matches any
frame of the sample's stack (so a signature check inside admission counts as admission's
signature checks, not as signatures in general). Samples of processes that are not nodes
are the load client's (a `bansos` process) or the rest of the system. Prints a table:
stage, share of all samples, share of the nodes' samples.
"""

import collections
import re
import subprocess
import sys

# (stage, regular expression over demangled frames), most specific first.
STAGES = [
    ("admission: signature checks", r"Shared.*::admit.*|api::submit", r"signature::|ed25519|curve25519"),
    ("admission: decode, checks, mempool insert", r"Shared.*::admit|api::submit|mempool::", None),
    ("relay to peers (HTTP)", r"relay::", None),
    ("block building (proposer)", r"build_block", None),
    # A deep stack may be cut before `prepare_block` (perf copies 8 KiB of it): the
    # ledger's execution and its signature checks below it are counted as the block
    # check's (block building executes too, and a cut stack of it lands here as well; it
    # checks few signatures: the proposer's own pool's are checked already).
    ("block check: signatures", r"prepare_block|Ledger.*::execute|Ledger.*::check_signatures", r"signature::|ed25519|curve25519"),
    ("block check: execution and roots", r"prepare_block|Ledger.*::execute|ledger::rules::", None),
    ("block commit (RocksDB write, fsync)", r"Shared.*::commit|Ledger.*::commit|rocksdb::DBImpl::Write|fsync|fdatasync", None),
    ("libp2p: message signatures (GossipSub, identify)", r"libp2p|gossipsub", r"curve25519|ed25519"),
    ("consensus signatures (votes, certificates)", r"curve25519|ed25519", None),
    ("proposal streaming", r"consensus::streams|consensus::proposals|ProposalPart", None),
    ("Malachite", r"malachite", None),
    ("libp2p", r"libp2p|yamux|noise|multistream|quinn|gossipsub|scatter", None),
    ("HTTP and JSON (other)", r"hyper::|axum::|serde_json|h2::|tower", None),
    ("RocksDB (other)", r"rocksdb::", None),
    ("allocator", r"^_?mi_|malloc|free", None),
    ("tokio scheduling", r"tokio::", None),
]


def samples(lines):
    """Yields (pid, comm, frames) per sample of `perf script` output."""
    header = re.compile(r"^\s*(\S.*?)\s+(\d+)(?:/(\d+))?\s+")
    current = None
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            if current:
                yield current
            current = None
            continue
        if current is None:
            m = header.match(line)
            if not m:
                continue
            pid = int(m.group(2))
            current = (pid, m.group(1), [])
            continue
        parts = line.strip().split(None, 1)
        if len(parts) == 2:
            current[2].append(parts[1].rsplit(" (", 1)[0])
    if current:
        yield current


def demangler(names):
    out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True).stdout
    return dict(zip(names, out.split("\n")))


def main():
    nodes = {int(p) for p in sys.argv[1:]}
    raw = list(samples(sys.stdin))
    names = demangler(sorted({f for _, _, frames in raw for f in frames}))
    counts = collections.Counter()
    for pid, comm, frames in raw:
        if pid not in nodes:
            counts["load client" if comm.startswith("bansos") else "rest of the system (idle, kernel threads)"] += 1
            continue
        stack = [names.get(f, f) for f in frames]
        stage = "other"
        for name, where, what in STAGES:
            inside = any(re.search(where, f) for f in stack)
            if inside and (what is None or any(re.search(what, f) for f in stack)):
                stage = name
                break
        counts[stage] += 1
    total = sum(counts.values())
    node_total = sum(c for s, c in counts.items() if s not in ("load client", "rest of the system (idle, kernel threads)"))
    print(f"{total} samples, {node_total} in the nodes")
    print("| stage | share of all CPU | share of the nodes' CPU |")
    print("| --- | --- | --- |")
    for stage, count in counts.most_common():
        of_nodes = "" if stage in ("load client", "rest of the system (idle, kernel threads)") else f"{100 * count / node_total:.1f}%"
        print(f"| {stage} | {100 * count / total:.1f}% | {of_nodes} |")


if __name__ == "__main__":
    main()
