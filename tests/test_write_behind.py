"""Unchanged polls written behind (store/behind.py, issue 16 G3): their schedule updates wait to
share one transaction, their feeds stay leased and are not polled again until it commits, a
batch the database refuses loses nothing and polls nothing early, and a stop writes what waits.
Against the loopback feed server, the daemon's own pipeline and dispatcher, a real SQLite file
(locked by a second connection where the database must refuse)."""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import time
from contextlib import asynccontextmanager

import pytest
from conftest import rss
from test_polling import OLD, CountingPool, add, write

from monitor import daemon, dispatch, leases, pipeline
from monitor.fetch import Client, Limits
from monitor.models import Feed, FeedUpdate
from monitor.store import Store
from monitor.store.aio import AsyncStore
from monitor.store.behind import WriteBehind
from monitor.workers import Pool

NEWS = [{"title": f"Hafen {i} erweitert", "link": f"http://example.org/h{i}", "guid": f"h{i}"} for i in range(2)]


@pytest.fixture(scope="module")
def pool():
    p = Pool(1, preload=("monitor.parse",))
    yield p
    p.close()


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def context(cfg, pool, clock, *, delay: float = 3600.0, busy_timeout: float = 10.0):
    """The daemon's context with a write-behind that flushes only when asked (``delay``)."""
    store = Store(cfg.database, busy_timeout=busy_timeout)
    notifier = daemon.notifier_for(cfg)
    limits = Limits(timeout=cfg.fetch.timeout, concurrency=cfg.poll.concurrency, per_host=cfg.poll.per_host,
                    allow_private=tuple(cfg.fetch.allow_private))
    db = AsyncStore(store)
    behind = WriteBehind(db, clock, delay=delay)
    try:
        async with Client(limits) as http:
            yield pipeline.Context(cfg, db, http, CountingPool(pool), notifier,  # type: ignore[arg-type]
                                   daemon.load_rules(cfg, notifier), clock=clock, behind=behind)
    finally:
        await behind.drain()
        db.close()


def rows(ctx) -> dict[str, tuple]:
    """url -> (last_status, lease_owner, next_check_at), as committed."""
    return {r["url"]: (r["last_status"], r["lease_owner"], r["next_check_at"]) for r in ctx.db.store.feed_table()}


async def claim_and_poll(ctx) -> list[str]:
    """What the daemon does at a tick, one feed at a time: claim the due feeds, poll each."""
    got = await ctx.db.claim_feeds(owner=leases.OWNER, now=ctx.clock(), lease=dispatch.poll_lease(ctx),
                                   default_interval=ctx.config.poll.interval)
    return [(await pipeline.poll(ctx, f)).status for f in got]


def test_unchanged_polls_wait_leased_and_are_written_in_one_transaction(tmp_path, feed_server, pool):
    urls = [feed_server.add("/etag.xml", rss(OLD)), feed_server.add("/plain.xml", rss(OLD), etag=False)]
    clock = Clock()

    async def go():
        async with context(write(tmp_path), pool, clock) as ctx:
            add(ctx, *urls)
            assert await claim_and_poll(ctx) == ["baseline", "baseline"]  # recorded at once
            clock.now += 200  # past their interval (60 s, config of test_polling)
            calls = []
            ctx.db.store.save_polls = lambda polls, now, _f=ctx.db.store.save_polls: calls.append(len(polls)) or _f(
                polls, now=now)
            assert await claim_and_poll(ctx) == ["not-modified", "not-modified"]
            waiting = rows(ctx)
            held = [ctx.behind.holds(f.id, clock.now) for f in ctx.db.store.feeds()]
            # a tick now: the database still calls them due, the dispatcher starts neither
            requests = len(feed_server.log)
            d = dispatch.Dispatcher(ctx, dispatch.due_feeds(ctx))
            d.fill()
            await asyncio.sleep(0.5)  # its claim answered, and any poll it started under way
            started = len(d.tasks)
            await ctx.behind.drain()
            return waiting, held, started, len(feed_server.log) - requests, calls, rows(ctx)

    waiting, held, started, requested, calls, written = asyncio.run(go())
    assert {s for s, owner, _ in waiting.values()} == {"ok"}  # the first poll's, still leased
    assert {owner for _, owner, _ in waiting.values()} == {leases.OWNER}
    assert held == [True, True] and started == 0 and requested == 0
    assert calls == [2]  # both in one call: one transaction
    assert {(s, owner) for s, owner, _ in written.values()} == {("not-modified", None)}  # lease ended with it
    assert all(next_at > waiting[url][2] for url, (_, _, next_at) in written.items())



