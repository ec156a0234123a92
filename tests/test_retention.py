"""Retention on a real SQLite file and on PostgreSQL, built through the Store's own methods: prune removes exactly
the old delivered material, keeps undelivered alerts and what they refer to, and a pruned story
does not alert again when its feed serves it again."""

from __future__ import annotations

import pytest
from conftest import db_rows as raw

from monitor.models import Article, Entry, Feed, FeedUpdate, Match
from monitor.store import Pruned, Store

DAY = 86400.0
AGE = 90 * DAY
T_OLD = 1_000_000.0
T_NEW = T_OLD + 100 * DAY
NOW = T_NEW + 60
FEED = "https://a.example/feed.xml"


def entry(uid: str) -> Entry:
    return Entry(uid=uid, guid=uid, title=f"Kämpfe im Gebiet Kursk ({uid})", link=f"https://a.example/{uid}",
                 summary=f"Zusammenfassung {uid}", content="", published="2026-11-02T07:15:00Z",
                 content_hash=f"h-{uid}")


def article(e: Entry) -> Article:
    return Article(title=e.title, text=f"Volltext von {e.uid} " * 50, url=e.link, source="page")


def match(rule_id: str) -> Match:
    return Match(rule_id=rule_id, rule_title=rule_id, terms=("Kursk",), field="title", snippet="Kursk",
                 channels=("mail",))


def poll(store: Store, feed: Feed, now: float, new: list[tuple[Entry, list[Match]]], served: list[Entry]) -> int:
    """What the pipeline does with a parsed poll: sort out what is new, record it and stamp all."""
    fresh = {e.uid for e in store.unseen(feed, served)}
    items = [(e, article(e), ms) for e, ms in new if e.uid in fresh]
    update = FeedUpdate(last_ok_at=now, last_status="ok", error_count=0, next_check_at=now + 900)
    return store.record(feed, now=now, update=update, new=items, baseline=False, seen=[e.uid for e in served])


@pytest.fixture
def built(database: str):
    """Old poll: sent, pending, dead, failed alerts and plain entries; new poll 100 days later."""
    path = database
    store = Store(path)
    store.sync_feeds([(FEED, "Feed A", None)], now=T_OLD - 10)
    feed = store.feeds()[0]
    old = {u: entry(u) for u in ("old-sent", "old-pending", "old-dead", "old-failed", "old-plain",
                                 "old-served")}
    assert poll(store, feed, T_OLD, [(old["old-sent"], [match("r-sent")]),
                                     (old["old-pending"], [match("r-pending")]),
                                     (old["old-dead"], [match("r-dead")]),
                                     (old["old-failed"], [match("r-failed")]),
                                     (old["old-plain"], []), (old["old-served"], [match("r-served")])],
                list(old.values())) == 5
    ids = {a.rule_id: a.id for a in store.alerts()}
    for rule in ("r-sent", "r-served"):
        store.claim(ids[rule], now=T_OLD + 5)
        store.mark_sent(ids[rule], now=T_OLD + 10)
    store.mark_dead(ids["r-dead"], T_OLD + 20, "gave up", [])
    store.mark_failed(ids["r-failed"], "HTTP 500", next_at=NOW + 60, now=T_OLD + 30)
    new = entry("new-sent")
    # the feed still serves "old-served" (and the young one); the other old ones are gone
    assert poll(store, feed, T_NEW, [(new, [match("r-new")])], [new, old["old-served"]]) == 1
    new_id = next(a.id for a in store.alerts() if a.rule_id == "r-new")
    store.claim(new_id, now=T_NEW + 1)
    store.mark_sent(new_id, now=T_NEW + 2)
    yield store, feed, path, old
    store.close()


def live(path: str) -> set[str]:
    return {u for (u,) in raw(path, "SELECT uid FROM entries WHERE title IS NOT NULL")}


