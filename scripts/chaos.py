#!/usr/bin/env python3
"""Chaos run: a real 4-validator + 1-observer network, each node in its own network
namespace, `bansos load` submitting throughout, and a seeded schedule of faults:

- kill:      SIGKILL a validator (half of the time the scheduled proposer of the next
             height), restart it after a pause;
- stop:      SIGSTOP a validator, SIGCONT it after a pause;
- partition: cut two nodes off from each other (nftables in both namespaces);
- loss:      drop a share of the packets a node receives (nftables `numgen random`);
- wipe:      SIGKILL a validator, delete its data directory (ledger, consensus WAL, kept
             proposals), restart it empty so that it syncs the chain again.

At most one node is faulty at a time (f = 1 of 4 validators), except that a partition
cuts one link only. After every fault is healed the chain must commit again within
RESUME_SECONDS_MAX. After the run:

- no two blocks at one height on any two nodes (every height of every node compared);
- every transaction `bansos load --out` saw committed is committed on every node at that
  height;
- every resume time is at most RESUME_SECONDS_MAX, and every node caught up with the
  others (within CATCH_UP_HEIGHTS) before the next fault;
- every node reaches the tip (within CATCH_UP_HEIGHTS) after the faults end, and no transaction the load tool
  submitted is left neither committed nor refused.

The seed decides the schedule (kinds, victims, pauses); the same seed gives the same
schedule (timing-dependent outcomes, like which block a kill interrupts, differ). Results
go to OUT/chaos-report.json. Needs root (ip netns, nft). Run through scripts/chaos.sh.
"""

import argparse
import atexit
import http.client
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

NODES = 5  # 4 validators, then 1 observer (the load tool's node)
OBSERVER = 4
VALIDATORS = list(range(4))
SUBNET = "10.77.0"
BRIDGE = "bchaosbr"
HTTP_BASE = 28700
P2P_BASE = 28800
RESUME_SECONDS_MAX = 10.0
# How long a fault lasts, and the healthy time between faults (seconds).
FAULT_SECONDS = (3.0, 12.0)
HEALTHY_SECONDS = (3.0, 8.0)
LOSS_PERCENT = (20, 40)
# A healed node counts as recovered within this many heights of the highest node.
CATCH_UP_HEIGHTS = 2
CATCH_UP_SECONDS_MAX = 300.0
FAULT_KINDS = ["kill", "stop", "partition", "loss", "wipe"]
FAULT_WEIGHTS = [3, 2, 2, 2, 1]


def fmt(seconds):
    return "never" if seconds is None else f"{seconds:.2f}"


def log(message):
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", flush=True)


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


def ns(i):
    return f"bchaos{i}"


def ip_of(i):
    return f"{SUBNET}.{2 + i}"


class Net:
    """Namespaces, a bridge, and nftables rules for partitions and loss."""

    def __init__(self):
        self.rules = {}  # namespace -> list of rule texts

    def create(self):
        self.destroy()
        sh("ip", "link", "add", BRIDGE, "type", "bridge")
        sh("ip", "addr", "add", f"{SUBNET}.1/24", "dev", BRIDGE)
        sh("ip", "link", "set", BRIDGE, "up")
        for i in range(NODES):
            sh("ip", "netns", "add", ns(i))
            host, inner = f"bchv{i}", f"bchn{i}"
            sh("ip", "link", "add", host, "type", "veth", "peer", "name", inner)
            sh("ip", "link", "set", inner, "netns", ns(i))
            sh("ip", "link", "set", host, "master", BRIDGE)
            sh("ip", "link", "set", host, "up")
            sh("ip", "-n", ns(i), "addr", "add", f"{ip_of(i)}/24", "dev", inner)
            sh("ip", "-n", ns(i), "link", "set", inner, "up")
            sh("ip", "-n", ns(i), "link", "set", "lo", "up")
            nft(i, "add table inet chaos")
            nft(i, "add chain inet chaos input { type filter hook input priority 0 ; }")

    def destroy(self):
        for i in range(NODES):
            sh("ip", "netns", "del", ns(i), check=False)
        sh("ip", "link", "del", BRIDGE, check=False)

    def partition(self, a, b):
        nft(a, f"add rule inet chaos input ip saddr {ip_of(b)} drop")
        nft(b, f"add rule inet chaos input ip saddr {ip_of(a)} drop")

    def loss(self, i, percent):
        nft(i, f"add rule inet chaos input ip saddr {SUBNET}.0/24 numgen random mod 100 < {percent} drop")

    def heal(self, i):
        nft(i, "flush chain inet chaos input")


