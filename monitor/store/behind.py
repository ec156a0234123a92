"""Unchanged polls, written behind: one transaction for many (issue 16, goal G3).

Most polls change nothing but their feed's schedule (a 304, or the same body as last time).
Writing each on its own costs a round trip to the database thread and a commit per poll: in
the polling bench that was a third of what an unchanged poll cost the daemon beyond aiohttp's
floor. ``WriteBehind.save`` keeps such an update and returns at once; the updates waiting are
written together (``Store.save_polls``: one transaction, all or none) ``DELAY`` seconds after
the first of them, or as soon as ``MOST`` wait, or when someone needs them written (``flush``:
the end of a pass, a cluster poll job before it hands its feeds back, a stop).

What it keeps of a poll's guarantees:
- the feed's lease ends in the same UPDATE that writes its schedule, so it stays held until the
  batch commits; until then ``holds`` says so and the dispatcher does not start it again, though
  the database still calls it due (another process cannot take it: the lease is live);
- calls are queued on the one database thread in order, so whatever is asked of the database
  after a ``flush`` (a cluster job's ``hand_back``, the next claim) runs after that batch;
- a batch that fails (locked, full, read-only) loses no entry and no alert, as only schedule
  updates wait here: its feeds keep their leases and the old schedule, and are not polled here
  again within their interval (``holds``), as after any poll the database did not take;
- a crash loses at most the last ``DELAY`` seconds of schedule updates: those feeds' leases are
  freed as a dead owner's (``expire_leases``: due again one ``poll.min_interval`` on).
- a feed made due while its update waited (``monitor feeds poll``, the console's button) keeps
  that time: the batch does not overwrite a ``next_check_at`` set after the poll and before the
  batch (``Store.save_polls``). So only due feeds' polls may be written behind (the daemon's
  and a cluster's claims); ``monitor once`` polls every feed, due or not, and saves each at once.
Updates that raise ops notices or move the feed are not written behind (``plain``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from ..models import Feed, FeedUpdate
from .aio import AsyncStore
from .base import StoreError

log = logging.getLogger(__name__)
# Bigger batches share more of the pages they dirty (a feed's row, its feeds_due entry): SQLite's
# commit writes each page once. At 10,000 feeds answering 304, 1 s / 2,000 instead of 0.25 s / 500
# cut the database thread from ~20 to ~16 us a poll (issue 16, G3), and 5 s / 10,000 instead of
# 1 s / 2,000 the daemon's CPU a poll by 7 us more (unchanged_ab.py, 10,000 feeds, 5 rounds: 0.171
# -> 0.164 ms, lower in every round); the daemon's claims leave held feeds out (claim_feeds
# skip=, one JSON value past 500), so the longer wait costs them nothing, and a batch holding a
# feed due sooner is written sooner (``save``).
DELAY = 5.0  # seconds an update may wait for others to share its transaction
MOST = 10_000  # updates written at once at the most


def plain(feed: Feed, update: FeedUpdate) -> bool:
    """An update that may be written behind: it sets columns of its feed's row only."""
    return not update.notices and not (update.moved and update.moved != feed.url)


class WriteBehind:
    def __init__(self, db: AsyncStore, clock: Callable[[], float] = time.time, *,
                 delay: float = DELAY, most: int = MOST):
        self.db, self.clock, self.delay, self.most = db, clock, delay, most
        self.waiting: dict[int, tuple[Feed, FeedUpdate]] = {}  # feed id -> its update, not sent yet
        self.writing: dict[int, int] = {}  # feed id -> batches sent with it, not yet committed
        self.resting: dict[int, float] = {}  # feed id -> not polled before: its update was not taken
        self.written = self.failed = 0  # updates, for metrics and tests
        self._timer: asyncio.TimerHandle | None = None
        self._last: asyncio.Future[None] | None = None  # the newest batch sent

    def save(self, feed: Feed, update: FeedUpdate) -> None:
        """Keep a plain update to write with the others; returns at once. The batch is written
        ``delay`` seconds after its first update, or sooner: by half the time to the soonest
        next poll of a feed it holds (``holds`` keeps a feed from being polled until its update
        is written: a feed polled every second would otherwise wait for the batch)."""
        self.waiting[feed.id] = (feed, update)
        self.resting.pop(feed.id, None)
        if len(self.waiting) >= self.most:
            self.flush()
            return
        wait = self.delay
        due = update.next_check_at
        if isinstance(due, float | int):
            wait = min(wait, max(0.0, (due - self.clock()) / 2))
        loop = asyncio.get_running_loop()
        if self._timer is None or loop.time() + wait < self._timer.when():
            if self._timer is not None:
                self._timer.cancel()
            self._timer = loop.call_later(wait, self.flush)

    def holds(self, feed_id: int, now: float) -> bool:
        """Is this feed not to be polled now? Its update waits or is being written, or writing it
        failed less than its interval ago."""
        if feed_id in self.waiting or feed_id in self.writing:
            return True
        until = self.resting.get(feed_id)
        if until is None:
            return False
        if until > now:
            return True
        del self.resting[feed_id]
        return False

    def held(self, now: float) -> set[int]:
        """The feeds ``holds`` says are not to be polled now."""
        for feed_id in [i for i, until in self.resting.items() if until <= now]:
            del self.resting[feed_id]
        return {*self.waiting, *self.writing, *self.resting}

    def flush(self) -> asyncio.Future[None] | None:
        """Send every waiting update to the database now, in one transaction (queued on the
        database thread at once: what is asked of it after this call runs after the batch).
        The future of the newest batch sent, done when it is committed or failed (a failure is
        logged here, never raised), or None when nothing was ever sent."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self.waiting:
            return self._last
        batch, self.waiting = list(self.waiting.values()), {}
        for feed, _ in batch:
            self.writing[feed.id] = self.writing.get(feed.id, 0) + 1
        sent = self.db.submit("save_polls", batch, now=self.clock())
        sent.add_done_callback(lambda f: self._written(batch, f))
        self._last = sent
        return sent

    async def drain(self) -> None:
        """Write what waits and wait until every batch sent so far is committed or failed."""
        last = self.flush()
        if last is not None and not last.done():
            await asyncio.wait([last])  # batches end in order (one database thread): the last is enough

    def _written(self, batch: list[tuple[Feed, FeedUpdate]], sent: asyncio.Future[None]) -> None:
        for feed, _ in batch:
            left = self.writing.pop(feed.id, 1) - 1
            if left:
                self.writing[feed.id] = left
        error = None if sent.cancelled() else sent.exception()
        if error is None and not sent.cancelled():
            self.written += len(batch)
            return
        self.failed += len(batch)
        if not isinstance(error, StoreError):
            log.error("BUG while writing unchanged polls feeds=%d", len(batch), exc_info=error)
        now = self.clock()
        for feed, _ in batch:  # leased still, not due to us before its interval (as dispatch.resting)
            self.resting[feed.id] = max(self.resting.get(feed.id, 0.0), now + feed.interval)
        log.warning("unchanged polls not recorded feeds=%d reason=%r: each is polled again after its "
                    "interval", len(batch), str(error or "cancelled"))