def test_a_batch_holding_a_feed_due_soon_is_written_by_half_the_time_to_it():
    """A feed polled every second must not wait the batch's 5 s: ``holds`` keeps it from being
    polled until its update is written, and it would be polled every 5 s. The batch goes by
    half the time to the soonest due feed it holds; one of far-off feeds waits its ``delay``."""
    clock = Clock()
    sent: list[tuple[float, list[int]]] = []

    class Database:
        def submit(self, name: str, batch: list, now: float) -> asyncio.Future[None]:
            sent.append((time.monotonic(), [f.id for f, _ in batch]))
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done

    async def go() -> tuple[float, int]:
        behind = WriteBehind(Database(), clock, delay=5.0)  # type: ignore[arg-type]
        behind.save(Feed(id=1, url="https://a.example/1"), FeedUpdate(next_check_at=clock.now + 60))
        await asyncio.sleep(0.8)
        far = len(sent)  # none yet: its feed is due in 60 s, the batch may wait 5 s
        start = time.monotonic()
        behind.save(Feed(id=2, url="https://a.example/2"), FeedUpdate(next_check_at=clock.now + 1))
        await asyncio.sleep(1.0)
        return start, far

    start, far = asyncio.run(go())
    assert far == 0
    assert [ids for _, ids in sent] == [[1, 2]]  # one batch, both in it
    assert sent[0][0] - start < 0.9  # by 0.5 s, not 5 s (a loaded machine may add some)

def test_a_batch_the_database_refuses_loses_no_entry_and_polls_nothing_early(tmp_path, feed_server, pool):
    """A batch that fails (the database locked past its busy timeout): its feeds keep their
    lease and old schedule, are not polled again here within their interval, and are after
    it; a changed feed's entries (recorded at once, not behind) are stored meanwhile."""
    quiet = feed_server.add("/quiet.xml", rss(OLD))
    busy = feed_server.add("/busy.xml", rss(OLD))
    clock = Clock()

    def quiet_requests() -> int:
        return sum(path == "/quiet.xml" for path, _ in feed_server.log)

    async def go():
        async with context(write(tmp_path), pool, clock, busy_timeout=0.2) as ctx:
            add(ctx, quiet, busy)
            await claim_and_poll(ctx)
            clock.now += 200
            feed_server.add("/busy.xml", rss(OLD + NEWS))  # two new entries
            assert sorted(await claim_and_poll(ctx)) == ["not-modified", "ok"]
            blocker = sqlite3.connect(str(ctx.config.database), isolation_level=None)
            blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            try:
                await ctx.behind.drain()
            finally:
                blocker.execute("ROLLBACK")
                blocker.close()
            failed, after_failure = ctx.behind.failed, rows(ctx)
            entries = ctx.db.store.count("entries")  # 3 of quiet's baseline, 3 + 2 of busy's
            requests = quiet_requests()
            clock.now += 30  # within the interval: due in the database, leased to us, not polled
            early = await dispatch.Dispatcher(ctx, dispatch.due_feeds(ctx)).run()
            asked_early = quiet_requests() - requests
            clock.now += 60  # the interval has passed: polled again, and recorded this time
            later = await dispatch.Dispatcher(ctx, dispatch.due_feeds(ctx)).run()
            return failed, after_failure, entries, early, asked_early, later, rows(ctx)

    failed, after_failure, entries, early, asked_early, later, final = asyncio.run(go())
    assert failed == 1
    assert after_failure[quiet][:2] == ("ok", leases.OWNER)  # not recorded, still ours
    assert after_failure[busy][:2] == ("ok", None)
    assert entries == 8  # the changed feed's new entries were stored at once
    assert [o for o in early if o.feed == quiet] == [] and asked_early == 0
    assert [o.status for o in later if o.feed == quiet] == ["not-modified"]
    assert final[quiet][:2] == ("not-modified", None)


