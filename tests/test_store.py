"""monitor.store.Store on a real SQLite file and on a real PostgreSQL server (the ``database``
fixture, conftest.py: every test that takes it runs on both): migrations, feed schedule state,
what is new, the one-transaction ``record`` and the alert outbox; WAL and SQLite's locks on
SQLite alone (``db_path``)."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
import time
from pathlib import Path

import psycopg
import pytest
from conftest import sql_rows

from monitor.models import Article, Entry, Feed, FeedUpdate, Match, Notice
from monitor.store import MIGRATIONS, Store, StoreError

A = "https://a.example/feed.xml"
B = "https://b.example/rss"
C = "https://c.example/atom"
TABLES = {"feeds", "entries", "articles", "matches", "outbox"}


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "monitor.db"


@pytest.fixture
def store(database: str):
    s = Store(database)
    yield s
    s.close()


@pytest.fixture
def sqlite_store(db_path: Path):
    s = Store(db_path)
    yield s
    s.close()


def raw(db: Path | str, sql: str, params: tuple = ()) -> list[tuple]:
    """Read with a connection of our own: what is committed, not what the writer sees."""
    return sql_rows(str(db), sql, params)


def counts(path: Path) -> dict[str, int]:
    return {t: raw(path, f"SELECT COUNT(*) FROM {t}")[0][0] for t in sorted(TABLES)}


def entry(uid: str, link: str | None = None, title: str = "Kämpfe im Gebiet Kursk",
          published: str | None = "2026-11-02T07:15:00Z") -> Entry:
    return Entry(uid=uid, guid=uid.removeprefix("guid:"), title=title, link=link,
                 summary=f"Zusammenfassung zu {uid}", content="", published=published,
                 content_hash=f"h-{uid}")


def article(e: Entry, **kw: object) -> Article:
    fields = dict(title=e.title, text=f"Volltext von {e.uid}", summary=e.summary, url=e.link,
                  language="de", author="Test Autorin", date="2026-11-02", source="page")
    fields.update(kw)
    return Article(**fields)  # type: ignore[arg-type]


def match(rule_id: str, channels: tuple = ("mail",), title: str | None = None) -> Match:
    return Match(rule_id=rule_id, rule_title=title if title is not None else f"Rule {rule_id}",
                 terms=("Kursk", "Курск"), field="title", snippet="… im Gebiet Kursk …",
                 channels=channels)


def record(store: Store, feed: Feed, items, *, now: float = 1000.0, baseline: bool = False,
           validators: dict | None = None, feed_title: str | None = None) -> int:
    update = FeedUpdate(last_ok_at=now, last_status="ok", error_count=0, next_check_at=now + 900, baselined_at=now,
                        **(validators or {"etag": None, "last_modified": None, "body_hash": None}))
    return store.record(feed, now=now, update=update, feed_title=feed_title, new=items, baseline=baseline)


def polled(store: Store, feed: Feed, next_at: float, error: tuple[str, str] | None = None) -> None:
    """Store a poll without entries: unchanged, or failed with (kind, message)."""
    kind, message = error or (None, None)
    store.save_poll(feed, FeedUpdate(last_polled_at=1000.0, last_status="error" if error else "not-modified",
                                     last_error_kind=kind, last_error=message, next_check_at=next_at,
                                     error_count=feed.error_count + 1 if error else 0), now=1000.0)


def by_url(store: Store) -> dict[str, Feed]:
    return {f.url: f for f in store.feeds()}


def two_feeds(store: Store) -> tuple[Feed, Feed]:
    store.sync_feeds([(A, "Feed A", None), (B, "", 600)], now=100.0)
    feeds = by_url(store)
    return feeds[A], feeds[B]


# -- schema ---------------------------------------------------------------------------------

def test_fresh_database_is_migrated_to_the_latest_version(sqlite_store, db_path):
    assert sqlite_store.version == len(MIGRATIONS)
    assert raw(db_path, "PRAGMA user_version") == [(len(MIGRATIONS),)]
    tables = {r[0] for r in raw(db_path, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert TABLES <= tables


def test_full_text_index_merges_16_segments_at_a_time(sqlite_store, db_path):
    """Migration 22 (issue 16, G1): FTS5's automerge at its maximum, kept in the index's config."""
    assert ("automerge", 16) in raw(db_path, "SELECT k, v FROM search_fts_config")


def test_reopening_is_a_no_op_and_keeps_data(database):
    first = Store(database)
    first.sync_feeds([(A, "Feed A", None)], now=1.0)
    first.close()

    again = Store(database)  # would fail on CREATE TABLE if the migration ran twice
    try:
        assert again.version == len(MIGRATIONS)
        assert [f.url for f in again.feeds()] == [A]
    finally:
        again.close()


def test_database_newer_than_the_program_is_refused(db_path):
    db_path.parent.mkdir(parents=True)
    con = sqlite3.connect(str(db_path))
    con.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    con.close()

    with pytest.raises(StoreError, match="newer than this program"):
        Store(db_path)

    # Refused without touching it: no tables created, version unchanged.
    assert raw(db_path, "PRAGMA user_version") == [(len(MIGRATIONS) + 1,)]
    assert raw(db_path, "SELECT name FROM sqlite_master WHERE type='table'") == []


def test_unopenable_path_is_store_error(tmp_path):
    (tmp_path / "a-file").write_text("not a directory")

    with pytest.raises(StoreError, match="cannot open database"):
        Store(tmp_path / "a-file" / "monitor.db")


def test_the_page_cache_holds_the_feeds_of_a_large_install(sqlite_store):
    """8 MiB, not SQLite's 2 (issue 16, G3): the feeds table and its indexes at 10,000 feeds."""
    assert sqlite_store.db.execute("PRAGMA cache_size").fetchone()[0] == -8192


