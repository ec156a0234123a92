"""What the running daemon tells the outside: systemd (READY, STATUS, WATCHDOG, RELOADING,
STOPPING through ``sdnotify``), the heartbeat ``monitor status`` reads (a row in the database,
and the daemon's lock file, which a full disk cannot stop: monitor/lockfile.py), and the
optional ``/healthz`` and ``/metrics`` endpoint, with ``/feedback/<token>`` when ``[web]
public_url`` is set.

The watchdog is fed only while the scheduler ticks: ``beat`` runs on the event loop beside
the scheduler and pings only when the last tick is recent. A blocked loop sends nothing, a
scheduler that stopped ticking sends nothing, and systemd restarts the service
(WatchdogSec=, Restart=on-failure). Nothing here waits on the database: the heartbeat and the
counts behind STATUS, /healthz and /metrics go through the database thread without being
awaited (store/aio.py), so a database locked for minutes neither trips the watchdog nor stops
/healthz from saying so.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from concurrent.futures import Future
from typing import Any

from . import sdnotify, web
from .config import Config
from .errors import MonitorError
from .feedback import Desk
from .links import Links
from .lockfile import DaemonLock
from .metrics import Metrics
from .store import Snapshot
from .store.aio import AsyncStore
from .web import console as web_console

log = logging.getLogger(__name__)
BEAT = 5.0  # seconds between STATUS refreshes (and watchdog pings, unless systemd asks for more)
BUSY = 1.0  # seconds a database call may run before health and status say it is blocked


def stale_after(tick: float) -> float:
    """Seconds without a tick after which the scheduler counts as stuck: three missed ticks,
    and never less than 10 s (a busy loop may delay one tick by a few seconds)."""
    return max(3 * tick, tick + 10)


class Service:
    def __init__(self, config: Config, lock: DaemonLock | None = None, links: Links | None = None):
        self.config = config
        self.links = links  # with [web] public_url: /feedback/<token> is served (monitor/feedback.py)
        self.metrics = Metrics()
        self.db: AsyncStore | None = None
        self.lock = lock
        self.started_at = time.monotonic()
        self.started_wall = time.time()
        self.last_tick: float | None = None  # monotonic
        self.watchdog = sdnotify.watchdog_period()
        self._status = ""
        self._stopping = False  # after STOPPING=1 no more pings: systemd is waiting for the exit
        self._runner: Any = None
        self._console: web_console.Console | None = None
        self._heartbeat: Future[Any] | None = None  # the last heartbeat write, until it is done
        self._refresh: Future[Any] | None = None  # the last snapshot read, until it is done

    def configure(self, config: Config) -> None:
        """After a reload: the thresholds that may change at run time."""
        self.config = config

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self, db: AsyncStore, hooks: web_console.Hooks | None = None) -> None:
        """The database, rules and scheduler are up: serve HTTP if asked (the console too, with
        ``[web] console`` and the daemon's ``hooks``), then READY=1."""
        self.db = db
        await db.daemon_started(os.getpid(), time.time())
        self.metrics.snapshot, self.metrics.database_up = await db.snapshot(*self._health_terms()), True
        h = self.config.http
        if h.enabled:
            if self.config.web.console and hooks is not None:
                self._console = await asyncio.to_thread(web_console.build, lambda: self.config, *hooks)
                await self._console.exposed(h.host, h.host in web.LOOPBACK)
            try:
                desk = Desk(db, self.links) if self.links is not None else None
                self._runner = await web.serve(h.host, h.port, self.health, self.metrics.render,
                                               web.Feedback(desk.look, desk.record) if desk else None, self._console)
            except OSError as e:
                raise MonitorError(f"http: cannot listen on {h.host}:{h.port}: {e.strerror or e}") from None
        self._status = self.status_line()
        sdnotify.send("READY=1", f"STATUS={self._status}", f"MAINPID={os.getpid()}")

    def reloading(self) -> None:
        sdnotify.send("RELOADING=1", "STATUS=reloading config and rules")

    def reloaded(self, ok: bool) -> None:
        self.metrics.reloads.labels("ok" if ok else "failed").inc()
        self._status = self.status_line()
        sdnotify.send("READY=1", f"STATUS={self._status}")

    def stopping(self) -> None:
        self._stopping = True
        sdnotify.send("STOPPING=1", "STATUS=stopping: finishing in-flight polls")

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._console is not None:
            await self._console.close()
            self._console = None
        if self.db is not None:
            try:
                await self.db.daemon_stopped(time.time())
            except MonitorError as e:
                log.warning("cannot record the stop error=%r", str(e))
        if self.lock is not None:
            self.lock.release(**self._beat_state(), stopped_at=time.time())

    # -- while running ----------------------------------------------------------------------
    def ticked(self) -> None:
        """The scheduler ticked: the heartbeat goes to the lock file now and to the database
        when the database thread gets to it (never two heartbeats queued)."""
        self.last_tick = time.monotonic()
        self.metrics.last_tick = time.time()
        self.metrics.ticks.inc()
        if self.lock is not None:
            self.lock.write(**self._beat_state())
        if self.db is not None and (self._heartbeat is None or self._heartbeat.done()):
            self._heartbeat = self.db.post("daemon_ticked", time.time())

    def _beat_state(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "started_at": self.started_wall, "last_tick_at": self.metrics.last_tick,
                "tick": self.config.monitor.tick, "database": self.database_problem()}

    def database_problem(self) -> str | None:
        """What is wrong with the database now, in words, or None: a failure ("disk full") or a
        call that has been waiting longer than BUSY ("busy: record for 12s")."""
        if self.db is None:
            return None
        if self.db.problem is not None:
            return f"unwritable: {self.db.problem}" if self.db.problem.kind in ("full", "readonly", "io") \
                else f"unavailable: {self.db.problem}"
        busy = self.db.busy()
        if busy is not None and busy[1] >= BUSY:
            return f"busy: {busy[0]} waiting for {busy[1]:.0f}s"
        return None

    def refresh(self) -> None:
        """Read the counts behind STATUS and /metrics on the database thread, without waiting."""
        if self.db is None or (self._refresh is not None and not self._refresh.done()):
            return
        self._refresh = self.db.post("snapshot", *self._health_terms())
        self._refresh.add_done_callback(self._took)

    def _health_terms(self) -> tuple[float, float, float]:
        """What feed health is counted at: now, and when a feed counts as silent."""
        return time.time(), self.config.poll.silent_after, self.config.poll.silent_min

    def _took(self, future: Future[Any]) -> None:
        ok = not future.cancelled() and future.exception() is None
        self.metrics.database_up = ok
        if ok:
            self.metrics.snapshot = future.result()

    def stale(self) -> str | None:
        """Why the scheduler counts as stuck, or None while it ticks."""
        since = self.last_tick if self.last_tick is not None else self.started_at
        age, limit = time.monotonic() - since, stale_after(self.config.monitor.tick)
        if age > limit:
            return f"scheduler has not ticked for {age:.0f}s (limit {limit:.0f}s)"
        return None

    def status_line(self) -> str:
        snap: Snapshot | None = self.metrics.snapshot
        if snap is None:
            return "starting"
        feeds, failing, pending = snap.counts
        line = f"{feeds} feeds, {failing} failing, {pending} alerts pending"
        problem = self.database_problem()
        return f"{line}; database {problem}" if problem else line

    def health(self) -> tuple[bool, str]:
        """``/healthz``, from memory only: healthy while the scheduler ticks and the database
        answers; a database that fails (locked past the busy timeout, disk full) is unhealthy
        and named; one that is merely slow is named too."""
        why = self.stale()
        if why:
            return False, why
        line = self.status_line()
        if self.db is None:
            return False, line
        if self.db.problem is not None:
            return False, f"running, {line}"
        return True, f"ok: {line}"

    async def beat(self) -> None:
        """Until cancelled: refresh STATUS when it changes and feed the watchdog while the
        scheduler ticks."""
        period = min(BEAT, self.watchdog) if self.watchdog else BEAT
        while not self._stopping:
            await asyncio.sleep(period)
            if self._stopping:
                return
            lines = []
            self.refresh()
            status = self.status_line()
            if status != self._status:
                self._status = status
                lines.append(f"STATUS={status}")
            why = self.stale()
            if self.watchdog and why is None:
                lines.append("WATCHDOG=1")
            elif self.watchdog:
                log.error("watchdog not fed: %s", why)
            sdnotify.send(*lines)
