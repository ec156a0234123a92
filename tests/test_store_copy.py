"""``monitor store copy`` (issue 19) through the real CLI: a SQLite store with every kind of row
moves into PostgreSQL and back with every row and id kept, the copy works as a store (search, new
ids after the copied ones), a non-empty target is refused with nothing written, bad input is one
line and exit 2."""

from __future__ import annotations

from pathlib import Path

from conftest import run_cli, sql_rows

from monitor.models import Article, Entry, FeedUpdate, Match
from monitor.store import Store
from monitor.store.copy import TABLES

NOW = 1_790_000_000.0


def _filled(path: Path) -> Store:
    """A store holding feeds, entries (one without an article), articles, matches (a follow-up
    and a rule travelling with its primary), outbox rows, a notice, feedback with its rules, a
    used link, a rule model, a user, the heartbeat and a reported miss."""
    store = Store(path)
    store.sync_feeds([("https://a.example/feed", "Feed A", None), ("https://b.example/feed", None, 600)], now=NOW)
    a, b = store.feeds()
    update = FeedUpdate(last_ok_at=NOW, last_status="ok", error_count=0, next_check_at=NOW + 900)

    def entry(n: int, title: str, link: str) -> Entry:
        return Entry(uid=f"guid:{n}", guid=str(n), title=title, link=link, summary=f"Kurzfassung {n}", content="",
                     published="2026-11-02T07:15:00Z", content_hash=f"h{n}")

    def match(rule: str) -> Match:
        return Match(rule_id=rule, rule_title=rule.title(), terms=("Kursk",), field="body", snippet="… Kursk …",
                     channels=("mail", "hook"), salience=0.7, tier="alert", features=(("title", 1),))

    story = "https://news.example/kursk"
    e1, e2 = entry(1, "Kämpfe im Gebiet Kursk", story), entry(2, "Ohne Artikel", "https://a.example/2")
    store.record(a, now=NOW, update=update, baseline=False,
                 new=[(e1, Article(title=e1.title, text="Gefechte bei Sudscha.", url=story, language="de"),
                       [match("kursk"), match("troops")]), (e2, None, [])])
    store.record(b, now=NOW + 5, update=update, baseline=False,
                 new=[(entry(3, "Kursk: die Lage", story), None, [match("kursk")])])
    store.save_poll(b, FeedUpdate(last_error="HTTP 500"), now=NOW + 6)
    alert = store.alerts()[-1].id
    store.give_feedback(alert, "relevant", "alice", NOW + 7, "about Kursk")
    store.give_feedback(alert, "not", "link:hook", NOW + 8, via="link", token="t0k3n", token_expires=NOW + 99)
    store.mark_sent(alert, NOW + 9, 200)
    store.mark_dead(store.alerts()[0].id, NOW + 10, "gave up", [("ops", "dead", "an alert died")])
    store.save_rule_model("kursk", NOW + 11, 12, 7, True, '{"w": [0.5]}')
    store.add_user("Alice", "editor", "$argon2id$x", NOW)
    store.daemon_started(4242, NOW)
    store.periodic_turn("prune", NOW, 3600, "node1")
    one = store.give_feedback(alert, "not", "bob", NOW + 12, rule="kursk")  # a verdict on one rule of the story
    assert one is not None and one.outcome == "recorded"
    assert store.report_miss(2, "kursk", "alice", NOW + 13, "the rule missed it") == "recorded"
    return store


def _everything(database: str) -> dict[str, list[tuple]]:
    return {t: sql_rows(database, f"SELECT * FROM {t} ORDER BY {key}") for t, key in TABLES}


def test_sqlite_to_postgresql_and_back_keeps_every_row_and_id(tmp_path, pg_url):
    source = tmp_path / "single.db"
    _filled(source).close()
    before = _everything(str(source))
    assert all(before[t] for t, _ in TABLES)  # every table has rows to lose

    res = run_cli("store", "copy", "--from", str(source), "--to", pg_url)
    assert res.returncode == 0, res.stderr
    assert "rows verified on both sides: feeds=2 entries=3 articles=1 matches=3 outbox=" in res.stdout, res.stdout
    assert _everything(pg_url) == before

    copied = Store(pg_url)
    try:
        hits = copied.search("Sudscha")
        assert hits["total"] == 1 and hits["hits"][0]["title"] == "Kämpfe im Gebiet Kursk"  # its own index
        assert copied.feedback(copied.alerts()[-1].id)[0].note == "about Kursk"
        copied.add_feeds([("https://c.example/feed", None, None)], now=NOW + 20)  # ids go on after the copied
        assert max(f.id for f in copied.feeds()) == 3
    finally:
        copied.close()

    back = tmp_path / "back.db"
    res = run_cli("store", "copy", "--from", pg_url, "--to", f"sqlite:///{back}")
    assert res.returncode == 0, res.stderr
    again = _everything(str(back))
    assert again["feeds"][:2] == before["feeds"] and {t: v for t, v in again.items() if t != "feeds"} == {
        t: v for t, v in before.items() if t != "feeds"}
    assert Store(back).search("Sudscha")["total"] == 1


def test_a_target_with_rows_is_refused_and_left_as_it_was(tmp_path, pg_url):
    source = tmp_path / "single.db"
    _filled(source).close()
    target = Store(pg_url)
    target.sync_feeds([("https://mine.example/feed", None, None)], now=NOW)
    target.close()
    res = run_cli("store", "copy", "--from", str(source), "--to", pg_url)
    assert res.returncode == 1 and "the target must be empty; it holds 1 feeds" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    assert sql_rows(pg_url, "SELECT url FROM feeds") == [("https://mine.example/feed",)]


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    for args, needle in [(["--from", "x.db", "--to", "x.db"], "--from and --to name the same database"),
                         (["--from", "mysql://db/x", "--to", str(tmp_path / "y.db")], "--from: mysql:// databases"),
                         (["--from", str(tmp_path / "a.db"), "--to", f"postgresql://nobody@/x?host={tmp_path}&port=1"],
                          "--to: postgresql://nobody@/x")]:
        res = run_cli("store", "copy", *args)
        assert res.returncode == 2, res.stderr
        assert needle in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
