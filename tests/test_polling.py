"""Polling that is polite and adaptive (issue 3), against the loopback feed server: the daemon's
own pipeline, store and dispatcher on a real SQLite file, feeds parsed in a real worker."""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
from conftest import LOOPBACK_NETS, RULES, Clock, db_rows, rss

from monitor import config, daemon, dispatch, pipeline, schedule
from monitor.delivery import Sender
from monitor.fetch import Client, Limits
from monitor.store import Store
from monitor.store.aio import AsyncStore
from monitor.workers import Pool

KURSK = {"title": "Ukrainische Truppen rücken im Gebiet Kursk vor", "link": "http://example.org/kursk",
         "guid": "kursk-1", "description": "Die Lage im Gebiet Kursk bleibt angespannt."}
OLD = [{"title": f"Wetterbericht {i}", "link": f"http://example.org/w{i}", "guid": f"w{i}"} for i in range(3)]


async def deliver(ctx: pipeline.Context) -> tuple[int, int]:
    """One delivery pass over the outbox and the ops notices, as ``monitor once`` makes."""
    sender = Sender(ctx.db, ctx.notifier, ctx.config.notify, clock=ctx.clock)
    try:
        return await sender.deliver()
    finally:
        sender.close()


@pytest.fixture(scope="module")
def pool():
    p = Pool(1, preload=("monitor.parse",))
    yield p
    p.close()


class CountingPool:
    """The real pool, counting what it is handed (to prove what never reaches the parser)."""

    def __init__(self, pool: Pool):
        self.pool, self.calls = pool, []

    async def run(self, fn, *args, timeout):
        self.calls.append(fn.__name__)
        return await self.pool.run(fn, *args, timeout=timeout)


def write(tmp_path, *, poll: str = "", channels: str = "", feeds: str = "") -> config.Config:
    settings = {"interval": "60", "min_interval": "30", "max_interval": "120"}
    for line in poll.splitlines():  # "key = value" lines override the defaults above
        key, value = line.split("=", 1)
        settings[key.strip()] = value.strip()
    poll = "\n".join(f"{k} = {v}" for k, v in settings.items())
    path = tmp_path / "config.toml"
    path.write_text(f"""
[monitor]
database = "{tmp_path / 'monitor.db'}"
rules = "{RULES}"
[poll]
{poll}
[fetch]
timeout = 10
allow_private = {LOOPBACK_NETS!r}
[extract]
pages = false
timeout = 20
[notify]
default_channels = ["console"]
ops_channels = ["ops"]
retry = 0.05
max_retry = 0.1
[channels.console]
urls = ["log://"]
{channels or '[channels.ops]' + chr(10) + 'urls = ["log://"]'}
{feeds}
""", encoding="utf-8")
    return config.load(path)


@asynccontextmanager
async def context(cfg: config.Config, pool: Pool, clock=time.time):
    store = Store(cfg.database)
    notifier = daemon.notifier_for(cfg)
    store.sync_feeds([(f.url, f.title, f.interval, tuple(f.tags)) for f in cfg.feeds], time.time())
    limits = Limits(timeout=cfg.fetch.timeout, concurrency=cfg.poll.concurrency, per_host=cfg.poll.per_host,
                    allow_private=tuple(cfg.fetch.allow_private))
    db = AsyncStore(store)
    try:
        async with Client(limits) as http:
            yield pipeline.Context(cfg, db, http, CountingPool(pool), notifier,  # type: ignore[arg-type]
                                   daemon.load_rules(cfg, notifier), clock=clock)
    finally:
        db.close()


def add(ctx: pipeline.Context, *urls: str) -> None:
    ctx.db.store.add_feeds([(u, None, None, ()) for u in urls], time.time())


def feed(ctx: pipeline.Context, url: str):
    return next(f for f in ctx.db.store.feeds(default_interval=ctx.config.poll.interval)
                if url in (f.url, f.source_url))


def row(ctx: pipeline.Context, url: str) -> dict:
    return next(r for r in ctx.db.store.feed_table() if url in (r["url"], r["source_url"]))


async def poll(ctx: pipeline.Context, url: str) -> pipeline.Outcome:
    return await pipeline.poll(ctx, feed(ctx, url))


