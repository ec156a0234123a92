"""The daemon over 100 feeds that fail in every way tests/faults.py knows, beside 100 healthy
ones, for several cycles: it keeps running, every healthy feed's alerts arrive, each bad feed's
health names its cause, and memory stays bounded.

    .venv/bin/python bench/faults.py [--bad 100] [--healthy 100] [--cycles 3]

Each cycle adds one new story (which the shipped 'kursk' rule matches) to every healthy feed
and waits for all of its alerts at the webhook receiver, sampling the RSS of the daemon and its
workers meanwhile. At the end: counts, RSS at start (after the baseline) and end, the per-cause
health table from `monitor feeds --json`, and whether each bad feed named its expected cause.
Exit status 1 when an alert is missing, a cause is wrong, or the daemon died.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from harness import (
    EXPECTED,
    KINDS,
    FaultServer,
    Webhook,
    command_line,
    mb,
    monitor_cmd,
    old_items,
    open_fds,
    page,
    rows,
    rss,
    start,
    stop,
    story,
    tree_rss,
    wait,
    write_config,
)

TOKEN = re.compile(r"#(\d{5})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bad", type=int, default=100)
    ap.add_argument("--healthy", type=int, default=100)
    ap.add_argument("--cycles", type=int, default=3)
    ap.add_argument("--healthy-hosts", type=int, default=10)
    ap.add_argument("--timeout", type=float, default=3, help="[fetch] timeout, seconds")
    ap.add_argument("--interval", type=float, default=2, help="[poll] interval, seconds")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (database, config, daemon log)")
    args = ap.parse_args()
    kinds = list(KINDS)
    work = Path(tempfile.mkdtemp(prefix="faults-"))
    # One host per bad feed (429s from several feeds of a host throttle the host); the healthy
    # feeds share the last --healthy-hosts addresses.
    srv = FaultServer(hosts=args.bad + args.healthy_hosts)
    hook = Webhook()
    bad = {srv.fault(f"/bad/{n}-{kinds[n % len(kinds)]}.xml", kinds[n % len(kinds)], host=n,
                     body=rss(old_items(1000 + n)).encode()): kinds[n % len(kinds)] for n in range(args.bad)}
    items = [old_items(i) for i in range(args.healthy)]

    def serve(i: int) -> str:
        host = args.bad + i % args.healthy_hosts
        return srv.ok(f"/good/{i}.xml", rss([{**it, "link": srv.url(it["link"], host)} for it in items[i]]),
                      host=host)

    healthy = [serve(i) for i in range(args.healthy)]
    cfg = write_config(work, feeds=[*bad, *healthy], hook=hook.apprise_url, tick=0.5, interval=args.interval,
                       fetch_timeout=args.timeout)
    db = work / "monitor.db"
    log = (work / "daemon.log").open("ab")
    began = time.monotonic()
    peak: dict[int, int] = {}
    published: list[int] = []
    cycle_times: list[float] = []
    died = False

    def sample() -> None:
        for p, value in tree_rss(proc.pid).items():
            peak[p] = max(peak.get(p, 0), value)

    def received() -> set[str]:
        return {m.group(1) for w in list(hook.received) if (m := TOKEN.search(str(w.get("title"))))}

    proc = start(cfg, log)
    try:
        def baselined() -> bool:
            sample()
            return rows(db, "SELECT COUNT(*) FROM feeds WHERE baselined_at IS NOT NULL")[0][0] >= args.healthy
        if not wait(baselined, 120):
            print("the healthy feeds were never baselined", file=sys.stderr)
        start_rss, start_fds = tree_rss(proc.pid), open_fds(proc.pid)
        n = 0
        for _ in range(args.cycles):
            t0 = time.monotonic()
            for i in range(args.healthy):
                n += 1
                s = story(n)
                srv.ok(s["link"], page(s["title"], [s["description"] * 4], lang="en"),
                       content_type="text/html; charset=utf-8")
                items[i].insert(0, s)
                serve(i)
                published.append(n)

            def arrived() -> bool:
                sample()
                return proc.poll() is None and {f"{k:05d}" for k in published} <= received()
            wait(arrived, 180, step=0.5)
            cycle_times.append(time.monotonic() - t0)
            if proc.poll() is not None:
                died = True
                break
        sample()
        end_rss, end_fds = tree_rss(proc.pid), open_fds(proc.pid)
        code = stop(proc)
    finally:
        log.close()
        hook.close()
        srv.close()
    feeds = subprocess.run([*monitor_cmd(), "feeds", "--json", "--config", str(cfg)], capture_output=True,
                           text=True, timeout=60)
    health = {f["url"]: f for f in map(json.loads, feeds.stdout.splitlines())}
    expected = {f"{k:05d}" for k in published}
    got = Counter(m.group(1) for w in hook.received if (m := TOKEN.search(str(w.get("title")))))
    table: dict[tuple[str, str, str], int] = Counter()
    wrong = []
    for url, kind in bad.items():
        h = health.get(url, {})
        error = (h.get("last_error") or "")
        cause = re.sub(r"\d+(\.\d+)?s\b", "Ns", error[:60])
        table[(kind, h.get("status", "?"), cause)] += 1
        want_status, want_error = EXPECTED[kind]
        if h.get("status") != want_status or (want_error and not error.startswith(want_error)) \
                or (want_error is None and error):
            wrong.append((kind, h.get("status"), error[:80]))
    healthy_ok = sum(1 for url in healthy if health.get(url, {}).get("status") == "ok")
    tracebacks = (work / "daemon.log").read_text(errors="replace").count("Traceback")

    def total(d: dict[int, int]) -> int:
        return sum(d.values())

    print(f"command: {command_line()}")
    print(f"feeds: {args.bad} bad ({len(KINDS)} kinds) + {args.healthy} healthy; cycles: {len(cycle_times)} "
          f"({', '.join(f'{t:.0f} s' for t in cycle_times)}); wall time {time.monotonic() - began:.0f} s")
    print(f"alerts: expected {len(expected)}, received {sum(got.values())} ({len(set(got) & expected)} expected "
          f"distinct), missing {len(expected - set(got))}, duplicates {sum(c - 1 for c in got.values() if c > 1)}")
    print(f"daemon: kept running {not died}, stop exit {code}, tracebacks in log {tracebacks}; "
          f"healthy feeds ok {healthy_ok}/{args.healthy}")
    print(f"RSS daemon: start {mb(start_rss.get(proc.pid, 0))}, end {mb(end_rss.get(proc.pid, 0))}, "
          f"peak {mb(peak.get(proc.pid, 0))}; daemon+workers: start {mb(total(start_rss))}, end {mb(total(end_rss))}, "
          f"largest process ever {mb(max(peak.values()))}; open fds start {start_fds}, end {end_fds}")
    print("per-cause health of the bad feeds (kind, status, last error):")
    for (kind, status, cause), count in sorted(table.items()):
        print(f"  {count:3d}  {kind:15s} {status:8s} {cause}")
    print(f"bad feeds with the expected cause: {args.bad - len(wrong)}/{args.bad}")
    for w in wrong[:10]:
        print(f"  WRONG: {w}")
    if args.keep:
        print(f"work folder: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    bad_run = died or wrong or expected - set(got) or code != 0 or healthy_ok < args.healthy
    return 1 if bad_run else 0


if __name__ == "__main__":
    sys.exit(main())