def test_wal_mode_is_on(sqlite_store, db_path):
    store = sqlite_store
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # WAL is a property of the file: another connection sees it too.
    assert raw(db_path, "PRAGMA journal_mode") == [("wal",)]
    store.sync_feeds([(A, "Feed A", None)], now=1.0)
    assert db_path.with_name(db_path.name + "-wal").exists()


# -- feeds ----------------------------------------------------------------------------------

def test_sync_feeds_inserts_config_feeds(store):
    store.sync_feeds([(A, "Feed A", None), (B, "", 600)], now=100.0)

    feeds = by_url(store)
    assert set(feeds) == {A, B}
    assert feeds[A].title == "Feed A" and feeds[A].interval == 900
    assert feeds[B].title is None and feeds[B].interval == 600
    assert not feeds[A].baselined and feeds[A].error_count == 0
    assert store.feeds(default_interval=60)[0].interval == 60


def test_resync_keeps_schedule_state(store, database):
    a, b = two_feeds(store)
    record(store, a, [], now=1000.0, validators={"etag": '"v1"', "last_modified": "Mon",
                                                 "body_hash": "abc"})
    polled(store, b, 5000.0, ("timeout", "no answer"))

    store.sync_feeds([(A, "Feed A renamed", 300), (B, "", 600)], now=2000.0)

    feeds = by_url(store)
    assert feeds[A].etag == '"v1"' and feeds[A].last_modified == "Mon"
    assert feeds[A].body_hash == "abc" and feeds[A].baselined
    assert feeds[A].title == "Feed A renamed" and feeds[A].interval == 300
    assert feeds[B].error_count == 1
    assert raw(database, "SELECT next_check_at, last_error_kind FROM feeds WHERE url = ?",
               (B,)) == [(5000.0, "timeout")]
    assert raw(database, "SELECT next_check_at, created_at FROM feeds WHERE url = ?",
               (A,)) == [(1900.0, 100.0)]


def test_feed_dropped_from_config_becomes_inactive_and_keeps_its_entries(store, database):
    a, b = two_feeds(store)
    record(store, b, [(entry("guid:b-1", "https://b.example/1"), None, [])])

    store.sync_feeds([(A, "Feed A", None)], now=2000.0)

    assert [f.url for f in store.feeds()] == [A]
    assert [f.url for f in store.feeds(due_at=10**12)] == [A]
    table = {r["url"]: r for r in store.feed_table()}
    assert table[B]["active"] == 0 and table[B]["entries"] == 1
    assert counts(database)["entries"] == 1

    store.sync_feeds([(A, "Feed A", None), (B, "", 600)], now=3000.0)  # back in the config
    assert store.unseen(by_url(store)[B], [entry("guid:b-1")]) == []


def test_empty_config_deactivates_every_config_feed(store):
    two_feeds(store)

    store.sync_feeds([], now=2000.0)

    assert store.feeds() == []


def test_feeds_due_at_respects_next_check_at(store):
    a, b = two_feeds(store)
    store.sync_feeds([(A, "Feed A", None), (B, "", 600), (C, "Feed C", None)], now=100.0)
    c = by_url(store)[C]
    polled(store, a, 2000.0)
    polled(store, b, 1500.0)
    polled(store, c, 1700.0, ("dns", "cannot resolve"))

    assert store.feeds(due_at=1499.9) == []
    assert [f.url for f in store.feeds(due_at=1500.0)] == [B]
    assert [f.url for f in store.feeds(due_at=2000.0)] == [B, C, A]  # soonest first
    assert len(store.feeds()) == 3


def test_save_poll_writes_what_the_update_sets_keeps_the_rest_and_queues_its_notices(store, database):
    a, _ = two_feeds(store)
    record(store, a, [], now=1000.0, validators={"etag": '"v1"', "last_modified": "Mon", "body_hash": "abc"})
    polled(store, a, 5000.0, ("timeout", "no answer"))
    failing = by_url(store)[A]
    update = FeedUpdate(last_polled_at=2000.0, last_status="error", last_error_kind="http-410", error_count=2,
                        gone_at=2000.0, alerted_failing=True, next_check_at=9000.0, etag=None,
                        notices=(Notice("gone", "ops", "Feed gone: Feed A", "410"),))

    store.save_poll(failing, update, now=2000.0)

    assert raw(database, "SELECT last_error_kind, last_error, error_count, gone_at, alerted_failing, next_check_at, "
                        "etag, last_modified, body_hash, last_ok_at FROM feeds WHERE url = ?", (A,)) == [
        ("http-410", "no answer", 2, 2000.0, 1, 9000.0, None, "Mon", "abc", 1000.0)]  # None clears, KEEP keeps
    assert raw(database, "SELECT kind, channel, title, created_at FROM notices") == [
        ("gone", "ops", "Feed gone: Feed A", 2000.0)]
    store.save_poll(failing, FeedUpdate(), now=3000.0)  # nothing to write: nothing written
    assert raw(database, "SELECT next_check_at FROM feeds WHERE url = ?", (A,)) == [(9000.0,)]