def heal(server, path: str) -> None:
    res = server.resources[path]
    res.status, res.body = 200, rss(OLD).encode()


def wait_of(r: dict) -> float:
    return r["next_check_at"] - r["last_polled_at"]


def test_unchanged_feed_never_reaches_the_parser_304_or_same_body(tmp_path, feed_server, pool):
    etag = feed_server.add("/etag.xml", rss(OLD))
    plain = feed_server.add("/plain.xml", rss(OLD), etag=False)

    async def go():
        async with context(write(tmp_path), pool) as ctx:
            add(ctx, etag, plain)
            first = [(await poll(ctx, u)).status for u in (etag, plain)]
            parsed = len(ctx.pool.calls)
            second = [(await poll(ctx, u)).status for u in (etag, plain)]
            return first, second, parsed, len(ctx.pool.calls), row(ctx, etag), row(ctx, plain)

    first, second, parsed_before, parsed_after, r_etag, r_plain = asyncio.run(go())
    assert first == ["baseline", "baseline"] and second == ["not-modified", "not-modified"]
    assert parsed_before == parsed_after == 2  # the second round parsed nothing
    assert feed_server.answers.count(("/etag.xml", 304)) == 1  # conditional GET
    assert feed_server.answers.count(("/plain.xml", 200)) == 2  # body hash
    assert r_etag["last_status"] == r_plain["last_status"] == "not-modified"


def test_a_poll_that_changed_nothing_logs_at_debug_one_that_found_something_at_info(tmp_path, feed_server, pool,
                                                                                      caplog):
    """The poll's line: INFO for a baseline, new entries and errors; DEBUG for a 304, the same
    body, and a changed body with nothing new (a journal of 10,000 feeds' unchanged polls is
    a million lines a day)."""
    url = feed_server.add("/feed.xml", rss(OLD))
    broken = feed_server.add("/broken.xml", b"gone", status=500)
    story = {"title": "Hochwasser am Rhein", "link": "http://example.org/hw", "guid": "hw"}

    async def go():
        async with context(write(tmp_path), pool) as ctx:
            add(ctx, url, broken)
            out = [await poll(ctx, url)]  # baseline
            out.append(await poll(ctx, url))  # 304
            feed_server.add("/feed.xml", rss(list(reversed(OLD))))  # another body, the same entries
            out.append(await poll(ctx, url))
            feed_server.add("/feed.xml", rss([story, *OLD]))
            out.append(await poll(ctx, url))  # a new entry
            out.append(await poll(ctx, broken))
            return out

    with caplog.at_level("DEBUG", logger="monitor.pipeline"):
        outs = asyncio.run(go())
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.getMessage().startswith("polled ")]
    assert [(o.status, o.new) for o in outs] == [("baseline", 3), ("not-modified", 0), ("ok", 0), ("ok", 1),
                                                 ("error", 0)]
    assert [level for level, _ in lines] == ["INFO", "DEBUG", "DEBUG", "INFO", "INFO"], lines
    assert all(f"status={o.status} new={o.new} " in msg for o, (_l, msg) in zip(outs, lines, strict=True))


def test_429_with_retry_after_holds_the_feed_back_at_least_that_long(tmp_path, feed_server, pool):
    limited = feed_server.add("/limited.xml", b"slow down", status=429, headers={"Retry-After": "600"})
    unavailable = feed_server.add("/busy.xml", b"later", status=503, headers={"Retry-After": "400"})

    async def go():
        async with context(write(tmp_path), pool) as ctx:
            add(ctx, limited, unavailable)
            outs = [await poll(ctx, u) for u in (limited, unavailable)]
            return outs, row(ctx, limited), row(ctx, unavailable)

    outs, r429, r503 = asyncio.run(go())
    assert [o.error.split(":")[0] for o in outs] == ["http-429", "http-5xx"]
    assert r429["last_error_kind"] == "http-429" and 600 <= wait_of(r429) <= 601
    assert r503["last_error_kind"] == "http-5xx" and 400 <= wait_of(r503) <= 401  # not the 60 s backoff


