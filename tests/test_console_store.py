"""The store side of the web console (issue 18) on a real SQLite file: the inbox (one row per
story, every filter, keyset paging), a story in full from any of its outbox ids, full-text
search (ranking, filters, hostile input, Cyrillic and umlauts) and its index kept in sync by
every writer, paused feeds, channel states, rule stats, users, and migration 17 on old rows."""

from __future__ import annotations

import pytest
from conftest import database_at

from monitor import passwords
from monitor.models import Article, Entry, Feed, FeedUpdate, Match
from monitor.store import MIGRATIONS, Store, UnknownFeed
from monitor.store.search import fts_query

A = "https://a.example/feed.xml"
B = "https://b.example/rss"
T0 = 1_790_000_000.0


@pytest.fixture
def store(database: str):
    s = Store(database)
    yield s
    s.close()


def feeds(store: Store) -> tuple[Feed, Feed]:
    store.sync_feeds([(A, "Feed A", None), (B, "Feed B", None)], now=100.0)
    by_url = {f.url: f for f in store.feeds()}
    return by_url[A], by_url[B]


def entry(n: int | str, title: str, summary: str = "", host: str = "a.example") -> Entry:
    link = f"https://{host}/{n}"
    return Entry(uid=f"link:{link}", guid=None, title=title, link=link, summary=summary or f"Zusammenfassung {n}",
                 content="", published="2026-11-02T07:15:00Z", content_hash=f"h-{n}-{title}")


def match(rule_id: str, channels: tuple[str, ...] = ("mail",), severity: str = "normal") -> Match:
    return Match(rule_id=rule_id, rule_title=f"Rule {rule_id}", terms=("Kursk",), field="body",
                 snippet="… **Kursk** …", channels=channels, severity=severity, context=("Russland",))


def record(store: Store, feed: Feed, items, now: float = T0) -> int:
    update = FeedUpdate(last_ok_at=now, last_status="ok", error_count=0, next_check_at=now + 900)
    return store.record(feed, now=now, update=update, new=items, baseline=False)


def art(e: Entry, text: str, language: str = "de") -> Article:
    return Article(title=e.title, text=text, url=e.link, language=language, author="Autorin")


def stories(store: Store, feed: Feed, n: int, start: float = T0) -> list[int]:
    """n stories of one rule each, a minute apart; their alert ids, oldest first."""
    for i in range(n):
        e = entry(f"s{i}", f"Meldung {i} aus dem Gebiet Kursk")
        record(store, feed, [(e, art(e, f"Text der Meldung {i} über Kursk und anderes {i}"),
                              [match("kursk")])], now=start + 60 * i)
    return [r["alert_id"] for r in reversed(store.inbox(limit=n))]


def fts_ok(store: Store) -> None:
    """The index is what a rebuild from the view makes of it: every term in the same documents,
    as often (FTS5's own 'integrity-check' on SQLite 3.40 does not compare with external content).
    On PostgreSQL: every entry's tsvector is the one its current text makes."""
    if store.dialect == "postgresql":
        assert store.db.execute("SELECT entry_id, tsv::text FROM search_docs ORDER BY 1").fetchall() == \
            store.db.execute("SELECT entry_id, search_vector(title, body)::text FROM search_text ORDER BY 1").fetchall()
        return
    store.db.execute("INSERT INTO search_fts (search_fts) VALUES ('integrity-check')")
    store.db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.search_vocab USING fts5vocab(main, search_fts, instance)")

    def vocab() -> list[tuple]:
        return store.db.execute("SELECT term, doc, col, offset FROM temp.search_vocab ORDER BY 1, 2, 3, 4").fetchall()

    now = vocab()
    store.db.execute("INSERT INTO search_fts (search_fts) VALUES ('rebuild')")
    assert now == vocab()


