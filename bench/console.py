"""The console under load (issue 18): server-side time of its pages on a big database, and the
daemon's polling throughput while a page is hammered.

1. A database of 100,000 articles and 20,000 alerted stories (bench/console_store.py's fill,
   made through Store.record) is served by the real ``monitor web``; the inbox, a story, the
   feeds, the rules and three searches are each asked ``--runs`` times over HTTP. The server's
   own time comes from the ``Server-Timing`` header the console sets (the guard middleware to
   the end of the handler: session, store calls, template); the wall time of the request beside
   it. Goal: each page's median server time under 100 ms.
2. The real daemon (``monitor run``, its console on) polls a loopback farm of ``--feeds`` feeds
   due every second; polls per second are counted from its log over a window with nobody on
   the console, then over a window in which a client asks for search and inbox pages without a
   pause. Reported side by side, one run, with the ratio.

Run: .venv/bin/python bench/console.py [--articles N] [--alerts N] [--db PATH] [--runs N] [--feeds N]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import harness  # noqa: E402
from console_store import fill  # noqa: E402

from monitor.store import Store  # noqa: E402

GOAL_MS = 100.0


def serve(cfg: Path) -> tuple[harness.subprocess.Popen, str]:  # type: ignore[name-defined]
    proc = harness.subprocess.Popen([*harness.monitor_cmd(), "web", "--config", str(cfg), "--port", "0"],
                                    stderr=harness.subprocess.PIPE, stdout=harness.subprocess.DEVNULL, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        m = re.search(r"http listening on=(http://\S+)", line)
        if m:
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()  # type: ignore[union-attr]
            return proc, m.group(1)
    raise SystemExit("monitor web did not start")


def ask(url: str) -> tuple[float, float, int]:
    """(server ms from Server-Timing, wall ms, status)."""
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as resp:
        resp.read()
        timing = resp.headers.get("Server-Timing", "")
        status = resp.status
    wall = (time.perf_counter() - started) * 1000
    m = re.search(r"dur=([\d.]+)", timing)
    return (float(m.group(1)) if m else float("nan")), wall, status


def pages(base: str, runs: int) -> bool:
    inbox = json.loads(urllib.request.urlopen(base + "/inbox.json", timeout=60).read())
    story = inbox["alerts"][len(inbox["alerts"]) // 2]["alert_id"]
    paths = {"inbox": "/", "inbox, rule filter": "/?rule=kursk", "inbox, 20 pages deep":
             f"/?before={inbox['alerts'][-1]['id'] - 1000}", "story": f"/story/{story}", "feeds": "/feeds",
             "rules": "/rules", "search 'Kursk'": "/search?q=Kursk",
             "search 'Kämpfe Front'": "/search?q=K%C3%A4mpfe+Front",
             'search \'"North Korean" troops\'': "/search?q=%22North+Korean%22+troops"}
    ok = True
    print(f"{'page':34} {'server median':>14} {'p95':>8} {'wall median':>12}  goal: server median < {GOAL_MS:.0f} ms")
    for name, path in paths.items():
        ask(base + path)  # warm: the first request compiles the template
        got = [ask(base + path) for _ in range(runs)]
        assert all(s == 200 for _, _, s in got), (name, got[:3])
        server = sorted(g[0] for g in got)
        wall = [g[1] for g in got]
        med = statistics.median(server)
        ok &= med < GOAL_MS
        print(f"{name:34} {med:11.1f} ms {server[int(len(server) * 0.95) - 1]:5.1f} ms "
              f"{statistics.median(wall):9.1f} ms  {'PASS' if med < GOAL_MS else 'FAIL'}")
    return ok


def polling(feeds: int, window: float) -> None:
    farm, _info, urls = harness.farm(feeds, 10)
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        hook = harness.Webhook()
        cfg = harness.write_config(Path(tmp), feeds=urls, hook=hook.apprise_url, interval=1.0,
                                   extra="[http]\nenabled = true\nport = 0\n")
        log = open(Path(tmp) / "daemon.log", "w+")  # noqa: SIM115
        proc = harness.start(cfg, log)
        try:
            text = lambda: Path(tmp, "daemon.log").read_text("utf-8", "replace")  # noqa: E731
            harness.wait(lambda: "http listening on=" in text(), 60)
            base = re.search(r"http listening on=(http://\S+)", text()).group(1)  # type: ignore[union-attr]
            harness.wait(lambda: text().count("polled feed=") >= feeds, 120)  # the baselines are done

            def polls_in(seconds: float) -> float:
                before = text().count("polled feed=")
                time.sleep(seconds)
                return (text().count("polled feed=") - before) / seconds

            quiet = polls_in(window)
            stop, asked, failed = threading.Event(), [0], []

            def hammer() -> None:
                while not stop.is_set():
                    for path in ("/search?q=Kursk", "/", "/feeds", "/search?q=drone+OR+council"):
                        try:
                            urllib.request.urlopen(base + path, timeout=60).read()
                        except OSError as exc:  # counted, never silent: a failing page spoils the figure
                            failed.append(f"{path}: {exc}")
                            return
                        asked[0] += 1

            threads = [threading.Thread(target=hammer, daemon=True) for _ in range(2)]
            for t in threads:
                t.start()
            started = time.monotonic()
            busy = polls_in(window)
            stop.set()
            rate = asked[0] / (time.monotonic() - started)
            for t in threads:  # the clients finish their page before the daemon stops
                t.join(timeout=120)
            if failed:
                raise SystemExit(f"FAIL: the console failed while hammered: {failed[0]}")
            print(f"\npolling {feeds} feeds due every second (farm of 10 hosts), {window:.0f} s windows:")
            print(f"  nobody on the console:      {quiet:7.1f} polls/s")
            print(f"  console hammered ({rate:4.0f} pages/s by 2 clients): {busy:7.1f} polls/s  "
                  f"(ratio {busy / quiet if quiet else float('nan'):.2f})")
        finally:
            harness.stop(proc)
            hook.close()
            farm.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--articles", type=int, default=100_000)
    ap.add_argument("--alerts", type=int, default=20_000)
    ap.add_argument("--db", type=Path, help="keep the filled database here (reused when it exists)")
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--feeds", type=int, default=300)
    ap.add_argument("--window", type=float, default=20.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        db = args.db or Path(tmp) / "console.db"
        if not db.exists():
            started = time.monotonic()
            store = Store(db)
            fill(store, args.articles, args.alerts)
            store.close()
            print(f"filled {db}: {args.articles} articles, {args.alerts} alerts in {time.monotonic() - started:.0f} s")
        cfg = Path(tmp) / "config.toml"
        cfg.write_text(f'[monitor]\ndatabase = "{db}"\nrules = "{HERE.parent / "rules"}"\n'
                       '[channels.mail]\nurls = ["log://"]\n[channels.slack]\nurls = ["log://"]\n'
                       '[notify]\ndefault_channels = ["mail"]\n', "utf-8")
        proc, base = serve(cfg)
        try:
            ok = pages(base, args.runs)
        finally:
            proc.terminate()
            proc.wait(20)
    polling(args.feeds, args.window)
    print(f"\nreproduce: {harness.command_line()}")
    raise SystemExit(0 if ok else 3)


if __name__ == "__main__":
    main()