def test_errors_back_off_exponentially_to_the_cap_and_polling_never_stops(tmp_path, feed_server, pool):
    down = feed_server.add("/down.xml", b"oops", status=500)

    async def go():
        async with context(write(tmp_path, poll="max_backoff = 200"), pool) as ctx:
            add(ctx, down)
            waits = []
            for _ in range(6):
                await poll(ctx, down)
                waits.append(wait_of(row(ctx, down)))
            return waits, row(ctx, down)

    waits, r = asyncio.run(go())
    for got, expected in zip(waits, [60, 120, 200, 200, 200, 200], strict=True):
        assert expected * 0.9 <= got <= expected * 1.1, waits
    assert r["error_count"] == 6 and r["active"] == 1 and r["last_error_kind"] == "http-5xx"


def test_301_updates_the_stored_url_and_302_does_not(tmp_path, feed_server, pool):
    new = feed_server.add("/new.xml", rss(OLD))
    feed_server.add("/moved.xml", b"", status=301, headers={"Location": new})
    feed_server.add("/elsewhere.xml", rss(OLD))
    feed_server.add("/tmp.xml", b"", status=302, headers={"Location": feed_server.url("/elsewhere.xml")})
    moved, temporary = feed_server.url("/moved.xml"), feed_server.url("/tmp.xml")

    async def go():
        async with context(write(tmp_path, feeds=f'[[feeds]]\nurl = "{moved}"'), pool) as ctx:
            add(ctx, temporary)
            await poll(ctx, moved)
            await poll(ctx, temporary)
            feed_server.log.clear()
            assert (await poll(ctx, moved)).status == "not-modified"
            ctx.db.store.sync_feeds([(moved, "", None)], time.time())  # the config still says /moved.xml
            return row(ctx, moved), row(ctx, temporary), ctx.db.store.active_feeds()

    r_moved, r_tmp, active = asyncio.run(go())
    assert (r_moved["url"], r_moved["source_url"], r_moved["moved_from"]) == (new, moved, moved)
    assert [p for p, _ in feed_server.log] == ["/new.xml"]  # asked at its new address directly
    assert r_tmp["url"] == temporary and r_tmp["moved_from"] is None
    assert active == 2  # the config's old address found its row: no duplicate feed


def test_410_marks_the_feed_gone_with_one_ops_alert_and_it_can_come_back(tmp_path, feed_server, webhook, pool):
    url = feed_server.add("/gone.xml", b"gone", status=410)
    ops = f'[channels.ops]\nurls = ["{webhook.apprise_url}"]'

    async def go():
        async with context(write(tmp_path, poll="max_backoff = 5000", channels=ops), pool) as ctx:
            add(ctx, url)
            await poll(ctx, url)
            await poll(ctx, url)
            r = row(ctx, url)
            sent = await deliver(ctx)
            heal(feed_server, "/gone.xml")
            await poll(ctx, url)
            await deliver(ctx)
            return r, sent, row(ctx, url)

    gone, sent, back = asyncio.run(go())
    assert gone["last_error_kind"] == "http-410" and gone["gone_at"] is not None
    assert schedule.status(gone=True, now=time.time()) == "gone"
    assert 4500 <= wait_of(gone) <= 5500  # still tried, at the cap
    assert sent == (1, 0)  # one ops alert for two 410s
    titles = [m["title"] for m in webhook.received]
    assert titles[0].startswith("Feed gone:") and titles[1].startswith("Feed recovered:") and len(titles) == 2
    assert back["gone_at"] is None and back["error_count"] == 0


def test_failing_feed_raises_one_ops_alert_and_one_when_it_recovers(tmp_path, feed_server, webhook, pool):
    url = feed_server.add("/flaky.xml", b"down", status=503)
    ops = f'[channels.ops]\nurls = ["{webhook.apprise_url}"]'
    clock = Clock()

    async def go():
        async with context(write(tmp_path, poll="failing_alert_after = 3600", channels=ops), pool, clock) as ctx:
            add(ctx, url)
            await poll(ctx, url)  # failing, but not for long yet
            clock.advance(3599)
            await poll(ctx, url)
            early = db_rows(ctx.config.database, "SELECT COUNT(*) FROM notices")[0][0]
            clock.advance(1)  # an hour since the first failure
            for _ in range(3):
                await poll(ctx, url)
            await deliver(ctx)
            heal(feed_server, "/flaky.xml")
            await poll(ctx, url)
            await poll(ctx, url)
            await deliver(ctx)
            return early

    assert asyncio.run(go()) == 0
    kinds = [m["title"].split(":")[0] for m in webhook.received]
    assert kinds == ["Feed failing", "Feed recovered"]
    assert "http-5xx: HTTP 503" in webhook.received[0]["message"]
    assert "Failing for 60 minutes (3 attempts)" in webhook.received[0]["message"]


