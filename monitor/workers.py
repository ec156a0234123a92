"""A process pool for CPU-heavy, crash-prone work (feedparser, trafilatura) with a time limit
per task, awaitable from the event loop.

Why not ProcessPoolExecutor: on Python 3.11 ``max_tasks_per_child`` deadlocks (CPython
gh-115634) and a hung task cannot be killed. ``multiprocessing.Pool`` can be terminated: a
task over its limit gets the whole pool restarted, and the tasks that were in flight in it
fail with WorkerError instead of hanging. Workers are recycled every ``max_tasks`` tasks so
a leak in a library cannot grow memory for ever.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from collections.abc import Callable
from typing import Any, TypeVar

from .errors import MonitorError

log = logging.getLogger(__name__)
T = TypeVar("T")


class WorkerError(MonitorError):
    """A task ran over its time limit or its worker died."""


class Pool:
    def __init__(self, size: int = 0, *, max_tasks: int = 200, preload: tuple[str, ...] = ()):
        self.size = size or os.cpu_count() or 1
        self.max_tasks = max_tasks
        # forkserver: never fork the daemon itself, which has threads (aiohttp, apscheduler).
        self._ctx = multiprocessing.get_context("forkserver")
        if preload:
            self._ctx.set_forkserver_preload(list(preload))
        self._pool: Any = None
        self._inflight: set[asyncio.Future[Any]] = set()
        self.restarts = 0

    def _ensure(self) -> Any:
        if self._pool is None:
            self._pool = self._ctx.Pool(self.size, maxtasksperchild=self.max_tasks)
        return self._pool

    async def run(self, fn: Callable[..., T], *args: Any, timeout: float) -> T:
        """Run ``fn(*args)`` in a worker; raise WorkerError after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()

        def done(value: Any) -> None:
            loop.call_soon_threadsafe(_settle, fut, value, None)

        def failed(exc: BaseException) -> None:
            loop.call_soon_threadsafe(_settle, fut, None, exc)

        pool = self._ensure()
        pool.apply_async(fn, args, callback=done, error_callback=failed)
        self._inflight.add(fut)
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except TimeoutError:
            self._restart(f"{getattr(fn, '__name__', fn)} ran over {timeout:g}s")
            raise WorkerError(f"over the time limit of {timeout:g}s") from None
        finally:
            self._inflight.discard(fut)

    def _restart(self, why: str) -> None:
        """Kill every worker (the only way to stop a hung one) and fail their tasks."""
        log.warning("worker pool restarted reason=%r inflight=%d", why, len(self._inflight))
        self.restarts += 1
        pool, self._pool = self._pool, None
        for fut in list(self._inflight):
            if not fut.done():
                fut.set_exception(WorkerError("worker pool restarted: " + why))
        if pool is not None:
            pool.terminate()

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.terminate()
            pool.join()


def _settle(fut: asyncio.Future[Any], value: Any, exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(value)
