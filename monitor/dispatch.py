"""Which feed is polled when: politeness and a bounded queue.

The dispatcher starts a poll whenever a slot frees up, with at most ``poll.concurrency`` polls
at once overall and ``poll.per_host`` per host, taking hosts in turn (a host with 500 feeds
never gets 500 requests at once, nor starves the others), and skipping hosts throttled after
repeated 429s (``HostThrottle``). Feeds come from a ``source`` asked for a batch whenever the
queue runs low, so memory holds one batch, not every registered feed: 50,000 feeds cost what
1,000 do. The time comes from ``ctx.clock``. On PostgreSQL ``per_host`` is the cluster's: a poll
also holds one of its host's slots in the database while it runs (store ``take_host_slot``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable

from . import leases, pipeline
from .models import Feed
from .store import StoreError

log = logging.getLogger(__name__)
BATCH = 1000  # feeds fetched from the source at a time
POLL_LEASE = 900.0  # seconds a feed is claimed by its poll at the least (``poll_lease``)
HOST_STRIKES = 3  # feeds of one host answering 429 ...
HOST_WINDOW = 600.0  # ... within this many seconds throttle the whole host
HOST_PAUSE = 300.0  # for at least this long (or the longest Retry-After among them)
SLOT_WAIT, SLOT_WAIT_MAX = 0.05, 1.0  # seconds between tries for a host slot other nodes hold
SHARED_BATCH = 2  # a cluster node claims at most this many feeds per poll it may run at once

# (ids queued or running, n) -> up to n other feeds; awaited: the store answers on its own thread
Source = Callable[[set[int], int], Awaitable[list[Feed]]]


class HostThrottle:
    """A 429 (RFC 6585) slows its own feed (health backs it off, never sooner than its
    Retry-After). When several feeds of one host get 429s within HOST_WINDOW, the limit is the
    host's: the host itself is throttled and every feed on it waits. No I/O: the caller is told
    how long, and moves the feeds in the store."""

    def __init__(self) -> None:
        # host -> {feed URL: (time of its 429, Retry-After)}: recent 429s, to spot a host-wide limit
        self.strikes: dict[str, dict[str, tuple[float, float]]] = {}
        self.until: dict[str, float] = {}  # host -> throttled until

    def throttled(self, host: str, now: float) -> bool:
        return self.until.get(host, 0.0) > now

    def strike(self, host: str, url: str, now: float, retry_after: float | None, cap: float) -> float | None:
        """Count a 429 of ``url``. Seconds the host is now throttled for (at least HOST_PAUSE,
        the longest Retry-After among its strikes, at most ``cap``), or None: not (yet)."""
        strikes = self.strikes.setdefault(host, {})
        strikes[url] = (now, retry_after or 0.0)
        for u, (when, _) in list(strikes.items()):
            if now - when > HOST_WINDOW:
                del strikes[u]
        if len(strikes) < HOST_STRIKES:
            return None
        wait = min(cap, max(HOST_PAUSE, *(ra for _, ra in strikes.values())))
        self.until[host] = now + wait
        strikes.clear()
        return wait


class _Job:
    """The feeds one call of ``poll_these`` waits for: done when each is settled (polled, or
    not to be started here); ``started`` the ones whose poll began."""

    def __init__(self, ids: Iterable[int], started: set[int] | None = None):
        self.left = set(ids)
        self.started: set[int] = started if started is not None else set()
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.settle()

    def settle(self, feed_id: int | None = None) -> None:
        if feed_id is not None:
            self.left.discard(feed_id)
        if not self.left and not self.done.done():
            self.done.set_result(None)


class Dispatcher:
    def __init__(self, ctx: pipeline.Context, source: Source, *, batch: int = BATCH,
                 throttle: HostThrottle | None = None):
        self.ctx = ctx
        self.source = source
        self.batch = batch
        self.throttle = throttle or HostThrottle()  # lives as long as the dispatcher (the daemon's)
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
        # per_host across the nodes of a cluster (PostgreSQL): the host slots this node holds;
        # and a node claims only what it can start soon, leaving the rest to the other nodes
        self.shared = getattr(ctx.db, "dialect", "sqlite") == "postgresql"
        self.held: dict[str, set[int]] = {}
        self.asking: dict[str, asyncio.Lock] = {}
        # feed id -> not polled again before: its poll reached the feed but the database did not
        # take the result; the feed stays leased here and waits its interval (chaos bench: 0.13 s)
        self.resting: dict[int, float] = {}
        self.jobs: dict[int, _Job] = {}  # feed id -> the ``poll_these`` call waiting for it
        if self.shared:
            self.batch = min(batch, SHARED_BATCH * self.concurrency)

    def more(self) -> None:
        """Ask the source again (a tick: feeds may have become due) and start what fits."""
        self.exhausted = False
        self.fill()

    def stop(self) -> None:
        """Start nothing more; polls in flight go on (``tasks`` holds them)."""
        self.stopped = True
        for feed_id in list(self.queued):
            self._settle(feed_id)
        self.queues.clear()
        self.rotation.clear()
        self.rotating.clear()
        self.queued.clear()

    async def poll_these(self, feeds: Iterable[Feed], started: set[int] | None = None) -> set[int]:
        """Poll the given feeds among the others, politely (a cluster node's poll job,
        monitor/cluster.py), and return once each has finished or will not be started here
        (already queued or running, resting, its host throttled, the dispatcher stopping).
        The ids of those whose poll started, added to ``started`` as each starts: a caller
        cancelled while it waits still knows which feeds may have been fetched."""
        feeds = list(feeds)
        job = _Job((f.id for f in feeds), started)
        fresh = [f for f in feeds if f.id not in self.jobs] if not self.stopped else []
        for feed in fresh:
            self.jobs[feed.id] = job
        self._offer(fresh)
        for feed in feeds:
            if feed.id not in self.queued:  # not taken: settled now
                if self.jobs.get(feed.id) is job:
                    del self.jobs[feed.id]
                job.settle(feed.id)
        self.fill()
        try:
            await job.done
        finally:
            # The unchanged polls' updates are sent now, even if the job is cancelled: whatever
            # the caller asks next (cluster ``hand_back``) is queued after them (store/behind.py).
            sent = self.ctx.behind.flush() if self.ctx.behind is not None and job.started else None
        if sent is not None and not sent.done():
            await asyncio.wait([sent])
        return job.started

    def _settle(self, feed_id: int) -> None:
        job = self.jobs.pop(feed_id, None)
        if job is not None:
            job.settle(feed_id)

    async def run(self) -> list[pipeline.Outcome]:
        """Poll until the source is exhausted and every poll has finished; the outcomes."""
        self.keep_outcomes = True
        self.fill()
        await self._idle.wait()
        if self.ctx.behind is not None:  # every poll recorded when this returns
            await self.ctx.behind.drain()
        return self.outcomes

    def _offer(self, feeds: Iterable[Feed]) -> int:
        now, added = self.ctx.clock(), 0
        for feed in feeds:
            if feed.id in self.queued or feed.id in self.tasks:
                continue
            if self.resting.get(feed.id, 0.0) > now:  # polled, not recorded: not again within its interval
                continue
            if self.ctx.behind is not None and self.ctx.behind.holds(feed.id, now):  # its update not written yet
                continue
            self.resting.pop(feed.id, None)
            host = feed.host
            q = self.queues.get(host)
            if q is None:
                q = self.queues[host] = deque()
                self._rotate(host)
            q.append(feed)
            self.queued.add(feed.id)
            added += 1
        return added

    def _refill(self) -> None:
        """Ask the source for more in the background when the queue runs low; its answer
        starts polls as it comes (``_ask``)."""
        if self.exhausted or self.stopped or len(self.queued) > self.batch // 2:
            return
        if self._asking is None or self._asking.done():
            self._asking = asyncio.ensure_future(self._ask())

    async def _ask(self) -> None:
        known = self.queued | set(self.tasks)
        if self.ctx.behind is not None:  # still due in the database until their batch is written
            known |= self.ctx.behind.held(self.ctx.clock())
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
        if not self._offer(fresh):  # nothing new (or all resting): ask again at the next tick
            self.exhausted = True
        self._asking = None
        self.fill()

    def fill(self) -> None:
        self._refill()
        now = self.ctx.clock()
        while len(self.tasks) < self.concurrency and self.rotation:
            host = self.rotation.popleft()
            self.rotating.discard(host)
            q = self.queues.get(host)
            if not q:
                self.queues.pop(host, None)
                continue
            if self.throttle.throttled(host, now):
                # Their next_check_at was pushed past the throttle: they come back when due.
                for f in q:
                    self._settle(f.id)
                self.queued.difference_update(f.id for f in q)
                del self.queues[host]
                continue
            if self.inflight[host] >= self.per_host:
                # out of the rotation until one of its polls ends (``_done`` puts it back), so a
                # full host costs nothing here, not one look per fill as every poll ends
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
        if not self.tasks and not self.queued and self.exhausted and self._asking is None:
            self._idle.set()

    def _rotate(self, host: str) -> None:
        if host not in self.rotating:
            self.rotating.add(host)
            self.rotation.append(host)

    def _start(self, feed: Feed, host: str) -> None:
        self.inflight[host] += 1
        if (job := self.jobs.get(feed.id)) is not None:
            job.started.add(feed.id)
        task = asyncio.create_task(self._poll(feed))
        self.tasks[feed.id] = task
        task.add_done_callback(functools.partial(self._done, feed.id, host, feed.interval))

    async def _poll(self, feed: Feed) -> pipeline.Outcome:
        try:
            slot = await self._slot(feed.host) if self.shared else None
        except StoreError as e:  # no slot without the database, nor a record of the poll: not polled
            log.warning("poll postponed feed=%s reason=%r: no host slot without the database", feed.url, str(e))
            return pipeline.Outcome(feed.url, "error", error=f"database: {e}", kind="database")
        try:
            out = await pipeline.poll_safely(self.ctx, feed)
        finally:
            if slot is not None:
                self.held[feed.host].discard(slot)
                try:
                    await self.ctx.db.free_host_slot(feed.host, slot, leases.OWNER)
                except StoreError:  # the connection went, and its locks with it
                    pass
        if out.kind == "http-429":
            await self._strike(feed, out)
        return out

    async def _slot(self, host: str) -> int:
        """One of the host's ``per_host`` slots held by no other node of the cluster (store
        ``take_host_slot``), waited for while the others hold them all. StoreError when the
        database cannot say: the poll is not made (it could not be recorded either)."""
        wait = SLOT_WAIT
        while not self.stopped:
            mine = self.held.setdefault(host, set())
            # one try at a time per host on this node: a session may take again a lock it holds, so
            # two polls asking at once could both get the slot the first is still being given
            async with self.asking.setdefault(host, asyncio.Lock()):
                slot = await self.ctx.db.take_host_slot(host, [k for k in range(self.per_host) if k not in mine],
                                                        leases.OWNER, self.ctx.clock(), self.ctx.config.fetch.timeout)
                if slot is not None:
                    mine.add(slot)
                    return int(slot)
            await asyncio.sleep(wait)
            wait = min(wait * 2, SLOT_WAIT_MAX)
        raise asyncio.CancelledError  # stopping: a poll that never got its slot is not started

    async def _strike(self, feed: Feed, out: pipeline.Outcome) -> None:
        """Count a 429 against its host; when the host is throttled, push its feeds back,
        spread over a tenth of the wait so they do not all return at once."""
        now = self.ctx.clock()
        wait = self.throttle.strike(feed.host, feed.url, now, out.retry_after, self.ctx.config.poll.max_backoff)
        if wait is None:
            return
        try:
            delayed = await self.ctx.db.throttle_host(feed.host, now + wait, spread=wait * 0.1)
        except StoreError as e:  # the host stays skipped here; its feeds come due as stored
            log.warning("cannot store the host's throttle host=%s error=%r", feed.host, str(e))
            return
        log.warning("host throttled host=%s feeds=%d wait=%ds reason=%r", feed.host, delayed, wait,
                    f"HTTP 429 from {HOST_STRIKES} of its feeds within {HOST_WINDOW:g}s")

    def _done(self, feed_id: int, host: str, interval: float, task: asyncio.Task[pipeline.Outcome]) -> None:
        self.tasks.pop(feed_id, None)
        self._settle(feed_id)
        out = None if task.cancelled() or task.exception() is not None else task.result()
        if out is not None and out.kind == "database":
            self.resting[feed_id] = self.ctx.clock() + interval
        self.inflight[host] -= 1
        if not self.inflight[host]:
            del self.inflight[host]
        if out is not None:
            if self.keep_outcomes:
                self.outcomes.append(out)
            if self.on_outcome is not None:
                self.on_outcome(out)
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
        got = await ctx.db.claim_feeds(owner=leases.OWNER, now=ctx.clock(), lease=poll_lease(ctx), due=False,
                                       after_id=last, limit=n, default_interval=ctx.config.poll.interval)
        if got:
            last = got[-1].id
        return got

    return take


def due_feeds(ctx: pipeline.Context) -> Source:
    """Feeds due now, soonest first, skipping those another process holds and those held here (queued,
    running, written behind: not claimed again, a row write each); each leased here while polled."""

    async def take(known: set[int], n: int) -> list[Feed]:
        got = await ctx.db.claim_feeds(owner=leases.OWNER, now=ctx.clock(), lease=poll_lease(ctx),
                                       limit=n, default_interval=ctx.config.poll.interval, skip=known)
        return [f for f in got if f.id not in known][:n]

    return take


def poll_lease(ctx: pipeline.Context) -> float:
    """How long a feed stays claimed by its poll: the feed's fetch, then every new entry's
    page, a few at a time, each within the fetch and extract timeouts; generously bounded, as a
    poll that outlives its lease may be polled again by another process (harmless: entries are
    unique, and the second record finds them known)."""
    c = ctx.config
    return max(POLL_LEASE, 10 * (c.fetch.timeout + c.extract.timeout))


async def poll_all(ctx: pipeline.Context, feeds: list[Feed],
                   throttle: HostThrottle | None = None) -> list[pipeline.Outcome]:
    """Poll the given feeds once each, politely (concurrency, per host, throttled hosts)."""
    return await Dispatcher(ctx, from_list(feeds), throttle=throttle).run()