def test_per_host_limit_is_observed_at_the_server(tmp_path, feed_server, pool):
    urls = [feed_server.add(f"/a{i}.xml", rss(OLD), delay=0.3) for i in range(6)]
    urls += [feed_server.add(f"/b{i}.xml", rss(OLD), delay=0.3, host="localhost") for i in range(6)]

    async def go():
        async with context(write(tmp_path, poll="concurrency = 10\nper_host = 2"), pool) as ctx:
            add(ctx, *urls)
            return await dispatch.poll_all(ctx, ctx.db.store.feeds())

    outcomes = asyncio.run(go())
    assert sorted(o.status for o in outcomes) == ["baseline"] * 12
    assert feed_server.peak["127.0.0.1"] == 2 and feed_server.peak["localhost"] == 2
    assert feed_server.peak["*"] >= 3  # the two hosts were polled side by side


def test_429s_from_several_feeds_of_a_host_throttle_the_host_only(tmp_path, feed_server, pool):
    limited = [feed_server.add(f"/l{i}.xml", b"no", status=429, headers={"Retry-After": "30"}) for i in range(3)]
    healthy = feed_server.add("/healthy.xml", rss(OLD))
    other = feed_server.add("/other.xml", rss(OLD), host="localhost")
    clock, throttle = Clock(), dispatch.HostThrottle()

    async def go():
        async with context(write(tmp_path), pool, clock) as ctx:
            add(ctx, *limited, healthy, other)
            await dispatch.poll_all(ctx, [feed(ctx, limited[0])], throttle)
            await dispatch.poll_all(ctx, [feed(ctx, limited[1])], throttle)
            after_two = dict(throttle.until), row(ctx, healthy)["next_check_at"]
            await dispatch.poll_all(ctx, [feed(ctx, limited[2])], throttle)
            feed_server.log.clear()
            await dispatch.poll_all(ctx, [feed(ctx, healthy), feed(ctx, other)], throttle)
            return after_two, dict(throttle.until), row(ctx, healthy), row(ctx, other)

    (throttled_after_two, healthy_next_after_two), throttled, r_healthy, r_other = asyncio.run(go())
    assert throttled_after_two == {} and healthy_next_after_two == 0  # one URL's 429s slow that URL only
    assert throttled == {"127.0.0.1": clock.now + dispatch.HOST_PAUSE}  # the longest of pause and Retry-After
    assert clock.now + 300 <= r_healthy["next_check_at"] <= clock.now + 330  # spread over a tenth of the wait
    assert r_healthy["last_polled_at"] is None
    assert [p for p, _ in feed_server.log] == ["/other.xml"] and r_other["last_status"] == "ok"


def test_host_throttle_counts_distinct_feeds_within_the_window_and_honours_retry_after():
    t = dispatch.HostThrottle()
    assert t.strike("h", "/a", 0.0, None, cap=21600) is None
    assert t.strike("h", "/a", 10.0, None, cap=21600) is None  # the same feed twice is one strike
    assert t.strike("h", "/b", 200.0, None, cap=21600) is None
    assert t.strike("h", "/c", 700.0, 900.0, cap=21600) is None  # /a's 429 is past the window
    assert not t.throttled("h", 700.0)
    assert t.strike("h", "/d", 710.0, None, cap=21600) == 900.0  # the longest Retry-After
    assert t.throttled("h", 1609.0) and not t.throttled("h", 1610.0) and not t.throttled("other", 710.0)
    assert t.strikes["h"] == {}  # counting starts again
    for url in "xyz":
        wait = t.strike("k", url, 0.0, 86400.0, cap=3600)
    assert wait == 3600  # never past max_backoff