def nft(i, rule):
    subprocess.run(["ip", "netns", "exec", ns(i), "nft", *rule.split()], check=True,
                   capture_output=True, text=True)


class Cluster:
    def __init__(self, binary, work):
        self.binary = binary
        self.work = work
        self.net_dir = work / "net"
        self.procs = {}
        self.network = None

    def write(self):
        if self.net_dir.exists():
            shutil.rmtree(self.net_dir)
        sh(self.binary, "testnet", "--validators", "4", "--observers", "1",
           "--http-port", str(HTTP_BASE), "--p2p-port", str(P2P_BASE), "--out", str(self.net_dir))
        # Every node listens on its namespace's address instead of loopback.
        files = [self.net_dir / "network.json"] + list(self.net_dir.glob("nodes/*/config.toml"))
        for path in files:
            text = path.read_text()
            for j in range(NODES):
                text = text.replace(f"127.0.0.1:{HTTP_BASE + j}", f"{ip_of(j)}:{HTTP_BASE + j}")
                text = text.replace(f"/ip4/127.0.0.{2 + j}/", f"/ip4/{ip_of(j)}/")
            path.write_text(text)
        self.network = json.loads((self.net_dir / "network.json").read_text())

    def home(self, i):
        return self.net_dir / self.network["nodes"][i]["home"]

    def name(self, i):
        return self.network["nodes"][i]["name"]

    def start(self, i):
        home = self.home(i)
        logfile = open(home / "node.log", "a")
        self.procs[i] = subprocess.Popen(
            ["ip", "netns", "exec", ns(i), self.binary, "node", "--home", str(home), "--log", "info"],
            stdout=logfile, stderr=subprocess.STDOUT)

    def kill(self, i):
        proc = self.procs.pop(i, None)
        if proc is not None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()

    def signal(self, i, sig):
        self.procs[i].send_signal(sig)

    def stop_all(self):
        for i in list(self.procs):
            self.kill(i)

    def get(self, i, path, timeout=5.0):
        conn = http.client.HTTPConnection(ip_of(i), HTTP_BASE + i, timeout=timeout)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
            return response.status, (json.loads(body) if body else None)
        finally:
            conn.close()

    def height(self, i):
        try:
            status, body = self.get(i, "/v1/status", timeout=2.0)
            return body["height"] if status == 200 else None
        except (OSError, ValueError, http.client.HTTPException):
            return None

    def heights(self, nodes):
        return {i: self.height(i) for i in nodes}

    def next_proposer(self):
        """The validator scheduled to propose the next height at round 0 (the set is sorted
        by public key; proposer index = (height - 1 + round) mod n)."""
        keys = []
        for i in VALIDATORS:
            config = (self.home(i) / "config.toml").read_text()
            path = re.search(r'^node_key\s*=\s*"([^"]+)"', config, re.M).group(1)
            key_file = json.loads((self.home(i) / path).read_text())
            keys.append((key_file["public_key"], i))
        keys.sort()
        height = max(h for h in self.heights([OBSERVER] + VALIDATORS).values() if h is not None)
        return keys[height % len(keys)][1]


class Schedule:
    def __init__(self, seed):
        self.rng = random.Random(seed)

    def pause(self, bounds):
        return self.rng.uniform(*bounds)

    def fault(self):
        return self.rng.choices(FAULT_KINDS, FAULT_WEIGHTS)[0]


def wait_resume(cluster, since_height, started):
    """Seconds from healing until any node commits past `since_height` (None: not within
    three times the limit)."""
    while time.monotonic() - started < 3 * RESUME_SECONDS_MAX:
        heights = [h for h in cluster.heights(range(NODES)).values() if h is not None]
        if heights and max(heights) > since_height:
            return time.monotonic() - started
        time.sleep(0.1)
    return None


