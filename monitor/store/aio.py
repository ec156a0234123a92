"""The store as the event loop sees it: every call runs on one database thread.

SQLite waits: for another process's lock (up to the busy timeout), for fsync, for a full disk to
fail. None of that may stop the event loop, which also answers ``/healthz``, feeds the watchdog,
ticks the scheduler and polls the other feeds (issue 15). So the daemon never calls the Store
directly: ``await db.record(...)`` runs ``Store.record`` on a single thread that owns the
connection, one call at a time and in order (one writer, as SQLite wants it).

``busy()`` says which call has been running for how long, and ``problem`` what the database
last failed with, so the daemon's health and status name what is blocked ("database busy:
record for 12s", "disk full") instead of going silent. After a failure, the calls that were
queued behind it fail at once: during a 30 s lock, fifty polls do not each wait the busy
timeout in turn. ``post`` queues a call without waiting for it (the heartbeat).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from .base import StoreError

log = logging.getLogger(__name__)
GROUP = 50  # polls recorded in one transaction at the most (a first poll's is ~2 ms of writing)
# A group that would start with fewer than LINGER_BELOW polls waits LINGER seconds more for others:
# bigger groups make fewer full-text segments (baseline_ab.py --rounds 6, side by side: wall 3.00
# -> 2.83 s, main-process CPU 1.91 -> 1.66 s); a poll's record waits 5 ms the more, at most.
LINGER, LINGER_BELOW = 0.005, 10
FORGET = 60.0  # seconds after which a call's failure no longer counts unless it fails again


class AsyncStore:
    """Awaitable proxy of a Store: ``await db.NAME(*args)`` runs ``store.NAME(*args)`` on the
    database thread. Attributes that are not methods (``path``) are read directly."""

    def __init__(self, store: Any, clock: Callable[[], float] = time.monotonic):
        self.store = store
        self.clock = clock
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="db")
        self._running: tuple[str, float] | None = None  # the call in progress and since when
        self._failing: dict[str, tuple[StoreError, float]] = {}  # call -> its last failure, while it fails
        self._failed_at = 0.0
        self._records: list[tuple[tuple[Any, ...], dict[str, Any], asyncio.Future[int], float]] = []  # polls
        self._recording = False  # to record: waiting for the group being written (``record``)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.store, name)
        if not callable(attr):
            return attr

        async def call(*args: Any, **kw: Any) -> Any:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._thread, functools.partial(
                self._run, name, attr, args, kw, self.clock()))

        call.__name__ = name
        return call

    async def record(self, *args: Any, **kw: Any) -> int:
        """``store.record`` with a group commit (SQLite): a poll whose record finds the thread
        writing another group waits for it, and then the polls that waited are written together,
        ``GROUP`` at the most, in one transaction (``Store.record_many``); fewer than
        ``LINGER_BELOW`` wait ``LINGER`` for others first. The first poll after a quiet spell is
        written at once, alone.
        Each caller gets its own poll's answer or failure, as from a ``record`` of its own."""
        if getattr(self.store, "dialect", None) != "sqlite":  # PostgreSQL: one poll a transaction
            return await self.__getattr__("record")(*args, **kw)
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[int] = loop.create_future()
        self._records.append((args, kw, waiter, self.clock()))
        if not self._recording:
            self._record_group(loop)
        return await waiter

    def _record_group(self, loop: asyncio.AbstractEventLoop) -> None:
        group, self._records = self._records[:GROUP], self._records[GROUP:]
        if not group:  # written meanwhile (close)
            self._recording = False
            return
        self._recording = True
        try:
            done = loop.run_in_executor(self._thread, functools.partial(
                self._run, "record", self.store.record_many, ([(a, k) for a, k, _, _ in group],), {},
                min(asked for *_, asked in group)))
        except RuntimeError as e:  # the thread was shut down (close): nothing will write them
            self._recording = False
            for _, _, waiter, _ in group + self._records:
                if not waiter.done():
                    waiter.set_exception(StoreError(f"database closed: {e}"))
            self._records = []
            return
        done.add_done_callback(lambda f: self._recorded(loop, group, f))

    def _recorded(self, loop: asyncio.AbstractEventLoop, group: list[Any], done: asyncio.Future[Any]) -> None:
        try:
            failed = StoreError("database call cancelled") if done.cancelled() else done.exception()
            answers = [failed] * len(group) if failed else done.result()
            for (_, _, waiter, _), answer in zip(group, answers, strict=True):
                _settle(waiter, answer)
        except Exception as e:  # a bug here must neither hang these callers nor stop every later record
            log.error("BUG handing out a group's records", exc_info=e)
            for _, _, waiter, _ in group:
                if not waiter.done():
                    waiter.set_exception(e)
        finally:
            if len(self._records) >= LINGER_BELOW:
                self._record_group(loop)
            elif self._records:
                loop.call_later(LINGER, self._record_group, loop)
            else:
                self._recording = False

    async def call_next(self, iterator: Iterator[Any]) -> Any:
        """The next item of a Store generator (``steps``, ``stored_articles``), read on the
        database thread; None when it is exhausted."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, functools.partial(
            self._run, "next", next, (iterator, None), {}, self.clock()))

    def submit(self, name: str, *args: Any, **kw: Any) -> asyncio.Future[Any]:
        """Queue ``store.NAME(*args)`` NOW (not when a coroutine first runs) and return its
        future: calls submitted later, from anywhere, run after it (store/behind.py)."""
        return asyncio.get_running_loop().run_in_executor(self._thread, functools.partial(
            self._run, name, getattr(self.store, name), args, kw, self.clock()))

    def post(self, name: str, *args: Any) -> Future[Any]:
        """Queue ``store.NAME(*args)`` without waiting; a failure is logged, not raised."""
        future = self._thread.submit(self._run, name, getattr(self.store, name), args, {}, self.clock())
        future.add_done_callback(_log_failure)
        return future

    def _run(self, name: str, fn: Callable[..., Any], args: tuple[Any, ...], kw: dict[str, Any],
             asked: float | None = None) -> Any:
        now = self.clock()
        if self._failing and asked is not None and asked < self._failed_at:
            # Asked before the database failed (locked past the busy timeout, disk full), while
            # that call waited: fail at once instead of each waiting the busy timeout in turn.
            # A call asked after the failure tries for real.
            last = self.problem or next(iter(self._failing.values()))[0]
            raise StoreError(f"{last} (queued behind that failure)", last.kind)
        self._running = (name, now)
        try:
            result = fn(*args, **kw)
        except StoreError as e:
            self._failed_at = self.clock()
            self._failing[name] = (e, self._failed_at)
            raise
        finally:
            self._running = None
        self._failing.pop(name, None)
        return result

    @property
    def problem(self) -> StoreError | None:
        """The newest failure of a call whose last try failed, within FORGET seconds: a read that
        works while writes fail (WAL readers pass another process's lock) does not hide it, and
        the failure is forgotten once that call works again."""
        now = self.clock()
        live = [(at, e) for e, at in self._failing.values() if now - at < FORGET]
        return max(live, key=lambda x: x[0])[1] if live else None

    def busy(self) -> tuple[str, float] | None:
        """(the call in progress, seconds it has run) or None when the thread is idle."""
        running = self._running
        return (running[0], self.clock() - running[1]) if running else None

    def close(self) -> None:
        """Finish the queued calls, then close the connection on its own thread. Polls waiting
        for the group being written (``record``) are written first, as one more group."""
        waiting, self._records = self._records, []
        if waiting:
            answers: list[Any] | BaseException
            try:
                answers = self._thread.submit(self._run, "record", self.store.record_many,
                                              ([(a, k) for a, k, _, _ in waiting],), {}).result()
            except Exception as e:  # noqa: BLE001 - each waiting caller gets it
                answers = e
            for i, (_, _, waiter, _) in enumerate(waiting):
                with contextlib.suppress(RuntimeError):  # its loop may be closed: nobody waits
                    _settle(waiter, answers if isinstance(answers, BaseException) else answers[i])
        self._thread.submit(self.store.close).result()
        self._thread.shutdown(wait=True)


def _settle(waiter: asyncio.Future[Any], answer: Any) -> None:
    """Hand one poll's answer (its alerts, or its failure) to its caller, unless it stopped
    waiting (cancelled)."""
    if waiter.done():
        return
    if isinstance(answer, BaseException):
        waiter.set_exception(_own(answer))
    else:
        waiter.set_result(answer)


def _own(e: BaseException) -> BaseException:
    """A group's failure for one of its callers: a StoreError of its own (an exception raised to
    several awaiting tasks would collect each one's traceback); anything else as it is."""
    return StoreError(str(e), e.kind) if isinstance(e, StoreError) else e


def _log_failure(future: Future[Any]) -> None:
    e = future.exception()
    if isinstance(e, StoreError):
        log.debug("queued database call failed error=%r", str(e))
    elif e is not None:
        log.error("BUG in a queued database call", exc_info=e)
