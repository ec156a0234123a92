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
from collections.abc import Awaitable, Callable, Iterable

from . import leases, pipeline
from .models import Feed
from .store import StoreError

log = logging.getLogger(__name__)
BATCH = 1000  # feeds fetched from the source at a time
POLL_LEASE = 900.0  # seconds a feed is claimed by its poll at the least (``poll_lease``)

# (ids queued or running, n) -> up to n other feeds; awaited: the store answers on its own thread
Source = Callable[[set[int], int], Awaitable[list[Feed]]]


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
        self._asking: asyncio.Task[None] | None = None  # the source's answer on its way

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
        """Ask the source for more in the background when the queue runs low; its answer
        starts polls as it comes (``_ask``)."""
        if self.exhausted or self.stopped or len(self.queued) > self.batch // 2:
            return
        if self._asking is None or self._asking.done():
            self._asking = asyncio.ensure_future(self._ask())

    async def _ask(self) -> None:
        known = self.queued | set(self.tasks)
        try:
            got = await self.source(known, self.batch)
        except StoreError as e:  # the database is locked or full: the next tick asks again
            log.warning("no feeds taken this tick reason=%r", str(e))
            got = []
        if self.stopped:
            self._asking = None
            if not self.tasks:
                self._idle.set()
            return
        known = self.queued | set(self.tasks)
        fresh = [f for f in got if f.id not in known]
        if not fresh:
            self.exhausted = True
        self._offer(fresh)
        self._asking = None
        self.fill()

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
        if not self.tasks and not self.queued and self.exhausted and self._asking is None:
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

    async def take(known: set[int], n: int) -> list[Feed]:
        out: list[Feed] = []
        for feed in it:
            out.append(feed)
            if len(out) >= n:
                break
        return out

    return take


def every_feed(ctx: pipeline.Context) -> Source:
    """Every active feed once, due or not, paged by id (``monitor once``); a feed another
    process is polling (a live lease) is left to it."""
    last = 0

    async def take(known: set[int], n: int) -> list[Feed]:
        nonlocal last
        got = await ctx.db.claim_feeds(owner=leases.OWNER, now=time.time(), lease=poll_lease(ctx), due=False,
                                       after_id=last, limit=n, default_interval=ctx.config.poll.interval)
        if got:
            last = got[-1].id
        return got

    return take


def due_feeds(ctx: pipeline.Context) -> Source:
    """Feeds due now, soonest first, skipping those already queued or running here and those
    another process holds (the daemon); each is leased to this process while it is polled."""

    async def take(known: set[int], n: int) -> list[Feed]:
        got = await ctx.db.claim_feeds(owner=leases.OWNER, now=time.time(), lease=poll_lease(ctx),
                                       limit=n + len(known), default_interval=ctx.config.poll.interval)
        return [f for f in got if f.id not in known][:n]

    return take


def poll_lease(ctx: pipeline.Context) -> float:
    """How long a feed stays claimed by its poll: the feed's fetch, then every new entry's
    page, a few at a time, each within the fetch and extract timeouts; generously bounded, as a
    poll that outlives its lease may be polled again by another process (harmless: entries are
    unique, and the second record finds them known)."""
    c = ctx.config
    return max(POLL_LEASE, 10 * (c.fetch.timeout + c.extract.timeout))


async def poll_all(ctx: pipeline.Context, feeds: list[Feed]) -> list[pipeline.Outcome]:
    """Poll the given feeds once each, politely (concurrency, per host, throttled hosts)."""
    return await Dispatcher(ctx, from_list(feeds)).run()