# -- the inbox ------------------------------------------------------------------------------------
def test_inbox_is_one_row_per_story_with_its_rules_channels_and_followups(store):
    a, b = feeds(store)
    e = entry(1, "Nordkoreanische Soldaten im Gebiet Kursk")
    assert record(store, a, [(e, art(e, "Nordkoreanische Soldaten kämpfen bei Kursk."),
                              [match("kursk", ("mail",)), match("nk", ("mail", "hook"), "urgent")])]) == 2
    other = entry(2, "Stromausfall in Kursk")
    record(store, a, [(other, art(other, "Ein Umspannwerk wurde getroffen."), [match("energy", ("hook",))])],
           now=T0 + 60)
    again = entry("1b", "Nordkoreanische Soldaten im Gebiet Kursk (Agentur)", host="b.example")
    again = Entry(**{**again.__dict__, "link": e.link, "uid": "guid:b1"})  # the same link via feed B
    record(store, b, [(again, art(again, "Dasselbe aus Feed B."), [match("kursk")])], now=T0 + 120)

    rows = store.inbox()
    assert [r["title"] for r in rows] == ["Stromausfall in Kursk", "Nordkoreanische Soldaten im Gebiet Kursk"]
    story = rows[1]
    assert [r["rule_id"] for r in story["rules"]] == ["nk", "kursk"]  # the lead (most severe) first
    assert story["severity"] == "urgent" and story["feed_title"] == "Feed A" and story["language"] == "de"
    assert sorted(d["channel"] for d in story["deliveries"]) == ["hook", "mail"]
    assert story["alert_id"] == min(d["alert_id"] for d in story["deliveries"])
    assert story["followups"] == 1 and story["feedback"] is None
    assert story["snippet"] == "… **Kursk** …" and story["terms"] == ["Kursk"] and story["context"] == ["Russland"]
    assert {d["state"] for d in story["deliveries"]} == {"pending"}


def test_inbox_filters(store):
    a, _ = feeds(store)
    ids = stories(store, a, 4)  # alert ids of stories 0..3 (rule kursk, channel mail)
    e = entry("x", "Drohnen über Kursk")
    record(store, a, [(e, art(e, "Drohnen."), [match("drones", ("hook",)), match("kursk", ("mail",))])],
           now=T0 + 600)
    drones = store.inbox(limit=1)[0]
    store.mark_failed(ids[0], "HTTP 503", T0 + 1000, now=T0 + 900)
    store.mark_dead(ids[1], T0 + 900, "HTTP 404", [])
    assert store.hold(ids[2], "quiet")
    store.give_feedback(ids[3], "relevant", "ana", T0 + 950)
    store.give_feedback(ids[0], "relevant", "ben", T0 + 950)
    store.give_feedback(ids[0], "not", "ben", T0 + 960)  # replaces ben's verdict: the current one counts

    def titles(**kw) -> list[str]:
        return [r["title"][8] if r["title"].startswith("Meldung") else "D" for r in store.inbox(**kw)]

    assert titles() == ["D", "3", "2", "1", "0"]
    assert titles(rule="drones") == ["D"] and titles(rule="kursk") == ["D", "3", "2", "1", "0"]
    assert titles(rule="nope") == []
    assert titles(channel="hook") == ["D"] and titles(channel="mail") == ["D", "3", "2", "1", "0"]
    assert titles(state="failed") == ["0"] and titles(state="dead") == ["1"] and titles(state="held") == ["2"]
    assert titles(state="pending") == ["D", "3"] and titles(state="pending", channel="hook") == ["D"]
    assert titles(state="sent") == []
    assert titles(feedback="relevant") == ["3"] and titles(feedback="not") == ["0"]
    assert titles(feedback="none") == ["D", "2", "1"]
    # a verdict on one rule of the drones story: with a rule filter, that rule's own verdict counts
    assert store.give_feedback(drones["alert_id"], "relevant", "ana", T0 + 970) is not None
    assert store.give_feedback(drones["alert_id"], "not", "ana", T0 + 980, rule="kursk").rules == ("kursk",)
    assert titles(feedback="not") == ["D", "0"]  # the story's latest verdict: the one on kursk
    assert titles(rule="drones", feedback="relevant") == ["D"] and titles(rule="drones", feedback="not") == []
    assert titles(rule="kursk", feedback="not") == ["D", "0"] and titles(rule="kursk", feedback="relevant") == ["3"]
    assert titles(rule="kursk", feedback="none") == ["2", "1"]
    assert titles(since=T0 + 60, until=T0 + 180) == ["2", "1"]
    assert store.inbox(feedback="relevant")[0]["feedback"] == {"verdict": "relevant", "given_by": "ana",
                                                              "at": T0 + 950, "note": None, "only": []}
    drones_now = [r for r in store.inbox(rule="drones")][0]["feedback"]
    assert (drones_now["verdict"], drones_now["only"]) == ("not", ["kursk"])  # said of one of its two rules
    assert drones["deliveries"][0]["channel"] == "hook" and len(drones["rules"]) == 2
    with pytest.raises(ValueError):
        store.inbox(state="bogus")


