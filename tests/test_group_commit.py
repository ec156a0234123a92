"""Polls recorded as a group (issue 16, G1): ``Store.record_many`` writes several polls in one
transaction, and the database thread (store/aio.py ``AsyncStore.record``) groups the polls that
queued while it wrote the last group. What each poll's caller sees must not change: its own
answer, its own failure, and all or none of its poll. On a real SQLite file (a second connection
holds the write lock where the database must make the thread wait or refuse), and
``record_many`` on PostgreSQL too (``database``)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import psycopg
import pytest
from test_store import A, B, by_url, counts, entry, match, raw

from monitor.models import Feed, FeedUpdate
from monitor.store import Store, StoreError
from monitor.store.aio import AsyncStore

C = "https://c.example/atom"


def poll(feed: Feed, n: int, *, now: float = 1000.0, bad: bool = False) -> tuple[tuple, dict]:
    """One poll of ``feed`` as ``record``'s (args, kwargs): one new entry whose story alerts on
    ``n`` channels (so the answer, the alerts queued, tells the polls apart); ``bad``: a channel
    that cannot be bound, a bug at its last statement."""
    e = entry(f"guid:{feed.id}-{n}", f"https://{feed.id}.example/{n}")
    channels = tuple(f"ch{i}" for i in range(n)) + ((object(),) if bad else ())
    update = FeedUpdate(last_ok_at=now, last_status="ok", error_count=0, next_check_at=now + 900,
                        baselined_at=now, etag=f'"{n}"')
    return (feed,), {"now": now, "update": update, "new": [(e, None, [match(f"r{n}", channels)])],
                     "baseline": False}


def three_feeds(store: Store) -> list[Feed]:
    store.sync_feeds([(A, "Feed A", None), (B, "Feed B", None), (C, "Feed C", None)], now=100.0)
    return [by_url(store)[u] for u in (A, B, C)]


def commits(store: Store) -> list[str]:
    """The transaction statements the store's connection runs from now on."""
    seen: list[str] = []
    store.db.conn.set_trace_callback(
        lambda sql: seen.append(sql) if sql.split()[0] in ("BEGIN", "COMMIT", "ROLLBACK") else None)
    return seen


@pytest.fixture
def sqlite_store(tmp_path):
    s = Store(tmp_path / "monitor.db")
    yield s
    s.close()


def test_polls_recorded_together_are_stored_as_each_would_be_alone(database):
    store = Store(database)
    try:
        a, b, c = three_feeds(store)
        assert store.record_many([poll(a, 1), poll(b, 2), poll(c, 3)]) == [1, 2, 3]
        assert counts(database) == {"articles": 0, "entries": 3, "feeds": 3, "matches": 3, "outbox": 6}
        assert raw(database, "SELECT url, etag, last_status FROM feeds ORDER BY url") == [
            (A, '"1"', "ok"), (B, '"2"', "ok"), (C, '"3"', "ok")]
        assert raw(database, "SELECT m.rule_id, COUNT(o.id) FROM matches m JOIN outbox o ON o.match_id = m.id "
                             "GROUP BY m.rule_id ORDER BY m.rule_id") == [("r1", 1), ("r2", 2), ("r3", 3)]
    finally:
        store.close()


def test_a_group_is_one_transaction_and_one_insert_of_entries(sqlite_store):
    """One statement for every poll's entries: FTS5 writes an index segment at each."""
    a, b, c = three_feeds(sqlite_store)
    statements = commits(sqlite_store)
    inserts: list[str] = []
    sqlite_store.db.conn.set_trace_callback(
        lambda sql: statements.append(sql) if sql.split()[0] in ("BEGIN", "COMMIT", "ROLLBACK")
        else inserts.append(sql) if sql.startswith("INSERT INTO entries") else None)
    sqlite_store.record_many([poll(a, 1), poll(b, 2), poll(c, 3)])
    assert statements == ["BEGIN IMMEDIATE", "COMMIT"]
    assert len(set(inserts)) == 1  # the trace repeats a statement's text for each trigger step it runs