def test_a_stop_writes_the_updates_still_waiting(tmp_path, feed_server, pool):
    """``daemon.runtime`` (the daemon, ``monitor once``) writes what waits before it closes the
    database, though the batch's time has not come."""
    url = feed_server.add("/etag.xml", rss(OLD))
    cfg = write(tmp_path)

    async def go():
        async with daemon.runtime(cfg, daemon.load_rules(cfg, daemon.notifier_for(cfg))) as ctx:
            ctx.behind.delay = 3600.0
            await ctx.db.add_feeds([(url, None, None, ())], time.time())
            first = await pipeline.poll(ctx, (await ctx.db.feeds())[0])
            second = await pipeline.poll(ctx, (await ctx.db.feeds())[0])
            waiting = len(ctx.behind.waiting)
        return first.status, second.status, waiting

    assert asyncio.run(go()) == ("baseline", "not-modified", 1)
    store = Store(cfg.database)
    try:
        [r] = store.feed_table()
    finally:
        store.close()
    assert (r["last_status"], r["lease_owner"]) == ("not-modified", None)


def test_a_cluster_poll_job_returns_after_its_feeds_updates_are_written(tmp_path, feed_server, pool):
    """``poll_these`` (a cluster node's poll job) returns once its unchanged polls are committed,
    so the job's ``hand_back`` never runs before them."""
    urls = [feed_server.add(f"/j{i}.xml", rss(OLD)) for i in range(3)]
    clock = Clock()

    async def go():
        async with context(write(tmp_path), pool, clock) as ctx:
            add(ctx, *urls)
            d = dispatch.Dispatcher(ctx, dispatch.from_list([]))
            await d.poll_these(await ctx.db.feeds())
            clock.now += 200
            started = await d.poll_these(await ctx.db.feeds())
            return len(started), ctx.behind.waiting, ctx.behind.writing, rows(ctx)

    started, waiting, writing, written = asyncio.run(go())
    assert started == 3 and not waiting and not writing
    assert {s for s, _, _ in written.values()} == {"not-modified"}


def test_a_feed_made_due_while_its_update_waits_stays_due(tmp_path, feed_server, pool):
    """``monitor feeds poll`` (store ``poll_now``, another process) given after an unchanged poll
    and before its batch is written: the batch writes the poll but keeps the request's time."""
    urls = [feed_server.add("/asked.xml", rss(OLD)), feed_server.add("/other.xml", rss(OLD))]
    clock = Clock()

    async def go():
        async with context(write(tmp_path), pool, clock) as ctx:
            add(ctx, *urls)
            await claim_and_poll(ctx)
            clock.now += 200
            assert await claim_and_poll(ctx) == ["not-modified", "not-modified"]
            other = Store(ctx.config.database)  # the command line's own connection
            try:
                asked = clock.now + 0.5  # after the poll (the test's clock runs ahead of time.time)
                assert other.poll_now(urls[0], asked) == urls[0]
            finally:
                other.close()
            clock.now += 1  # the batch is written after the request
            await ctx.behind.drain()
            return asked, rows(ctx)

    asked, written = asyncio.run(go())
    assert written[urls[0]] == ("not-modified", None, asked)  # polled, released, and due as asked
    assert written[urls[1]][:2] == ("not-modified", None) and written[urls[1]][2] > asked + 10  # its schedule


def test_the_runtime_freezes_what_start_up_built_and_thaws_it_at_exit(tmp_path):
    """``daemon.runtime`` moves the start-up objects (config, rules, clients) out of the
    collector's way while polls run (gc.freeze: a full collection scans only what polling made,
    issue 16 G3), and gives them back when it ends, so a process that goes on collects them."""
    cfg = write(tmp_path)

    async def go():
        async with daemon.runtime(cfg, daemon.load_rules(cfg, daemon.notifier_for(cfg))) as ctx:
            tracked = {id(o) for o in gc.get_objects()}  # the frozen generation is not listed
            return (gc.get_freeze_count(), id(ctx.config) in tracked, id(ctx.config.poll) in tracked,
                    gc.get_threshold())

    before = gc.get_threshold()
    frozen, config_tracked, poll_tracked, during = asyncio.run(go())
    assert frozen > 10_000
    assert not config_tracked and not poll_tracked
    assert during == (max(before[0], daemon.context.YOUNG), *before[1:])
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == before
