"""Issue 15's reproductions, against real parts: work claimed by leases, one daemon per database,
an event loop that never waits on a database another process holds, and a full disk that is a
warning, not a bug. Each fails on the code before the issue:

1. a send whose 'sent' the database refused stalled its channel and was sent again at restart;
2. a second `monitor run` on the same database started, and reset the first one's claims;
3. a database held by another process blocked the event loop (no /healthz, no watchdog);
5. a full disk logged "BUG while polling" with a traceback, and status said "not ticking".
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import db_rows, monitor_cmd, page, rss, run_cli, write_config
from conftest import wait_for as _wait
from outbox_driver import seed
from servers import Webhook
from test_service import NotifySocket, free_port

from monitor import leases
from monitor.config import NotifySection
from monitor.delivery import Sender
from monitor.models import Channel
from monitor.notify import Notifier
from monitor.store import Store

HOLD = """
import sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
con.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
con.execute("ROLLBACK")
"""


class Holder:
    """Another process holding the database with BEGIN EXCLUSIVE until ``release``."""

    def __init__(self, db: Path):
        self.proc = subprocess.Popen([sys.executable, "-c", HOLD, str(db)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "locked"

    def release(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write("\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=10)


def _get(url: str, timeout: float = 5) -> tuple[int, str, float]:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            status, body = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read().decode()
    return status, body, time.monotonic() - started


@contextmanager
def _outbox(tmp_path: Path, titles: list[str], clock: list[float], busy_timeout: float = 10.0, delay: float = 0.0):
    """A real database seeded with one alert per title, a webhook receiver, and a Sender on
    an injected clock; all closed afterwards."""
    store = Store(tmp_path / "monitor.db", busy_timeout=busy_timeout)
    seed(store, titles)
    hook = Webhook(delay=delay)
    notifier = Notifier({"hook": Channel("hook", (hook.apprise_url,), "hook")})
    sender = Sender(store, notifier, NotifySection(retry=1, max_retry=2, timeout=5), clock=lambda: clock[0],
                    rng=random.Random(1))
    try:
        yield store, hook, sender
    finally:
        sender.close()
        hook.close()
        store.close()


def test_a_send_the_database_refused_to_record_is_recorded_later_and_sent_once(tmp_path):
    """Reproduction 1: the webhook answers slowly; meanwhile another process takes the database;
    the 'sent' cannot be written. The channel does not stall for ever, the alert is not sent
    again, and it is recorded once the database answers; the next alert follows."""
    db = tmp_path / "monitor.db"
    holder: Holder | None = None
    with _outbox(tmp_path, ["first", "second"], [2000.0], busy_timeout=0.2, delay=1.0) as (store, hook, sender):

        async def first_pass() -> tuple[int, int]:
            nonlocal holder
            task = asyncio.ensure_future(sender.deliver())
            while not hook.answers:  # the POST is in the service's hands
                await asyncio.sleep(0.01)
            holder = Holder(db)
            return await task

        try:
            assert asyncio.run(first_pass()) == (0, 0)
            assert len(hook.received) == 1 and list(sender.unrecorded) == [1]
            assert asyncio.run(sender.deliver()) == (0, 0)  # still locked: waits, sends nothing
            assert len(hook.received) == 1
            assert holder is not None
            holder.release()
            hook.delay = 0
            assert asyncio.run(sender.deliver()) == (1, 0)  # the first recorded, the second sent
            assert [w["title"] for w in hook.received] == ["first", "second"]
            assert db_rows(db, "SELECT state, attempts FROM outbox ORDER BY id") == [("sent", 1), ("sent", 1)]
        finally:
            if holder is not None:
                holder.release()


def test_a_dead_senders_claim_is_taken_over_when_its_lease_runs_out_without_a_restart(tmp_path):
    clock = [1030.0]
    with _outbox(tmp_path, ["orphan"], clock) as (store, hook, sender):
        assert store.claim(1, now=1000.0, owner="elsewhere:4242:dead", lease=60.0)  # then it died
        assert asyncio.run(sender.deliver()) == (0, 0) and hook.received == []  # its lease lives
        clock[0] = 1060.0
        assert asyncio.run(sender.deliver()) == (1, 0)  # taken over, sent once
        assert asyncio.run(sender.deliver()) == (0, 0) and len(hook.received) == 1
        [(state, attempts)] = db_rows(tmp_path / "monitor.db", "SELECT state, attempts FROM outbox")
        assert (state, attempts) == ("sent", 2)  # the interrupted attempt counts


def test_start_up_frees_the_leases_of_dead_local_owners_and_leaves_live_ones(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead_owner = f"{leases.HOST}:{gone.pid}:x"
    live_owner = f"{leases.HOST}:{os.getppid()}:y"  # pytest's parent: alive, not us
    with _outbox(tmp_path, ["of a dead process", "of a live process"], [1001.0]) as (store, hook, sender):
        store.claim(1, now=1000.0, owner=dead_owner, lease=600.0)
        store.claim(2, now=1000.0, owner=live_owner, lease=600.0)
        assert asyncio.run(sender.recover()) == [1]
        assert asyncio.run(sender.deliver()) == (1, 0)  # the dead one's alert went out at once
        assert [w["title"] for w in hook.received] == ["of a dead process"]
        assert db_rows(tmp_path / "monitor.db", "SELECT state FROM outbox WHERE id = 2") == [("sending",)]


def _start(cfg: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([*monitor_cmd(), "run", "--config", str(cfg)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})


def _stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.communicate(timeout=30)[1]
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_second_daemon_on_the_same_database_refuses_to_start_naming_the_first(tmp_path, feed_server):
    """Reproduction 2. And the lock dies with its process: after a kill -9 a new daemon starts."""
    url = feed_server.add("/feed.xml", rss([]))
    cfg = write_config(tmp_path, feeds=[url], channels={"console": ["log://"]})
    db = tmp_path / "monitor.db"
    first = _start(cfg)
    try:
        _wait(lambda: db.exists() and db_rows(db, "SELECT baselined_at FROM feeds")[0][0], "first daemon polling")
        second = run_cli("run", "--config", str(cfg), timeout=60)
        assert second.returncode == 2, second.stderr
        assert f"another daemon (pid {first.pid}) is running on {db}" in second.stderr
        assert "Traceback" not in second.stderr
        status = run_cli("status", "--config", str(cfg))
        assert f"daemon: running (pid {first.pid})" in status.stdout, status.stdout
        first.kill()
        first.wait(timeout=10)
        third = _start(cfg)
        try:
            _wait(lambda: "started feeds=1" in (third.stderr.readline() if third.stderr else ""), "restart")
        finally:
            err = _stop(third)
        assert "another daemon" not in err
    finally:
        _stop(first)


def test_healthz_and_the_watchdog_go_on_while_another_process_holds_the_database(tmp_path, feed_server, webhook):
    """Reproduction 3: a backup or the sqlite3 shell holds the database; the daemon's loop
    answers /healthz within a second, feeds the watchdog, and says what is blocked; when the
    lock goes, the work it could not do is done."""
    url = feed_server.add("/feed.xml", rss([]))
    port = free_port()
    cfg = write_config(tmp_path, feeds=[url], channels={"hook": [webhook.apprise_url]},
                       extra=f"[http]\nenabled = true\nport = {port}")
    cfg.write_text(cfg.read_text().replace("[monitor]\n", "[monitor]\nbusy_timeout = 1\n", 1))
    db = tmp_path / "monitor.db"
    sock = NotifySocket(str(tmp_path / "notify.sock"))
    proc = _start(cfg, {"NOTIFY_SOCKET": sock.address, "WATCHDOG_USEC": "1000000"})
    holder: Holder | None = None
    try:
        _wait(lambda: db.exists() and db_rows(db, "SELECT baselined_at FROM feeds")[0][0], "baseline")
        holder = Holder(db)
        feed_server.add("/a/1", page("Kursk", ["Im Gebiet Kursk gehen die Kämpfe weiter."]), content_type="text/html")
        feed_server.add("/feed.xml", rss([{"title": "Kämpfe im Gebiet Kursk", "link": feed_server.url("/a/1"),
                                           "guid": "k1", "description": "Im Gebiet Kursk gehen die Kämpfe weiter."}]))
        pings = sock.keys().count("WATCHDOG")
        answers = []
        deadline = time.monotonic() + 6  # several busy timeouts and ticks
        while time.monotonic() < deadline:
            answers.append(_get(f"http://127.0.0.1:{port}/healthz"))
        assert max(seconds for _, _, seconds in answers) < 1.0, max(answers, key=lambda a: a[2])
        assert any(status == 503 and "database" in body and "locked" in body
                   for status, body, _ in answers), answers[-1]
        assert sock.keys().count("WATCHDOG") >= pings + 5  # fed every 0.5 s all along
        status = run_cli("status", "--config", str(cfg))
        assert "daemon: running" in status.stdout and "database" in status.stdout, status.stdout
        assert webhook.received == []
        holder.release()
        _wait(lambda: len(webhook.received) == 1, "the story alerted once the lock is gone")
        assert _get(f"http://127.0.0.1:{port}/healthz")[0] == 200
    finally:
        if holder is not None:
            holder.release()
        err = _stop(proc)
        sock.close()
    assert "Traceback" not in err and "BUG" not in err
    assert "poll not recorded" in err or "no feeds taken this tick" in err


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs (a disk that fills up) needs root; CI is root")
def test_a_full_disk_is_a_warning_and_status_says_running_with_the_cause(tmp_path, feed_server, webhook):
    """Reproduction 5 on a real full disk: a 4 MB tmpfs filled to the last block."""
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], check=True)
    proc: subprocess.Popen | None = None
    try:
        url = feed_server.add("/feed.xml", rss([]))
        cfg = write_config(tmp_path, feeds=[url], channels={"hook": [webhook.apprise_url]})
        cfg.write_text(cfg.read_text().replace(str(tmp_path / "monitor.db"), str(disk / "monitor.db")))
        db = disk / "monitor.db"
        proc = _start(cfg)
        _wait(lambda: db.exists() and db_rows(db, "SELECT baselined_at FROM feeds")[0][0], "baseline")
        filler = disk / "filler"
        with filler.open("wb", buffering=0) as f:  # every block that is left (unbuffered: close has nothing to flush)
            try:
                while True:
                    f.write(b"\0" * 65536)
            except OSError:
                pass
        feed_server.add("/a/1", page("Kursk", ["Im Gebiet Kursk gehen die Kämpfe weiter."]), content_type="text/html")
        feed_server.add("/feed.xml", rss([{"title": "Kämpfe im Gebiet Kursk", "link": feed_server.url("/a/1"),
                                           "guid": "k1", "description": "Im Gebiet Kursk gehen die Kämpfe weiter. "
                                           * 200}]))
        _wait(lambda: "unwritable" in run_cli("status", "--config", str(cfg)).stdout, "status naming the disk")
        status = run_cli("status", "--config", str(cfg)).stdout
        assert "daemon: running" in status and "disk full" in status, status
        filler.unlink()
        _wait(lambda: len(webhook.received) == 1, "the story alerted once there is room again")
    finally:
        err = _stop(proc) if proc is not None else ""
        subprocess.run(["umount", "-l", str(disk)], check=False)
    assert "Traceback" not in err and "BUG" not in err, err[-3000:]
    assert "disk full" in err
