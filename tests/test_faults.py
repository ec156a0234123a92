"""The real daemon (`monitor run`, fast tick) over 20 feeds that fail in every way the open web
fails (tests/faults.py) beside 20 healthy ones: it keeps running, every healthy feed's alert
reaches the webhook, each bad feed's health names its cause, and memory stays bounded. And a
short run of bench/crash.py: kill -9 at random moments, no alert lost."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import db_rows, monitor_cmd, page, rss, run_cli, write_config
from faults import EXPECTED, FaultServer

# 20 bad feeds: every kind once, the ones that hold connections or stream a lot twice.
BAD = [*EXPECTED, "hang", "drip", "gzip-bomb", "huge-chunked"]
HEALTHY = 20
HEALTHY_HOSTS = 4
RSS_LIMIT = 400 * 1024 * 1024

TOWNS = ["Sudzha", "Rylsk", "Lgov", "Kurchatov", "Oboyan", "Dmitriev", "Fatezh", "Shchigry",
         "Tim", "Solntsevo", "Manturovo", "Medvenka", "Pristen", "Gorshechnoye", "Kastornoye",
         "Konyshevka", "Khomutovka", "Glushkovo", "Korenevo", "Belaya"]


def story(i: int) -> dict:
    """A distinct story that the shipped 'kursk' rule matches (and 'north-korean-troops' does not)."""
    town = TOWNS[i % len(TOWNS)]
    return {"title": f"Drone attack reported near {town} in Kursk region ({i})", "link": f"/a/{i}",
            "guid": f"story-{i}",
            "description": f"Officials in the Kursk region said a drone hit a warehouse near {town}."}


def old_items(i: int) -> list[dict]:
    return [{"title": f"Local council meets on budget {i}-{k}", "link": f"/old/{i}-{k}", "guid": f"old-{i}-{k}",
             "description": "The council discussed the budget for next year."} for k in range(2)]


def healthy_feed(srv: FaultServer, i: int, items: list[dict]) -> str:
    host = len(BAD) + i % HEALTHY_HOSTS  # the hosts after the bad feeds' own ones
    return srv.ok(f"/good/{i}.xml", rss([{**it, "link": srv.url(it["link"], host)} for it in items]), host=host)


def fast_fetch(cfg: Path, timeout: float = 2) -> Path:
    """The config with short fetch timeouts and every loopback address allowed (the fault
    server's hosts are 127.0.0.x), in place of whatever [fetch] section write_config wrote."""
    out, section = [], ""
    for line in cfg.read_text().splitlines():
        if line.startswith("["):
            section = line.strip()
        if section != "[fetch]":
            out.append(line)
    at = next((i for i, line in enumerate(out) if line.startswith(("[channels.", "[[feeds]]"))), len(out))
    out[at:at] = ["[fetch]", f"timeout = {timeout:g}", "connect_timeout = 1", 'allow_private = ["127.0.0.0/8"]']
    cfg.write_text("\n".join(out) + "\n")
    return cfg


def process_tree_rss(pid: int) -> dict[int, int]:
    """pid -> RSS bytes for ``pid`` and all its descendants (the worker processes)."""
    out: dict[int, int] = {}
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                out[p] = int(line.split()[1]) * 1024
        todo += [int(c) for c in children]
    return out


def test_daemon_survives_bad_feeds_and_delivers_the_good_ones(tmp_path, webhook):
    bad_hosts = len(BAD)
    srv = FaultServer(hosts=bad_hosts + HEALTHY_HOSTS)
    proc = None
    try:
        # Each bad feed on its own host: 429s of several feeds on one host throttle the host.
        bad = {srv.fault(f"/bad/{n}-{kind}.xml", kind, host=n,
                         body=rss(old_items(100 + n)).encode()): kind for n, kind in enumerate(BAD)}
        healthy = [healthy_feed(srv, i, old_items(i)) for i in range(HEALTHY)]
        for i in range(HEALTHY):
            srv.ok(f"/a/{i}", page(story(i)["title"], [story(i)["description"] * 4], lang="en"),
                   content_type="text/html; charset=utf-8")
        cfg = fast_fetch(write_config(tmp_path, feeds=[*bad, *healthy], channels={"hook": [webhook.apprise_url]}))
        db = tmp_path / "monitor.db"
        proc = subprocess.Popen([*monitor_cmd(), "run", "--config", str(cfg)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        peak: dict[int, int] = {}

        def sample() -> None:
            for p, rss_bytes in process_tree_rss(proc.pid).items():
                peak[p] = max(peak.get(p, 0), rss_bytes)

        def wait(pred, what: str, timeout: float) -> None:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                assert proc.poll() is None, f"daemon died while waiting for {what}: {proc.stderr.read()}"
                sample()
                try:
                    if pred():
                        return
                except Exception:  # the database may not exist yet
                    pass
                time.sleep(0.2)
            raise AssertionError(f"timed out waiting for {what}")

        placeholders = ",".join("?" * len(healthy))

        def baselined() -> bool:
            import sqlite3
            con = sqlite3.connect(str(db))
            try:
                n = con.execute(f"SELECT COUNT(*) FROM feeds WHERE baselined_at IS NOT NULL AND url IN "
                                f"({placeholders})", healthy).fetchone()[0]
            finally:
                con.close()
            return n == HEALTHY

        wait(baselined, "the healthy feeds' baselines", 30)
        for i in range(HEALTHY):
            healthy_feed(srv, i, [story(i), *old_items(i)])
        wait(lambda: len(webhook.received) >= HEALTHY, f"{HEALTHY} alerts", 40)
        # Every bad feed polled and its error recorded, the blocking ones included.
        wait(lambda: db_rows(db, "SELECT COUNT(*) FROM feeds WHERE last_polled_at IS NOT NULL")[0][0]
             == len(bad) + HEALTHY, "every feed polled", 20)
        time.sleep(1.0)  # a few more ticks over the failing feeds
        sample()
        assert proc.poll() is None, "the daemon must keep running"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.communicate()
        srv.close()
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err and "BUG" not in err, err[-3000:]

    titles = sorted(w["title"] for w in webhook.received)
    assert titles == sorted(story(i)["title"] for i in range(HEALTHY))

    feeds = run_cli("feeds", "--json", "--config", str(cfg))
    assert feeds.returncode == 0, feeds.stderr
    health = {f["url"]: f for f in map(json.loads, feeds.stdout.splitlines())}
    wrong = []
    for url, kind in bad.items():
        status, error = EXPECTED[kind]
        got = health[url]
        if got["status"] != status or (error is None) != (got["last_error"] is None) or \
                (error and not got["last_error"].startswith(error)):
            wrong.append((kind, got["status"], got["last_error"]))
    assert not wrong, wrong
    assert all(health[url]["status"] == "ok" for url in healthy)

    daemon_peak = peak.get(proc.pid, 0)
    assert 0 < daemon_peak < RSS_LIMIT, f"daemon RSS peaked at {daemon_peak / 2**20:.0f} MB"
    assert max(peak.values()) < RSS_LIMIT, {p: f"{v / 2**20:.0f} MB" for p, v in peak.items()}
    print(f"peak RSS daemon={daemon_peak / 2**20:.0f} MB, largest worker="
          f"{max(v for p, v in peak.items() if p != proc.pid) / 2**20 if len(peak) > 1 else 0:.0f} MB")


def test_kill_9_during_polls_and_deliveries_loses_no_alert():
    """bench/crash.py with a few kills (the bench runs 50): after every SIGKILL and restart the
    receiver ends up with every alert, duplicates only of rows that were 'sending' at a kill."""
    bench = Path(__file__).resolve().parent.parent / "bench" / "crash.py"
    res = subprocess.run([sys.executable, str(bench), "--kills", "3", "--up", "0.2,1.5", "--hook-delay", "0.1"],
                         capture_output=True, text=True, timeout=150)
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    assert "missing: 0" in res.stdout and "outside it: 0" in res.stdout, res.stdout