def test_inbox_pages_by_keyset_before_and_after(store):
    a, _ = feeds(store)
    stories(store, a, 7)
    first = store.inbox(limit=3)
    second = store.inbox(before=first[-1]["id"], limit=3)
    third = store.inbox(before=second[-1]["id"], limit=3)
    ids = [r["id"] for r in first + second + third]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 7 and len(third) == 1
    assert store.inbox(before=third[-1]["id"]) == []
    assert store.inbox(after=first[0]["id"]) == []
    e = entry("new", "Neue Meldung aus Kursk")
    record(store, a, [(e, None, [match("kursk")])], now=T0 + 9999)
    new = store.inbox(after=first[0]["id"])
    assert [r["title"] for r in new] == ["Neue Meldung aus Kursk"]


def test_story_from_a_followup_alert_id_is_the_whole_story(store):
    a, b = feeds(store)
    e = entry(1, "Kämpfe bei Sudscha")
    record(store, a, [(e, art(e, "Kämpfe bei Sudscha im Gebiet Kursk."), [match("kursk", ("mail", "hook"))])])
    again = Entry(**{**entry("b1", "Kämpfe bei Sudscha", host="b.example").__dict__, "link": e.link, "uid": "g:1"})
    record(store, b, [(again, None, [match("kursk")])], now=T0 + 60)
    lead = store.inbox()[0]
    followup_id = max(h["alert_id"] for h in store.story(lead["alert_id"])["history"])
    store.give_feedback(lead["alert_id"], "relevant", "ana", T0 + 100, "gut")
    s = store.story(followup_id)
    assert s["id"] == lead["id"] and s["alert_id"] == lead["alert_id"]
    assert [(h["channel"], h["state"], h["held"], h["followup"]) for h in s["history"]] == [
        ("mail", "pending", None, False), ("hook", "pending", None, False), ("mail", "held", "followup", True)]
    assert [(x["feed_title"], x["delivery"]) for x in s["sources"]] == [
        ("Feed A", ["mail: pending", "hook: pending"]), ("Feed B", ["mail: held"])]  # what became of each
    assert s["article"]["text"] == "Kämpfe bei Sudscha im Gebiet Kursk." and s["article"]["author"] == "Autorin"
    assert s["entry"]["feed_url"] == A and s["entry"]["first_seen_at"] == T0
    assert [(v["verdict"], v["given_by"], v["note"]) for v in s["verdicts"]] == [("relevant", "ana", "gut")]
    assert [(m["rule_id"], m["followup"]) for m in s["matches"]] == [("kursk", False), ("kursk", True)]
    assert s["matches"][0]["features"] == [] and s["followups"] == 1
    assert s["silenced"] == []  # judged relevant: its other sources are told
    store.give_feedback(lead["alert_id"], "not", "ana", T0 + 200)
    assert store.story(followup_id)["silenced"] == ["kursk"]  # ana's "not" replaced her "relevant"
    store.give_feedback(lead["alert_id"], "relevant", "ben", T0 + 300)
    assert store.story(followup_id)["silenced"] == []  # one "relevant" keeps the story told
    assert store.story(987654) is None
    store.sync_feeds([(A, "Feed A", None), (B, "Feed B", None), ("https://c.example/rss", "Feed C", None)], now=T0)
    c = next(f for f in store.feeds() if f.url == "https://c.example/rss")
    third = Entry(**{**entry("c1", "Kämpfe bei Sudscha", host="c.example").__dict__, "link": e.link, "uid": "g:2"})
    store.give_feedback(lead["alert_id"], "not", "ben", T0 + 400)  # judged not relevant: a later source is not sent
    record(store, c, [(third, None, [match("kursk")])], now=T0 + 500)
    assert [x["delivery"] for x in store.story(followup_id)["sources"]] == [
        ["mail: pending", "hook: pending"], ["mail: held"], []]
    row = next(r for r in store.inbox() if r["id"] == lead["id"])
    assert (row["followups"], row["unsent"]) == (2, 1)  # the inbox row: +2 sources, 1 not sent


