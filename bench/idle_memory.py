"""Idle memory (issue 16): the real daemon (`monitor run`) on 200 loopback feeds that answer 304,
then the PSS of the daemon and of every child (forkserver, workers), from /proc/PID/smaps_rollup.

    PYTHONPATH=. .venv/bin/python bench/idle_memory.py [--feeds 200] [--minutes 2] [--workers 0]

PSS (proportional set size) counts a page shared by N processes as 1/N in each, so the sum over
the process tree is what the tree costs the machine (RSS would count the forkserver's shared
pages once per worker). The farm (bench/polling/farm.py --etag-share 1) gives every feed an ETag:
the first poll of each feed gets a 200 (parsed in the workers: a silent baseline), every later
poll a 304. The bench checks that the daemon baselined the feeds and that the farm answered
304s during the measured window, so an idle daemon that polls nothing cannot pass.
Goal: < 180 MB PSS in all. Run with PYTHONPATH=/work/main for the figures before.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from harness import Webhook, _children, command_line, rows, start, stop, wait, write_config
from harness import farm as start_farm

GOAL_MB = 180.0


def pss(pid: int) -> int:
    """PSS bytes of one process (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree(pid: int) -> list[tuple[int, str, int]]:
    """(pid, what it is, PSS bytes) for ``pid`` and every descendant."""
    out, todo = [], [(pid, "")]
    while todo:
        p, parent = todo.pop(0)
        try:
            cmd = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        kind = ("daemon" if p == pid else "worker" if parent == "forkserver"
                else "forkserver" if "forkserver" in cmd else "resource_tracker" if "resource_tracker" in cmd
                else "child")
        out.append((p, kind, pss(p)))
        todo += [(c, kind) for c in _children(p)]
    return out


def farm_stats(host: str, port: int) -> dict[str, int]:
    with urllib.request.urlopen(f"http://{host}:{port}/_control/stats", timeout=10) as r:
        return json.loads(r.read())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--feeds", type=int, default=200)
    ap.add_argument("--hosts", type=int, default=20)
    ap.add_argument("--minutes", type=float, default=2.0, help="idle time measured after the baseline")
    ap.add_argument("--interval", type=float, default=10, help="[poll] interval, seconds")
    ap.add_argument("--workers", type=int, default=0, help="[extract] workers (0: one per core, the default)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="idle-memory-"))
    farm, info, feeds = start_farm(args.feeds, args.hosts, "--etag-share", "1", "--latency-ms", "1,5")
    port, hosts = info["port"], info["hosts"]
    hook = Webhook()
    cfg = write_config(work, feeds=feeds, hook=hook.apprise_url, tick=1, interval=args.interval, fetch_timeout=10,
                       extra="")
    # the daemon's defaults where the harness sets fast-test values: workers per core, no first-run digest
    cfg.write_text(cfg.read_text().replace("workers = 1", f"workers = {args.workers}")
                   .replace("[poll]\n", "[poll]\nfirst_run_window = 0\n"))
    db = work / "monitor.db"
    log = (work / "daemon.log").open("ab")
    proc = start(cfg, log)
    ok = True
    try:
        baselined = wait(lambda: rows(db, "SELECT COUNT(*) FROM feeds WHERE baselined_at IS NOT NULL")[0][0]
                         >= args.feeds, 300)
        before = farm_stats(hosts[0], port)
        time.sleep(args.minutes * 60)
        after = farm_stats(hosts[0], port)
        alive = proc.poll() is None
        procs = tree(proc.pid) if alive else []
        code = stop(proc) if alive else proc.returncode
    finally:
        log.close()
        hook.close()
        farm.terminate()
        farm.wait(10)
    n304, n200 = after["304"] - before["304"], after["200"] - before["200"]
    print(f"command: PYTHONPATH={os.environ.get('PYTHONPATH', '')} {command_line()}")
    print(f"{args.feeds} feeds over {args.hosts} hosts, interval {args.interval:g} s, idle {args.minutes:g} min; "
          f"farm stats at start {before}, at end {after}")
    print(f"baselined all feeds: {baselined}; during the window: 304s {n304}, 200s {n200}; daemon alive {alive}, "
          f"stop exit {code}")
    for p, kind, b in procs:
        print(f"  pid {p:>7}  {kind:16s} PSS {b / 2**20:7.1f} MB")
    total = sum(b for _, _, b in procs) / 2**20
    expected = args.feeds  # a conditional poll of every feed at least (servers' hints may stretch the interval)
    if not baselined or n304 < expected or not alive:
        ok = False
        print(f"FAIL the daemon did not idle as it should (baselined={baselined}, 304s {n304} < {expected:.0f}, "
              f"alive={alive}): log {work / 'daemon.log'}")
    print(f"{'PASS' if ok and total < GOAL_MB else 'FAIL'} idle PSS in all {total:.1f} MB (goal < {GOAL_MB:g} MB) "
          f"over {len(procs)} processes")
    return 0 if ok and total < GOAL_MB else 1


if __name__ == "__main__":
    sys.exit(main())