def wait_recovered(cluster, limit=CATCH_UP_SECONDS_MAX):
    """Seconds until every node is within CATCH_UP_HEIGHTS of the highest (None: not within
    `limit`). The next fault waits for this, so that a node still syncing after a wipe and
    a second fault never add up to two faulty validators (f = 1)."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        heights = cluster.heights(range(NODES)).values()
        if None not in heights and max(heights) - min(heights) <= CATCH_UP_HEIGHTS:
            return time.monotonic() - started
        time.sleep(0.5)
    return None


def run_fault(cluster, net, schedule, kind, counts):
    """Applies one fault, holds it, heals it. Returns a description."""
    hold = schedule.pause(FAULT_SECONDS)
    victim = schedule.rng.choice(VALIDATORS)
    if kind in ("kill", "wipe") and schedule.rng.random() < 0.5:
        victim = cluster.next_proposer()
        counts["proposer_killed"] = counts.get("proposer_killed", 0) + 1
    if kind == "kill" or kind == "wipe":
        cluster.kill(victim)
        if kind == "wipe":
            shutil.rmtree(cluster.home(victim) / "data", ignore_errors=True)
        what = f"{kind} {cluster.name(victim)} for {hold:.1f}s"
        time.sleep(hold)
        cluster.start(victim)
    elif kind == "stop":
        cluster.signal(victim, signal.SIGSTOP)
        what = f"stop {cluster.name(victim)} for {hold:.1f}s"
        time.sleep(hold)
        cluster.signal(victim, signal.SIGCONT)
    elif kind == "partition":
        a, b = schedule.rng.sample(range(NODES), 2)
        net.partition(a, b)
        what = f"partition {cluster.name(a)} | {cluster.name(b)} for {hold:.1f}s"
        time.sleep(hold)
        net.heal(a)
        net.heal(b)
    else:
        percent = schedule.rng.randint(*LOSS_PERCENT)
        victim = schedule.rng.randrange(NODES)
        net.loss(victim, percent)
        what = f"loss {percent}% into {cluster.name(victim)} for {hold:.1f}s"
        time.sleep(hold)
        net.heal(victim)
    counts[kind] = counts.get(kind, 0) + 1
    return what


def check_no_fork(cluster):
    """Every node's every block hash, compared height by height."""
    tips = cluster.heights(range(NODES))
    if any(h is None for h in tips.values()):
        raise SystemExit(f"a node does not answer at the end: {tips}")
    hashes = {}
    for i in range(NODES):
        for height in range(1, tips[i] + 1):
            status, block = cluster.get(i, f"/v1/blocks/{height}?txs=hashes")
            if status != 200:
                raise SystemExit(f"{cluster.name(i)} has no block {height} below its tip {tips[i]}")
            hashes.setdefault(height, set()).add(block["header"]["hash"])
    forks = {h: s for h, s in hashes.items() if len(s) > 1}
    return tips, forks