def test_the_same_uid_in_two_feeds_of_a_group_is_two_entries_each_with_its_own_match(database):
    store = Store(database)
    try:
        a, b, _ = three_feeds(store)
        e = entry("guid:shared", "https://news.example/shared")
        story_b = entry("guid:shared", "https://other.example/shared")
        polls = [((f,), {"now": 1000.0, "update": FeedUpdate(last_ok_at=1000.0, last_status="ok", error_count=0,
                                                             next_check_at=1900.0, baselined_at=1000.0),
                         "new": [(x, None, [match(rule)])], "baseline": False, "seen": [x.uid]})
                 for f, x, rule in ((a, e, "ra"), (b, story_b, "rb"))]
        assert store.record_many(polls) == [1, 1]
        assert raw(database, "SELECT f.url, e.uid, m.rule_id FROM matches m JOIN entries e ON e.id = m.entry_id "
                             "JOIN feeds f ON f.id = e.feed_id ORDER BY f.url") == [
            (A, "guid:shared", "ra"), (B, "guid:shared", "rb")]
    finally:
        store.close()


def test_a_bug_in_one_poll_of_a_group_fails_that_poll_alone(database):
    store = Store(database)
    try:
        a, b, c = three_feeds(store)
        answers = store.record_many([poll(a, 1), poll(b, 2, bad=True), poll(c, 3)])
        assert answers[0] == 1 and answers[2] == 3
        assert isinstance(answers[1], (sqlite3.ProgrammingError, psycopg.ProgrammingError))
        assert raw(database, "SELECT rule_id FROM matches ORDER BY rule_id") == [("r1",), ("r3",)]
        assert raw(database, "SELECT url FROM feeds WHERE etag IS NOT NULL ORDER BY url") == [(A,), (C,)]
        assert store.unseen(b, [entry(f"guid:{b.id}-2")]) == [entry(f"guid:{b.id}-2")]  # polled again: still new
    finally:
        store.close()


def test_a_locked_database_fails_the_whole_group_and_writes_none_of_it(tmp_path):
    store = Store(tmp_path / "monitor.db", busy_timeout=0.2)
    other = sqlite3.connect(str(tmp_path / "monitor.db"), isolation_level=None)
    try:
        a, b, c = three_feeds(store)
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreError, match="cannot write: database is locked"):
            store.record_many([poll(a, 1), poll(b, 2), poll(c, 3)])
        other.execute("ROLLBACK")
        assert counts(tmp_path / "monitor.db") == {"articles": 0, "entries": 0, "feeds": 3, "matches": 0,
                                                   "outbox": 0}
        assert store.record_many([poll(a, 1), poll(b, 2)]) == [1, 2]  # nothing left open
    finally:
        other.close()
        store.close()


def locked_for(path, seconds: float) -> threading.Timer:
    """A second connection takes the write lock now and gives it up after ``seconds``."""
    other = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")

    def release() -> None:
        other.execute("COMMIT")
        other.close()
    timer = threading.Timer(seconds, release)
    timer.start()
    return timer


def test_polls_that_queue_while_the_thread_writes_share_the_next_commit(tmp_path):
    """The first poll goes at once (alone) and waits on the lock; the five that queue behind it
    are written together when it is done; each caller gets its own poll's alerts."""
    async def go() -> None:
        store = Store(tmp_path / "monitor.db")
        db = AsyncStore(store)
        try:
            store.sync_feeds([(f"https://f{i}.example/feed", f"Feed {i}", None) for i in range(6)], now=100.0)
            feeds = sorted(store.feeds(), key=lambda f: f.url)
            statements = commits(store)
            timer = locked_for(tmp_path / "monitor.db", 0.3)
            calls = [asyncio.create_task(db.record(*args, **kw))
                     for args, kw in (poll(f, i + 1) for i, f in enumerate(feeds))]
            answers = await asyncio.gather(*calls)
            timer.join()
            assert answers == [1, 2, 3, 4, 5, 6]
            assert statements == ["BEGIN IMMEDIATE", "COMMIT", "BEGIN IMMEDIATE", "COMMIT"]
            assert counts(tmp_path / "monitor.db")["outbox"] == 21
        finally:
            db.close()

    asyncio.run(go())


def test_a_failing_poll_in_a_group_fails_its_own_caller_only(tmp_path):
    async def go() -> None:
        store = Store(tmp_path / "monitor.db")
        db = AsyncStore(store)
        try:
            a, b, c = three_feeds(store)
            timer = locked_for(tmp_path / "monitor.db", 0.3)
            first = asyncio.create_task(db.record(*poll(a, 1)[0], **poll(a, 1)[1]))  # alone, waits for the lock
            args, kw = poll(b, 2, bad=True)
            second = asyncio.create_task(db.record(*args, **kw))
            args, kw = poll(c, 3)
            third = asyncio.create_task(db.record(*args, **kw))
            done = await asyncio.gather(first, second, third, return_exceptions=True)
            timer.join()
            assert done[0] == 1 and done[2] == 3
            assert isinstance(done[1], sqlite3.ProgrammingError)
            assert db.problem is None  # a bug, not the database failing
        finally:
            db.close()

    asyncio.run(go())


