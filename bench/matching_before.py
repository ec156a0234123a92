"""Issue 17's speed goal read as written: matching (``rules.match``, what the daemon runs) stays
within 10 % of what it cost on the day the issue was filed, before salience existed.

The rule engine of a base commit (default ``abcd830``, the last commit before salience) is taken
out of git into a temporary folder and imported beside this tree's, under another name, into
this one process. Both engines get the same generated rules and the same articles as
``bench/matching.py`` (``matching_rules.py``), and are timed article by article in turns: for
each article, one engine then the other, the order swapped every round, so that neither finds
the machine, the caches or the article in a state the other did not. Times are the thread's
CPU time (what the work costs, not what else the shared machine ran). Printed: per rule count,
now/before as the median of the rounds' ratios (each round's ratio is skewed by which engine met
the article second, warm: the order alternates, so the median of an even count is their middle),
both engines' rates and both engines' matches (the same: salience adds, it never drops a match).
``rules.find`` is not timed here: after both engines on the same article it would run warm.
Instruction counts (valgrind --tool=callgrind) told the same on this machine: 1,000 rules, now
1.14x before; 10,000 rules, 1.22x; ``rules.find`` equal to before (0.996x, 0.994x).

    .venv/bin/python bench/matching_before.py [--base abcd830] [--sizes 10,1000,10000] [--rounds 6]

The corpus is read at run time (``../shared/corpus``); without it the bench says so and exits 0.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

from matching import CORPUS, GOAL_SALIENCE, MIN_BYTES
from matching_rules import COMMON_SHARE, generate, load, pages, to_yaml, vocabulary

from monitor import rules
from monitor.models import Article

ROOT = Path(__file__).resolve().parent.parent
BASE = "abcd830"  # "tests: a feed that moves domain ...": the commit before salience (3bea46a)


def old_engine(base: str, into: Path) -> ModuleType:
    """The base commit's ``monitor`` package as ``monitor_before`` (its imports are relative)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", base, "monitor"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    (into / "monitor").rename(into / "monitor_before")
    sys.path.insert(0, str(into))
    return importlib.import_module("monitor_before.rules")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default=BASE, help="the commit whose engine is the reference")
    ap.add_argument("--sizes", default="10,1000,10000", help="rule counts, comma-separated")
    ap.add_argument("--rounds", type=int, default=6, help="rounds over every article (even: each engine first alike)")
    args = ap.parse_args()
    if not (CORPUS / "topics" / "dev.jsonl").exists():
        print(f"corpus not found at {CORPUS}; nothing to measure")
        return 0
    sizes = sorted({int(x) for x in args.sizes.split(",")})
    every = load(CORPUS)
    items = [it for it in every if len(it.text.encode()) >= MIN_BYTES]
    vocab = vocabulary(pages(CORPUS) or every, every, COMMON_SHARE)
    specs, concepts = generate(max(sizes), vocab, 1)
    with tempfile.TemporaryDirectory(prefix="matching-before-") as tmp:
        old = old_engine(args.base, Path(tmp))
        old_models = importlib.import_module("monitor_before.models")
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True).stdout.strip()
        print(f"{len(items)} articles of {CORPUS / 'topics' / 'dev.jsonl'}; rules generated as bench/matching.py "
              f"(seed 1); base {args.base} (before salience) against this tree ({rev}); thread CPU time, "
              f"article by article in turns, {args.rounds} rounds", flush=True)
        new_arts = [Article(title=it.title, text=it.text, language=it.lang) for it in items]
        old_arts = [old_models.Article(title=it.title, text=it.text, language=it.lang) for it in items]
        print(f"\n{'rules':>6} | {'before art/s':>12} | {'now art/s':>9} | {'now/before (median)':>19} | "
              f"{'rounds':>34} | matches before/now")
        worst, invalid = 0.0, []
        for n in sizes:
            text = to_yaml(specs[:n], concepts)
            rs_new, rs_old = rules.parse(text, f"<{n} rules>"), old.parse(text, f"<{n} rules>")
            for a, b in zip(new_arts, old_arts, strict=True):  # warm: every word stemmed once by each
                rules.match(rs_new, a)
                old.match(rs_old, b)
            found_new = sum(len(rules.match(rs_new, a)) for a in new_arts)
            found_old = sum(len(old.match(rs_old, b)) for b in old_arts)
            if found_new != found_old or (n >= 1000 and not found_new):  # the same work, and some
                invalid.append(f"{n:,} rules: {found_old} matches before, {found_new} now")
            gc.collect()
            gc.freeze()
            ratios, t_new, t_old = [], [], []
            clock = time.thread_time
            for r in range(args.rounds):
                s_new = s_old = 0.0
                for a, b in zip(new_arts, old_arts, strict=True):
                    if r % 2:
                        c = clock(); rules.match(rs_new, a); s_new += clock() - c  # noqa: E702
                        c = clock(); old.match(rs_old, b); s_old += clock() - c  # noqa: E702
                    else:
                        c = clock(); old.match(rs_old, b); s_old += clock() - c  # noqa: E702
                        c = clock(); rules.match(rs_new, a); s_new += clock() - c  # noqa: E702
                ratios.append(s_new / s_old)
                t_new.append(s_new)
                t_old.append(s_old)
            gc.unfreeze()
            med = statistics.median(ratios)
            worst = max(worst, med)
            print(f"{n:>6,} | {len(items) / min(t_old):>12,.0f} | {len(items) / min(t_new):>9,.0f} | {med:>19.3f} | "
                  f"{', '.join(f'{x:.2f}' for x in ratios):>34} | {found_old}/{found_new}", flush=True)
        if invalid:  # the engines did not do the same work: their times say nothing
            print(f"\nFAIL issue 17 speed: INVALID, the engines found different matches: {'; '.join(invalid)}")
            return 1
        print(f"\n{'PASS' if worst <= GOAL_SALIENCE else 'FAIL'} issue 17 speed: rules.match now / before salience "
              f"<= {GOAL_SALIENCE:.2f} at every size (worst {worst:.3f}, median of {args.rounds} rounds)")
    print("reproduce: .venv/bin/python bench/matching_before.py" + "".join(f" {a}" for a in sys.argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