def test_save_polls_writes_many_polls_in_one_transaction_and_ends_their_leases(store, database):
    """The write-behind of unchanged polls (store/behind.py): each update as save_poll writes
    it, its feed's lease ended in the same UPDATE; one that raises a notice goes with them."""
    two_feeds(store)
    a, b = store.claim_feeds(owner="host:1:a", now=1000.0, lease=900.0)
    assert raw(database, "SELECT lease_owner FROM feeds ORDER BY id") == [("host:1:a",), ("host:1:a",)]
    recovered = dataclasses.replace(b, alerted_failing=True)
    store.save_polls([
        (a, FeedUpdate(last_polled_at=1000.0, last_status="not-modified", error_count=0, next_check_at=1900.0)),
        (recovered, FeedUpdate(last_polled_at=1000.0, last_status="not-modified", alerted_failing=False,
                               next_check_at=1600.0, notices=(Notice("recovered", "ops", "Feed recovered", "ok"),))),
    ], now=1000.0)

    assert raw(database, "SELECT url, last_status, next_check_at, lease_owner, lease_until FROM feeds ORDER BY id") == [
        (A, "not-modified", 1900.0, None, None), (B, "not-modified", 1600.0, None, None)]
    assert raw(database, "SELECT kind, channel FROM notices") == [("recovered", "ops")]
    store.save_polls([], now=2000.0)  # nothing to write: no transaction


def test_unchanged_polls_written_together_store_what_each_writes_alone(store, database):
    """save_polls writes the common 304 update with a statement of its own (issue 16, G3): the
    rows must hold what save_poll writes for the same update, a past failure cleared included,
    and a feed made due while the update waited keeps that time."""
    from monitor import health
    two_feeds(store)
    a, b = store.claim_feeds(owner="host:1:a", now=1000.0, lease=900.0)
    store.save_poll(a, health.decide(a, health.Failed("timeout", "slow"), 1000.0, health.Settings()), now=1000.0)
    a, b = sorted(store.claim_feeds(owner="host:1:a", now=90000.0, lease=900.0), key=lambda f: f.id)
    assert a.error_count == 1 and a.failing_since == 1000.0
    ups = [(f, health.decide(f, health.Unchanged({}), 90000.0, health.Settings())) for f in (a, b)]
    assert not any(u.notices for _, u in ups)
    store.poll_now(B, 90001.0)  # made due after the poll, before the batch: kept
    store.save_polls(ups, now=90002.0)
    cols = ("last_polled_at, last_ok_at, last_status, last_error_kind, last_error, error_count, failing_since, "
            "gone_at, alerted_failing, lease_owner, lease_until")
    want = (90000.0, 90000.0, "not-modified", None, None, 0, None, None, 0, None, None)
    assert raw(database, f"SELECT {cols} FROM feeds ORDER BY id") == [want, want]
    assert raw(database, "SELECT next_check_at FROM feeds ORDER BY id") == [(ups[0][1].next_check_at,), (90001.0,)]


def test_feeds_are_read_as_the_row_says(store, database):
    """``feeds`` reads its columns by position (issue 16, G3): each Feed field from its column."""
    from monitor.store.feed_rows import feed_of
    two_feeds(store)
    store.db.execute("UPDATE feeds SET etag = 'e', last_modified = 'lm', body_hash = 'h', error_count = 2, "
                     "baselined_at = 5, tags = '[\"x\"]', cadence_s = 60, last_new_at = 7, failing_since = 8, "
                     "gone_at = 9, alerted_failing = 1 WHERE url = ?", [A])
    rows = list(store.db.query("SELECT * FROM feeds WHERE active = 1 ORDER BY next_check_at, id"))
    assert store.feeds(default_interval=300) == [feed_of(r, 300) for r in rows]
    # built without Feed's __init__: the same fields, nothing more (host: the row's, as feed_of's)
    assert [vars(f) for f in store.feeds(default_interval=300)] == [vars(feed_of(r, 300)) for r in rows]
    assert store.feeds(default_interval=300)[0] == Feed(
        id=rows[0]["id"], url=A, title="Feed A", etag="e", last_modified="lm", body_hash="h", interval=300.0,
        error_count=2, baselined=True, source_url=A, tags=("x",), pinned=False, cadence=60.0, last_new_at=7.0,
        failing_since=8.0, gone=True, alerted_failing=True)


# -- entries --------------------------------------------------------------------------------

def test_unseen_filters_known_uids_and_dedups_the_batch(store):
    a, b = two_feeds(store)
    e1, e2, e3, e4 = (entry(f"guid:a-{i}", f"https://a.example/{i}") for i in range(1, 5))
    record(store, a, [(e1, None, []), (e2, None, [])])

    assert store.unseen(a, [e2, e3, e4, e3, e1, e4]) == [e3, e4]
    assert store.unseen(a, []) == []
    # Known is per feed: the same uid in another feed is new there.
    assert store.unseen(b, [e1, e1]) == [e1]


def test_a_first_poll_is_sorted_without_the_database_and_record_still_skips_what_is_stored(store, database):
    """``distinct`` (the pipeline's first poll of a feed, on the event loop): the batch is only
    deduplicated, as ``sort_entries`` would for a feed with nothing stored; were the feed's
    entries stored meanwhile, ``record`` stores each of them once all the same."""
    from monitor.store.entries import distinct

    a, b = two_feeds(store)
    e1, e2 = (entry(f"guid:a-{i}", f"https://a.example/{i}") for i in range(1, 3))
    assert distinct(b, [e1, e2, e1]) == store.sort_entries(b, [e1, e2, e1])[0] == [e1, e2]
    record(store, a, [(e1, None, [])], baseline=True)

    assert distinct(a, [e1, e2, e1]) == [e1, e2]
    assert store.sort_entries(a, [e1, e2, e1]) == ([e2], [])
    assert record(store, a, [(e1, None, [match("r1")]), (e2, None, [match("r2")])]) == 1
    assert raw(database, "SELECT e.uid, m.rule_id FROM matches m JOIN entries e ON e.id = m.entry_id") == [
        ("guid:a-2", "r2")]
    assert raw(database, "SELECT COUNT(*) FROM entries") == [(2,)]