def test_a_locked_database_fails_every_poll_of_the_group_with_its_own_error(tmp_path):
    async def go() -> None:
        store = Store(tmp_path / "monitor.db", busy_timeout=0.2)
        db = AsyncStore(store)
        other = sqlite3.connect(str(tmp_path / "monitor.db"), isolation_level=None)
        try:
            feeds = three_feeds(store)
            other.execute("BEGIN IMMEDIATE")
            done = await asyncio.gather(*(db.record(*args, **kw) for args, kw in (poll(f, 1) for f in feeds)),
                                        return_exceptions=True)
            assert all(isinstance(e, StoreError) and "database is locked" in str(e) for e in done)
            assert len({id(e) for e in done}) == 3  # each caller's own exception
            assert db.problem is not None and db.problem.kind == "locked"
            other.execute("ROLLBACK")
            assert await db.record(*poll(feeds[0], 2)[0], **poll(feeds[0], 2)[1]) == 2
        finally:
            other.close()
            db.close()

    asyncio.run(go())


def test_a_record_after_the_store_closed_fails_as_the_database_unavailable(tmp_path):
    async def go() -> None:
        store = Store(tmp_path / "monitor.db")
        db = AsyncStore(store)
        a, _, _ = three_feeds(store)
        db.close()
        args, kw = poll(a, 1)
        with pytest.raises(StoreError, match="database closed"):
            await db.record(*args, **kw)

    asyncio.run(go())


def test_a_bug_handing_out_a_groups_answers_fails_its_callers_and_not_every_later_record(tmp_path, caplog):
    async def go() -> None:
        store = Store(tmp_path / "monitor.db")
        db = AsyncStore(store)
        try:
            a, b, _ = three_feeds(store)
            real = store.record_many
            store.record_many = lambda polls: []  # type: ignore[method-assign]  # answers for none of them
            args, kw = poll(a, 1)
            with pytest.raises(ValueError):
                await asyncio.wait_for(db.record(*args, **kw), 10)
            store.record_many = real  # type: ignore[method-assign]
            args, kw = poll(b, 2)
            assert await asyncio.wait_for(db.record(*args, **kw), 10) == 2
        finally:
            db.close()

    asyncio.run(go())
    assert "BUG handing out a group's records" in caplog.text


def test_polls_waiting_for_a_group_are_written_when_the_store_closes(tmp_path):
    """A stop closes the store while polls wait behind the group being written: they are
    written before the connection closes, not dropped."""
    async def go() -> list:
        store = Store(tmp_path / "monitor.db")
        db = AsyncStore(store)
        feeds = three_feeds(store)
        timer = locked_for(tmp_path / "monitor.db", 0.3)
        calls = [asyncio.create_task(db.record(*args, **kw)) for args, kw in (poll(f, 1) for f in feeds)]
        await asyncio.sleep(0)  # each has queued: the first is on the thread, the others wait
        db.close()
        timer.join()
        return await asyncio.gather(*calls, return_exceptions=True)

    assert asyncio.run(go()) == [1, 1, 1]
    assert counts(tmp_path / "monitor.db")["entries"] == 3


def test_a_small_group_waits_a_moment_for_polls_that_finish_just_after(tmp_path, monkeypatch):
    """Fewer than LINGER_BELOW polls waiting: the group waits LINGER for others (0.5 s here),
    and a poll that finishes meanwhile shares its commit."""
    from monitor.store import aio

    monkeypatch.setattr(aio, "LINGER", 0.5)

    async def go() -> tuple[list, list]:
        store = Store(tmp_path / "monitor.db")
        db = AsyncStore(store)
        try:
            a, b, c = three_feeds(store)
            statements = commits(store)
            timer = locked_for(tmp_path / "monitor.db", 0.2)
            first = asyncio.create_task(db.record(*poll(a, 1)[0], **poll(a, 1)[1]))  # alone, waits for the lock
            second = asyncio.create_task(db.record(*poll(b, 2)[0], **poll(b, 2)[1]))  # waits for the first
            await first
            third = await db.record(*poll(c, 3)[0], **poll(c, 3)[1])  # within the second's wait
            timer.join()
            return [await second, third], statements
        finally:
            db.close()

    answers, statements = asyncio.run(go())
    assert answers == [2, 3]
    assert statements == ["BEGIN IMMEDIATE", "COMMIT", "BEGIN IMMEDIATE", "COMMIT"]
