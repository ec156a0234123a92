"""Which feed is polled when: politeness and a bounded queue.

The dispatcher starts a poll whenever a slot frees up, with at most ``poll.concurrency`` polls
at once overall and ``poll.per_host`` per host, taking hosts in turn (a host with 500 feeds
never gets 500 requests at once, nor starves the others), and skipping hosts throttled after
repeated 429s. Feeds come from a ``source`` asked for a batch whenever the queue runs low, so
memory holds one batch, not every registered feed: 50,000 feeds cost what 1,000 do.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable

from . import pipeline
from .models import Feed

log = logging.getLogger(__name__)
BATCH = 1000  # feeds fetched from the source at a time

Source = Callable[[set[int], int], list[Feed]]  # (ids queued or running, n) -> up to n other feeds


class Dispatcher:
    def __init__(self, ctx: pipeline.Context, source: Source, *, batch: int = BATCH):
        self.ctx = ctx
        self.source = source
        self.batch = batch
        self.concurrency = ctx.config.poll.concurrency
        self.per_host = ctx.config.poll.per_host
        self.queues: dict[str, deque[Feed]] = {}
        self.rotation: deque[str] = deque()  # hosts that may have a free slot and queued feeds
        self.rotating: set[str] = set()  # the same, for membership tests
        self.inflight: Counter[str] = Counter()
        self.tasks: dict[int, asyncio.Task[pipeline.Outcome]] = {}
        self.queued: set[int] = set()
        self.outcomes: list[pipeline.Outcome] = []
        self.keep_outcomes = False
        self.on_outcome: Callable[[pipeline.Outcome], None] | None = None  # e.g. metrics
        self.exhausted = False  # the source had nothing more; ``more()`` asks again
        self.stopped = False
        self._idle = asyncio.Event()

    def more(self) -> None:
        """Ask the source again (a tick: feeds may have become due) and start what fits."""
        self.exhausted = False
        self.fill()

    def stop(self) -> None:
        """Start nothing more; polls in flight go on (``tasks`` holds them)."""
        self.stopped = True
        self.queues.clear()
        self.rotation.clear()
        self.rotating.clear()
        self.queued.clear()

    async def run(self) -> list[pipeline.Outcome]:
        """Poll until the source is exhausted and every poll has finished; the outcomes."""
        self.keep_outcomes = True
        self.fill()
        if self.tasks or self.queued:
            await self._idle.wait()
        return self.outcomes

    def _offer(self, feeds: Iterable[Feed]) -> None:
        for feed in feeds:
            if feed.id in self.queued or feed.id in self.tasks:
                continue
            host = feed.host
            q = self.queues.get(host)
            if q is None:
                q = self.queues[host] = deque()
                self._rotate(host)
            q.append(feed)
            self.queued.add(feed.id)

    def _refill(self) -> None:
        if self.exhausted or self.stopped or len(self.queued) > self.batch // 2:
            return
        known = self.queued | set(self.tasks)
        got = self.source(known, self.batch)
        fresh = [f for f in got if f.id not in known]
        if not fresh:
            self.exhausted = True
        self._offer(fresh)

    def fill(self) -> None:
        self._refill()
        now = time.time()
        skipped: list[str] = []  # hosts at their limit: back in the rotation when a poll ends
        while len(self.tasks) < self.concurrency and self.rotation:
            host = self.rotation.popleft()
            self.rotating.discard(host)
            q = self.queues.get(host)
            if not q:
                self.queues.pop(host, None)
                continue
            if self.ctx.throttled.get(host, 0.0) > now:
                # Their next_check_at was pushed past the throttle: they come back when due.
                self.queued.difference_update(f.id for f in q)
                del self.queues[host]
                continue
            if self.inflight[host] >= self.per_host:
                skipped.append(host)
                continue
            feed = q.popleft()
            self.queued.discard(feed.id)
            self._start(feed, host)
            if q:
                self._rotate(host)
            else:
                del self.queues[host]
            if not self.rotation:
                self._refill()
        for host in skipped:
            self._rotate(host)
        if not self.tasks and not self.queued and self.exhausted:
            self._idle.set()

    def _rotate(self, host: str) -> None:
        if host not in self.rotating:
            self.rotating.add(host)
            self.rotation.append(host)

    def _start(self, feed: Feed, host: str) -> None:
        self.inflight[host] += 1
        task = asyncio.create_task(pipeline.poll_safely(self.ctx, feed))
        self.tasks[feed.id] = task
        task.add_done_callback(functools.partial(self._done, feed.id, host))

    def _done(self, feed_id: int, host: str, task: asyncio.Task[pipeline.Outcome]) -> None:
        self.tasks.pop(feed_id, None)
        self.inflight[host] -= 1
        if not self.inflight[host]:
            del self.inflight[host]
        if not task.cancelled() and task.exception() is None:
            if self.keep_outcomes:
                self.outcomes.append(task.result())
            if self.on_outcome is not None:
                self.on_outcome(task.result())
        if host in self.queues:
            self._rotate(host)
        if not self.stopped:
            self.fill()
        elif not self.tasks:
            self._idle.set()


def from_list(feeds: list[Feed]) -> Source:
    """A source that hands out the given feeds once."""
    it = iter(feeds)

    def take(known: set[int], n: int) -> list[Feed]:
        out: list[Feed] = []
        for feed in it:
            out.append(feed)
            if len(out) >= n:
                break
        return out

    return take


def every_feed(ctx: pipeline.Context) -> Source:
    """Every active feed once, due or not, paged by id (``monitor once``)."""
    last = 0

    def take(known: set[int], n: int) -> list[Feed]:
        nonlocal last
        got = ctx.store.feeds(after_id=last, limit=n, default_interval=ctx.config.poll.interval)
        if got:
            last = got[-1].id
        return got

    return take


def due_feeds(ctx: pipeline.Context) -> Source:
    """Feeds due now, soonest first, skipping those already queued or running (the daemon)."""

    def take(known: set[int], n: int) -> list[Feed]:
        got = ctx.store.feeds(due_at=time.time(), limit=n + len(known),
                              default_interval=ctx.config.poll.interval)
        return [f for f in got if f.id not in known][:n]

    return take


async def poll_all(ctx: pipeline.Context, feeds: list[Feed]) -> list[pipeline.Outcome]:
    """Poll the given feeds once each, politely (concurrency, per host, throttled hosts)."""
    return await Dispatcher(ctx, from_list(feeds)).run()