def test_baseline_marks_entries_and_the_feed(store, database):
    a, _ = two_feeds(store)

    queued = record(store, a, [(entry("guid:a-1"), None, [match("r1")])], baseline=True,
                    now=1000.0)

    assert by_url(store)[A].baselined
    assert raw(database, "SELECT baseline, first_seen_at FROM entries") == [(1, 1000.0)]
    assert raw(database, "SELECT baselined_at FROM feeds WHERE url = ?", (A,)) == [(1000.0,)]
    assert queued == 1  # record stores what it is given; the pipeline passes no matches


def test_record_stores_entries_articles_matches_and_outbox(store, database):
    a, _ = two_feeds(store)
    e = entry("guid:a-1", "https://a.example/1")
    page = article(e, error=None)

    queued = record(store, a, [(e, page, [match("r1", ("mail", "hook")), match("r2")])],
                    now=1000.0, feed_title="Title from the feed",
                    validators={"etag": '"e1"', "last_modified": "Tue", "body_hash": "h1"})

    assert queued == 2  # one story, one alert per channel: r2's "mail" rides r1's alert
    assert counts(database) == {"articles": 1, "entries": 1, "feeds": 2, "matches": 2,
                               "outbox": 2}
    assert raw(database, "SELECT uid, guid, link, title, published, content_hash, baseline "
                        "FROM entries") == [
        ("guid:a-1", "a-1", "https://a.example/1", e.title, e.published, "h-guid:a-1", 0)]
    assert raw(database, "SELECT url, text, language, author, source, error FROM articles") == [
        ("https://a.example/1", "Volltext von guid:a-1", "de", "Test Autorin", "page", None)]
    assert raw(database, "SELECT rule_id, story, terms FROM matches ORDER BY id") == [
        ("r1", "https://a.example/1", '["Kursk", "Курск"]'),
        ("r2", "https://a.example/1", '["Kursk", "Курск"]')]
    assert raw(database, "SELECT channel, state, attempts FROM outbox ORDER BY id") == [
        ("mail", "pending", 0), ("hook", "pending", 0)]
    assert [[r.rule_id for r in a.rules] for a in store.alerts()] == [["r1", "r2"], ["r1", "r2"]]
    feed = by_url(store)[A]
    assert (feed.etag, feed.last_modified, feed.body_hash) == ('"e1"', "Tue", "h1")
    # The config's title wins over the feed's own.
    assert feed.title == "Feed A"
    assert by_url(store)[B].title is None
    assert raw(database, "SELECT last_status, error_count, next_check_at FROM feeds "
                        "WHERE url = ?", (A,)) == [("ok", 0, 1900.0)]


def test_record_is_all_or_nothing(store, database):
    a, _ = two_feeds(store)
    before = raw(database, "SELECT * FROM feeds ORDER BY id")
    good = (entry("guid:a-1", "https://a.example/1"), None, [match("r1", ("mail", "hook"))])
    # The last statement of the transaction fails: the second match's second channel
    # cannot be bound. Everything before it (feed state, both entries, the first alerts)
    # has already been executed on the connection.
    e2 = entry("guid:a-2", "https://a.example/2")
    bad = (e2, article(e2), [match("r2", ("mail", object()))])

    with pytest.raises((sqlite3.ProgrammingError, psycopg.ProgrammingError), match="binding|adapt"):
        record(store, a, [good, bad], now=1000.0,
               validators={"etag": '"x"', "last_modified": None, "body_hash": "x"})

    assert counts(database) == {"articles": 0, "entries": 0, "feeds": 2, "matches": 0,
                               "outbox": 0}
    assert raw(database, "SELECT * FROM feeds ORDER BY id") == before
    assert store.unseen(a, [good[0], e2]) == [good[0], e2]
    # The connection is usable again (the transaction was rolled back, not left open).
    assert record(store, a, [good], now=1100.0) == 2
    assert counts(database)["outbox"] == 2


def test_record_of_many_entries_gives_each_article_and_match_its_own_entry(store, database):
    """SQLite inserts a poll's entries many to a statement (store/entries.py ENTRY_ROWS): every
    article and match still lands on its own entry, entries stored before and a uid twice in
    one poll are skipped, and the search index holds exactly the stored text."""
    from test_console_store import fts_ok

    from monitor.store import entries as entries_module

    a, _ = two_feeds(store)
    old = [entry(f"guid:a-{i}", f"https://a.example/{i}") for i in range(0, 1200, 300)]
    record(store, a, [(e, None, []) for e in old], now=900.0)
    many = [entry(f"guid:a-{i}", f"https://a.example/{i}", title=f"Meldung {i} aus Kursk") for i in range(1200)]
    items = [(e, article(e, text=f"Volltext {i}") if i % 97 == 0 else None,
              [match(f"r{i}")] if i % 97 == 0 else []) for i, e in enumerate(many)]
    items.append((many[5], article(many[5], text="twice"), [match("r-twice")]))  # the same uid again
    assert len(items) > 2 * entries_module.ENTRY_ROWS

    queued = record(store, a, items, now=1000.0)

    fresh = [i for i in range(1200) if i % 300]
    assert queued == len([i for i in fresh if i % 97 == 0])
    assert raw(database, "SELECT COUNT(*) FROM entries")[0][0] == 1200
    assert raw(database, "SELECT e.uid, a.text FROM articles a JOIN entries e ON e.id = a.entry_id ORDER BY e.id") \
        == [(f"guid:a-{i}", f"Volltext {i}") for i in fresh if i % 97 == 0]
    assert raw(database, "SELECT e.uid, m.rule_id FROM matches m JOIN entries e ON e.id = m.entry_id ORDER BY m.id") \
        == [(f"guid:a-{i}", f"r{i}") for i in fresh if i % 97 == 0]
    assert raw(database, "SELECT uid, title FROM entries WHERE uid IN ('guid:a-300', 'guid:a-301') ORDER BY uid") \
        == [("guid:a-300", "Kämpfe im Gebiet Kursk"), ("guid:a-301", "Meldung 301 aus Kursk")]
    fts_ok(store)


