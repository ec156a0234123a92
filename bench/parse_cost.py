"""What our parse stage costs against the raw library it wraps (issue 16 goal: <= 0.2x).

Runs, side by side in one process and on the same bytes, ``feedparser.parse(bytes,
response_headers={"content-location": url}, sanitize_html=False, resolve_relative_uris=False)``
(the raw library as the daemon would call it: its flags, and the URL the feed came from, which
links and ids are resolved against) and ``monitor.parse.parse_bytes(bytes, "", url)`` with its
fast path (feedparser-rs where it is sure, else feedparser; + entity guard + normalisation to
Entry + identity + canonical URLs + HTML-to-text), over every captured real-world feed in
``../shared/corpus/feeds/real`` (or the folder given), each taken to come from ``BASE``/its
path. Prints feeds/s for both and the ratio.

    .venv/bin/python bench/parse_cost.py [FOLDER] [--rounds N]
    .venv/bin/python bench/parse_cost.py [FOLDER] --instructions

``--instructions`` counts instead, with valgrind's callgrind, the instructions of one pass of
each side in one process (both warmed by a pass first; instrumentation switched on once they
are, collection limited to the two passes by ``--toggle-collect`` on the C functions that run
them): two runs on a busy machine agree within a fraction of a percent where times differ by
5-10 %. About 2 minutes.

The corpus is read at run time and never copied into the repository; without it the
benchmark says so and exits 0.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import callgrind
import feedparser

from monitor import parse
from monitor.errors import ParseError

GOAL = 0.2
BASE = "https://feeds.example.org"  # where the corpus' feeds are taken to come from
DEFAULT = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "feeds" / "real"
ROOT = Path(__file__).resolve().parent.parent


Feed = tuple[str, bytes]  # (the URL it is fetched from, its bytes)


def feeds(folder: Path) -> list[Feed]:
    """Every feed file, with a URL under its folder's name: the daemon parses each feed with the
    URL it came from (links and ids are resolved against it), and so do both sides here."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in {".xml", ".rss", ".atom", ""}
                   and p.stat().st_size > 0)
    return [(f"{BASE}/{p.relative_to(folder).as_posix()}", p.read_bytes()) for p in files]


def raw_parse(feed: Feed) -> Any:
    """The raw library as the daemon calls it (parse._feedparser): the response URL as the base."""
    return feedparser.parse(feed[1], response_headers={"content-location": feed[0]}, sanitize_html=False,
                            resolve_relative_uris=False)


def raw_entries(feed: Feed) -> int:
    return len(raw_parse(feed).entries)


def our_entries(feed: Feed) -> int:
    try:
        return len(parse.parse_bytes(feed[1], "", feed[0]).entries)
    except ParseError:
        return 0


def child(folder: Path, flag: str) -> None:
    """Under valgrind: both sides warmed by a pass, then one counted pass of each."""
    bodies = feeds(folder)
    for b in bodies:
        raw_entries(b)
        our_entries(b)
    Path(flag).write_text("ready")
    while os.path.exists(flag):
        time.sleep(0.1)
    raw = functools.reduce(lambda acc, b: acc + raw_entries(b), bodies, 0)
    counts: list[int] = []
    max(map(lambda b: counts.append(our_entries(b)) or 0, bodies))
    ours = sum(counts)
    Path(flag + ".entries").write_text(f"{raw} {ours}")


def instructions(folder: Path) -> int:
    """Count one pass of each side with callgrind; print both, the ratio and the command."""
    if not callgrind.available():
        print("valgrind not found (apt-get install valgrind); nothing measured")
        return 0
    raw, ours, done = callgrind.count(lambda flag: [sys.executable, __file__, str(folder), "--child", flag],
                                      {**os.environ, "PYTHONPATH": str(ROOT)}, "the counted process", ".entries")
    raw_n, ours_n = map(int, done.split())
    print(f"feeds={len(feeds(folder))} one pass each, callgrind instructions")
    print(f"entries: feedparser={raw_n} ours={ours_n}")
    print(f"raw feedparser.parse   {raw / 1e6:10,.0f} M instructions")
    print(f"monitor.parse          {ours / 1e6:10,.0f} M instructions")
    ratio = ours / raw
    same_work = raw_n * 0.99 <= ours_n <= raw_n
    verdict = "PASS" if same_work and ratio <= GOAL else "FAIL"
    print(f"ratio ours/raw         {ratio:10.3f}x")
    print(f"{verdict} parse cost {ratio:.3f}x of feedparser in instructions (goal <= {GOAL}x)"
          + ("" if same_work else f"; entry counts disagree: {ours_n} vs {raw_n}"))
    print(f"reproduce: {sys.executable} bench/parse_cost.py {folder} --instructions")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", nargs="?", default=str(DEFAULT))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--instructions", action="store_true", help="count instructions with callgrind instead")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    folder = Path(args.folder)
    if not folder.is_dir():
        print(f"corpus not found at {folder}; nothing to measure")
        return 0
    if args.child:
        child(folder, args.child)
        return 0
    if args.instructions:
        return instructions(folder)
    bodies = feeds(folder)
    raw_times, ours_times, failed = [], [], 0
    entries = 0
    for _ in range(args.rounds):
        t = time.perf_counter()
        for b in bodies:
            raw_parse(b)
        raw_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        failed = entries = 0
        for b in bodies:
            try:
                entries += len(parse.parse_bytes(b[1], "", b[0]).entries)
            except ParseError:
                failed += 1
        ours_times.append(time.perf_counter() - t)
    raw, ours = statistics.median(raw_times), statistics.median(ours_times)
    # Did both do the work? The entry counts must agree before the times mean anything.
    raw_n = sum(map(raw_entries, bodies))
    fast = sum(parse.parse_fast(b[1], "", b[0]) is not None for b in bodies)
    mb = sum(len(b[1]) for b in bodies) / 1e6
    print(f"feeds={len(bodies)} MB={mb:.1f} rounds={args.rounds} fast-path={fast} feedparser={len(bodies) - fast}")
    print(f"entries: feedparser={raw_n} ours={entries} (+{failed} not-a-feed)")
    print(f"raw feedparser.parse   {len(bodies) / raw:8.1f} feeds/s  {raw * 1000 / len(bodies):6.2f} ms/feed")
    print(f"monitor.parse          {len(bodies) / ours:8.1f} feeds/s  {ours * 1000 / len(bodies):6.2f} ms/feed")
    ratio = ours / raw
    print(f"ratio ours/raw time    {ratio:8.2f}x")
    # ours drops items with nothing in them; more than 1 % fewer entries means work not done
    same_work = entries <= raw_n and entries >= 0.99 * raw_n
    verdict = "PASS" if same_work and ratio <= GOAL else "FAIL"
    print(f"{verdict} parse cost {ratio:.2f}x of feedparser (goal <= {GOAL}x)"
          + ("" if same_work else f"; entry counts disagree: {entries} vs {raw_n}"))
    print(f"reproduce: {sys.executable} bench/parse_cost.py {folder} --rounds {args.rounds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
