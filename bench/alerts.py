"""Outbox throughput and the sender's memory, against a local JSON webhook (apprise json://).

    .venv/bin/python bench/alerts.py [--alerts 2000] [--backlog 100000]

1. Throughput: N matches recorded (store.record: entries, matches, outbox rows in one
   transaction), then delivered by the real Sender through apprise to a receiver on 127.0.0.1,
   on one channel (strict order: one message at a time) and spread over four channels.
2. Memory: 100,000 pending alerts in the database; the sender's pass over them (stopped by a
   receiver that refuses after 2,000) and how much memory it takes, since it reads a channel's
   queue 100 rows at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import threading
import time
import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from monitor.config import NotifySection  # noqa: E402
from monitor.delivery import Sender  # noqa: E402
from monitor.models import Channel, Entry, FeedUpdate, Match  # noqa: E402
from monitor.notify import Notifier  # noqa: E402
from monitor.store import Store  # noqa: E402


class Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    received = 0
    accept_until = 10**12

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        ok = Receiver.received < Receiver.accept_until
        Receiver.received += ok
        self.send_response(200 if ok else 500)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")


def record(store: Store, n: int, channels: tuple[str, ...], tag: str) -> float:
    """Record n matches (1000 per transaction, as polls do); seconds taken."""
    now = time.time()
    store.sync_feeds([("http://127.0.0.1:9/bench.xml", "Bench", None)], now)
    [feed] = [f for f in store.feeds() if f.url.endswith("/bench.xml")]
    update = FeedUpdate(last_ok_at=now, last_status="ok", error_count=0, next_check_at=now + 900)
    started = time.perf_counter()
    for start in range(0, n, 1000):
        items = [(Entry(uid=f"guid:{tag}{i}", title=f"Story {tag}{i}", link=f"http://example.org/{tag}{i}",
                        summary="", content="", published=None, guid=f"{tag}{i}", content_hash=f"{tag}{i}"),
                  None, [Match("r", "Rule", ("Kursk",), "title", "… Kursk …", channels=(channels[i % len(channels)],))])
                 for i in range(start, min(n, start + 1000))]
        store.record(feed, now=now, update=update, new=items, baseline=False)
    return time.perf_counter() - started


def throughput(url: str, n: int, channels: tuple[str, ...]) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.db")
        sender = Sender(store, Notifier({c: Channel(c, (url,), c) for c in channels}), NotifySection())
        Receiver.received, Receiver.accept_until = 0, 10**12
        started = time.perf_counter()
        record(store, n, channels, "t")
        sent, _ = asyncio.run(sender.deliver())
        took = time.perf_counter() - started
        assert sent == n == Receiver.received, (sent, Receiver.received)
        sender.close()
        store.close()
    return n / took, took


def backlog(url: str, n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.db")
        seeded = record(store, n, ("hook",), "b")
        print(f"backlog: recorded {n} pending alerts in {seeded:.1f} s ({n / seeded:,.0f} matches/s)")
        sender = Sender(store, Notifier({"hook": Channel("hook", (url,), "hook")}), NotifySection())
        Receiver.received, Receiver.accept_until = 0, 2000
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tracemalloc.start()
        started = time.perf_counter()
        sent, failed = asyncio.run(sender.deliver())
        took = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        counts = store.outbox_counts()
        print(f"backlog: one pass over {n} pending: sent={sent} failed={failed} in {took:.1f} s; "
              f"Python heap peak during the pass {peak / 2**20:.1f} MiB; max RSS {rss_before / 1024:.0f} -> "
              f"{rss_after / 1024:.0f} MiB; outbox now {counts}")
        sender.close()
        store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--alerts", type=int, default=2000)
    ap.add_argument("--backlog", type=int, default=100_000)
    args = ap.parse_args()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"json://127.0.0.1:{httpd.server_address[1]}/hook"
    print(f"command: .venv/bin/python bench/alerts.py --alerts {args.alerts} --backlog {args.backlog}")
    for channels in (("hook",), ("c1", "c2", "c3", "c4")):
        rate, took = throughput(url, args.alerts, channels)
        print(f"throughput: {args.alerts} alerts, match -> sent, {len(channels)} channel(s): {rate:,.0f} alerts/s "
              f"({took:.1f} s)")
    backlog(url, args.backlog)
    httpd.shutdown()


if __name__ == "__main__":
    main()
