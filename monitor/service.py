"""What the running daemon tells the outside: systemd (READY, STATUS, WATCHDOG, RELOADING,
STOPPING through ``sdnotify``), the heartbeat row ``monitor status`` reads, and the optional
``/healthz`` and ``/metrics`` endpoint.

The watchdog is fed only while the scheduler ticks: ``beat`` runs on the event loop beside
the scheduler and pings only when the last tick is recent. A blocked loop sends nothing, a
scheduler that stopped ticking sends nothing, and systemd restarts the service
(WatchdogSec=, Restart=on-failure).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from typing import Any

from . import sdnotify, web
from .config import Config
from .errors import MonitorError
from .metrics import Metrics
from .store import Store

log = logging.getLogger(__name__)
BEAT = 5.0  # seconds between STATUS refreshes (and watchdog pings, unless systemd asks for more)


def stale_after(tick: float) -> float:
    """Seconds without a tick after which the scheduler counts as stuck: three missed ticks,
    and never less than 10 s (a busy loop may delay one tick by a few seconds)."""
    return max(3 * tick, tick + 10)


class Service:
    def __init__(self, config: Config):
        self.config = config
        self.metrics = Metrics()
        self.metrics.poll_config = config.poll
        self.store: Store | None = None
        self.started_at = time.monotonic()
        self.last_tick: float | None = None  # monotonic
        self.watchdog = sdnotify.watchdog_period()
        self._status = ""
        self._stopping = False  # after STOPPING=1 no more pings: systemd is waiting for the exit
        self._runner: Any = None

    def configure(self, config: Config) -> None:
        """After a reload: the thresholds that may change at run time."""
        self.config = config
        self.metrics.poll_config = config.poll

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self, store: Store) -> None:
        """The database, rules and scheduler are up: serve HTTP if asked, then READY=1."""
        self.store = self.metrics.store = store
        store.daemon_started(os.getpid(), time.time())
        h = self.config.http
        if h.enabled:
            try:
                self._runner = await web.serve(h.host, h.port, self.health, self.metrics.render)
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
        if self.store is not None:
            try:
                self.store.daemon_stopped(time.time())
            except (sqlite3.Error, MonitorError) as e:
                log.warning("cannot record the stop error=%r", str(e))

    # -- while running ----------------------------------------------------------------------
    def ticked(self) -> None:
        self.last_tick = time.monotonic()
        self.metrics.last_tick = time.time()
        self.metrics.ticks.inc()
        if self.store is not None:
            try:
                self.store.daemon_ticked(time.time())
            except (sqlite3.Error, MonitorError) as e:  # a locked database must not stop ticking
                log.warning("cannot record the tick error=%r", str(e))

    def stale(self) -> str | None:
        """Why the scheduler counts as stuck, or None while it ticks."""
        since = self.last_tick if self.last_tick is not None else self.started_at
        age, limit = time.monotonic() - since, stale_after(self.config.monitor.tick)
        if age > limit:
            return f"scheduler has not ticked for {age:.0f}s (limit {limit:.0f}s)"
        return None

    def status_line(self) -> str:
        if self.store is None:
            return "starting"
        try:
            feeds, failing, pending = self.store.status_counts()
        except (sqlite3.Error, MonitorError) as e:
            return f"database not answering: {e}"
        return f"{feeds} feeds, {failing} failing, {pending} alerts pending"

    def health(self) -> tuple[bool, str]:
        """``/healthz``: healthy while the scheduler ticks and the database answers."""
        why = self.stale()
        if why:
            return False, why
        line = self.status_line()
        if self.store is None or line.startswith("database"):
            return False, line
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