def test_record_waits_for_another_writer(sqlite_store, db_path):
    store = sqlite_store
    a, _ = two_feeds(store)
    other = sqlite3.connect(str(db_path), isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    releaser = threading.Timer(0.3, other.execute, ("COMMIT",))
    releaser.start()
    try:
        started = time.monotonic()
        queued = record(store, a, [(entry("guid:a-1", "https://a.example/1"), None,
                                    [match("r1")])])
        waited = time.monotonic() - started
    finally:
        releaser.join(5)
        other.close()

    assert queued == 1
    assert 0.25 <= waited < 5


def test_record_fails_whole_when_the_database_stays_locked(db_path):
    store = Store(db_path, busy_timeout=0.2)
    other = sqlite3.connect(str(db_path), isolation_level=None)
    try:
        a, _ = two_feeds(store)
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreError, match="cannot write: database is locked"):
            record(store, a, [(entry("guid:a-1", "https://a.example/1"), None,
                               [match("r1")])])
        other.execute("ROLLBACK")
        assert counts(db_path) == {"articles": 0, "entries": 0, "feeds": 2, "matches": 0,
                                   "outbox": 0}
        assert store.unseen(a, [entry("guid:a-1")]) == [entry("guid:a-1")]
    finally:
        other.close()
        store.close()


def test_same_story_same_rule_in_a_second_feed_alerts_once(store, database):
    a, b = two_feeds(store)
    story = "https://news.example/kursk-1"

    first = record(store, a, [(entry("guid:a-1", story), None, [match("r1")])])
    second = record(store, b, [(entry("guid:b-77", story), None, [match("r1")])])
    other_rule = record(store, b, [(entry("guid:b-78", story), None, [match("r2")])])

    # one story, one alert: another rule firing later on a story already alerted is a follow-up too
    assert (first, second, other_rule) == (1, 0, 0)
    assert counts(database)["entries"] == 3
    # the second feed's copy is a follow-up of the first alert (noise.py), held for a digest
    assert raw(database, "SELECT rule_id, story, lead_id FROM matches ORDER BY id") == [
        ("r1", story, None), ("r1", f"{story} via feed {b.id}", 1), ("r2", story, 1)]
    # (by rule and story: PostgreSQL's ids skip the one a conflicting INSERT drew)
    assert raw(database, "SELECT m.rule_id, m.story, o.state, o.held FROM outbox o JOIN matches m ON m.id = o.match_id "
                         "ORDER BY o.id") == [
        ("r1", story, "pending", None), ("r1", f"{story} via feed {b.id}", "held", "followup"),
        ("r2", story, "held", "followup")]


def test_same_entry_recorded_twice_queues_nothing_the_second_time(store, database):
    a, _ = two_feeds(store)
    item = (entry("guid:a-1", "https://a.example/1"), None, [match("r1")])

    assert record(store, a, [item, item]) == 1
    assert record(store, a, [item]) == 0
    assert counts(database)["entries"] == 1 and counts(database)["outbox"] == 1


def test_story_without_link_is_identified_by_uid(store, database):
    a, b = two_feeds(store)

    record(store, a, [(entry("hash:abc", None), None, [match("r1")])])
    again = record(store, b, [(entry("hash:abc", None), None, [match("r1")])])

    assert again == 0
    assert raw(database, "SELECT story, lead_id FROM matches") == [("hash:abc", None),
                                                                  (f"hash:abc via feed {b.id}", 1)]


# -- outbox ---------------------------------------------------------------------------------

@pytest.fixture
def outbox(store):
    """Three pending alerts: ids 1, 2 (created at 100) and 3 (created at 200)."""
    a, b = two_feeds(store)
    e1 = entry("guid:a-1", "https://a.example/1", title="Erste Meldung")
    e2 = entry("guid:b-1", "https://b.example/1", title="Zweite Meldung", published=None)
    record(store, a, [(e1, None, [match("r1", ("mail", "hook"), title="Kursk")])], now=100.0,
           feed_title="ignored: config title wins")
    record(store, b, [(e2, None, [match("r2", ("mail",), title="")])], now=200.0)
    return store


def test_queue_is_per_channel_oldest_first_with_all_fields(outbox):
    assert sorted(outbox.queued_channels()) == ["hook", "mail"]
    assert [a.id for a in outbox.queue("hook")] == [2]
    first, third = outbox.queue("mail")

    assert (first.id, third.id) == (1, 3)
    assert first.rule_id == "r1" and first.rule_title == "Kursk"
    assert first.title == "Erste Meldung" and first.link == "https://a.example/1"
    assert first.feed_title == "Feed A"
    assert first.published == "2026-11-02T07:15:00Z"
    assert first.terms == ("Kursk", "Курск")
    assert first.snippet == "… im Gebiet Kursk …"
    assert first.attempts == 0 and first.created_at == 100.0 and first.state == "pending"
    # Fallbacks: no rule title -> the rule id; no feed title -> the feed's URL.
    assert third.rule_title == "r2"
    assert third.feed_title == B
    assert third.published is None
    assert [a.id for a in outbox.queue("mail", limit=1)] == [1]


