"""What our parse stage costs on top of the raw library it wraps.

Runs, side by side in one process and on the same bytes, ``feedparser.parse(bytes)`` (the raw
library) and ``monitor.parse.parse_bytes`` (feedparser + entity guard + normalisation to
Entry + identity + canonical URLs + HTML-to-text), over every captured real-world feed in
``../shared/corpus/feeds/real`` (or the folder given). Prints feeds/s for both and the ratio.

    .venv/bin/python bench/parse_cost.py [FOLDER] [--rounds N]

The corpus is read at run time and never copied into the repository; without it the
benchmark says so and exits 0.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import feedparser

from monitor import parse
from monitor.errors import ParseError

DEFAULT = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "feeds" / "real"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", nargs="?", default=str(DEFAULT))
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    folder = Path(args.folder)
    if not folder.is_dir():
        print(f"corpus not found at {folder}; nothing to measure")
        return 0
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in {".xml", ".rss", ".atom", ""}
                   and p.stat().st_size > 0)
    bodies = [p.read_bytes() for p in files]
    raw_times, ours_times, failed = [], [], 0
    entries = 0
    for _ in range(args.rounds):
        t = time.perf_counter()
        for b in bodies:
            feedparser.parse(b)
        raw_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        failed = entries = 0
        for b in bodies:
            try:
                entries += len(parse.parse_bytes(b).entries)
            except ParseError:
                failed += 1
        ours_times.append(time.perf_counter() - t)
    raw, ours = statistics.median(raw_times), statistics.median(ours_times)
    mb = sum(map(len, bodies)) / 1e6
    print(f"feeds={len(bodies)} MB={mb:.1f} entries={entries} not-a-feed={failed} rounds={args.rounds}")
    print(f"raw feedparser.parse   {len(bodies) / raw:8.1f} feeds/s  {raw * 1000 / len(bodies):6.2f} ms/feed")
    print(f"monitor.parse          {len(bodies) / ours:8.1f} feeds/s  {ours * 1000 / len(bodies):6.2f} ms/feed")
    print(f"ratio ours/raw time    {ours / raw:8.2f}x")
    print(f"reproduce: {sys.executable} bench/parse_cost.py {folder} --rounds {args.rounds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
