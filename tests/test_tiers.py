"""Tiers through the store and the noise policy (issue 17): an alert-tier story gets pending
outbox rows, a digest-tier story one held 'mention' row per channel, a store-tier story a match
row and nothing to send, a story of mixed tiers the best one's; migration 13 reads old matches
as salience 1.0, tier alert; 'mention' rows leave a channel without a digest schedule once the
oldest has waited MENTION_EVERY, never before."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from conftest import database_at, db_rows
from test_store import entry, match, record, two_feeds

from monitor import noise
from monitor.store import MIGRATIONS, Store

FEATURES = (("title", 0), ("lead", 0), ("sentences", 1), ("of", 90), ("together", None),
            ("quoted", 1), ("aside", 0), ("listed", 0))


def tiered(rule_id: str, tier: str, salience: float, channels: tuple = ("mail",), severity: str = "normal"):
    return dataclasses.replace(match(rule_id, channels), tier=tier, salience=salience, features=FEATURES,
                               severity=severity)


def outbox(path: Path | str) -> list[tuple]:
    return db_rows(path, "SELECT m.rule_id, o.channel, o.state, o.held FROM outbox o "
                         "JOIN matches m ON m.id = o.match_id ORDER BY o.id")


def test_each_tier_makes_its_own_outbox_rows(database: str):
    path = database
    store = Store(path)
    try:
        a, _ = two_feeds(store)
        stories = [("alert", 0.8), ("digest", 0.3), ("store", 0.05)]
        queued = [record(store, a, [(e, None, [tiered(f"r-{tier}", tier, sal, ("mail", "hook"))])])
                  for (tier, sal), e in zip(stories, [entry(f"guid:{t}", f"https://a.example/{t}")
                                                      for t, _ in stories], strict=True)]
        assert queued == [2, 0, 0]  # only the alert is queued to send
        assert outbox(path) == [("r-alert", "mail", "pending", None), ("r-alert", "hook", "pending", None),
                                ("r-digest", "mail", "held", "mention"), ("r-digest", "hook", "held", "mention")]
        # every match is stored, with its salience, tier and features
        assert db_rows(path, "SELECT rule_id, salience, tier FROM matches ORDER BY id") == [
            ("r-alert", 0.8, "alert"), ("r-digest", 0.3, "digest"), ("r-store", 0.05, "store")]
        assert store.held("mail").keys() == {"mention"}
    finally:
        store.close()


def test_a_story_whose_rules_mix_tiers_takes_the_best_ones(database: str):
    path = database
    store = Store(path)
    try:
        a, _ = two_feeds(store)
        # the urgent rule is only a mention here: the alert-tier rule leads, and only its channel hears
        mixed = [tiered("mention", "digest", 0.3, ("ops",), "urgent"), tiered("about", "alert", 0.7, ("mail",)),
                 tiered("passing", "store", 0.1, ("hook",))]
        assert record(store, a, [(entry("guid:m", "https://a.example/m"), None, mixed)]) == 1
        assert outbox(path) == [("about", "mail", "pending", None)]
        assert db_rows(path, "SELECT rule_id, primary_id IS NULL FROM matches ORDER BY id") == [
            ("about", 1), ("mention", 0), ("passing", 0)]
        # digest and store: the story is a mention on the digest rule's channel only
        low = [tiered("passing", "store", 0.1, ("hook",)), tiered("mention", "digest", 0.3, ("ops",))]
        assert record(store, a, [(entry("guid:n", "https://a.example/n"), None, low)]) == 0
        assert outbox(path)[1:] == [("mention", "ops", "held", "mention")]
    finally:
        store.close()


def test_migration_13_reads_old_matches_as_salience_1_tier_alert(tmp_path: Path):
    path = tmp_path / "old.db"
    con = database_at(path, 12)
    con.execute("INSERT INTO entries (id, feed_id, uid, link, title, first_seen_at) "
                "VALUES (1, 1, 'u1', 'https://a/1', 'Kursk', 0)")
    con.execute("INSERT INTO matches (id, entry_id, rule_id, story, terms, created_at) "
                "VALUES (1, 1, 'kursk', 'https://a/1', '[]', 0)")
    con.execute("INSERT INTO outbox (match_id, channel, state, created_at) VALUES (1, 'mail', 'pending', 0)")
    con.close()
    store = Store(path)
    try:
        assert store.version == len(MIGRATIONS)
        assert db_rows(path, "SELECT salience, tier FROM matches") == [(1.0, "alert")]
        [alert] = store.alerts()
        assert (alert.salience, alert.tier, alert.features) == (1.0, "alert", ())
    finally:
        store.close()


def test_mentions_leave_a_channel_without_a_digest_schedule_after_a_day_never_before():
    plain, scheduled = noise.policy(), noise.policy(digest="0 8 * * *")
    oldest = 1_000_000.0
    held = {"mention": oldest}
    assert not noise.release(plain, oldest, held, rate_freed=False)
    assert not noise.release(plain, oldest + noise.MENTION_EVERY - 1, held, rate_freed=False)
    assert noise.release(plain, oldest + noise.MENTION_EVERY, held, rate_freed=False)
    # a channel with a schedule waits for it (the daemon's cron job), however old the mention
    assert not noise.release(scheduled, oldest + 10 * noise.MENTION_EVERY, held, rate_freed=False)
    # quiet hours hold them too
    quiet = noise.policy(quiet_hours="00:00-23:59")
    assert not noise.release(quiet, oldest + noise.MENTION_EVERY, held, rate_freed=False)