def test_claim_fail_and_send_move_a_row_through_its_states(outbox, database):
    assert outbox.claim(1, now=300.0)
    assert not outbox.claim(1, now=300.5)  # already in flight
    assert raw(database, "SELECT state, claimed_at FROM outbox WHERE id = 1") == [("sending", 300.0)]

    outbox.mark_failed(1, "smtp: connection refused " + "x" * 1000, next_at=400.0, now=301.0)
    head, _ = outbox.queue("mail")
    assert (head.state, head.attempts, head.next_attempt_at, head.last_attempt_at) == ("failed", 1, 400.0, 301.0)
    assert len(head.last_error or "") == 500

    assert outbox.claim(1, now=400.0)
    outbox.mark_sent(1, now=401.0, status=200)
    assert [a.id for a in outbox.queue("mail")] == [3]
    assert raw(database, "SELECT state, sent_at, attempts, last_error, last_status, claimed_at FROM outbox "
                        "WHERE id = 1") == [("sent", 401.0, 2, None, 200, None)]
    assert outbox.outbox_counts() == {"pending": 2, "sent": 1}


def test_a_claim_is_a_lease_a_live_one_is_never_taken_an_expired_one_is(outbox):
    assert outbox.claim(2, now=300.0, owner="host:1:a", lease=60.0)
    assert not outbox.claim(2, now=359.0, owner="host:2:b", lease=60.0)  # live: another sender's
    [a] = outbox.queue("hook")
    assert (a.state, a.lease_until, a.attempts) == ("sending", 360.0, 0)
    # the lease ran out (its sender died, or could not record the send): taken over, and the
    # interrupted attempt counts and is said
    assert outbox.claim(2, now=360.0, owner="host:2:b", lease=60.0)
    [a] = outbox.queue("hook")
    assert (a.state, a.attempts, a.last_attempt_at, a.lease_until) == ("sending", 1, 300.0, 420.0)
    assert (a.last_error or "").startswith("interrupted")


def test_leases_of_owners_known_dead_are_freed_and_no_others(outbox):
    outbox.claim(1, now=300.0, owner="here:11:a", lease=600.0)
    outbox.claim(2, now=300.0, owner="here:22:b", lease=600.0)
    assert sorted(outbox.lease_owners()) == ["here:11:a", "here:22:b"]
    assert outbox.expire_leases(["here:11:a"], now=310.0) == [1]
    assert outbox.claim(1, now=310.0, owner="here:33:c")  # freed: claimable at once
    assert not outbox.claim(2, now=310.0, owner="here:33:c")  # its owner lives: untouched
    assert outbox.expire_leases([], now=310.0) == []


def test_a_dead_owners_feeds_are_freed_but_not_polled_again_within_an_interval(store):
    two_feeds(store)  # A with the default interval, B pinned to 600 s
    store.sync_feeds([(A, "Feed A", None), (B, "", 600), ("https://c.example/live", None, None)], now=100.0)
    claimed = store.claim_feeds(owner="here:11:a", now=1000.0, lease=900.0, limit=2)
    assert {f.url for f in claimed} == {A, B}
    assert [f.url for f in store.claim_feeds(owner="here:22:b", now=1000.0, lease=900.0)] == ["https://c.example/live"]
    store.expire_leases(["here:11:a"], now=1010.0, poll_interval=60.0)
    # its poll may have reached the feed just before it died: one interval from now, at the soonest
    assert raw_next(store, A) == 1070.0 and raw_next(store, B) == 1610.0
    assert store.claim_feeds(owner="here:33:c", now=1069.0, lease=900.0) == []  # A not yet; C leased to 22
    assert [f.url for f in store.claim_feeds(owner="here:33:c", now=1070.0, lease=900.0)] == [A]


def test_a_claim_leaves_the_feeds_its_owner_holds_already_as_they_are(store):
    """``skip``: what the daemon holds already (queued, polling, its record waiting to be written)
    is neither handed out again nor leased again: its lease stays the first claim's."""
    store.sync_feeds([(A, "Feed A", None), (B, "", None), (C, "", None)], now=100.0)
    first = store.claim_feeds(owner="here:11:a", now=1000.0, lease=900.0, limit=2)
    held = {f.id for f in first}
    again = store.claim_feeds(owner="here:11:a", now=1100.0, lease=900.0, skip=held)
    leases = dict(store.db.execute("SELECT id, lease_until FROM feeds").fetchall())

    assert [f.url for f in again] == [C] and C not in {f.url for f in first}
    assert {i: leases[i] for i in held} == {i: 1900.0 for i in held}  # not rewritten by the second claim
    assert leases[again[0].id] == 2000.0
    assert [f.url for f in store.claim_feeds(owner="here:11:a", now=1100.0, lease=900.0, skip={again[0].id})] == \
        sorted((f.url for f in first), key=[A, B, C].index)  # its own, not skipped: claimed again



