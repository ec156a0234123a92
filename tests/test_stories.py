"""Story identity and one alert per story (issue 14): the rules that fire on one story travel in
one alert per channel; a feed whose items share one link is many stories; a feed that moved to
a new domain does not alert again; the same short text at two URLs is one story; a feed's
first poll sends what it found recently as one digest. Real SQLite, the real parser, and the
real CLI against the loopback feed server and webhook receiver."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import database_at, db_rows, page, rss, run_cli, write_config

from monitor import parse
from monitor.models import Article, Entry, Feed, FeedUpdate, Match
from monitor.store import MIGRATIONS, Store

A = "https://a.example/feed.xml"
B = "https://b.example/rss"


@pytest.fixture
def store(database: str):
    s = Store(database)
    yield s
    s.close()


def feeds(store: Store) -> tuple[Feed, Feed]:
    store.sync_feeds([(A, "Feed A", None), (B, "Feed B", None)], now=100.0)
    by_url = {f.url: f for f in store.feeds()}
    return by_url[A], by_url[B]


def entry(uid: str, link: str | None, title: str = "Kämpfe im Gebiet Kursk", text: str = "") -> Entry:
    return Entry(uid=uid, guid=None, title=title, link=link, summary=text or f"Zusammenfassung {uid}",
                 content="", published="2026-11-02T07:15:00Z", content_hash=f"h-{title}-{text}")


def match(rule_id: str, channels: tuple[str, ...], severity: str = "normal") -> Match:
    return Match(rule_id=rule_id, rule_title=f"Rule {rule_id}", terms=("Kursk",), field="body",
                 snippet="… **Kursk** …", channels=channels, severity=severity, context=("Russland",))


def record(store: Store, feed: Feed, items, now: float = 1000.0, baseline: bool = False) -> int:
    update = FeedUpdate(last_ok_at=now, last_status="ok", error_count=0, next_check_at=now + 900)
    return store.record(feed, now=now, update=update, new=items, baseline=baseline)


def art(e: Entry, text: str) -> Article:
    return Article(title=e.title, text=text, url=e.link, language="de")


def test_two_rules_on_one_story_are_one_alert_per_channel_with_every_rule(store):
    a, _ = feeds(store)
    e = entry("link:1", "https://a.example/1")
    # the Kursk rule routes to mail, the urgent one to mail and hook: the union, the highest severity
    queued = record(store, a, [(e, None, [match("kursk", ("mail",)), match("nk", ("mail", "hook"), "urgent")])])
    assert queued == 2
    alerts = sorted(store.alerts(), key=lambda x: x.channel)
    assert [x.channel for x in alerts] == ["hook", "mail"]
    for x in alerts:
        assert x.severity == "urgent" and x.rule_id == "nk"  # the most severe rule leads
        assert [(r.rule_id, r.title, r.terms, r.context, r.severity) for r in x.rules] == [
            ("nk", "Rule nk", ("Kursk",), ("Russland",), "urgent"),
            ("kursk", "Rule kursk", ("Kursk",), ("Russland",), "normal")]
        assert x.context == ("Russland",)


def test_the_same_short_text_at_two_urls_from_two_feeds_is_one_story(store):
    a, b = feeds(store)
    teaser = "Nordkoreanische Soldaten sollen im Gebiet Kursk an der Front eingesetzt worden sein."
    assert len(teaser.split()) < 80  # too short for a SimHash
    one, two = entry("link:a", "https://a.example/nk"), entry("link:b", "https://b.example/andere-url")
    assert record(store, a, [(one, art(one, teaser), [match("nk", ("mail",))])]) == 1
    # another rule, another URL, the same words (case and punctuation aside): a follow-up
    assert record(store, b, [(two, art(two, teaser.upper().replace(".", "!")), [match("kursk", ("mail",))])]) == 0
    [alert] = store.alerts(state="pending")
    assert [f["how"] for f in store.followups(alert.id)] == ["same text"]
    # a different short text is a story of its own
    three = entry("link:c", "https://b.example/3")
    other = "Im Gebiet Kursk haben Drohnen in der Nacht ein Umspannwerk getroffen, berichten Behörden."
    assert record(store, b, [(three, art(three, other), [match("kursk", ("mail",))])]) == 1


def test_a_feed_that_moved_domain_does_not_alert_its_old_stories_however_old(store):
    a, _ = feeds(store)
    old = [entry(f"link:https://old.example/{i}", f"https://old.example/{i}", f"Meldung {i} aus Kursk", f"Text {i}")
           for i in range(3)]
    record(store, a, [(e, None, []) for e in old], now=1000.0, baseline=True)
    moved = [entry(f"link:https://new.example/{i}", f"https://new.example/{i}", f"Meldung {i} aus Kursk",
                   f"Text {i}") for i in range(3)]
    fresh = entry("link:https://new.example/9", "https://new.example/9", "Neue Meldung aus Kursk", "Neu")
    now = 1000.0 + 400 * 86400  # 400 days later: far past the 7-day repost window
    new = store.unseen(a, [*moved, fresh])
    assert len(new) == 4  # new identities: every link changed
    reposts = store.reposts(a, new, since=now - 7 * 86400)
    assert set(reposts) == {e.uid for e in moved}
    assert all("same title and text" in why for why in reposts.values())


def test_migration_groups_the_rules_of_a_story_already_queued(tmp_path: Path):
    """A database of schema 9 (one outbox row per rule) upgrades to one row per story and
    channel; what was delivered stays as it was."""
    path = tmp_path / "old.db"
    con = database_at(path, 9)
    con.execute("INSERT INTO entries (id, feed_id, uid, link, title, first_seen_at) "
                "VALUES (1, 1, 'u1', 'https://a/1', 'Kursk', 0), (2, 1, 'u2', 'https://a/2', 'Sent', 0)")
    for mid, entry_id, rule in [(1, 1, "kursk"), (2, 1, "nk"), (3, 2, "kursk"), (4, 2, "nk")]:
        con.execute("INSERT INTO matches (id, entry_id, rule_id, story, terms, created_at) VALUES (?,?,?,?,'[]',0)",
                    (mid, entry_id, rule, f"https://a/{entry_id}"))
    rows = [(1, "mail", "pending"), (1, "hook", "failed"), (2, "mail", "pending"), (2, "ops", "held"),
            (3, "mail", "sent"), (4, "mail", "sent")]
    for match_id, channel, state in rows:
        con.execute("INSERT INTO outbox (match_id, channel, state, created_at) VALUES (?,?,?,0)",
                    (match_id, channel, state))
    con.close()

    s = Store(path)
    try:
        assert s.version == len(MIGRATIONS)
        got = db_rows(path, "SELECT match_id, channel, state FROM outbox ORDER BY id")
        # nk's mail row joins kursk's; its ops row moves to kursk's match; sent history stays
        assert got == [(1, "mail", "pending"), (1, "hook", "failed"), (1, "ops", "held"),
                       (3, "mail", "sent"), (4, "mail", "sent")]
        assert db_rows(path, "SELECT id, primary_id FROM matches ORDER BY id") == [
            (1, None), (2, 1), (3, None), (4, 3)]
        mail = next(a for a in s.alerts(state="pending") if a.channel == "mail")
        assert [r.rule_id for r in mail.rules] == ["kursk", "nk"]
    finally:
        s.close()


def test_items_sharing_the_home_page_link_are_many_stories():
    items = "".join(
        f"<item><title>Meldung {i}: Lage im Gebiet Kursk</title><link>https://news.example/</link>"
        f"<description>Text der Meldung {i}</description></item>" for i in range(3))
    body = (f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><link>https://news.example/</link>'
            f"<description>d</description>{items}</channel></rss>").encode()
    parsed = parse.parse_bytes(body, "application/rss+xml", "https://news.example/feed")
    assert len({e.uid for e in parsed.entries}) == 3
    assert all(e.shared_link and e.story == e.uid and e.uid.startswith("hash:") for e in parsed.entries)
    # one item linking to the home page alone is caught too; an item's own link stays its identity
    one = body.replace(items.encode(), b"<item><title>X</title><link>https://news.example/</link></item>"
                                       b"<item><title>Y</title><link>https://news.example/y</link></item>")
    x, y = parse.parse_bytes(one, "application/rss+xml", "https://news.example/feed").entries
    assert x.shared_link and not y.shared_link and y.story == "https://news.example/y"


def _dated(hours_ago: float) -> datetime:
    return datetime.now(UTC) - timedelta(hours=hours_ago)


KURSK_TEXT = ("Im Gebiet Kursk gehen die Kämpfe weiter, wie Militärbeobachter am Montag mitteilten. "
              "Die Lage an der Grenze bleibt angespannt.")


def test_shared_link_feed_alerts_each_story_through_the_cli(tmp_path, feed_server, webhook):
    home = feed_server.url("/")
    feed_server.add("/", page("Startseite", ["Nichts über die Themen hier."]), content_type="text/html")

    def serve(items):
        return feed_server.add("/feed.xml", rss([{**it, "link": home} for it in items]))

    url = serve([{"title": "Wetterbericht für das Wochenende", "description": "Sonne."}])
    cfg = write_config(tmp_path, feeds=[url], channels={"hook": [webhook.apprise_url]})
    assert "baseline=1" in run_cli("once", "--config", str(cfg)).stdout
    serve([{"title": f"Kursk, Meldung {i}", "description": f"{KURSK_TEXT} Meldung {i}."} for i in range(2)]
          + [{"title": "Wetterbericht für das Wochenende", "description": "Sonne."}])
    res = run_cli("once", "--config", str(cfg))
    # the weather item's identity moved from the link to its text's hash once the link proved
    # shared: a "new" entry, recognised as the one served before and not alerted
    assert "new=3 alerts=2 sent=2" in res.stdout, res.stdout + res.stderr
    assert "repost, no alert" in res.stderr and "same title and text" in res.stderr
    assert len(webhook.received) == 2
    assert ("/", 200) not in feed_server.answers  # the home page is nobody's article


def test_an_item_served_twice_in_one_poll_is_dropped_with_a_log_line(tmp_path, feed_server, webhook):
    url = feed_server.add("/feed.xml", rss([]))
    cfg = write_config(tmp_path, feeds=[url], channels={"hook": [webhook.apprise_url]})
    run_cli("once", "--config", str(cfg))
    item = {"title": "Kursk: Lage", "link": feed_server.url("/a/1"), "guid": "g-1", "description": KURSK_TEXT}
    feed_server.add("/feed.xml", rss([item, item]))
    res = run_cli("once", "--config", str(cfg))
    assert "new=1" in res.stdout, res.stdout
    assert "item dropped" in res.stderr and "the same item twice in one poll" in res.stderr


def test_first_poll_sends_what_the_last_day_brought_as_one_digest(tmp_path, feed_server, webhook):
    items = [
        {"title": "Kursk: Kämpfe gehen weiter", "link": "/a/recent", "guid": "r", "date": _dated(2),
         "description": KURSK_TEXT},
        {"title": "Kursk: Drohnenangriff auf Umspannwerk", "link": "/a/recent-2", "guid": "r2", "date": _dated(5),
         "description": "Im Gebiet Kursk traf eine Drohne in der Nacht ein Umspannwerk, sagen die Behörden."},
        {"title": "Kursk: Lage vor drei Tagen", "link": "/a/old", "guid": "o", "date": _dated(72),
         "description": KURSK_TEXT},
        {"title": "Wetter: Sonne am Wochenende", "link": "/a/weather", "guid": "w", "date": _dated(1),
         "description": "Der Wetterdienst sagt viel Sonne voraus."},
    ]
    for it in items:
        feed_server.add(it["link"], page(it["title"], [it["description"] * 2]), content_type="text/html")
    url = feed_server.add("/feed.xml", rss([{**it, "link": feed_server.url(it["link"])} for it in items]))
    cfg = write_config(tmp_path, feeds=[url], channels={"hook": [webhook.apprise_url]})

    res = run_cli("once", "--config", str(cfg))
    assert res.returncode == 0, res.stderr
    assert "baseline=1" in res.stdout and "alerts=2" in res.stdout and "sent=1" in res.stdout, res.stdout
    [digest] = webhook.received  # one message, not a burst
    text = json.dumps(digest, ensure_ascii=False)
    assert "Kämpfe gehen weiter" in text and "Drohnenangriff" in text
    assert "vor drei Tagen" not in text  # older than the window: silent baseline
    paths = [p for p, _ in feed_server.log]
    assert "/a/recent" in paths and "/a/weather" in paths and "/a/old" not in paths
    db = tmp_path / "monitor.db"
    assert db_rows(db, "SELECT COUNT(*) FROM articles") == [(3,)]  # history for `rules test`
    assert db_rows(db, "SELECT title, baseline FROM entries ORDER BY id") == [
        ("Kursk: Kämpfe gehen weiter", 0), ("Kursk: Drohnenangriff auf Umspannwerk", 0),
        ("Kursk: Lage vor drei Tagen", 1), ("Wetter: Sonne am Wochenende", 0)]
    again = run_cli("once", "--config", str(cfg))
    assert "sent=0" in again.stdout and len(webhook.received) == 1


def test_first_run_window_zero_keeps_the_old_silent_baseline(tmp_path, feed_server, webhook):
    items = [{"title": "Kursk: Kämpfe gehen weiter", "link": feed_server.url("/a/r"), "guid": "r",
              "date": _dated(1), "description": KURSK_TEXT}]
    url = feed_server.add("/feed.xml", rss(items))
    cfg = write_config(tmp_path, feeds=[url], channels={"hook": [webhook.apprise_url]})
    cfg.write_text(cfg.read_text().replace("[poll]\n", "[poll]\nfirst_run_window = 0\n", 1))
    res = run_cli("once", "--config", str(cfg))
    assert "baseline=1" in res.stdout and "alerts=0" in res.stdout, res.stdout + res.stderr
    assert webhook.received == [] and all(p == "/feed.xml" for p, _ in feed_server.log)


def test_a_feed_that_moves_to_a_new_domain_alerts_only_its_new_story_through_the_cli(tmp_path, feed_server, webhook):
    stories = [{"title": f"Kursk: Lagebericht Nummer {i} aus der Grenzregion", "description": f"{KURSK_TEXT} ({i})"}
               for i in range(3)]

    def serve(host: str, items):
        linked = [{**it, "link": f"https://{host}/a/{i}"} for i, it in enumerate(items)]
        return feed_server.add("/feed.xml", rss(linked))

    url = serve("old.example", stories)  # no guids: every identity is a link
    cfg = write_config(tmp_path, feeds=[url], channels={"hook": [webhook.apprise_url]})
    cfg.write_text(cfg.read_text().replace("[extract]\n", "[extract]\npages = false\n", 1))
    assert "baseline=1" in run_cli("once", "--config", str(cfg)).stdout
    fresh = {"title": "Kursk: eine neue Meldung nach dem Umzug", "description": KURSK_TEXT + " Neu."}
    serve("new.example", [fresh, *stories])  # every link changed
    res = run_cli("once", "--config", str(cfg))
    assert "new=4 alerts=1 sent=1" in res.stdout, res.stdout + res.stderr
    assert res.stderr.count("same title and text as an entry this feed served before") == 3
    [hook] = webhook.received
    assert hook["title"] == fresh["title"]


def test_the_same_short_teaser_at_two_urls_from_two_feeds_alerts_once_through_the_cli(tmp_path, feed_server, webhook):
    teaser = "Nordkoreanische Soldaten sollen im Gebiet Kursk an der Front eingesetzt worden sein."
    a = feed_server.add("/a.xml", rss([]))
    b = feed_server.add("/b.xml", rss([]))
    cfg = write_config(tmp_path, feeds=[a, b], channels={"hook": [webhook.apprise_url]})
    cfg.write_text(cfg.read_text().replace("[extract]\n", "[extract]\npages = false\n", 1))
    assert "baseline=2" in run_cli("once", "--config", str(cfg)).stdout
    feed_server.add("/a.xml", rss([{"title": "Kursk: Nordkoreaner an der Front", "link": "https://a.example/1",
                                    "guid": "a1", "description": teaser}]))
    feed_server.add("/b.xml", rss([{"title": "Berichte: Soldaten aus Nordkorea bei Kursk", "link": "https://b.example/x",
                                    "guid": "b1", "description": teaser}]))
    res = run_cli("once", "--config", str(cfg))
    assert "new=2 alerts=1 sent=1" in res.stdout, res.stdout + res.stderr
    assert len(webhook.received) == 1
    shown = run_cli("alerts", "show", "1", "--config", str(cfg)).stdout
    assert "followups:" in shown and "same text" in shown, shown
