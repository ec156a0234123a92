"""What a daemon costs between polls at scale: the real daemon (`monitor run`) on a database of
50,000 feeds of which none is due, its CPU (daemon and every child) over a window, and their PSS.
Between polls the daemon still ticks, beats, drains the outbox and reads the counts behind
/metrics and systemd's STATUS line (every 5 s); this is what that costs per feed held.

    .venv/bin/python bench/idle_scale.py [--feeds 50000] [--seconds 60] [TREE ...]

With several source trees (``git archive REV | tar -x -C /tmp/rev``), each tree's daemon runs
with ``PYTHONPATH=TREE`` at the same time as the others, on a database of its own made the same
way: side by side, as the machine is shared. The feeds are registered as ``monitor feeds add``
registers them and then marked polled, with their next poll a day away; the run checks that each
daemon started with every feed and was still running at the end of the window, or it says
INVALID and exits 1. Nothing is fetched: the feeds' hosts are never asked.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import ROOT, _children, command_line, monitor_cmd, wait
from idle_memory import pss

SETTLE = 20.0  # seconds after start before the window: the first snapshot taken, the workers up
FILL = """
import sys, time
from monitor.store import connect
store, n, now = connect(sys.argv[1]), int(sys.argv[2]), time.time()
store.add_feeds([(f"http://feeds{i % 50}.example/{i}.xml", None, None, ()) for i in range(n)], now)
store.db.execute("UPDATE feeds SET baselined_at = ?, last_ok_at = ?, cadence_s = 3600, last_new_at = ?, "
                 "next_check_at = ?", [now, now, now, now + 86400])
store.db.conn.commit()
store.close()
"""


def cpu_seconds(pid: int) -> float:
    """User and system CPU of ``pid`` and its live children, from /proc/PID/stat."""
    ticks, total = os.sysconf("SC_CLK_TCK"), 0
    for p in [pid, *children(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (the forkserver, and the workers it forked)."""
    found, todo = [], _children(pid)
    while todo:
        found.append(p := todo.pop())
        todo += _children(p)
    return found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trees", nargs="*", type=Path, default=[ROOT], help="source trees (default: this one)")
    ap.add_argument("--feeds", type=int, default=50_000)
    ap.add_argument("--seconds", type=float, default=60.0, help="the measured window")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-idle-scale-"))
    runs = []
    for k, tree in enumerate(t.resolve() for t in args.trees):
        folder = work / str(k)
        folder.mkdir()
        env = {**os.environ, "PYTHONPATH": str(tree)}
        subprocess.run([sys.executable, "-c", FILL, str(folder / "monitor.db"), str(args.feeds)], env=env, check=True)
        cfg = folder / "config.toml"
        cfg.write_text(f'[monitor]\ndatabase = "{folder / "monitor.db"}"\nrules = "{tree / "rules"}"\n'
                       '[http]\nport = 0\n[notify]\ndefault_channels = ["console"]\nops_channels = ["console"]\n'
                       '[channels.console]\nurls = ["log://"]\n', "utf-8")
        log = folder / "daemon.log"
        proc = subprocess.Popen([*monitor_cmd(), "run", "--config", str(cfg)], env=env, stdout=subprocess.DEVNULL,
                                stderr=log.open("w"))
        runs.append((tree, proc, log))
    started = f"started feeds={args.feeds} "
    ok = all(wait(lambda log=log: started in log.read_text("utf-8"), 120) for _, _, log in runs)
    time.sleep(SETTLE)
    before = [cpu_seconds(proc.pid) for _, proc, _ in runs]
    time.sleep(args.seconds)
    spent = [cpu_seconds(proc.pid) - b for (_, proc, _), b in zip(runs, before, strict=True)]
    sizes = [sum(pss(p) for p in [proc.pid, *children(proc.pid)]) / 1e6 for _, proc, _ in runs]
    alive = [proc.poll() is None for _, proc, _ in runs]
    for _, proc, _ in runs:
        proc.terminate()
        proc.wait(60)
    print(f"idle daemon, {args.feeds:,} feeds none due, {args.seconds:.0f} s window after {SETTLE:.0f} s, "
          "daemon and children, side by side:")
    for (tree, _, _), cpu, mb in zip(runs, spent, sizes, strict=True):
        print(f"  {str(tree)[-40:]:40s} CPU {cpu:6.2f} s = {cpu / args.seconds * 100:5.2f} % of a core   "
              f"PSS {mb:6.1f} MB")
    print(f"reproduce: {command_line()}")
    if not ok or not all(alive):
        print(f"INVALID: a daemon did not start with every feed or stopped early; logs under {work}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
