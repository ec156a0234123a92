"""Shared parts of the reliability benches (crash.py, faults.py, soak.py): a config writer with
fast intervals, the daemon as a subprocess in its own process group, and /proc readings
(RSS, open fds) of the daemon and its worker processes. The servers come from tests/."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from conftest import page, rss  # noqa: E402
from faults import EXPECTED, KINDS, FaultServer  # noqa: E402
from servers import Webhook  # noqa: E402

__all__ = ["ROOT", "EXPECTED", "KINDS", "FaultServer", "Webhook", "page", "rss", "write_config", "start",
           "kill_tree", "stop", "tree_rss", "open_fds", "rows", "wait", "monitor_cmd", "command_line", "story",
           "old_items", "mb"]

TOWNS = ["Sudzha", "Rylsk", "Lgov", "Kurchatov", "Oboyan", "Dmitriev", "Fatezh", "Shchigry", "Tim",
         "Solntsevo", "Manturovo", "Medvenka", "Pristen", "Glushkovo", "Korenevo", "Belaya"]


def command_line() -> str:
    return " ".join([os.path.relpath(sys.executable, ROOT) if sys.executable.startswith(str(ROOT))
                     else sys.executable, *[os.path.relpath(a, ROOT) if a.endswith(".py") else a for a in sys.argv]])


def story(n: int) -> dict[str, Any]:
    """Story ``n``: the shipped 'kursk' rule matches it, 'north-korean-troops' does not. The
    token #n in the title identifies it in the alert."""
    town = TOWNS[n % len(TOWNS)]
    return {"title": f"Drone attack near {town} in Kursk region #{n:05d}", "link": f"/a/{n}",
            "guid": f"story-{n}", "date": datetime(2026, 11, 2, tzinfo=UTC) + timedelta(seconds=n),
            "description": f"Officials in the Kursk region said a drone hit a warehouse near {town} (#{n})."}


def old_items(i: int) -> list[dict[str, Any]]:
    return [{"title": f"Council meets on budget {i}-{k}", "link": f"/old/{i}-{k}", "guid": f"old-{i}-{k}",
             "date": datetime(2026, 11, 1, 8, k, tzinfo=UTC),
             "description": "The council discussed the budget for next year."} for k in range(2)]


def monitor_cmd() -> list[str]:
    script = Path(sys.executable).with_name("monitor")
    return [str(script)] if script.exists() else [sys.executable, "-m", "monitor.cli"]


def write_config(folder: Path, *, feeds: list[str], hook: str, tick: float = 0.2, interval: float = 0.5,
                 fetch_timeout: float = 2, rules: Path | None = None, extra: str = "") -> Path:
    """A config with fast intervals: every feed due every ``interval`` s, alerts retried fast."""
    lines = [
        "[monitor]", f'database = "{folder / "monitor.db"}"', f'rules = "{rules or ROOT / "rules"}"',
        f"tick = {tick}", "stop_grace = 2",
        "[poll]", f"interval = {interval}", f"min_interval = {interval}", f"max_interval = {interval}",
        "max_backoff = 5", "concurrency = 50",
        "[fetch]", f"timeout = {fetch_timeout}", "connect_timeout = 1", 'allow_private = ["127.0.0.0/8"]',
        "[extract]", "workers = 1", "timeout = 20",
        # the default [http] (console on) at a port of its own: benches run beside `make run`
        *([] if "[http]" in extra else ["[http]", "port = 0"]),
        "[notify]", 'default_channels = ["hook"]', "retry = 0.05", "max_retry = 0.2", "timeout = 10",
        'ops_channels = []',
        extra,
        "[channels.hook]", f'urls = ["{hook}"]',
    ]
    for url in feeds:
        lines += ["[[feeds]]", f'url = "{url}"']
    path = folder / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)  # the daemon warns about a config others can read
    return path


def farm(feeds: int, hosts: int, *extra: str) -> tuple[subprocess.Popen[str], dict[str, Any], list[str]]:
    """bench/polling/farm.py started with ``--small`` (and ``extra`` options): the process, what it
    printed on start (port, hosts, ...) and the URLs of its feeds, spread over its hosts."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "polling" / "farm.py"), "--feeds", str(feeds),
                             "--hosts", str(hosts), "--small", *extra], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    info = json.loads(proc.stdout.readline())
    port, names = info["port"], info["hosts"]
    return proc, info, [f"http://{names[i % len(names)]}:{port}/feeds/{i}.xml" for i in range(feeds)]


def start(cfg: Path, log: Any = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    """`monitor run` in its own process group (like a systemd unit's cgroup)."""
    return subprocess.Popen([*monitor_cmd(), "run", "--config", str(cfg)], stdout=log, stderr=log,
                            start_new_session=True)


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the daemon, then whatever is left of its process group (its workers), as
    systemd does to the unit's cgroup before a restart."""
    try:
        os.kill(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        kill_tree(proc)
        return -9
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def tree_rss(pid: int) -> dict[int, int]:
    """pid -> RSS bytes of ``pid`` and its descendants."""
    out: dict[int, int] = {}
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    out[p] = int(line.split()[1]) * 1024
        except OSError:
            continue
        todo += _children(p)
    return out


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def rows(db: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(str(db), timeout=10)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def wait(pred: Callable[[], bool], timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return True
        except sqlite3.Error:
            pass
        time.sleep(step)
    return False


def mb(n: float) -> str:
    return f"{n / 2**20:.1f} MB"
