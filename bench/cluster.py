"""Cluster chaos (issue 19): N daemons on one PostgreSQL, a loopback feed farm publishing all the
while, ``kill -9`` of random nodes at random moments (each restarted at once, as systemd would)
and one database crash in the middle. Then the publishing stops, the nodes run until the outbox
is empty, and the bench counts, from the webhook receiver, the farm and the database:

  alerts        outbox rows of the run (one per story and channel) and how many arrived
  lost          rows never delivered (pending, failed, dead after the drain), or marked sent and
                never received; rows held for the channel's digest (follow-ups of a story told
                before, mentions) wait by design and are counted apart
  duplicates    messages received more than once (the documented window: a node killed between
                the service taking a message and the row being marked sent)
  per_host      the most requests at once at one host, as the farm saw them (goal: <= per_host)
  min gap       the shortest time between two requests of one feed (goal: >= the interval,
                less the schedule's jitter)

    .venv/bin/python bench/cluster.py [--nodes 3] [--feeds 200] [--hosts 10] [--kills 50]

It starts its own PostgreSQL (tests/pg_server.py) and farm (bench/polling/farm.py). Exits 1 when
an alert is lost or per_host is exceeded, and when the cluster did not do the work (no alert
made or received, fewer requests than two rounds of the feeds): then nothing was measured.
"""

from __future__ import annotations

import argparse
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench" / "polling")]
import cluster_kit  # noqa: E402
import pg_server  # noqa: E402
from cluster_kit import config, farm_stats, publish, start  # noqa: E402
from servers import Webhook  # noqa: E402

from monitor.store import Store  # noqa: E402

