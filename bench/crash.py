"""Crash safety: kill -9 the daemon at random moments of its poll and delivery cycles, restart
it each time, and check that every expected alert reached the webhook receiver, none missing,
duplicates only from the documented window (the outbox row was 'sending' at the kill).

    .venv/bin/python bench/crash.py [--kills 50] [--feeds 10] [--seed 1]

A publisher thread adds a new story (which the shipped 'kursk' rule matches) to a random feed
of a loopback feed server several times a second, so each kill lands somewhere in fetching,
extracting, recording or delivering. After each SIGKILL (the daemon, then what is left of its
process group, as systemd does to the unit's cgroup) the outbox rows left 'sending' are read:
those alerts may be delivered twice. Exit status 1 if an alert is missing or a duplicate is
outside that window.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from harness import (
    FaultServer,
    Webhook,
    command_line,
    kill_tree,
    old_items,
    page,
    rows,
    rss,
    start,
    stop,
    story,
    wait,
    write_config,
)

TOKEN = re.compile(r"#(\d{5})")
SENDING = ("SELECT e.title FROM outbox o JOIN matches m ON m.id = o.match_id JOIN entries e ON e.id = m.entry_id "
           "WHERE o.state = 'sending'")


class Publisher(threading.Thread):
    """Adds story n to a random feed every ``every`` seconds; feeds keep all their items."""

    def __init__(self, srv: FaultServer, feeds: int, hosts: int, every: float, rng: random.Random):
        super().__init__(daemon=True)
        self.srv, self.hosts, self.every, self.rng = srv, hosts, every, rng
        self.items: list[list[dict[str, Any]]] = [old_items(i) for i in range(feeds)]
        self.published: list[int] = []
        self.halt = threading.Event()
        for i in range(feeds):
            self.serve(i)

    def serve(self, i: int) -> None:
        host = i % self.hosts
        self.srv.ok(f"/feed/{i}.xml", rss([{**it, "link": self.srv.url(it["link"], host)} for it in self.items[i]]),
                    host=host)

    def run(self) -> None:
        n = 0
        while not self.halt.wait(self.every):
            n += 1
            i = self.rng.randrange(len(self.items))
            s = story(n)
            self.srv.ok(s["link"], page(s["title"], [s["description"] * 4], lang="en"),
                        content_type="text/html; charset=utf-8")
            self.items[i].insert(0, s)
            self.serve(i)
            self.published.append(n)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--feeds", type=int, default=10)
    ap.add_argument("--hosts", type=int, default=3)
    ap.add_argument("--every", type=float, default=0.3, help="seconds between two new stories")
    ap.add_argument("--up", default="0.2,3", help="LO,HI: seconds the daemon runs after start-up before each kill")
    ap.add_argument("--hook-delay", type=float, default=0.05, help="seconds the receiver takes to answer")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep the work folder (database, config, daemon log)")
    args = ap.parse_args()
    lo, hi = map(float, args.up.split(","))
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="crash-"))
    srv = FaultServer(hosts=args.hosts)
    hook = Webhook(delay=args.hook_delay)
    pub = Publisher(srv, args.feeds, args.hosts, args.every, rng)
    cfg = write_config(work, feeds=[srv.url(f"/feed/{i}.xml", i % args.hosts) for i in range(args.feeds)],
                       hook=hook.apprise_url)
    db = work / "monitor.db"
    log = (work / "daemon.log").open("ab")
    started = time.monotonic()
    window: Counter[str] = Counter()  # story -> kills at which its alert was 'sending'
    phases: Counter[str] = Counter()
    restarts_ok = True
    try:
        proc = start(cfg, log)
        if not wait(lambda: rows(db, "SELECT COUNT(*) FROM feeds WHERE baselined_at IS NOT NULL")[0][0]
                    == args.feeds, 60):
            print("the feeds were never baselined", file=sys.stderr)
            return 2
        pub.start()
        starts = 1
        for k in range(args.kills):
            # Up time counts from "started" in the log: Python's start-up (imports) is no cycle.
            wait(lambda n=starts: (work / "daemon.log").read_bytes().count(b"monitor.daemon: started") >= n,
                 60, 0.05)
            time.sleep(rng.uniform(lo, hi))
            if proc.poll() is not None:
                restarts_ok = False
                print(f"daemon exited by itself before kill {k + 1}: status {proc.returncode}", file=sys.stderr)
            kill_tree(proc)
            sending = [t for (t,) in rows(db, SENDING)]
            queued = rows(db, "SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'failed')")[0][0]
            phases["delivering ('sending' rows)" if sending else "alerts queued" if queued else "polling/idle"] += 1
            window.update(m.group(1) for t in sending if (m := TOKEN.search(t)))
            proc = start(cfg, log)
            starts += 1
        pub.halt.set()
        pub.join()
        expected = {f"{n:05d}" for n in pub.published}

        def received() -> Counter[str]:
            return Counter(m.group(1) for w in list(hook.received) if (m := TOKEN.search(str(w.get("title")))))

        wait(lambda: expected <= set(received()) and rows(
            db, "SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'sending', 'failed')")[0][0] == 0, 120)
        code = stop(proc)
        got = received()
    finally:
        pub.halt.set()
        log.close()
        hook.close()
        srv.close()
    missing = sorted(expected - set(got))
    unexpected = sorted(set(got) - expected)
    dups = {s: c - 1 for s, c in got.items() if c > 1}
    # A story may be delivered once more for each kill that found its row 'sending'.
    in_window = sum(min(c, window[s]) for s, c in dups.items())
    outside = {s: c - window[s] for s, c in dups.items() if c > window[s]}
    print(f"command: {command_line()}")
    print(f"kills: {args.kills} (" + ", ".join(f"{v} {k}" for k, v in phases.most_common()) + ")")
    print(f"stories published: {len(pub.published)} over {args.feeds} feeds; expected alerts: {len(expected)}")
    print(f"received: {sum(got.values())} ({len(got)} distinct)  missing: {len(missing)}  "
          f"unexpected: {len(unexpected)}  duplicates: {sum(dups.values())} "
          f"(in the 'sending' window: {in_window}, outside it: {sum(outside.values())})")
    print(f"alert rows found 'sending' at a kill: {sum(window.values())} ({len(window)} stories); "
          f"final stop: exit {code}; "
          f"daemon never exited on its own: {restarts_ok}; wall time: {time.monotonic() - started:.0f} s")
    if missing:
        print(f"missing: {missing[:20]}")
    if outside:
        print(f"duplicates outside the window: {sorted(outside)[:20]}")
    if args.keep:
        print(f"work folder: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if missing or outside or unexpected or not restarts_ok else 0


if __name__ == "__main__":
    sys.exit(main())