def test_a_claim_skips_any_number_of_held_feeds(store):
    """A daemon may hold tens of thousands of feeds (50,000 due at start, their updates waiting
    behind a slow disk): ``skip`` is sent as one value, not one bound parameter an id (SQLite
    3.40 refuses more than 32,766, PostgreSQL's protocol 65,535)."""
    if store.dialect == "sqlite":  # Debian's SQLite allows 250,000; SQLite's own default is 32,766
        store.db.conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 32_766)
    store.sync_feeds([(A, "Feed A", None), (B, "", None), (C, "", None)], now=100.0)
    ids = dict(store.db.execute("SELECT url, id FROM feeds").fetchall())
    held = set(range(10_000_000, 10_070_000)) | {ids[A]}
    got = store.claim_feeds(owner="here:11:a", now=1000.0, lease=900.0, skip=held)
    assert [f.url for f in got] == [B, C]
    assert [f.url for f in store.claim_feeds(owner="here:11:a", now=1000.0, lease=900.0, skip=held | {ids[B]})] == [C]

def raw_next(store: Store, url: str) -> float:
    return float(store.db.execute("SELECT next_check_at FROM feeds WHERE url = ?", [url]).fetchone()[0])


def test_dead_alert_is_kept_with_its_ops_notice_and_can_be_revived(outbox, database):
    outbox.claim(1, now=300.0)
    outbox.mark_dead(1, 301.0, "dead after 10 attempts; last error: HTTP 404", [("ops", "Undeliverable", "b")],
                     attempted=True, status=404)

    assert [a.id for a in outbox.queue("mail")] == [3]
    [dead] = outbox.alerts(state="dead")
    assert (dead.id, dead.dead_at, dead.attempts, dead.last_status) == (1, 301.0, 1, 404)
    assert raw(database, "SELECT kind, feed_id, channel, title, state FROM notices") == [
        ("alert-dead", None, "ops", "Undeliverable", "pending")]

    assert outbox.revive(now=500.0) == 1
    back, _ = outbox.queue("mail")
    assert (back.id, back.state, back.attempts, back.next_attempt_at, back.revived_at, back.dead_at) == (
        1, "pending", 0, 500.0, 500.0, None)
    assert outbox.revive(now=600.0, alert_id=999) == 0
    assert [a.id for a in outbox.alerts()] == [3, 2, 1]