def test_server_hints_are_honoured_and_capped(tmp_path, feed_server, pool):
    urls = {
        "max-age": feed_server.add("/cc.xml", rss(OLD), headers={"Cache-Control": "public, max-age=600"}),
        "ttl": feed_server.add("/ttl.xml", rss(OLD, channel="<ttl>15</ttl>")),
        "expires": feed_server.add("/exp.xml", rss(OLD), headers={
            "Date": "Wed, 01 Jan 2025 10:00:00 GMT", "Expires": "Wed, 01 Jan 2025 10:12:00 GMT"}),
        "huge": feed_server.add("/huge.xml", rss(OLD), headers={"Cache-Control": "max-age=31536000"}),
        "no-store": feed_server.add("/ns.xml", rss(OLD), headers={"Cache-Control": "no-store, max-age=900"}),
    }

    async def go():
        async with context(write(tmp_path, poll="max_hint = 1000\nmax_interval = 60"), pool) as ctx:
            add(ctx, *urls.values())
            rounds = []
            for _ in range(2):
                for u in urls.values():
                    await poll(ctx, u)
                rounds.append({k: wait_of(row(ctx, u)) for k, u in urls.items()})
            return rounds

    first, second = asyncio.run(go())
    for waits in (first, second):  # the first poll's answer, then the second's 304 (every feed has an ETag)
        # a 304 has no body: the <ttl> is the one its last parsed body gave (feeds.ttl_s)
        assert 600 <= waits["max-age"] < 601 and 900 <= waits["ttl"] < 901 and 720 <= waits["expires"] < 721
        assert 1000 <= waits["huge"] < 1001  # a year's max-age is capped at max_hint
        assert waits["no-store"] <= 66  # no hint: the interval (at most max_interval + 10 %)
    assert [n for _p, n in feed_server.answers].count(304) == len(urls)


def test_cadence_is_learned_from_entry_dates_and_a_pinned_interval_wins(tmp_path, feed_server, pool):
    start = datetime(2026, 11, 1, tzinfo=UTC)
    every_10_min = [{"title": f"Meldung {i}", "link": f"http://example.org/m{i}", "guid": f"m{i}",
                     "date": start + timedelta(minutes=10 * i)} for i in range(7)]
    hourly = [dict(it, date=start + timedelta(hours=i)) for i, it in enumerate(every_10_min)]
    fast, slow = feed_server.add("/fast.xml", rss(every_10_min)), feed_server.add("/slow.xml", rss(hourly))
    pinned = feed_server.add("/pinned.xml", rss(hourly))

    async def go():
        cfg = write(tmp_path, poll="min_interval = 100\nmax_interval = 1000",
                    feeds=f'[[feeds]]\nurl = "{pinned}"\ninterval = 50')
        async with context(cfg, pool) as ctx:
            add(ctx, fast, slow)
            for u in (fast, slow, pinned):
                await poll(ctx, u)
            return {u: row(ctx, u) for u in (fast, slow, pinned)}

    rows = asyncio.run(go())
    assert rows[fast]["cadence_s"] == 600 and 270 <= wait_of(rows[fast]) <= 330  # half the cadence
    assert rows[slow]["cadence_s"] == 3600 and 900 <= wait_of(rows[slow]) <= 1000 * 1.1  # capped
    assert 45 <= wait_of(rows[pinned]) <= 55  # configured interval, whatever the cadence


def test_silent_feed_is_reported_by_status_with_an_injected_clock(tmp_path, feed_server, pool):
    start = datetime(2026, 11, 1, tzinfo=UTC)
    hourly = [{"title": f"Meldung {i}", "link": f"http://example.org/h{i}", "guid": f"h{i}",
               "date": start + timedelta(hours=i)} for i in range(5)]
    url = feed_server.add("/hourly.xml", rss(hourly))

    async def go():
        async with context(write(tmp_path), pool) as ctx:
            add(ctx, url)
            await poll(ctx, url)
            return row(ctx, url)

    r = asyncio.run(go())
    newest = (start + timedelta(hours=4)).timestamp()
    assert r["cadence_s"] == 3600 and r["last_new_at"] == newest

    def status(now: float) -> str:
        return schedule.status(error_count=r["error_count"], cadence=r["cadence_s"], last_new_at=r["last_new_at"],
                               now=now, silent_after=10, silent_min=43200)

    assert status(newest + 11 * 3600) == "ok"  # 11 quiet hours: not yet (silent_min is 12 h)
    assert status(newest + 13 * 3600) == "silent"
    assert schedule.status(error_count=2, cadence=3600, last_new_at=newest, now=newest + 86400) == "failing"


