"""Goal G3 side by side: the unchanged pass's CPU per poll of two (or more) source trees'
daemons and of the floor, on one farm, in rounds, medians printed.

    .venv/bin/python bench/polling/unchanged_ab.py [--feeds 500] [--rounds 10] TREE [TREE ...]

e.g. ``git archive main | tar -x -C /tmp/main`` then ``unchanged_ab.py /tmp/main .``: each tree's
``bench/polling/contenders.py daemon`` runs with ``PYTHONPATH=TREE`` (its own ``monitor``), the
floor from the first tree. After one baseline pass each (the floor only fetches), every round
runs one unchanged pass per contender, the order rotating from round to round. One unchanged
pass of ``run.py --quick`` is 500 polls and 0.1-0.2 s of CPU: on a shared machine its ratio
moves by 0.2 from run to run; the median of ten rounds moves by a few hundredths. Nothing is
checked here (run.py checks that the work was done); a pass whose polls are not all
``not-modified`` stops the run.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import ab


def main() -> int:
    args, trees, env, work, farm, urls = ab.setup(__doc__, 500, 10, "bench-unchanged-")
    procs: dict[str, subprocess.Popen[str]] = {}

    def start(name: str, tree: Path, mode: str) -> None:
        (work / name).mkdir()
        procs[name] = subprocess.Popen(
            [sys.executable, str(tree / "bench/polling/contenders.py"), mode, "--workdir", str(work / name),
             "--urls", str(urls)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=open(work / name / "stderr.log", "w"), text=True, cwd=tree, env=env | {"PYTHONPATH": str(tree)})
        json.loads(procs[name].stdout.readline())  # type: ignore[union-attr]

    def ask(name: str, line: str) -> dict:
        proc = procs[name]
        proc.stdin.write(line + "\n")  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]
        return json.loads(proc.stdout.readline())  # type: ignore[union-attr]

    try:
        names = []
        for i, tree in enumerate(trees):
            names.append(name := f"daemon{i}")
            start(name, tree, "daemon")
            ask(name, "pass baseline")
        start("floor", trees[0], "floor")
        ask("floor", "prime baseline")
        names.append("floor")
        cpu: dict[str, list[float]] = {n: [] for n in names}
        for k in range(args.rounds):
            for name in names[k % len(names):] + names[:k % len(names)]:
                res = ask(name, "pass unchanged")
                if res["polls"] != args.feeds or set(res["status"]) != {"not-modified"}:
                    sys.exit(f"{name}: not an unchanged pass: {res['status']}")
                cpu[name].append(res["cpu"] / res["polls"] * 1000)
        floor = statistics.median(cpu["floor"])
        for name in names:
            tree = trees[int(name[6:])] if name != "floor" else trees[0]
            mid = statistics.median(cpu[name])
            print(f"{name:8s} {str(tree)[-40:]:40s} median {mid:.3f} ms/poll  ratio to the floor {mid / floor:.2f}"
                  f"  runs {' '.join(f'{v:.3f}' for v in cpu[name])}")
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.stdin.write("quit\n")  # type: ignore[union-attr]
                proc.stdin.flush()  # type: ignore[union-attr]
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
        farm.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
