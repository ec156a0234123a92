"""Soak: the daemon against the local feed farm (bench/polling/farm.py) with fast intervals for
``--minutes``; reports RSS, open file descriptors and database size at start (after warm-up)
and end, with growth in per cent.

    .venv/bin/python bench/soak.py [--minutes 30] [--feeds 200] [--warmup 60]

The farm advances a share of its feeds every few seconds; a soak-only rule matches a few of
the farm's headlines, so alerts flow to a local webhook receiver too. Memory and fds should be
flat once warm (< 10 % growth); the database grows with the entries it keeps (retention
prunes only after [retention] days), so its growth is reported with the entry count.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from harness import Webhook, command_line, mb, open_fds, rows, start, stop, tree_rss, wait, write_config
from harness import farm as start_farm

RULE = """id: soak
title: Soak ceasefire
any: [ceasefire, sanctions package]
"""


def db_size(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, db.with_name(db.name + "-wal")) if p.exists())


def live_size(db: Path) -> int:
    """Bytes of the pages the database uses (the file less its free pages; the WAL, which SQLite
    checkpoints at ~4 MB and then reuses, is not counted)."""
    pages, free, size = (rows(db, f"PRAGMA {p}")[0][0] for p in ("page_count", "freelist_count", "page_size"))
    return (pages - free) * size


def reading(pid: int, db: Path) -> dict[str, float]:
    procs = tree_rss(pid)
    return {"rss": procs.get(pid, 0), "rss_all": sum(procs.values()), "fds": open_fds(pid), "db": db_size(db),
            "db_file": db.stat().st_size, "db_live": live_size(db),
            "entries": rows(db, "SELECT COUNT(*) FROM entries")[0][0],
            "sent": rows(db, "SELECT COUNT(*) FROM outbox WHERE state = 'sent'")[0][0]}


def growth(a: float, b: float) -> str:
    return f"{(b - a) / a * 100:+.1f} %" if a else "n/a"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--warmup", type=float, default=60, help="seconds before the start reading")
    ap.add_argument("--feeds", type=int, default=200)
    ap.add_argument("--hosts", type=int, default=20)
    ap.add_argument("--interval", type=float, default=5, help="[poll] interval, seconds")
    ap.add_argument("--advance-every", type=float, default=5, help="seconds between farm updates")
    ap.add_argument("--share", type=float, default=0.1, help="share of feeds with new items per update")
    ap.add_argument("--retention-days", type=float, default=None,
                    help="[retention] days (default: the daemon's 90): a few minutes' worth, e.g. 0.0035, "
                         "lets a soak show the database bounded by retention once warm")
    ap.add_argument("--retention-every", type=float, default=60, help="[retention] every, seconds")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    (work / "rules").mkdir()
    (work / "rules" / "soak.yaml").write_text(RULE, encoding="utf-8")
    farm, info, feeds = start_farm(args.feeds, args.hosts, "--latency-ms", "1,10")
    port, hosts = info["port"], info["hosts"]
    hook = Webhook()
    retention = ("" if args.retention_days is None else
                 f"[retention]\ndays = {args.retention_days}\nevery = {args.retention_every}")
    cfg = write_config(work, feeds=feeds, hook=hook.apprise_url, tick=1, interval=args.interval, fetch_timeout=10,
                       rules=work / "rules", extra=retention)
    db = work / "monitor.db"
    log = (work / "daemon.log").open("ab")
    halt = threading.Event()

    def advance() -> None:
        seed = 0
        while not halt.wait(args.advance_every):
            seed += 1
            req = urllib.request.Request(f"http://{hosts[0]}:{port}/_control/advance?share={args.share}&seed={seed}",
                                         method="POST")
            try:
                urllib.request.urlopen(req, timeout=10).read()
            except OSError as e:
                print(f"advance failed: {e}", file=sys.stderr)

    proc = start(cfg, log)
    samples: list[tuple[float, dict[str, float]]] = []
    try:
        wait(lambda: rows(db, "SELECT COUNT(*) FROM feeds WHERE baselined_at IS NOT NULL")[0][0] >= args.feeds * 0.9,
             300)
        threading.Thread(target=advance, daemon=True).start()
        time.sleep(args.warmup)
        t0 = time.monotonic()
        first = reading(proc.pid, db)
        samples.append((0.0, first))
        print(f"start (after {args.warmup:g} s warm-up): RSS {mb(first['rss'])} (with workers {mb(first['rss_all'])}), "
              f"fds {first['fds']:.0f}, db {mb(first['db'])}, entries {first['entries']:.0f}, "
              f"alerts sent {first['sent']:.0f}", flush=True)
        end = t0 + args.minutes * 60
        next_print = t0 + 60
        while time.monotonic() < end:
            time.sleep(min(10, max(0.0, end - time.monotonic())))
            if proc.poll() is not None:
                print(f"daemon died: exit {proc.returncode}", flush=True)
                break
            r = reading(proc.pid, db)
            samples.append((time.monotonic() - t0, r))
            if time.monotonic() >= next_print:
                next_print += 60
                print(f"  {samples[-1][0] / 60:4.1f} min: RSS {mb(r['rss'])} (with workers {mb(r['rss_all'])}), "
                      f"fds {r['fds']:.0f}, db {mb(r['db'])}, entries {r['entries']:.0f}, sent {r['sent']:.0f}",
                      flush=True)
        last = reading(proc.pid, db) if proc.poll() is None else samples[-1][1]
        code = stop(proc) if proc.poll() is None else proc.returncode
    finally:
        halt.set()
        log.close()
        hook.close()
        farm.terminate()
        farm.wait(10)
    minutes = (time.monotonic() - t0) / 60
    tracebacks = (work / "daemon.log").read_text(errors="replace").count("Traceback")
    print(f"command: {command_line()}")
    print(f"ran {minutes:.1f} min after warm-up over {args.feeds} feeds ({args.hosts} hosts), interval "
          f"{args.interval:g} s; alerts received {len(hook.received)}; stop exit {code}; tracebacks {tracebacks}")
    print(f"{'':16s}{'start':>12s}{'end':>12s}{'growth':>10s}")
    for key, label, fmt in [("rss", "RSS daemon", mb), ("rss_all", "RSS +workers", mb),
                            ("fds", "open fds", lambda v: f"{v:.0f}"), ("db", "db + WAL", mb),
                            ("db_file", "db file", mb), ("db_live", "db live pages", mb),
                            ("entries", "entries", lambda v: f"{v:.0f}")]:
        print(f"{label:16s}{fmt(first[key]):>12s}{fmt(last[key]):>12s}{growth(first[key], last[key]):>10s}")
    peak = max(s[1]["rss"] for s in samples)
    print(f"peak RSS daemon {mb(peak)}; work folder {work}")
    flat = last["rss"] <= first["rss"] * 1.1 and last["fds"] <= first["fds"] * 1.1
    return 0 if flat and code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