def check_committed(cluster, load_out):
    """Every transaction the load tool saw committed, on every node at that height; and
    how many it submitted without ever seeing them committed or refused."""
    committed, missing, lost = 0, [], 0
    for line in load_out.read_text().splitlines():
        tx_hash, outcome = line.split()
        if outcome == "not_committed":
            lost += 1
        if not outcome.isdigit():
            continue
        committed += 1
        for i in range(NODES):
            status, body = cluster.get(i, f"/v1/tx/{tx_hash}")
            if status != 200 or body.get("status") != "committed" or body.get("height") != int(outcome):
                missing.append((tx_hash, cluster.name(i), status, body))
    return committed, missing, lost


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--duration", type=float, required=True, help="seconds of faults")
    parser.add_argument("--bin", required=True, help="the bansos binary")
    parser.add_argument("--out", required=True, help="work directory (replaced)")
    parser.add_argument("--rate", type=int, default=20, help="load, transactions per second")
    args = parser.parse_args()
    work = Path(args.out).resolve()
    work.mkdir(parents=True, exist_ok=True)
    log(f"seed {args.seed}, {args.duration:.0f}s of faults, work directory {work}")
    net = Net()
    cluster = Cluster(args.bin, work)
    atexit.register(net.destroy)
    atexit.register(cluster.stop_all)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(2))
    cluster.write()
    net.create()
    for i in range(NODES):
        cluster.start(i)
    deadline = time.monotonic() + 90
    while min((h or 0) for h in cluster.heights(range(NODES)).values()) < 1:
        if time.monotonic() > deadline:
            raise SystemExit("the network did not start within 90 s")
        time.sleep(0.5)
    log("network up; starting load")
    load_out = work / "load.out"
    count = int(args.rate * (args.duration + 30))
    load = subprocess.Popen(
        [args.bin, "load", "--node", f"http://{ip_of(OBSERVER)}:{HTTP_BASE + OBSERVER}",
         "--net", str(cluster.net_dir), "--rate", str(args.rate), "--count", str(count),
         "--out", str(load_out), "--timeout-secs", "120", "--seed", str(args.seed)],
        stdout=open(work / "load.log", "w"), stderr=subprocess.STDOUT)
    schedule = Schedule(args.seed)
    counts, resumes, events, unrecovered = {}, [], [], 0
    ended = time.monotonic() + args.duration
    while time.monotonic() < ended:
        time.sleep(schedule.pause(HEALTHY_SECONDS))
        kind = schedule.fault()
        what = run_fault(cluster, net, schedule, kind, counts)
        healed = time.monotonic()
        since = max(h for h in cluster.heights(range(NODES)).values() if h is not None)
        resume = wait_resume(cluster, since, healed)
        resumes.append(resume)
        recovered = wait_recovered(cluster)
        events.append({"fault": what, "resume_seconds": resume, "recovered_seconds": recovered})
        log(f"{what}; commits resumed after {fmt(resume)}s, every node caught up after {fmt(recovered)}s")
        if recovered is None:
            unrecovered += 1
    log("faults over; waiting for the load to finish")
    load.wait(timeout=args.duration + 300)
    # Let every node reach the same tip.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        tips = cluster.heights(range(NODES))
        if None not in tips.values() and max(tips.values()) - min(tips.values()) <= CATCH_UP_HEIGHTS:
            break
        time.sleep(1)
    tips, forks = check_no_fork(cluster)
    # The chain goes on growing (empty blocks) while the tips are read one node at a time.
    converged = max(tips.values()) - min(tips.values()) <= CATCH_UP_HEIGHTS
    committed, missing, lost = check_committed(cluster, load_out)
    slow = [r for r in resumes if r is None or r > RESUME_SECONDS_MAX]
    report = {
        "seed": args.seed,
        "duration_seconds": args.duration,
        "faults": counts,
        "fault_count": sum(v for k, v in counts.items() if k != "proposer_killed"),
        "tips": {cluster.name(i): h for i, h in tips.items()},
        "transactions_committed": committed,
        "max_resume_seconds": max((r for r in resumes if r is not None), default=0),
        "forks": {str(h): sorted(s) for h, s in forks.items()},
        "missing": missing[:20],
        "submitted_never_committed": lost,
        "tips_converged": converged,
        "slow_resumes": len(slow),
        "unrecovered": unrecovered,
        "events": events,
    }
    (work / "chaos-report.json").write_text(json.dumps(report, indent=2))
    log(f"faults {counts}; tips {report['tips']}; {committed} transactions committed; "
        f"max resume {report['max_resume_seconds']:.2f}s")
    failures = []
    if forks:
        failures.append(f"{len(forks)} heights with two blocks")
    if missing:
        failures.append(f"{len(missing)} committed transactions missing on some node")
    if slow:
        failures.append(f"{len(slow)} faults after which commits took over {RESUME_SECONDS_MAX}s to resume")
    if unrecovered:
        failures.append(f"{unrecovered} faults after which a node did not catch up within {CATCH_UP_SECONDS_MAX:.0f}s")
    if not converged:
        failures.append(f"the nodes' tips differ by more than {CATCH_UP_HEIGHTS} 120 s after the end: {report['tips']}")
    if lost:
        failures.append(f"{lost} submitted transactions were never committed nor refused")
    if committed == 0:
        failures.append("the load tool saw nothing committed")
    if failures:
        log("FAILED: " + "; ".join(failures) + f" (replay with --seed {args.seed})")
        sys.exit(1)
    log(f"passed (seed {args.seed}); report in {work / 'chaos-report.json'}")


if __name__ == "__main__":
    main()