def test_edited_entry_updates_without_alert_and_a_repost_does_not_alert_again(tmp_path, feed_server, pool):
    path = "/news.xml"
    url = feed_server.add(path, rss(OLD))

    def serve(items):
        feed_server.resources[path].body = rss(items).encode()

    async def go():
        async with context(write(tmp_path), pool) as ctx:
            add(ctx, url)
            await poll(ctx, url)  # baseline
            serve([KURSK, *OLD])
            first = await poll(ctx, url)
            updated = dict(KURSK, title=KURSK["title"] + " (aktualisiert)")
            serve([updated, *OLD])
            edited = await poll(ctx, url)
            serve([dict(updated, guid="kursk-2", link="http://example.org/kursk-neu"), *OLD])
            repost = await poll(ctx, url)
            serve([dict(KURSK, guid="kursk-3", title="Neue Kämpfe bei Kursk gemeldet"), *OLD])
            same_story = await poll(ctx, url)
            return first, edited, repost, same_story

    first, edited, repost, same_story = asyncio.run(go())
    assert (first.new, first.alerts) == (1, 1)
    assert (edited.new, edited.alerts) == (0, 0)
    assert (repost.new, repost.alerts) == (1, 0)  # new id, same title within a week: a repost
    assert (same_story.new, same_story.alerts) == (1, 0)  # new id and title, same link: same story
    db = tmp_path / "monitor.db"
    assert db_rows(db, "SELECT title, updated_at IS NOT NULL FROM entries WHERE guid = 'kursk-1'") == [
        (KURSK["title"] + " (aktualisiert)", 1)]
    assert db_rows(db, "SELECT COUNT(*) FROM outbox")[0][0] == 1


def test_dispatcher_pages_through_more_feeds_than_one_batch(tmp_path, feed_server, pool):
    urls = [feed_server.add(f"/p{i}.xml", rss(OLD)) for i in range(25)]

    async def go():
        async with context(write(tmp_path, poll="per_host = 5"), pool) as ctx:
            add(ctx, *urls)
            d = dispatch.Dispatcher(ctx, dispatch.every_feed(ctx), batch=10)
            outcomes = await d.run()
            return outcomes, len(d.queued), len(d.tasks)

    outcomes, queued, running = asyncio.run(go())
    assert len(outcomes) == 25 and {o.status for o in outcomes} == {"baseline"}
    assert sorted(p for p, _ in feed_server.log) == sorted(f"/p{i}.xml" for i in range(25))
    assert queued == running == 0


def test_feed_tags_from_config_are_stored(tmp_path, pool):
    cfg = write(tmp_path, feeds='[[feeds]]\nurl = "https://example.org/a.xml"\ntags = ["ru", "official"]')

    async def go():
        async with context(cfg, pool) as ctx:
            return feed(ctx, "https://example.org/a.xml").tags, json.loads(row(ctx, "https://example.org/a.xml")["tags"])

    assert asyncio.run(go()) == (("ru", "official"), ["ru", "official"])


def test_a_bug_in_one_poll_backs_the_feed_off_instead_of_repolling_it(tmp_path, feed_server, pool, monkeypatch):
    url = feed_server.add("/buggy.xml", rss(OLD))

    async def go():
        async with context(write(tmp_path), pool) as ctx:
            add(ctx, url)

            def broken(*args):  # a fault injected where a bug could be: after fetch and parse
                raise RuntimeError("injected")

            monkeypatch.setattr(pipeline, "distinct", broken)  # a first poll sorts its entries with it
            out = await pipeline.poll_safely(ctx, feed(ctx, url))
            return out, row(ctx, url), ctx.db.store.feeds(due_at=time.time())

    out, r, due = asyncio.run(go())
    assert out.status == "error" and "internal: RuntimeError: injected" in out.error
    assert r["last_error_kind"] == "internal" and r["error_count"] == 1
    assert 54 <= wait_of(r) <= 66 and due == []  # backed off one interval, not due again at once
