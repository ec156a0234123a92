"""The web console's store queries (issue 18) on a realistic fill: inbox, story, search, and what the
full-text index costs on disk.

    PYTHONPATH=. .venv/bin/python bench/console_store.py [--articles 100000] [--alerts 20000] [--db PATH]

Fills a database through ``Store.record`` (the daemon's own write path, FTS triggers included)
with generated articles in German, English, Russian and Ukrainian (made-up sentences from a
small vocabulary with Zipf-like word frequencies, 120-700 words each, plus entries without an
article), ``--alerts`` stories alerted on one or two channels (some with two rules, some with a
follow-up from a second feed), delivery states and verdicts; then times each query (median and
p95 of 40 runs) and prints the database size with and without the search index (both vacuumed).
An existing ``--db`` is reused (no refill).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from monitor.models import Article, Entry, FeedUpdate, Match  # noqa: E402
from monitor.store import Store  # noqa: E402

WORDS = {
    "de": "der die das und im Gebiet Kursk Angriff Drohnen Regierung Bundeswehr Soldaten Front Kämpfe Behörden "
          "berichten Nacht Stadt Grenze Offensive Ukraine Russland Truppen nordkoreanische Verletzte Strom "
          "Umspannwerk Brücke Flüchtlinge Verhandlungen Minister Präsident Wirtschaft Preise Gas Öl Sanktionen "
          "über für mit gegen nach Wähler Bürgermeister Gemeinde Schule Krankenhaus Straße Zug Flughafen".split(),
    "en": "the and of in region Kursk attack drones government troops soldiers front fighting officials "
          "reported night city border offensive Ukraine Russia North Korean wounded power substation bridge "
          "refugees talks minister president economy prices gas oil sanctions over for with against after "
          "voters mayor council school hospital street train airport ceasefire missile".split(),
    "ru": "и в на Курск область атака беспилотники правительство войска солдаты фронт бои власти сообщили "
          "ночью город граница наступление Украина Россия Северная Корея раненые электричество подстанция мост "
          "беженцы переговоры министр президент экономика цены газ нефть санкции для против после обстрел "
          "ёлка район школа больница улица поезд аэропорт".split(),
    "uk": "і в на Курськ область атака безпілотники уряд війська солдати фронт бої влада повідомили вночі "
          "місто кордон наступ Україна Росія Північна Корея поранені електроенергія підстанція міст біженці "
          "переговори міністр президент економіка ціни газ нафта санкції для проти після обстріл їжак район "
          "школа лікарня вулиця потяг аеропорт".split(),
}
RULES = ["kursk", "north-korean-troops", "drones", "energy", "refugees", "sanctions", "border", "talks"]
QUERIES = [("common de", "Kämpfe Front"), ("common ru", "обстрел"), ("phrase+or", '"North Korean" troops OR войска')]


def sentence(rng: random.Random, lang: str) -> str:
    words = WORDS[lang]
    n = rng.randint(6, 18)
    # Zipf-like: low indexes (function words) are common, the tail is rare
    picked = [words[min(int(rng.paretovariate(1.1)) - 1, len(words) - 1)] if rng.random() < 0.6
              else rng.choice(words) for _ in range(n)]
    picked.append(f"{rng.choice(words)}{rng.randint(1, 50000)}")  # a rare token: names, numbers
    return " ".join(picked).capitalize() + "."


def fill(store: Store, articles: int, alerts: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    store.sync_feeds([(f"https://feed{i}.example/rss", f"Feed {i}", None) for i in range(50)], now=1.0)
    feeds = store.feeds()
    per_poll, now = 100, 1_700_000_000.0
    alert_every = max(1, articles // max(1, alerts))
    n = made = 0
    sources: list[tuple[Entry, str]] = []  # alerted stories a second feed may tell again
    while n < articles:
        feed = feeds[(n // per_poll) % len(feeds)]
        batch = []
        for _ in range(min(per_poll, articles - n)):
            lang = rng.choice(["de", "de", "en", "ru", "uk"])
            title = " ".join(rng.choice(WORDS[lang]) for _ in range(rng.randint(5, 11))).capitalize()
            text = " ".join(sentence(rng, lang) for _ in range(rng.randint(10, 50)))
            link = f"https://{feed.url.split('/')[2]}/a/{n}"
            e = Entry(uid=f"link:{link}", title=title, link=link, summary=text[:200], content="",
                      published="2026-11-02T07:15:00Z", content_hash=f"h{n}")
            matches: list[Match] = []
            if n % alert_every == 0 and made < alerts:
                made += 1
                rules = rng.sample(RULES, 2 if rng.random() < 0.2 else 1)
                channels = ("mail", "slack") if rng.random() < 0.5 else ("mail",)
                matches = [Match(rule_id=r, rule_title=r.title(), terms=("Kursk",), field="body",
                                 snippet=f"… **Kursk** {title[:60]} …", channels=channels) for r in rules]
                if rng.random() < 0.1:
                    sources.append((e, rules[0]))
            elif sources and rng.random() < 0.01:  # a follow-up: the same link via another feed
                first, rule_id = sources.pop()
                e = Entry(uid=f"re:{n}", title=first.title, link=first.link, summary=text[:200], content="",
                          published=first.published, content_hash=f"h{n}")
                matches = [Match(rule_id=rule_id, rule_title=rule_id, terms=("Kursk",), field="body",
                                 snippet="…", channels=("mail",))]
            art = None if rng.random() < 0.05 else Article(title=title, text=text, url=link, language=lang)
            batch.append((e, art, matches))
            n += 1
        store.record(feed, now=now, update=FeedUpdate(last_ok_at=now, last_status="ok"), new=batch, baseline=False)
        now += 600
    con = store.db.conn  # delivery states and verdicts as weeks of use leave them
    con.execute("UPDATE outbox SET state = 'sent', sent_at = created_at + 5 WHERE state = 'pending' AND id % 10 > 1")
    con.execute("UPDATE outbox SET state = 'failed', last_error = 'HTTP 503', attempts = 3 WHERE id % 50 = 1")
    con.execute("UPDATE outbox SET state = 'dead', last_error = 'HTTP 404', dead_at = created_at WHERE id % 97 = 0")
    for (alert_id,) in con.execute("SELECT MIN(id) FROM outbox GROUP BY match_id").fetchall()[::10]:
        store.give_feedback(alert_id, rng.choice(["relevant", "not"]), rng.choice(["ana", "ben"]), now)


def timed(fn, runs: int = 40) -> tuple[float, float]:
    fn()  # warm the page cache
    ms = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t) * 1000)
    ms.sort()
    return statistics.median(ms), ms[int(len(ms) * 0.95) - 1]


def sizes(path: Path) -> tuple[int, int]:
    """Bytes of the database vacuumed, with and without the search index (on a copy)."""
    work = Path(tempfile.mkdtemp()) / "copy.db"
    shutil.copy(path, work)
    con = sqlite3.connect(work, isolation_level=None)
    con.execute("VACUUM")
    with_fts = work.stat().st_size
    for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'search_%'"
                               ).fetchall():
        con.execute(f"DROP TRIGGER {name}")
    con.execute("DROP TABLE search_fts")
    con.execute("VACUUM")
    without = work.stat().st_size
    con.close()
    shutil.rmtree(work.parent)
    return with_fts, without


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--articles", type=int, default=100_000)
    ap.add_argument("--alerts", type=int, default=20_000)
    ap.add_argument("--db", type=Path, default=None, help="keep the database here (reused if it exists)")
    args = ap.parse_args()
    path = args.db or Path(tempfile.mkdtemp()) / "console.db"
    fresh = not path.exists()
    store = Store(path)
    if fresh:
        t = time.perf_counter()
        fill(store, args.articles, args.alerts)
        print(f"filled {args.articles} entries, {args.alerts} stories in {time.perf_counter() - t:.0f} s: {path}")
    counts = {t: store.count(t) for t in ("entries", "articles", "matches", "outbox", "feedback")}
    print("rows:", " ".join(f"{k}={v}" for k, v in counts.items()))
    page = store.inbox(limit=50)
    for _ in range(49):  # the keyset of page 50 (or the last page of a smaller fill)
        page = store.inbox(before=page[-1]["id"], limit=50) or page
    deep = page[0]["id"] + 1
    ids = [r["alert_id"] for r in store.inbox(limit=500)]
    rng = random.Random(1)
    cases = [("inbox", lambda: store.inbox()), ("inbox rule=energy", lambda: store.inbox(rule="energy")),
             ("inbox state=dead", lambda: store.inbox(state="dead")),
             ("inbox page 50", lambda: store.inbox(before=deep)),
             ("story", lambda: store.story(rng.choice(ids)))]
    cases += [(f"search {name} {q!r}", lambda q=q: store.search(q)) for name, q in QUERIES]
    cases.append(("search + rule filter", lambda: store.search("Kursk", rule="energy")))
    for name, fn in cases:
        med, p95 = timed(fn)
        extra = f"  total={fn()['total']}" if name.startswith("search") else ""
        print(f"{name:45} median {med:7.2f} ms  p95 {p95:7.2f} ms{extra}")
    store.close()
    with_fts, without = sizes(path)
    print(f"database {with_fts / 1e6:.1f} MB with the search index, {without / 1e6:.1f} MB without "
          f"(+{(with_fts - without) / 1e6:.1f} MB, {100 * (with_fts - without) / without:.0f}%)")
    print("reproduce: PYTHONPATH=. .venv/bin/python " + " ".join(["bench/console_store.py", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