# -- search ---------------------------------------------------------------------------------------
@pytest.fixture
def corpus(store):
    a, b = feeds(store)
    items = [
        (entry(1, "Kämpfe im Gebiet Kursk"), "Die Armee meldet schwere Gefechte an der Grenze.", [match("kursk")]),
        (entry(2, "Wetterbericht für Bayern"), "Regen, später Kämpfe der Sonne gegen die Wolken in Kursk.", []),
        (entry(3, "Обстрел Курской области"), "Ночью беспилотники атаковали подстанцию под Курском.", [match("ru")]),
        (entry(4, "Україна: обстріл Курщини"), "Вночі їжак перейшов кордон, повідомили військові.", []),
        (entry(5, "North Korean troops near Kursk"), "Officials said troops moved to the front.", []),
    ]
    for n, (e, text, ms) in enumerate(items):
        record(store, a, [(e, art(e, text), ms)], now=T0 + n)
    bare = entry(6, "Nachrichten ohne Artikel", "Kurzmeldung über Sudscha und die Grenze")
    record(store, b, [(bare, None, [])], now=T0 + 10)
    return store


def hit_titles(result: dict) -> list[str]:
    return [h["title"] for h in result["hits"]]


def test_search_ranks_titles_first_and_folds_umlauts_and_cyrillic(corpus):
    res = corpus.search("Kämpfe")
    assert res["total"] == 2 and hit_titles(res) == ["Kämpfe im Gebiet Kursk", "Wetterbericht für Bayern"]
    assert hit_titles(corpus.search("kampfe")) == hit_titles(res)  # remove_diacritics 2
    top = res["hits"][0]
    assert top["snippet"].count("**") == 2 and "**Kämpfe**" in top["snippet"]
    assert top["alert_id"] == corpus.inbox()[-1]["alert_id"] and top["rules"] == ["kursk"]
    assert res["hits"][1]["alert_id"] is None and res["hits"][1]["rules"] == []
    assert hit_titles(corpus.search("курском")) == ["Обстрел Курской области"]
    assert hit_titles(corpus.search("Курск*")) == ["Обстрел Курской области"]
    assert hit_titles(corpus.search("обстріл")) == ["Україна: обстріл Курщини"]
    assert hit_titles(corpus.search("Sudscha")) == ["Nachrichten ohne Artikel"]  # an entry's summary
    assert hit_titles(corpus.search('"North Korean" troops')) == ["North Korean troops near Kursk"]
    assert hit_titles(corpus.search('"Korean North"')) == []
    assert set(hit_titles(corpus.search("Bayern OR Sudscha"))) == {"Wetterbericht für Bayern",
                                                                    "Nachrichten ohne Artikel"}
    assert hit_titles(corpus.search("Kursk -Wetterbericht -troops")) == ["Kämpfe im Gebiet Kursk"]
    paged = corpus.search("Kursk", limit=1, offset=1)
    assert paged["total"] == 3 and len(paged["hits"]) == 1


def test_search_filters_by_the_story_alert(corpus):
    assert hit_titles(corpus.search("Kursk", rule="kursk")) == ["Kämpfe im Gebiet Kursk"]
    assert corpus.search("Kursk", rule="ru")["total"] == 0
    assert hit_titles(corpus.search("Курском", channel="mail")) == ["Обстрел Курской области"]
    assert corpus.search("Kursk", channel="hook")["total"] == 0
    assert corpus.search("Kursk", state="pending")["total"] == 1 and corpus.search("Kursk", state="sent")["total"] == 0
    alert = corpus.search("Kämpfe", rule="kursk")["hits"][0]["alert_id"]
    corpus.give_feedback(alert, "not", "ana", T0 + 50)
    assert corpus.search("Kämpfe", feedback="not")["total"] == 1
    assert corpus.search("Kämpfe", feedback="relevant")["total"] == 0


