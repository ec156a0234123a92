"""What the cluster benchmarks share (issue 19): bench/cluster.py (chaos) and bench/cluster_scale.py
(scale) both run whole daemons against a loopback feed farm (bench/polling/farm.py).

- ``farm``: start the farm as a child process; its port and every feed's URL
- ``config``: a node's config file, its rule and its webhook channel
- ``start``: a daemon of THIS tree (``python -m monitor.cli`` with this checkout first on
  ``PYTHONPATH``: the venv's ``monitor`` script imports whichever checkout was installed)
- ``farm_stats``, ``publish``, ``control``: the farm's control endpoints
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

RULE = """id: bench-ports
title: Ports and grain (benchmark)
fields: [title, summary, body]
any:
  - grain shipments
  - port expansion
"""


def farm(feeds: int, hosts: int, latency_ms: str = "20,80",
         small: bool = True) -> tuple[subprocess.Popen, int, list[str]]:
    """The farm running, its port and its feeds' URLs (feed i on host 127.0.0.{2 + i % hosts})."""
    cmd = [sys.executable, str(ROOT / "bench" / "polling" / "farm.py"), "--feeds", str(feeds), "--hosts", str(hosts),
           "--latency-ms", latency_ms] + (["--small"] if small else [])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    port = json.loads(proc.stdout.readline())["port"]  # type: ignore[union-attr]
    return proc, port, [f"http://127.0.0.{2 + i % hosts}:{port}/feeds/{i}.xml" for i in range(feeds)]


def config(folder: Path, url: str, feeds: list[str], hook: str, agent: str, *, interval: float = 5,
           per_host: int = 2, concurrency: int = 8, workers: int = 1, tick: float = 0.5,
           log_level: str = "INFO") -> Path:
    """A node's config: every feed polled every ``interval`` seconds exactly (no adaptive
    cadence, no server hint), no page fetches, one webhook channel; ``agent`` is its User-Agent,
    which the farm counts requests by; ``workers`` the parse and match processes ([extract]
    workers, 0: one per core)."""
    rules = folder / "rules"
    rules.mkdir(parents=True)
    (rules / "bench.yaml").write_text(RULE)
    hosts = sorted({u.split("/")[2] for u in feeds})
    path = folder / "config.toml"
    path.write_text(
        f'[monitor]\ndatabase = "{url}"\nrules = "{rules}"\ntick = {tick}\nlog_level = "{log_level}"\n'
        f"[poll]\ninterval = {interval}\nmin_interval = {interval}\nmax_interval = {interval}\nmax_hint = {interval}\n"
        f"per_host = {per_host}\n"
        f"concurrency = {concurrency}\n[fetch]\nallow_private = {json.dumps(hosts)}\nuser_agent = \"{agent}\"\n"
        f"[extract]\npages = false\nworkers = {workers}\n"
        '[http]\nenabled = false\n[notify]\ndefault_channels = ["hook"]\nretry = 0.5\nmax_retry = 2\ntimeout = 10\n'
        f'[channels.hook]\nurls = ["{hook}"]\n' + "".join(f'[[feeds]]\nurl = "{u}"\n' for u in feeds))
    return path


def start(cfg: Path, log: Path, launcher: list[str] | None = None) -> subprocess.Popen:
    """``monitor run --config cfg`` of this tree, its log (stderr) appended to ``log``;
    ``launcher`` replaces ``-m monitor.cli`` (a script that wraps the command line)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen([sys.executable, *(launcher or ["-m", "monitor.cli"]), "run", "--config", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=log.open("a"), env=env)


def stop(nodes: list[subprocess.Popen], wait: float = 30) -> None:
    """SIGTERM to every node, then wait for each (a node that outlives ``wait`` is killed)."""
    for p in nodes:
        p.send_signal(signal.SIGTERM)
    for p in nodes:
        try:
            p.wait(wait)
        except subprocess.TimeoutExpired:
            p.kill()


def control(port: int, path: str) -> dict:
    """POST to the farm's ``/_control/...``; its JSON answer."""
    req = urllib.request.Request(f"http://127.0.0.2:{port}/_control/{path}", method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def farm_stats(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.2:{port}/_control/stats", timeout=10) as r:
        return json.loads(r.read())


def publish(port: int, seed: int, share: float) -> dict:
    """A deterministic ``share`` of the feeds gets 1-3 new items; what changed."""
    return control(port, f"advance?share={share}&seed={seed}")