def test_feeds_by_health_are_counted_as_schedule_status_tells_each_feed(store):
    """The daemon's /metrics and `monitor status` count feeds by health in one query: the same
    answer as schedule.status feed by feed, every branch and the silent boundary, paused too
    (a paused feed had been counted as ok)."""
    import itertools

    from monitor import schedule

    now, after, least = 1_800_000_000.0, 10.0, 43_200.0
    news = [(None, None), (0, now - 90_000), (3600, None), (3600, now - 50_000), (3600, now - 40_000),
            (5000, now - 50_000), (5000, now - 50_001)]  # 5000 s: silent only past 50,000 s
    flags = list(itertools.product((1, 0), (None, now), (None, now), (0, 2), (None, now)))
    store.add_feeds([(f"https://h/{i}", None, None, ()) for i in range(len(flags) * len(news))], now)
    want = {}
    for i, ((active, paused, gone, errors, baselined), (cadence, last_new)) in enumerate(
            itertools.product(flags, news)):
        store.db.execute("UPDATE feeds SET active = ?, paused_at = ?, gone_at = ?, error_count = ?, baselined_at = ?, "
                         "cadence_s = ?, last_new_at = ? WHERE url = ?",
                         [active, paused, gone, errors, baselined, cadence, last_new, f"https://h/{i}"])
        health = schedule.status(active=bool(active), paused=paused is not None, gone=gone is not None,
                                 error_count=errors, baselined=baselined is not None, cadence=cadence,
                                 last_new_at=last_new, now=now, silent_after=after, silent_min=least)
        want[health] = want.get(health, 0) + 1
    assert set(want) == set(schedule.HEALTH)  # every answer is met
    assert store.health_counts(now, after, least) == want
    snap = store.snapshot(now, after, least)  # one pass over the feeds gives both
    assert snap.health == want and snap.counts == store.status_counts()
    assert snap.counts[:2] == (len(flags) * len(news) // 2, 3 * len(news) * 4)  # active; of them failing or gone


def test_feed_counts_are_taken_again_at_most_every_30_s_only_with_many_feeds(store, monkeypatch):
    """At 50,000 feeds a pass over them costs ~28 ms of the database thread, every 5 s: from
    MANY_FEEDS on, the snapshot's feed counts are the last pass's for FEEDS_RECOUNT seconds; a
    small table (every test's) is counted at every snapshot."""
    from monitor.store import status

    clock = [100.0]
    monkeypatch.setattr(status, "_monotonic", lambda: clock[0])
    store.add_feeds([("https://a.example/1.xml", None, None, ())], 1.0)
    assert store.snapshot().counts[0] == 1
    store.add_feeds([("https://a.example/2.xml", None, None, ())], 1.0)
    assert store.snapshot().counts[0] == 2  # few feeds: counted again
    monkeypatch.setattr(status, "MANY_FEEDS", 2)
    assert store.snapshot().counts[0] == 2 and store.snapshot().health == {"new": 2}
    store.add_feeds([("https://a.example/3.xml", None, None, ())], 1.0)
    clock[0] += status.FEEDS_RECOUNT - 1
    assert store.snapshot().counts[0] == 2  # many: the last pass's, within FEEDS_RECOUNT
    assert store.snapshot(silent_after=20).counts[0] == 3  # other settings: counted again
    clock[0] += status.FEEDS_RECOUNT
    assert store.snapshot().counts[0] == 3 and store.snapshot().health == {"new": 3}


def test_matches_per_rule_are_counted_by_what_was_added_and_again_in_full_now_and_then(store, monkeypatch):
    """The snapshot asks every 5 s: after one full count, only matches added since are read;
    every RECOUNT seconds a full count takes in what was deleted (retention's cascades)."""
    from monitor.store import status

    a, b = two_feeds(store)
    assert store.matches_by_rule() == {}
    e1, e2, e3 = (entry(f"guid:m-{i}", f"https://a.example/m{i}") for i in range(3))
    record(store, a, [(e1, None, [match("r1")]), (e2, None, [match("r1"), match("r2")])])
    assert store.matches_by_rule() == {"r1": 2, "r2": 1}
    record(store, b, [(e3, None, [match("r2")])], now=1001.0)
    assert store.matches_by_rule() == {"r1": 2, "r2": 2} == store.snapshot().matches
    store.db.execute("DELETE FROM matches WHERE rule_id = 'r1'")
    assert store.matches_by_rule() == {"r1": 2, "r2": 2}  # a deletion waits for the next full count
    monkeypatch.setattr(status, "RECOUNT", 0.0)
    assert store.matches_by_rule() == {"r2": 2}


def test_outbox_counts_empty(store):
    assert store.outbox_counts() == {}
    assert store.count("outbox") == 0


def test_alert_carries_the_rules_severity_and_the_articles_language(store):
    a, _ = two_feeds(store)
    urgent = dataclasses.replace(match("r1", ("mail",)), severity="urgent")
    e1, e2 = entry("guid:a-1", "https://a.example/1"), entry("guid:a-2", "https://a.example/2")
    record(store, a, [(e1, article(e1, language="uk"), [urgent]), (e2, None, [match("r2")])])

    [first, second] = store.queue("mail", 10)
    assert (first.rule_id, first.severity, first.language) == ("r1", "urgent", "uk")
    assert (second.rule_id, second.severity, second.language) == ("r2", "normal", None)


def test_store_errors_are_wrapped_once_and_bugs_stay_bugs(sqlite_store, db_path):
    """A locked database is a StoreError naming the file and the kind (our own SQL mistakes stay
    bugs: test_record_is_all_or_nothing sees the ProgrammingError itself)."""
    store = sqlite_store
    store.db.execute("PRAGMA busy_timeout = 50")
    other = sqlite3.connect(str(db_path), isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StoreError) as e:
            store.sync_feeds([(A, "Feed A", None)], now=100.0)
        assert e.value.kind == "locked" and str(db_path) in str(e.value)
    finally:
        other.execute("ROLLBACK")
        other.close()
    store.sync_feeds([(A, "Feed A", None)], now=100.0)  # nothing left half-open
    assert [f.url for f in store.feeds()] == [A]


# -- many processes on one database (issue 19: on PostgreSQL, nodes of a cluster) -----------------

def _at_once(n: int, work) -> list:  # type: ignore[no-untyped-def]
    """``work(i)`` on ``n`` threads released together; their results in order."""
    gate, results, errors = threading.Barrier(n), [None] * n, []

    def run(i: int) -> None:
        try:
            gate.wait(10)
            results[i] = work(i)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    return results


def test_processes_claiming_at_once_never_share_a_feed(database):
    urls = [f"https://feeds.example/{i}.xml" for i in range(40)]
    first = Store(database)
    first.sync_feeds([(u, None, None) for u in urls], now=0.0)
    stores = [first, *(Store(database) for _ in range(3))]
    try:
        got = _at_once(4, lambda i: [f.url for f in stores[i].claim_feeds(owner=f"node{i}", now=10.0, lease=60,
                                                                          limit=15)])
        claimed = [u for urls_of in got for u in urls_of]
        assert len(claimed) == len(set(claimed)) == 40  # each feed once, all of them
        assert first.claim_feeds(owner="late", now=20.0, lease=60) == []  # live leases are never taken
        assert len(first.claim_feeds(owner="late", now=71.0, lease=60)) == 40  # expired ones are
    finally:
        for s in stores:
            s.close()


def test_one_story_recorded_by_processes_at_once_is_one_alert(database):
    first = Store(database)
    first.sync_feeds([(f"https://feeds.example/{i}.xml", None, None) for i in range(4)], now=0.0)
    stores = [first, *(Store(database) for _ in range(3))]
    feeds = first.feeds()
    story = "https://news.example/kursk-offensive"
    try:
        queued = _at_once(4, lambda i: record(stores[i], feeds[i], [(entry(f"guid:{i}", story), None,
                                                                     [match("r1", ("mail", "hook"))])]))
        assert sorted(queued) == [0, 0, 0, 2]  # one node tells the story on both channels; three find it told
        assert raw(database, "SELECT COUNT(*) FROM outbox WHERE state = 'pending'") == [(2,)]
        assert raw(database, "SELECT COUNT(*) FROM matches WHERE lead_id IS NOT NULL") == [(3,)]
    finally:
        for s in stores:
            s.close()


def test_periodic_work_takes_one_turn_per_period_among_all_processes(database):
    first = Store(database)
    stores = [first, *(Store(database) for _ in range(3))]
    try:
        turns = _at_once(4, lambda i: stores[i].periodic_turn("prune", 1000.0, 3600, f"node{i}"))
        assert sorted(turns) == [False, False, False, True]  # one of four daemons at once
        assert first.periodic_turn("prune", 1000.0 + 1800, 3600, "node9") is False  # within the period
        assert first.periodic_turn("learn", 1000.0 + 1800, 3600, "node9") is True  # another job: its own
        assert first.periodic_turn("prune", 1000.0 + 3600, 3600, "node9") is True  # the next period
        assert raw(database, "SELECT name, last_at, node FROM periodic_runs ORDER BY name") == [
            ("learn", 2800.0, "node9"), ("prune", 4600.0, "node9")]
    finally:
        for s in stores:
            s.close()