def test_prune_removes_exactly_the_old_delivered_material(built):
    store, _, path, _ = built
    counted = store.prune(NOW, AGE, dry_run=True)
    assert live(path) == {"old-sent", "old-pending", "old-dead", "old-failed", "old-plain", "old-served",
                          "new-sent"}  # a dry run changes nothing

    done = store.prune(NOW, AGE)
    assert done == Pruned(entries=3, articles=3, alerts=2, notices=0, tombstones=2)
    assert counted[:4] == done[:4]
    # undelivered alerts keep their outbox row, match, entry and article
    assert sorted(raw(path, "SELECT m.rule_id, o.state FROM outbox o JOIN matches m ON m.id = o.match_id")) == [
        ("r-dead", "dead"), ("r-failed", "failed"), ("r-new", "sent"), ("r-pending", "pending")]
    assert live(path) == {"old-pending", "old-dead", "old-failed", "new-sent"}
    assert {u for (u,) in raw(path, "SELECT e.uid FROM articles a JOIN entries e ON e.id = a.entry_id")} == {
        "old-pending", "old-dead", "old-failed", "new-sent"}
    # gone from the feed for 100 days: deleted for good; still served: a tombstone (identity and
    # the text's hash, which recognises the story should the feed move to a new domain)
    assert raw(path, "SELECT uid, title, summary, link, content_hash FROM entries WHERE title IS NULL") == [
        ("old-served", None, None, None, "h-old-served")]
    assert "old-sent" not in {u for (u,) in raw(path, "SELECT uid FROM entries")}
    assert store.alerts(state="pending")[0].title.startswith("Kämpfe")  # still shown in full
    assert store.prune(NOW, AGE) == Pruned()  # nothing left to do
    if store.dialect == "sqlite":
        assert raw(path, "PRAGMA integrity_check") == [("ok",)]


def test_a_pruned_story_does_not_alert_again_when_the_feed_serves_it(built):
    store, feed, path, old = built
    store.prune(NOW, AGE)
    served = old["old-served"]
    assert store.unseen(feed, [served]) == []
    assert store.sort_entries(feed, [served]) == ([], [])  # not "edited" either
    assert poll(store, feed, NOW + 900, [(served, [match("r-served")])], [served]) == 0
    assert raw(path, "SELECT COUNT(*) FROM outbox WHERE state = 'pending'") == [(1,)]
    # 200 days on, with no poll since: the tombstone stays while the feed's last poll served it;
    # "new-sent", absent from that poll for 200 days, goes for good
    store.prune(NOW + 200 * DAY, AGE)
    assert {u for (u,) in raw(path, "SELECT uid FROM entries WHERE title IS NULL")} == {"old-served"}
    assert "new-sent" not in {u for (u,) in raw(path, "SELECT uid FROM entries")}


def test_small_batches_reach_the_same_result(built):
    store, _, path, _ = built
    steps = list(store.steps(NOW, AGE, batch=1))
    assert len(steps) > 10  # one transaction per row
    assert steps[-1] == Pruned(entries=3, articles=3, alerts=2, notices=0, tombstones=2)
    assert live(path) == {"old-pending", "old-dead", "old-failed", "new-sent"}


def test_entries_not_stamped_since_the_upgrade_wait_for_a_stamped_poll(built):
    store, _, path, _ = built
    store.db.execute("UPDATE entries SET last_seen_at = NULL")
    assert store.prune(NOW, AGE).tombstones == 0  # no poll says what the feed serves: keep
    assert raw(path, "SELECT COUNT(*) FROM entries WHERE title IS NULL") == [(3,)]


def test_prune_command(tmp_path, built):
    from conftest import run_cli, write_config

    store, _, path, _ = built
    cfg = write_config(tmp_path, feeds=[FEED], channels={"mail": ["log://"]}, extra="[retention]\ndays = 1",
                       database=path)
    dry = run_cli("prune", "--config", str(cfg), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("would prune entries=4 articles=4 alerts=3 "), dry.stdout
    assert live(path) == {"old-sent", "old-pending", "old-dead", "old-failed", "old-plain", "old-served",
                          "new-sent"}
    done = run_cli("prune", "--config", str(cfg))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("pruned entries=4 articles=4 alerts=3 notices=0 tombstones=2 "), done.stdout
    assert live(path) == {"old-pending", "old-dead", "old-failed"}