@pytest.mark.parametrize("q", ['"unbalanced', "NEAR(", "*", "-", "AND OR", "OR", "NOT", '""', "(", ")", "^",
                               "title:Kursk", "Kursk)", "a\"b\"c", "-*", "**", "'", "Kursk AND", "NEAR(Kursk, 2)",
                               "\x00", "Kursk\tOR\nBayern", "🙂", "+Kursk", "Kursk:*", "{title body}: x"])
def test_hostile_queries_never_raise(corpus, q):
    res = corpus.search(q)
    assert isinstance(res["total"], int) and len(res["hits"]) <= res["total"]


def test_the_query_translation():
    assert fts_query("") is None and fts_query("  * - ") is None and fts_query("-war") is None
    assert fts_query('Kursk "North Korean" nord*') == '"Kursk" AND "North Korean" AND "nord" *'
    assert fts_query("a OR b c") == '("a" OR "b") AND "c"'
    assert fts_query("AND OR") == '"AND" AND "OR"'
    assert fts_query('peace -war "unbalanced') == '("peace" AND " unbalanced") NOT ("war")'


def test_the_index_follows_every_writer(store, tmp_path):
    a, b = feeds(store)
    e = entry(1, "Brücke bei Rylsk zerstört", "Kurzfassung Rylsk")
    record(store, a, [(e, None, [])], now=T0)
    assert store.search("Kurzfassung")["total"] == 1
    fts_ok(store)
    # an edit of a known entry (record's ``edited``) replaces its indexed text
    edited = Entry(**{**e.__dict__, "summary": "Neue Fassung Lgov", "content_hash": "h2"})
    store.record(a, now=T0 + 1, update=FeedUpdate(), new=[], baseline=False, edited=[edited])
    assert store.search("Kurzfassung")["total"] == 0 and store.search("Lgov")["total"] == 1
    # an article arriving for an entry replaces the entry's text by the article's
    f = entry(2, "Angriff auf Oboyan")
    record(store, a, [(f, art(f, "Der Artikeltext nennt Fatezh."), [match("kursk")])], now=T0 + 2)
    assert store.search("Fatezh")["total"] == 1 and store.search("Zusammenfassung")["total"] == 0
    fts_ok(store)
    # retention: the article goes (its alert was sent), then the entry becomes a tombstone
    store.mark_sent(store.inbox()[0]["alert_id"], T0 + 3)
    pruned = store.prune(T0 + 400 * 86400, 30 * 86400)
    assert pruned.articles == 1 and pruned.entries == 2
    assert store.search("Fatezh")["total"] == 0 and store.search("Lgov")["total"] == 0
    fts_ok(store)
    # a feed deleted with its entries (ON DELETE CASCADE) leaves nothing in the index
    g = entry(3, "Meldung aus Feed B", host="b.example")
    record(store, b, [(g, art(g, "Text aus Kurchatov."), [])], now=T0 + 5)
    assert store.search("Kurchatov")["total"] == 1
    store.db.execute("DELETE FROM feeds WHERE id = ?", [b.id])
    assert store.search("Kurchatov")["total"] == 0
    fts_ok(store)


def test_the_integrity_check_notices_an_index_out_of_sync(store):
    """fts_ok above can fail: text changed behind the triggers' back is found."""
    a, _ = feeds(store)
    e = entry(1, "Kursk")
    record(store, a, [(e, art(e, "Erster Text"), [])])
    if store.dialect == "postgresql":
        store.db.execute("ALTER TABLE articles DISABLE TRIGGER search_articles")
    else:
        store.db.execute("DROP TRIGGER search_article_bu")
    store.db.execute("UPDATE articles SET text = 'ganz anders'")
    with pytest.raises(AssertionError):
        fts_ok(store)


