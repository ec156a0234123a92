"""What our parse stage costs against the raw library it wraps (issue 16 goal: <= 0.2x).

Runs, side by side in one process and on the same bytes, ``feedparser.parse(bytes,
sanitize_html=False, resolve_relative_uris=False)`` (the raw library with the daemon's flags)
and ``monitor.parse.parse_bytes`` with its fast path (feedparser-rs where it is sure, else
feedparser; + entity guard + normalisation to Entry + identity + canonical URLs +
HTML-to-text), over every captured real-world feed in
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

GOAL = 0.2
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
            feedparser.parse(b, sanitize_html=False, resolve_relative_uris=False)
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
    # Did both do the work? The entry counts must agree before the times mean anything.
    raw_entries = sum(len(feedparser.parse(b, sanitize_html=False, resolve_relative_uris=False).entries)
                      for b in bodies)
    fast = sum(parse.parse_fast(b) is not None for b in bodies)
    mb = sum(map(len, bodies)) / 1e6
    print(f"feeds={len(bodies)} MB={mb:.1f} rounds={args.rounds} fast-path={fast} feedparser={len(bodies) - fast}")
    print(f"entries: feedparser={raw_entries} ours={entries} (+{failed} not-a-feed)")
    print(f"raw feedparser.parse   {len(bodies) / raw:8.1f} feeds/s  {raw * 1000 / len(bodies):6.2f} ms/feed")
    print(f"monitor.parse          {len(bodies) / ours:8.1f} feeds/s  {ours * 1000 / len(bodies):6.2f} ms/feed")
    ratio = ours / raw
    print(f"ratio ours/raw time    {ratio:8.2f}x")
    # ours drops items with nothing in them; more than 1 % fewer entries means work not done
    same_work = entries <= raw_entries and entries >= 0.99 * raw_entries
    verdict = "PASS" if same_work and ratio <= GOAL else "FAIL"
    print(f"{verdict} parse cost {ratio:.2f}x of feedparser (goal <= {GOAL}x)"
          + ("" if same_work else f"; entry counts disagree: {entries} vs {raw_entries}"))
    print(f"reproduce: {sys.executable} bench/parse_cost.py {folder} --rounds {args.rounds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
