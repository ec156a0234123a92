"""Instructions counted by valgrind's callgrind for the passes a bench's child process runs,
shared by bench/matching_instructions.py and bench/parse_cost.py --instructions.

The child loads and warms what it measures, writes its ready file, waits until that file is
gone, then runs each counted pass inside one C function of its own (``functools.reduce`` for
the first, ``max`` for the second): instrumentation is switched on once it is ready
(``callgrind_control -i on``) and collection is limited to those functions
(``--toggle-collect``), so loading and warming are not counted. Beside the ready file it writes
what the passes did (matches found, entries parsed), for the bench to check that both sides did
the same work before their counts are compared.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

FIRST, SECOND = "functools_reduce", "builtin_max"  # the C functions the counted passes run inside


def available() -> bool:
    return bool(shutil.which("valgrind") and shutil.which("callgrind_control"))


def count(child: Callable[[str], Sequence[str]], env: dict[str, str], what: str,
          side: str) -> tuple[int, int, str]:
    """Instructions of the child's first and second counted pass, and what it wrote in its
    ready file's name + ``side``. ``child(ready)``: its command line, given the ready file's
    path. ``what`` names the child in errors."""
    first, second, done = events(child, env, what, side)
    return first["Ir"], second["Ir"], done


def events(child: Callable[[str], Sequence[str]], env: dict[str, str], what: str, side: str,
           simulate: bool = False) -> tuple[dict[str, int], dict[str, int], str]:
    """``count``'s, each pass as every event callgrind recorded: ``Ir`` (instructions), and with
    ``simulate`` its cache and branch predictor models' (``--cache-sim=yes --branch-sim=yes``:
    ``I1mr`` first-level instruction cache misses, ``D1mr``/``D1mw`` data misses, ``Bcm``/``Bim``
    mispredicted conditional and indirect branches). Simulated, a run takes about twice as long."""
    sim = ["--cache-sim=yes", "--branch-sim=yes"] if simulate else []
    with tempfile.TemporaryDirectory(prefix="callgrind-") as tmp:
        flag, out = Path(tmp) / "ready", Path(tmp) / "callgrind.out"
        proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--collect-atstart=no", *sim,
             f"--toggle-collect={FIRST}", f"--toggle-collect={SECOND}", f"--callgrind-out-file={out}",
             *child(str(flag))],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        while not flag.exists():
            if proc.poll() is not None:
                raise SystemExit(f"{what} ended before counting: {proc.stderr.read()[-2000:]}")  # type: ignore[union-attr]
            time.sleep(0.5)
        subprocess.run(["callgrind_control", "-i", "on", str(proc.pid)], check=True, capture_output=True)
        flag.unlink()
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"{what} failed: {err[-2000:]}")
        done = Path(f"{flag}{side}").read_text()
        report = subprocess.run(["callgrind_annotate", "--inclusive=yes", str(out)], check=True,
                                capture_output=True, text=True).stdout
    names = re.search(r"^Events recorded:\s*(.+)$", report, re.M)
    if names is None:
        raise SystemExit(f"{what}: no event names in callgrind's report")
    got = {}
    for name in (FIRST, SECOND):
        m = re.search(rf"^(\s*[\d,]+ .*?)\S*:{name}\b", report, re.M)
        if m is None:
            raise SystemExit(f"{what}: no count for {name} in callgrind's report")
        # "1,508,309,065 (51.88%)  0  9,466,557 (57.93%) ...": a zero has no share beside it
        numbers = re.sub(r"\(\s*[\d.]+%\)", " ", m.group(1)).split()
        got[name] = {event: int(v.replace(",", "")) for event, v in zip(names.group(1).split(), numbers, strict=True)}
    return got[FIRST], got[SECOND], done