def test_migration_17_indexes_what_is_already_stored(tmp_path):
    path = tmp_path / "old.db"
    con = database_at(path, 15)
    con.execute("INSERT INTO entries (id, feed_id, uid, link, title, summary, first_seen_at) VALUES "
                "(1, 1, 'u1', 'https://a/1', 'Alte Meldung', 'über Glushkovo', 0), "
                "(2, 1, 'u2', 'https://a/2', 'Mit Artikel', 'Teaser', 0), (3, 1, 'u3', NULL, NULL, NULL, 0)")
    con.execute("INSERT INTO articles (entry_id, title, text, source, extracted_at) "
                "VALUES (2, '', 'Volltext über Korenevo', 'page', 0)")
    con.close()
    store = Store(path)
    try:
        assert store.version == len(MIGRATIONS)
        assert hit_titles(store.search("Glushkovo")) == ["Alte Meldung"]
        assert hit_titles(store.search("Korenevo")) == ["Mit Artikel"]  # an empty article title: the entry's
        assert store.search("Teaser")["total"] == 0  # the article's text stands for the entry's summary
        fts_ok(store)
        assert store.user_count() == 0 and store.feed_table()[0]["paused_at"] is None
    finally:
        store.close()


def test_paused_feeds_are_never_due_nor_claimed_and_sync_keeps_them_paused(store):
    a, b = feeds(store)
    assert store.pause_feed(A, True, now=500.0) == A
    assert [f.url for f in store.feeds(due_at=1000.0)] == [B]
    assert [f.url for f in store.claim_feeds(owner="me", now=1000.0, lease=60)] == [B]
    assert [f.url for f in store.claim_feeds(owner="me2", now=1010.0, lease=60, due=False)] == []  # B leased, A paused
    store.sync_feeds([(A, "Feed A", None), (B, "Feed B", None)], now=2000.0)
    rows = {r["url"]: r for r in store.feed_table()}
    assert rows[A]["paused_at"] == 500.0 and rows[B]["paused_at"] is None
    assert store.pause_feed(str(a.id), False, now=3000.0) == A
    assert A in [f.url for f in store.feeds(due_at=3000.0)]
    with pytest.raises(UnknownFeed):
        store.pause_feed("https://nowhere.example/", True, now=1.0)


def test_channel_states_and_rule_stats(store):
    a, _ = feeds(store)
    e1, e2, e3 = entry(1, "Eins Kursk"), entry(2, "Zwei Kursk"), entry(3, "Drei Kursk")
    record(store, a, [(e1, None, [match("kursk", ("mail", "hook")), match("nk", ("mail",))])], now=T0)
    record(store, a, [(e2, None, [match("kursk", ("mail",))])], now=T0 + 100)
    record(store, a, [(e3, None, [match("energy", ("hook",))])], now=T0 + 200)
    rows = {d["channel"]: d["alert_id"] for r in store.inbox() for d in r["deliveries"] if r["title"] == "Eins Kursk"}
    store.mark_sent(rows["mail"], T0 + 10)
    store.mark_failed(rows["hook"], "HTTP 502", T0 + 60, now=T0 + 20)
    states = {s["channel"]: s for s in store.channel_states()}
    assert states["mail"] | {} == {"channel": "mail", "pending": 1, "sending": 0, "sent": 1, "failed": 0, "dead": 0,
                                   "held": 0, "digest": 0, "last_sent_at": T0 + 10, "last_error": None,
                                   "last_error_at": None}
    assert (states["hook"]["failed"], states["hook"]["pending"]) == (1, 1)
    assert (states["hook"]["last_error"], states["hook"]["last_error_at"]) == ("HTTP 502", T0 + 20)
    store.give_feedback(rows["mail"], "relevant", "ana", T0 + 300)
    store.give_feedback(rows["mail"], "not", "ben", T0 + 300)
    stats = store.rule_stats(since=T0 + 50)
    assert stats["kursk"] == {"alerts": 1, "alerts_total": 2, "relevant": 1, "not": 1, "last_alert_at": T0 + 100}
    assert stats["nk"] == {"alerts": 0, "alerts_total": 1, "relevant": 1, "not": 1, "last_alert_at": T0}
    assert stats["energy"]["alerts"] == 1 and stats["energy"]["relevant"] == 0


