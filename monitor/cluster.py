"""Cluster mode's work queue (issue 19): polls are Procrastinate jobs on the PostgreSQL store.

On PostgreSQL the nodes share the work through Procrastinate (PostgreSQL-based task processing:
the database is the only moving part), not through a queue of our own:

- a node with the ``scheduler`` role enqueues (``enqueue``, once a second cluster-wide, ten
  times a second while more feeds are due than the workers have room for: the store's
  ``periodic_turn``): it claims due feeds in the store, each leased to a token for
  ``poll_lease``, and defers ``poll`` jobs of ``JOB_FEEDS`` feeds each, no more than the live
  workers can start soon (queued jobs <= live workers x ``SLOTS``);
- a node with the ``worker`` role runs a Procrastinate worker in its event loop (async psycopg:
  no round trip waits on the loop). A ``poll`` job hands the feeds still leased to its token to
  the node's dispatcher (concurrency, per-host slots across the cluster, throttles) and, when
  they have all finished, hands back what it still holds (``Store.hand_back``);
- a node that dies stops its worker's heartbeat. After ``STALLED_AFTER`` seconds without one,
  the scheduler (``recover``) takes its jobs back: their feeds are due again one interval on
  (they may have been fetched just before the death) and the job is marked failed. A dead node
  on another machine costs ~20 s, not the 15-minute lease; one restarted on its machine frees
  them at once (a job's feeds are held as ``OWNER:token``, which ``leases.dead`` reads as the
  node's). Feeds claimed by a scheduler that died before it deferred their job are freed
  ``ORPHAN_AFTER`` seconds after the claim.

Procrastinate's tables are made by the store's migration, under its lock (store ``_work_queue``).
A database that goes away stops the worker with an error; it is started again, with a warning,
once the database answers (``work``).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from . import leases
from .store import StoreError

if TYPE_CHECKING:
    from procrastinate import App

    from .dispatch import Dispatcher
    from .store.aio import AsyncStore

log = logging.getLogger(__name__)
QUEUE = leases.POLL_QUEUE
SLOTS = 4  # poll jobs a node's worker runs at once
HEARTBEAT = 5.0  # seconds between a worker's heartbeats
STALLED_AFTER = leases.STALLED_AFTER  # seconds without a heartbeat after which a node's jobs are taken back
ENQUEUE_EVERY = 1.0  # seconds between enqueueing passes (cluster-wide) ...
ENQUEUE_BUSY = 0.1  # ... while more feeds are due than the workers have room for
RECOVER_EVERY = 10.0  # seconds between looks for stalled jobs (cluster-wide)
ORPHAN_AFTER = 60.0  # seconds after its claim a feed leased to a token no job carries is freed
RESTART_WAIT, RESTART_WAIT_MAX = 1.0, 30.0  # after the worker stopped on a database error


def job_size(concurrency: int) -> int:
    """Feeds per poll job: half a node's poll concurrency, so that two jobs keep it busy."""
    return max(1, concurrency // 2)


class WorkQueue:
    def __init__(self, url: str, db: AsyncStore, *, concurrency: int, lease: float, poll_interval: float,
                 default_interval: float, dispatcher: Dispatcher | None = None,
                 clock: Any = time.time) -> None:
        try:
            from procrastinate import App, PsycopgConnector
        except ImportError as e:  # an extra, with psycopg: rss-monitor[cluster]
            raise StoreError(f"cluster mode needs procrastinate ({e}): pip install 'rss-monitor[cluster]'",
                             "schema") from None

        self.db = db
        self.dispatcher = dispatcher
        self.lease = lease
        self.poll_interval = poll_interval
        self.default_interval = default_interval
        self.size = job_size(concurrency)
        self.clock = clock
        self.stopping = False
        self.backlog = False  # the last enqueue left due feeds behind (``enqueue``)
        self.worker: asyncio.Task[None] | None = None
        # a small pool: the worker's fetches and heartbeats, the scheduler's defers; LISTEN has its own
        _quiet_procrastinate()
        self.app: App = App(connector=PsycopgConnector(conninfo=url, min_size=1, max_size=3, timeout=10.0))
        self.app.task(name="poll", queue=QUEUE, pass_context=False)(self.poll)

    async def open(self) -> None:
        await self.app.open_async()

    async def close(self) -> None:
        self.stopping = True
        if self.worker is not None:
            self.worker.cancel()
            await asyncio.gather(self.worker, return_exceptions=True)
        await self.app.close_async()

    # -- worker ---------------------------------------------------------------------------------
    def start_worker(self) -> None:
        self.worker = asyncio.get_running_loop().create_task(self.work(), name="procrastinate worker")

    async def work(self) -> None:
        """Run the Procrastinate worker until stopped; start it again after a database error."""
        wait = RESTART_WAIT
        while not self.stopping:
            started = time.monotonic()
            try:
                await self.app.run_worker_async(
                    queues=[QUEUE], name=leases.OWNER, concurrency=SLOTS, install_signal_handlers=False,
                    delete_jobs="successful", update_heartbeat_interval=HEARTBEAT,
                    stalled_worker_timeout=STALLED_AFTER, shutdown_graceful_timeout=5.0)
                if not self.stopping:
                    log.warning("work queue worker stopped; starting it again in %gs", wait)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the database went away: the connector's errors, the pool's timeout
                log.warning("work queue worker stopped reason=%r; starting it again in %gs", _why(e), wait)
            if self.stopping:
                return
            await asyncio.sleep(wait)
            wait = RESTART_WAIT if time.monotonic() - started > RESTART_WAIT_MAX else min(wait * 2, RESTART_WAIT_MAX)

    async def poll(self, token: str, feeds: list[int]) -> int:
        """The ``poll`` job: the feeds still leased to ``token``, polled by this node's dispatcher;
        then what the job still holds is handed back (``hand_back``). The number polled."""
        assert self.dispatcher is not None, "a poll job runs on a worker node"
        got: list[Any] | None = None
        started: set[int] = set()  # filled as polls start: a job cancelled meanwhile hands back the truth
        try:
            got = await self.db.job_feeds(token, feeds, leases.OWNER, self.default_interval)
            await self.dispatcher.poll_these(got, started)
        finally:  # (the database refused the job's start: its feeds are free at once, none started)
            ids = [f.id for f in got] if got is not None else list(feeds)
            await self._hand_back(token, ids, [i for i in ids if i not in started])
        return len(started)

    async def _hand_back(self, token: str, ids: list[int], untouched: list[int]) -> None:
        """What the job still holds goes back to the store, retried while the database is away
        (a lease left behind would keep its feed from every node until it expires)."""
        wait = RESTART_WAIT
        while ids:
            try:
                await self.db.hand_back(token, ids, self.clock(), self.poll_interval, untouched)
                return
            except StoreError as e:
                if self.stopping:  # the lease expires, or the next start's recovery frees it
                    log.warning("poll job's feeds not handed back feeds=%d reason=%r", len(ids), str(e))
                    return
                await asyncio.sleep(wait)
                wait = min(wait * 2, RESTART_WAIT_MAX)

    # -- scheduler ------------------------------------------------------------------------------
    async def schedule(self, stop: asyncio.Event) -> None:
        """A scheduler node's part: enqueue every ENQUEUE_EVERY seconds, ENQUEUE_BUSY while due
        feeds wait for room (a pass that takes longer under load delays the next rather than
        overlapping it), look for stalled jobs every RECOVER_EVERY; until ``stop``, after the
        current step."""
        recover_at = time.monotonic() + 1.0
        while not stop.is_set():
            started = time.monotonic()
            await self.step("enqueue", self.enqueue)
            if started >= recover_at:
                await self.step("recover", self.recover)
                recover_at = started + RECOVER_EVERY
            pause = max(0.01, (ENQUEUE_BUSY if self.backlog else ENQUEUE_EVERY) - (time.monotonic() - started))
            try:
                await asyncio.wait_for(stop.wait(), pause)
            except TimeoutError:
                pass

    async def step(self, name: str, step: Callable[[], Awaitable[Any]]) -> None:
        """One scheduler step; the database away is a warning, and the next period tries again."""
        try:
            await step()
        except StoreError as e:
            log.warning("%s skipped reason=%r: the next period tries again", name, str(e))
        except Exception as e:  # the work queue's own connection: procrastinate's errors, the pool's timeout
            log.warning("%s skipped reason=%r: the next period tries again", name, _why(e))

    async def enqueue(self) -> int:
        """Claim due feeds and defer them as poll jobs, as many as the live workers can start
        soon. The number of jobs deferred; ``backlog`` says whether more feeds were due than
        there was room for (the scheduler then comes back after ENQUEUE_BUSY, not ENQUEUE_EVERY:
        jobs of 304s end in milliseconds, and a node waiting a second for its next jobs would
        poll at most 2 x concurrency feeds a second, as the scale bench found at the default 50)."""
        now = self.clock()
        every = ENQUEUE_BUSY if self.backlog else ENQUEUE_EVERY
        if not await self.db.periodic_turn("enqueue", now, every, leases.OWNER):
            return 0
        row = await self.app.connector.execute_query_one_async(
            "SELECT (SELECT COUNT(*) FROM procrastinate_jobs WHERE queue_name = %(queue)s AND status = 'todo') "
            "AS todo, (SELECT COUNT(*) FROM procrastinate_workers WHERE last_heartbeat > NOW() - "
            "make_interval(secs => %(stalled)s)) AS workers", queue=QUEUE, stalled=STALLED_AFTER)
        room = int(row["workers"]) * SLOTS - int(row["todo"])
        if room <= 0:  # the workers have their next jobs waiting: the backlog stays as it was
            return 0
        token = f"job:{leases.OWNER}:{secrets.token_hex(6)}"
        feeds = await self.db.claim_feeds(owner=token, now=now, lease=self.lease, limit=room * self.size,
                                          default_interval=self.default_interval)
        self.backlog = len(feeds) == room * self.size
        if not feeds:
            return 0
        ids = [f.id for f in feeds]
        jobs: list[dict[str, Any]] = [{"token": token, "feeds": ids[i:i + self.size]}
                                      for i in range(0, len(ids), self.size)]
        try:
            await self.app.tasks["poll"].batch_defer_async(*jobs)
        except Exception:
            await self.db.hand_back(token, ids, now, self.poll_interval, untouched=ids)  # claimed, not queued
            raise
        return len(jobs)

    async def recover(self) -> int:
        """Take back the poll jobs of nodes whose worker stopped beating: their feeds are due
        again one interval on (``hand_back``), the job is marked failed. The number taken."""
        now = self.clock()
        if not await self.db.periodic_turn("recover", now, RECOVER_EVERY, leases.OWNER):
            return 0
        from procrastinate.jobs import Status

        manager = self.app.job_manager
        stalled = list(await manager.get_stalled_jobs(queue=QUEUE, task_name="poll",
                                                      seconds_since_heartbeat=STALLED_AFTER))
        for job in stalled:
            args: dict[str, Any] = dict(job.task_kwargs)
            n = await self.db.hand_back(str(args.get("token")), [int(i) for i in args.get("feeds") or []], now,
                                        self.poll_interval)
            await manager.finish_job(job, status=Status.FAILED, delete_job=False)
            log.warning("poll job of a stopped node taken back job=%s worker=%s feeds=%d", job.id, job.worker_id, n)
        await manager.prune_stalled_workers(STALLED_AFTER)
        if orphans := await self.db.free_orphans(now, self.lease, ORPHAN_AFTER):
            log.warning("feeds claimed for poll jobs never queued freed feeds=%d: a scheduler stopped between "
                        "its claim and its defer", orphans)
        return len(stalled)

    async def prune(self, days: float) -> None:
        """Finished jobs older than the retention (the worker deletes successful ones itself)."""
        await self.app.job_manager.delete_old_jobs(nb_hours=max(1, int(days * 24)), queue=QUEUE,
                                                   include_failed=True, include_cancelled=True, include_aborted=True)


class _OneLine(logging.Filter):
    """Procrastinate's records as one line each: a lost connection is our warning, never a
    traceback (the error policy, ARCHITECTURE.md); the exception's text stays in the line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("procrastinate") and record.exc_info:
            exc = record.exc_info[1]
            record.msg, record.args = f"{record.getMessage()} reason={_why(exc) if exc else ''!r}", None
            record.exc_info = record.exc_text = None
            if record.levelno > logging.WARNING:
                record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def _quiet_procrastinate() -> None:
    """Procrastinate logs each job at INFO (a line per poll job): only its warnings are kept,
    each on one line."""
    logging.getLogger("procrastinate").setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _OneLine) for f in handler.filters):
            handler.addFilter(_OneLine())


def _why(e: BaseException) -> str:
    cause = e.__cause__ or e.__context__
    return f"{e}: {cause}" if cause is not None and str(cause) not in str(e) else str(e) or type(e).__name__