INTERVAL, PER_HOST = 5, 2


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--feeds", type=int, default=200)
    ap.add_argument("--hosts", type=int, default=10)
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--share", type=float, default=0.03, help="share of feeds given new items each second")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="cluster-bench-"))
    server = pg_server.Server(Path(tempfile.mkdtemp(prefix="cluster-bench-pg-")), port=5498)
    pg_server.prepare(server.url)
    farm, port, feeds = cluster_kit.farm(args.feeds, args.hosts)
    hook = Webhook()
    cluster_kit.control(port, f"watch?limit={PER_HOST}")
    killed_at: list[tuple[float, int]] = []  # (time, node)
    crashed_at = 0.0
    nodes: list[subprocess.Popen] = []
    cfgs = []
    kills = Counter()
    try:
        for n in range(args.nodes):
            cfgs.append(config(work / f"node{n}", server.url, feeds, hook.apprise_url, f"node{n}/1",
                               interval=INTERVAL, per_host=PER_HOST))
            nodes.append(start(cfgs[-1], work / f"node{n}.log"))
        store = Store(server.url)
        deadline = time.monotonic() + 120
        # every feed of the config in the store and baselined: counting the feeds not yet baselined
        # finds none while the nodes are still starting (the store made the tables, no feed yet)
        while store.db.execute("SELECT COUNT(*) FROM feeds WHERE baselined_at IS NOT NULL").fetchone()[0] < args.feeds:
            if time.monotonic() > deadline:
                raise SystemExit("the nodes did not take every feed's baseline in 120 s")
            time.sleep(0.5)
        print(f"{args.nodes} nodes, {args.feeds} feeds on {args.hosts} hosts baselined; chaos begins", flush=True)
        started, seed = time.monotonic(), 0
        for k in range(args.kills):
            for _ in range(rng.randint(1, 3)):
                seed += 1
                publish(port, seed, args.share)
                time.sleep(rng.uniform(0.3, 1.0))
            victim = rng.randrange(args.nodes)
            nodes[victim].send_signal(signal.SIGKILL)
            killed_at.append((time.time(), victim))
            nodes[victim].wait()
            kills[victim] += 1
            nodes[victim] = start(cfgs[victim], work / f"node{victim}.log")
            if k == args.kills // 2:
                crashed_at = time.time()
                server.down()  # as a crash: every node loses its connection
                time.sleep(rng.uniform(1, 3))
                server.up()
        chaos = time.monotonic() - started
        print(f"chaos over: {args.kills} kills in {chaos:.0f} s, one database crash; draining", flush=True)
        deadline, ended = time.monotonic() + 300, time.time()
        undelivered = -1
        while time.monotonic() < deadline:  # every feed polled since the last item, then the outbox empty
            try:  # this connection too died with the crash: the store opens another
                unpolled = store.db.execute("SELECT COUNT(*) FROM feeds WHERE COALESCE(last_polled_at, 0) < ?",
                                            [ended]).fetchone()[0]
                undelivered = store.db.execute("SELECT COUNT(*) FROM outbox WHERE state IN "
                                               "('pending', 'sending', 'failed')").fetchone()[0]
            except Exception:  # noqa: BLE001 - psycopg's OperationalError, once
                unpolled = undelivered = -1
            if not unpolled and not undelivered:
                break
            time.sleep(1)
        time.sleep(3)
        rows = store.db.execute("SELECT id, state FROM outbox").fetchall()
        stats = farm_stats(port)
    finally:
        cluster_kit.stop(nodes)
        farm.terminate()
        hook.close()
        server.stop()
    received = Counter(int(doc["id"]) for doc in hook.received if "id" in doc)
    states = Counter(state for _id, state in rows)
    sent = {i for i, state in rows if state == "sent"}
    # held: waiting for the channel's digest by design (follow-ups, mentions), not lost
    stuck = [i for i, state in rows if state in ("pending", "sending", "failed", "dead")]
    lost = len(stuck) + len(sent - set(received))
    dups = sum(n - 1 for n in received.values() if n > 1)
    tracebacks = sum((work / f"node{n}.log").read_text().count("Traceback") for n in range(args.nodes))
    gaps = stats.get("min_gaps") or [0]
    print(f"alerts: {len(rows)} outbox rows {dict(states)}; received {sum(received.values())} messages for "
          f"{len(received)} alerts")
    print(f"lost: {lost}   duplicates: {dups}   tracebacks in node logs: {tracebacks}")
    print(f"per_host: at most {stats['peak_per_host']} requests at once at one host (per_host {PER_HOST})")
    print(f"min gap between two requests of one feed: {gaps[0]:.2f} s (interval {INTERVAL} s); "
          f"shortest ten: {', '.join(f'{g:.2f}' for g in gaps[:10])}")
    for c in stats.get("crowded", []):  # a host over per_host: was one of the requests a killed node's?
        dead = [agent for agent, since in c["clients"]
                if any(f"node{n}/1" == agent and since < t <= c["at"] for t, n in killed_at)]
        print(f"  {c['host']}: {len(c['clients'])} at once ({', '.join(a for a, _ in c['clients'])}) "
              f"{c['at'] - crashed_at:+.1f} s from the database crash"
              + (f"; in flight from a process killed since: {', '.join(dead)}" if dead else ""))
    print(f"farm: {stats['requests']} requests, {stats['200']} 200s, {stats['304']} 304s; kills per node {dict(kills)}")
    print(f"reproduce: {sys.executable} bench/cluster.py --nodes {args.nodes} --feeds {args.feeds} --hosts "
          f"{args.hosts} --kills {args.kills} --share {args.share} --seed {args.seed}")
    # the work was done, or the figures prove nothing: stories alerted and delivered, every feed
    # polled after its baseline (more requests than two rounds of the feeds)
    worked = len(rows) > 0 and len(received) > 0 and stats["requests"] > 2 * args.feeds
    if not worked:
        print(f"FAIL: the cluster did not do the work (alerts {len(rows)}, received {len(received)}, "
              f"requests {stats['requests']}): the figures above prove nothing")
        return 1
    ok = lost == 0 and stats["peak_per_host"] <= PER_HOST and undelivered == 0
    print(("PASS" if ok else "FAIL") + f": lost {lost}, per_host {stats['peak_per_host']}/{PER_HOST}, "
          f"undelivered {undelivered}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