def test_noisy_sources_are_the_feeds_whose_stories_a_rule_keeps_being_judged_not_relevant_for(store):
    a, b = feeds(store)
    ids = {}
    for n, (feed, rules) in enumerate([(a, ("kursk", "nk")), (a, ("kursk",)), (a, ("kursk",)), (b, ("kursk",)),
                                       (b, ("kursk",))]):
        e = entry(n, f"Story {n} Kursk", host="a.example" if feed is a else "b.example")
        record(store, feed, [(e, None, [match(r) for r in rules])], now=T0 + n)
        ids[n] = next(r["alert_id"] for r in store.inbox() if r["title"] == f"Story {n} Kursk")
    assert store.noisy_sources() == {}
    store.give_feedback(ids[0], "not", "ana", T0 + 100)  # both rules of story 0
    store.give_feedback(ids[0], "not", "ben", T0 + 100)  # a second person: still one story
    store.give_feedback(ids[1], "not", "ana", T0 + 100)
    store.give_feedback(ids[2], "relevant", "ana", T0 + 100)
    store.give_feedback(ids[3], "not", "ana", T0 + 100)  # feed B: one story only, below NOISY_AT
    store.give_feedback(ids[4], "relevant", "ana", T0 + 100)
    assert store.noisy_sources() == {"kursk": [{"feed_id": a.id, "feed": "Feed A", "url": A, "not": 2, "relevant": 1}]}
    store.give_feedback(ids[0], "relevant", "ana", T0 + 200, rule="kursk")  # ana changes her mind on kursk
    assert store.noisy_sources("kursk") == {}  # ben's "not" stands: story 0 counts both ways, 2 and 2
    store.give_feedback(ids[2], "not", "ana", T0 + 300)  # replaces her "relevant" on story 2
    assert store.noisy_sources("kursk")["kursk"][0] | {} == {"feed_id": a.id, "feed": "Feed A", "url": A,
                                                            "not": 3, "relevant": 1}
    assert store.noisy_sources("nk") == {}  # one story judged for nk


def test_users_in_the_store(store):
    assert store.user_count() == 0
    assert store.add_user("Ana", "editor", "h1", 1.0) and not store.add_user("ana", "viewer", "h2", 2.0)
    assert store.user("ANA") == {"name": "Ana", "role": "editor", "password_hash": "h1", "created_at": 1.0,
                                 "updated_at": 1.0}
    assert store.set_role("ana", "viewer", 3.0) and store.set_password("ana", "h3", 4.0)
    assert store.users() == [{"name": "Ana", "role": "viewer", "created_at": 1.0, "updated_at": 4.0}]
    assert not store.set_role("nobody", "viewer", 5.0) and not store.set_password("nobody", "h", 5.0)
    with pytest.raises(ValueError):
        store.add_user("ben", "admin", "h", 1.0)
    assert store.remove_user("ana") and not store.remove_user("ana") and store.user("ana") is None


def test_passwords():
    hashed = passwords.hash_password("correct horse")
    assert hashed.startswith("$argon2id$") and "correct" not in hashed
    assert passwords.verify(hashed, "correct horse") and not passwords.verify(hashed, "wrong horse")
    for junk in ("", "plain", "$argon2id$v=19$m=1", "$2b$12$abc"):
        assert not passwords.verify(junk, "correct horse")
        assert passwords.needs_rehash(junk)
    assert not passwords.needs_rehash(hashed)
    assert passwords.verify_user({"password_hash": hashed}, "correct horse")
    assert not passwords.verify_user(None, "correct horse")
    assert not passwords.verify_user({"password_hash": hashed}, "nope")


