"""Goal G1/G2 side by side: the first full-parse pass (scenario B's baseline) of two (or more)
source trees' daemons on one farm, in rounds, medians printed.

    .venv/bin/python bench/polling/baseline_ab.py [--feeds 1000] [--rounds 5] TREE [TREE ...]

e.g. ``git archive main | tar -x -C /tmp/main`` then ``baseline_ab.py /tmp/main .``. A first pass
needs an empty database, so each round starts every tree's ``contenders.py daemon`` afresh (its
own work folder, ``PYTHONPATH=TREE``), runs ``pass baseline`` (run.py's timed window: the feed
list, then ``poll_all``, forkserver and worker start included) and quits; the order rotates from
round to round. Printed per tree: the medians of the wall, of the main process's CPU and of the
workers' CPU (user + sys, as run.py counts them). Nothing is checked but the statuses and the
entries stored (run.py checks the rest); the farm is never advanced, so every round parses the
same bytes.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys

import ab


def main() -> int:
    args, trees, env, work, farm, urls = ab.setup(__doc__, 1000, 5, "bench-baseline-")
    runs: dict[int, list[dict]] = {i: [] for i in range(len(trees))}

    def one(i: int, k: int) -> dict:
        tree, wd = trees[i], work / f"t{i}-r{k}"
        wd.mkdir()
        proc = subprocess.Popen(
            [sys.executable, str(tree / "bench/polling/contenders.py"), "daemon", "--workdir", str(wd),
             "--urls", str(urls)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=open(wd / "stderr.log", "w"), text=True, cwd=tree, env=env | {"PYTHONPATH": str(tree)})
        try:
            json.loads(proc.stdout.readline())  # type: ignore[union-attr]
            proc.stdin.write("pass baseline\nquit\n")  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]
            res = json.loads(proc.stdout.readline())  # type: ignore[union-attr]
            proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
        if res["polls"] != args.feeds or set(res["status"]) - {"baseline"}:
            sys.exit(f"tree {i}: not a full first pass: {res['status']} {res.get('errors')}")
        shutil.rmtree(wd, ignore_errors=True)
        return res

    try:
        for k in range(args.rounds):
            order = list(range(len(trees)))
            order = order[k % len(order):] + order[:k % len(order)]
            for i in order:
                r = one(i, k)
                runs[i].append(r)
                print(f"round {k} tree {i}: wall {r['wall']:.2f} main {r['cpu_main']:.2f} workers "
                      f"{r['cpu_workers']:.2f} entries {r['entries']}", file=sys.stderr, flush=True)
        for i, tree in enumerate(trees):
            cpus = " ".join(f"{r['cpu']:.2f}" for r in runs[i])
            med = {key: statistics.median(r[key] for r in runs[i])
                   for key in ("wall", "cpu_main", "cpu_workers", "cpu")}
            print(f"tree {i} {str(tree)[-30:]:30s} median wall {med['wall']:.2f} s  cpu {med['cpu']:.2f} s "
                  f"(main {med['cpu_main']:.2f}, workers {med['cpu_workers']:.2f})  entries "
                  f"{runs[i][0]['entries']}  cpu runs {cpus}")
    finally:
        farm.terminate()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
