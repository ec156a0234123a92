"""Start-up of the one-off commands (issue 16): median wall time of 5 runs each, side by side in
one run, of `python -c pass`, `monitor --help`, `monitor check` (a generated config with the
shipped rules), `monitor parse FILE`, `monitor extract FILE` (one local input each), plain
trafilatura on the same page, and the import of the libraries `monitor check` needs (click,
pydantic, yaml, re2, apprise): its floor on the machine at hand.

    PYTHONPATH=. .venv/bin/python bench/startup.py [--runs 5]

Every command runs as the installed `monitor` script does (a fresh interpreter importing
monitor.cli.main), from the code on PYTHONPATH (PYTHONPATH=/work/main for the figures before).
Each run must exit 0 and print what it should (the help's command list, check's "ok:", the
feed's entry, the page's text), or the bench fails. Goals: --help <= 3x `python -c pass`,
check < 0.3 s; parse and extract must start no worker (checked: no forkserver module loaded).

Before timing, the tree's package is byte-compiled, as pip leaves an installed one: this machine
sets PYTHONDONTWRITEBYTECODE=1, so a module without an up-to-date .pyc (a new or edited file of a
work tree) was compiled again in every run, and check read ~15 % slower than once installed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import ROOT, command_line, page, rss

PY = sys.executable
RUN_MONITOR = "import sys; from monitor.cli import main; sys.argv[0] = 'monitor'; main()"
# extract/parse, then report whether a forkserver was started (its module is imported only then)
NO_POOL = ("import sys, atexit; atexit.register(lambda: print('forkserver-started' if "
           "'multiprocessing.popen_forkserver' in sys.modules else 'no-pool', file=sys.stderr)); "
           + RUN_MONITOR)


LIBRARIES = ("import click, yaml, re2, apprise\nfrom pydantic import BaseModel\n"
             "class A(BaseModel):\n    x: int = 1\nA(x=2)\nprint('libraries')")


# the package on PYTHONPATH compiled as an install leaves it (up-to-date files are only looked at)
COMPILE = ("import compileall, pathlib, monitor; "
           "compileall.compile_dir(pathlib.Path(monitor.__file__).parent, quiet=1)")


def inputs(folder: Path) -> tuple[Path, Path, Path]:
    cfg = folder / "config.toml"
    cfg.write_text(f'[monitor]\ndatabase = "{folder / "m.db"}"\nrules = "{ROOT / "rules"}"\n'
                   '[notify]\ndefault_channels = ["console"]\n'
                   '[channels.console]\nurls = ["log://"]\ntag = "console"\n'
                   + "".join(f'[[feeds]]\nurl = "https://example.com/{i}.xml"\n' for i in range(20)))
    cfg.chmod(0o600)
    feed = folder / "feed.xml"
    feed.write_text(rss([{"title": f"Drone attack near Sudzha #{i}", "link": f"https://example.com/a/{i}",
                          "guid": f"g{i}", "description": "Officials in the Kursk region said a drone hit a "
                          "warehouse."} for i in range(20)]))
    html = folder / "page.html"
    html.write_text(page("Angriff bei Sudscha", ["Ein Drohnenangriff traf am Montag ein Lager bei Sudscha im "
                                                 "Gebiet Kursk, teilten die regionalen Behörden mit."] * 12))
    return cfg, feed, html


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="startup-"))
    cfg, feed, html = inputs(folder)
    env = {**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", str(ROOT))}
    subprocess.run([PY, "-c", COMPILE], env=env, check=True)
    # name -> (argv, what stdout (or stderr) must contain)
    cases: dict[str, tuple[list[str], list[str]]] = {
        "python -c pass": ([PY, "-c", "pass"], []),
        "monitor --help": ([PY, "-c", RUN_MONITOR, "--help"], ["Commands:", "check", "extract"]),
        "monitor check": ([PY, "-c", RUN_MONITOR, "check", "--config", str(cfg)], [f"ok: {cfg}: 20 feeds"]),
        "monitor parse FILE": ([PY, "-c", NO_POOL, "parse", str(feed)], ["Drone attack near Sudzha #19", "no-pool"]),
        "monitor extract FILE": ([PY, "-c", NO_POOL, "extract", str(html)], ["Drohnenangriff", "no-pool"]),
        # what `monitor check` cannot start without: the CLI, the config's models, the rules'
        # YAML and RE2, the channels' apprise; beside check, it tells what this machine allows
        "check's libraries": ([PY, "-c", LIBRARIES], ["libraries"]),
        "plain trafilatura": ([PY, "-c", f"import trafilatura; print(trafilatura.extract(open({str(html)!r}).read()))"],
                              ["Drohnenangriff"]),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    problems: list[str] = []
    for _ in range(args.runs):  # interleaved: each round runs every contender once, so noise hits all alike
        for name, (argv, expect) in cases.items():
            t = time.perf_counter()
            p = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=folder, timeout=300)
            times[name].append(time.perf_counter() - t)
            out = p.stdout + p.stderr
            if p.returncode != 0 or any(e not in out for e in expect):
                problems.append(f"{name}: exit {p.returncode}, expected {expect} in output: {out[-300:]!r}")
    med = {name: statistics.median(v) for name, v in times.items()}
    base, plain = med["python -c pass"], med["plain trafilatura"]
    print(f"command: PYTHONPATH={env['PYTHONPATH']} {command_line()}")
    print(f"median of {args.runs} runs each, interleaved; monitor from {env['PYTHONPATH']}")
    for name, m in med.items():
        print(f"  {name:22s} {m:6.3f} s  {m / base:5.1f}x python  {m / plain:5.2f}x plain trafilatura"
              f"   (min {min(times[name]):.3f}, max {max(times[name]):.3f})")
    for p in dict.fromkeys(problems):
        print(f"FAIL {p}")
    ok = not problems
    goals = [(med["monitor --help"] <= 3 * base, f"monitor --help {med['monitor --help']:.3f} s = "
              f"{med['monitor --help'] / base:.1f}x python -c pass (goal <= 3x)"),
             (med["monitor check"] < 0.3, f"monitor check {med['monitor check']:.3f} s (goal < 0.3 s)"),
             (not problems, "parse and extract on one input ran in-process (no forkserver) and printed their "
              "results; every command exited 0")]
    for passed, line in goals:
        print(f"{'PASS' if passed else 'FAIL'} {line}")
        ok = ok and passed
    libs = med["check's libraries"]
    print(f"(monitor check is {med['monitor check'] / libs:.2f}x the import of its libraries alone, {libs:.3f} s on "
          "this machine: click, pydantic with one model, yaml, re2 and apprise)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