def test_a_story_that_did_not_alert_is_judged_through_its_match(store):
    """'This should have alerted': a verdict on a match stored only (no outbox row) records
    with no alert, reaches the rule's learner, and shows on the search hit; on a story that did
    alert, judging its match is judging its alert."""
    from dataclasses import replace

    feed, _ = feeds(store)
    quiet = entry("q", "Wetterbericht mit einem Satz zu Kursk")
    loud = entry("l", "Kämpfe im Gebiet Kursk")
    record(store, feed, [(quiet, art(quiet, "Sonne in Bayern, Regen bei Kursk."),
                          [replace(match("kursk"), tier="store", salience=0.1)]),
                         (loud, art(loud, "Im Gebiet Kursk dauern die Kämpfe an."), [match("kursk")])])
    hits = {h["title"]: h for h in store.search("Kursk")["hits"]}
    q, lo = hits[quiet.title], hits[loud.title]
    assert (q["alert_id"], q["rules"], q["verdict"]) == (None, ["kursk"], None) and q["match_id"]
    assert lo["alert_id"] is not None and lo["match_id"] != q["match_id"]

    given = store.judge_match(q["match_id"], "relevant", "ana", T0 + 10, "a real story")
    assert (given.outcome, given.alert_id, given.rules) == ("recorded", None, ("kursk",))
    assert store.db.execute("SELECT alert_id, via, note FROM feedback").fetchall() == [(None, "cli", "a real story")]
    assert {h["title"]: h["verdict"] for h in store.search("Kursk")["hits"]} == {quiet.title: "relevant",
                                                                                 loud.title: None}
    assert [(f.match_id, f.verdict) for f in store.feedback_for_rule("kursk")] == [(q["match_id"], "relevant")]
    assert [(j.match_id, j.verdicts, j.salience) for j in store.judged("kursk")] == \
        [(q["match_id"], (("relevant", T0 + 10),), 0.1)]
    again = store.judge_match(q["match_id"], "not", "ana", T0 + 20)
    assert (again.outcome, again.earlier) == ("replaced", "relevant")

    on_alert = store.judge_match(lo["match_id"], "not", "ben", T0 + 30)
    assert on_alert.alert_id == lo["alert_id"]
    assert [(v.verdict, v.given_by) for v in store.feedback(lo["alert_id"])] == [("not", "ben")]
    assert store.judge_match(10**9, "not", "ana", T0) is None


def test_migration_18_keeps_every_verdict_and_its_rules(tmp_path):
    path = tmp_path / "old.db"
    con = database_at(path, 17)
    con.execute("INSERT INTO entries (id, feed_id, uid, link, title, summary, first_seen_at) "
                "VALUES (1, 1, 'u1', 'https://a/1', 'Kursk', 'x', 0)")
    con.execute("INSERT INTO matches (id, entry_id, rule_id, rule_title, story, terms, field, snippet, created_at) "
                "VALUES (7, 1, 'kursk', 'Kursk', 's1', '[]', 'title', '', 0)")
    con.execute("INSERT INTO feedback (id, story, match_id, alert_id, verdict, given_by, via, note, created_at, "
                "replaced_at) VALUES (3, 's1', 7, 5, 'not', 'ana', 'cli', 'noise', 10, NULL), "
                "(2, 's1', 7, 5, 'relevant', 'ana', 'link', NULL, 5, 10)")
    con.execute("INSERT INTO feedback_rules (feedback_id, rule_id, match_id) VALUES (3, 'kursk', 7), (2, 'kursk', 7)")
    con.close()
    store = Store(path)
    try:
        assert store.version == len(MIGRATIONS)
        assert store.db.execute("SELECT id, alert_id, verdict, replaced_at FROM feedback ORDER BY id").fetchall() == \
            [(2, 5, "relevant", 10.0), (3, 5, "not", None)]
        kept = "SELECT feedback_id, rule_id, match_id, verdict FROM feedback_rules ORDER BY feedback_id"
        assert store.db.execute(kept).fetchall() == [(2, "kursk", 7, None), (3, "kursk", 7, None)]
        assert [(f.match_id, f.verdict) for f in store.feedback_for_rule("kursk")] == [(7, "not")]
        assert store.db.execute("PRAGMA foreign_key_check").fetchall() == []
        store.db.execute("DELETE FROM feedback WHERE id = 3")  # the cascade still holds
        assert store.db.execute("SELECT feedback_id FROM feedback_rules").fetchall() == [(2,)]
    finally:
        store.close()
