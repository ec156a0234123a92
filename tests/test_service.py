"""The daemon as a systemd service, through the real ``monitor run`` subprocess: sd_notify on a
real AF_UNIX datagram socket, the /healthz and /metrics endpoint on an ephemeral port, SIGTERM
with a poll in flight, SIGHUP reloading the config, and ``monitor status``."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest
from conftest import db_rows, monitor_cmd, rss, run_cli, write_config
from conftest import wait_for as _wait
from servers import free_port

from monitor import sdnotify, web
from monitor.cli.status import daemon_line
from monitor.config import Config
from monitor.service import Service


class NotifySocket:
    """A real $NOTIFY_SOCKET: every datagram received, in order, as {key: value} dicts."""

    def __init__(self, address: str):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.sock.settimeout(0.2)
        self.address = address
        self.messages: list[dict[str, str]] = []
        self._stop = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop:
            try:
                data = self.sock.recv(4096)
            except (TimeoutError, OSError):
                continue
            self.messages.append(dict(line.split("=", 1) for line in data.decode().splitlines()))

    def keys(self) -> list[str]:
        return [k for m in self.messages for k in m]

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        self.sock.close()


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def _start(cfg, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([*monitor_cmd(), "run", "--config", str(cfg)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})


def _stop(proc: subprocess.Popen, timeout: float = 30) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.communicate(timeout=timeout)[1]
    finally:
        if proc.poll() is None:
            proc.kill()


def test_notify_ready_status_watchdog_stopping_and_http_endpoint(tmp_path, feed_server):
    url = feed_server.add("/feed.xml", rss([{"title": "Wetter", "link": "http://example.org/a", "guid": "1"}]))
    port = free_port()
    cfg = write_config(tmp_path, feeds=[url], channels={"console": ["log://"]},
                       extra=f"[http]\nenabled = true\nport = {port}")
    sock = NotifySocket(str(tmp_path / "notify.sock"))
    proc = _start(cfg, {"NOTIFY_SOCKET": sock.address, "WATCHDOG_USEC": "1000000"})
    try:
        _wait(lambda: "READY" in sock.keys(), "READY=1")
        _wait(lambda: sock.keys().count("WATCHDOG") >= 2, "two watchdog pings (every 0.5 s)")
        _wait(lambda: db_rows(tmp_path / "monitor.db", "SELECT baselined_at FROM feeds")[0][0], "baseline")
        status, body = _get(f"http://127.0.0.1:{port}/healthz")
        assert status == 200 and body.startswith("ok: 1 feeds, 0 failing, 0 alerts pending"), body
        _wait(lambda: 'monitor_feeds{status="ok"} 1.0' in _get(f"http://127.0.0.1:{port}/metrics")[1],
              "the feed counted ok")
        _, metrics = _get(f"http://127.0.0.1:{port}/metrics")
        assert 'monitor_polls_total{outcome="baseline"} 1.0' in metrics
        assert 'monitor_fetch_seconds_count{kind="feed"}' in metrics
        assert "monitor_outbox_depth 0.0" in metrics and "monitor_database_up 1.0" in metrics
        assert "process_resident_memory_bytes" in metrics and "monitor_ticks_total" in metrics
        assert "# TYPE monitor_matches gauge" in metrics and "# TYPE monitor_alerts gauge" in metrics
        assert _get(f"http://127.0.0.1:{port}/nothing")[0] == 404
        err = _stop(proc)
        _wait(lambda: "STOPPING" in sock.keys(), "STOPPING=1", timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()
    assert proc.returncode == 0, err
    keys = sock.keys()
    ready, stopping = keys.index("READY"), keys.index("STOPPING")
    assert ready < keys.index("WATCHDOG") < stopping  # pings only between READY and STOPPING
    assert "WATCHDOG" not in keys[stopping:]
    first = sock.messages[0]
    assert first["READY"] == "1" and first["MAINPID"] == str(proc.pid)
    assert first["STATUS"].endswith("feeds, 0 failing, 0 alerts pending"), first
    statuses = [m["STATUS"] for m in sock.messages if "STATUS" in m]
    assert "1 feeds, 0 failing, 0 alerts pending" in statuses  # refreshed after the first poll
    assert "Traceback" not in err


def test_sighup_reloads_config_and_keeps_the_last_good_one(tmp_path, feed_server):
    a = feed_server.add("/a.xml", rss([]))
    b = feed_server.add("/b.xml", rss([]))
    cfg = write_config(tmp_path, feeds=[a], channels={"console": ["log://"]})
    sock = NotifySocket("@rss-monitor-test-" + str(os.getpid()))  # an abstract socket
    proc = _start(cfg, {"NOTIFY_SOCKET": sock.address})
    db = tmp_path / "monitor.db"
    polled = lambda path: sum(1 for p, _ in feed_server.log if p == path)  # noqa: E731
    try:
        _wait(lambda: "READY" in sock.keys(), "READY=1")
        _wait(lambda: polled("/a.xml") >= 1, "feed a polled")
        good = cfg.read_text()
        cfg.write_text(good + f'[[feeds]]\nurl = "{b}"\n' + "[channels.second]\nurls = ['log://']\n"
                       .replace("'", '"'))
        proc.send_signal(signal.SIGHUP)
        _wait(lambda: polled("/b.xml") >= 1, "feed b, added to the config, polled")
        cfg.write_text(good + "[poll\nbroken = \n")
        proc.send_signal(signal.SIGHUP)
        _wait(lambda: sock.keys().count("RELOADING") == 2 and sock.keys().count("READY") == 3,
              "RELOADING then READY around each reload", timeout=10)
        before = polled("/b.xml")
        _wait(lambda: polled("/b.xml") > before, "feed b still polled after a broken config")
        cfg.write_text(good.replace("tick = 0.5", "tick = 0.7"))  # feed b removed; tick needs a restart
        proc.send_signal(signal.SIGHUP)
        _wait(lambda: db_rows(db, f"SELECT active FROM feeds WHERE url = '{b}'") == [(0,)], "feed b deactivated")
        assert proc.poll() is None, "the daemon must survive a broken config"
        err = _stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()
    assert proc.returncode == 0, err
    assert "config reloaded feeds=2 channels=console,second" in err
    assert "config reload failed, keeping the last good config:" in err
    assert "not valid TOML" in err
    assert "config change takes effect after a restart key=monitor.tick" in err
    assert "Traceback" not in err


def test_sigterm_abandons_a_hung_poll_within_the_grace_and_exits_0(tmp_path, feed_server):
    slow = feed_server.add("/slow.xml", rss([]), delay=30)
    cfg = write_config(tmp_path, feeds=[slow], channels={"console": ["log://"]},
                       extra="[fetch]\ntimeout = 60")
    cfg.write_text(cfg.read_text().replace("tick = 0.5", "tick = 0.5\nstop_grace = 1"))
    proc = _start(cfg)
    try:
        _wait(lambda: any(p == "/slow.xml" for p, _ in feed_server.log), "the slow poll in flight")
        started = time.monotonic()
        err = _stop(proc, timeout=20)
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert took < 10, f"SIGTERM took {took:.1f}s with a 1 s grace"
    assert "abandoned in-flight work tasks=1 after 1s" in err and "stopped" in err
    assert db_rows(tmp_path / "monitor.db", "PRAGMA integrity_check") == [("ok",)]
    assert db_rows(tmp_path / "monitor.db", "SELECT last_polled_at FROM feeds") == [(None,)]  # nothing half-written
    status = run_cli("status", "--config", str(cfg), "--json")
    assert status.returncode == 0, status.stderr
    got = json.loads(status.stdout)
    assert got["daemon"] == "stopped" and got["feeds"]["new"] == 1 and got["last_tick_at"]
    text = run_cli("status", "--config", str(cfg)).stdout
    assert text.startswith("daemon: stopped at ") and "feeds: ok=0 new=1 failing=0" in text


def test_daemon_line_names_a_daemon_that_stopped_ticking():
    now = 1_000_000.0
    assert daemon_line(None, 30, now)[0] == "never-ran"
    running = {"pid": 7, "started_at": now - 100, "last_tick_at": now - 20, "stopped_at": None}
    assert daemon_line(running, 30, now) == ("running", "daemon: running (pid 7), last tick 20s ago")
    assert daemon_line({**running, "last_tick_at": now - 500}, 30, now)[0] == "not-ticking"
    assert daemon_line({**running, "stopped_at": now - 5}, 30, now)[0] == "stopped"


def test_sdnotify_sends_to_path_and_abstract_sockets_and_is_a_noop_without(tmp_path):
    for address in (str(tmp_path / "n.sock"), f"@rss-monitor-unit-{os.getpid()}"):
        sock = NotifySocket(address)
        try:
            assert sdnotify.send("READY=1", "STATUS=two\nlines", env={"NOTIFY_SOCKET": address})
            _wait(lambda s=sock: s.messages, "a datagram", timeout=5)
            assert sock.messages == [{"READY": "1", "STATUS": "two lines"}]
        finally:
            sock.close()
    assert not sdnotify.send("READY=1", env={})
    assert sdnotify.watchdog_period({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert sdnotify.watchdog_period({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert sdnotify.watchdog_period({}) is None


def test_watchdog_is_not_fed_and_healthz_fails_when_the_scheduler_stops_ticking(tmp_path, monkeypatch):
    sock = NotifySocket(str(tmp_path / "wd.sock"))
    monkeypatch.setenv("NOTIFY_SOCKET", sock.address)
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # a ping every 0.1 s while healthy
    service = Service(Config.model_validate({"monitor": {"tick": 0.1}}))
    port = free_port()

    async def scenario() -> tuple[tuple[int, str], tuple[int, str]]:
        runner = await web.serve("127.0.0.1", port, service.health, service.metrics.render)
        beat = asyncio.create_task(service.beat())
        try:
            service.ticked()
            await asyncio.sleep(0.5)  # ticking: pings
            healthy = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/healthz")
            service.last_tick = time.monotonic() - 60  # the scheduler stopped ticking a minute ago
            # a marker through the same socket: what the receiver has after it was sent after the
            # change (a ping sent just before it may still be on its way when the change is made)
            assert sdnotify.send("MARK=1")
            while not any("MARK" in m for m in sock.messages):
                await asyncio.sleep(0.01)
            n = next(i for i, m in enumerate(sock.messages) if "MARK" in m) + 1
            await asyncio.sleep(0.5)
            assert "WATCHDOG" not in [k for m in sock.messages[n:] for k in m]
            return healthy, await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/healthz")
        finally:
            beat.cancel()
            await runner.cleanup()

    try:
        healthy, stuck = asyncio.run(scenario())
    finally:
        sock.close()
    assert "WATCHDOG" in sock.keys()
    assert healthy == (503, "starting\n")  # no database yet: not healthy either
    assert stuck[0] == 503 and stuck[1].startswith("scheduler has not ticked for 6"), stuck


def test_secret_from_a_systemd_credential_when_no_variable_is_set(tmp_path, monkeypatch):
    from monitor import config

    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "HOOK_TOKEN").write_text("s3cret\n")
    cfg = tmp_path / "c.toml"
    cfg.write_text('[channels.hook]\nurls = ["json://127.0.0.1:9/${HOOK_TOKEN}"]\n')
    monkeypatch.delenv("HOOK_TOKEN", raising=False)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    assert config.load(cfg).channels["hook"].urls == ["json://127.0.0.1:9/s3cret"]
    monkeypatch.setenv("HOOK_TOKEN", "from-env")  # the environment wins, as before
    assert config.load(cfg).channels["hook"].urls == ["json://127.0.0.1:9/from-env"]
    monkeypatch.delenv("HOOK_TOKEN")
    (creds / "HOOK_TOKEN").unlink()
    with pytest.raises(config.ConfigError, match="HOOK_TOKEN is not set and there is no credential"):
        config.load(cfg)


def test_a_stop_lets_the_running_scheduler_jobs_finish_rather_than_cancel_them():
    """APScheduler's asyncio executor cancels running jobs at shutdown, and a job cancelled
    mid-run is logged as failed with a traceback (seen at SIGTERM under load: the enqueue, a
    delivery pass, a tick). The daemon's stop lets them finish first."""
    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from monitor.daemon.jobs import Executor, stop_scheduler

    async def run(stop) -> list[int]:
        events: list[int] = []
        running = asyncio.Event()

        async def job() -> None:
            running.set()
            await asyncio.sleep(0.3)

        executor = Executor()
        scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop(), executors={"default": executor})
        scheduler.add_listener(lambda e: events.append(e.code), EVENT_JOB_ERROR | EVENT_JOB_EXECUTED)
        scheduler.add_job(job, "interval", seconds=0.1, max_instances=1, coalesce=True)
        scheduler.start()
        await running.wait()
        await stop(scheduler, executor)
        await asyncio.sleep(0.5)  # nothing runs after the stop
        return events

    async def cancelled(scheduler, executor):
        scheduler.shutdown(wait=False)

    assert asyncio.run(run(lambda s, e: stop_scheduler(s, e, 5.0))) == [EVENT_JOB_EXECUTED]
    assert asyncio.run(run(cancelled)) == [EVENT_JOB_ERROR]  # APScheduler's own shutdown, as before
