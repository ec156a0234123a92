"""The one place that knows the order of the stages.

    poll(feed):  fetch.feed -> parse (worker) -> store.unseen -> fetch.page -> extract (worker)
                 -> rules.match -> store.record (one transaction, outbox rows) -> reschedule
    (delivery.py drains the outbox: claim -> notify.send -> mark sent / failed / dead)

Expected failures (MonitorError) are caught per feed and per alert, logged as one line and
recorded; anything else is a bug, logged with its traceback, and the other feeds go on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from . import extract, parse, rules, schedule
from .config import Config
from .errors import ExtractError, FetchError, MonitorError, NotModified, ParseError
from .fetch import Client, body_hash
from .models import Article, Entry, Feed, Match
from .notify import Notifier
from .store import Notice, StoreError
from .store.aio import AsyncStore
from .workers import Pool, WorkerError

log = logging.getLogger(__name__)
PAGE_MEMORY = 2000
REPOST_WINDOW = 7 * 86400  # seconds: a new id with a title seen this recently is a repost
HOST_STRIKES = 3  # feeds of one host answering 429 ...
HOST_WINDOW = 600.0  # ... within this many seconds throttle the whole host
HOST_PAUSE = 300.0  # for at least this long (or the longest Retry-After among them)
SHORT_PAGE = 1000  # characters: below this a page's alternate (AMP / canonical) is tried


@dataclass
class Context:
    config: Config
    db: AsyncStore  # the store, answering on its own thread: the loop never waits on SQLite
    http: Client
    pool: Pool
    notifier: Notifier
    ruleset: rules.RuleSet
    # canonical URL -> its page's extraction, done or in flight (the last PAGE_MEMORY URLs)
    pages: dict[str, asyncio.Future[tuple[Article | None, str | None]]] = field(default_factory=dict)
    # host -> {feed URL: (time of its 429, Retry-After)}: recent 429s, to spot a host-wide limit
    strikes: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    throttled: dict[str, float] = field(default_factory=dict)  # host -> throttled until


@dataclass(frozen=True)
class Outcome:
    feed: str
    status: str  # ok | baseline | not-modified | error
    new: int = 0
    alerts: int = 0
    error: str = ""


async def poll(ctx: Context, feed: Feed) -> Outcome:
    """Poll one feed end to end. Never raises for a feed's own failure."""
    started, now = time.monotonic(), time.time()
    cfg = ctx.config.poll
    try:
        result = await ctx.http.feed(feed)
        parsed = await ctx.pool.run(
            parse.parse_bytes, result.body, result.content_type, result.url,
            timeout=ctx.config.extract.timeout,
        )
    except NotModified as e:
        hint = schedule.server_hint(e.headers, None, now)
        state, notices = _ok_state(ctx, feed, now, "not-modified")
        state["next_check_at"] = schedule.next_poll(now, _interval(ctx, feed, feed.cadence), hint=hint,
                                                    max_hint=cfg.max_hint)
        await ctx.db.save_poll(feed, state, notices=notices, moved=e.moved, now=now)
        return _done(feed, started, Outcome(feed.url, "not-modified", error=e.detail))
    except (FetchError, ParseError, WorkerError) as e:
        return _done(feed, started, await _failed(ctx, feed, e, now))

    new, edited = await ctx.db.sort_entries(feed, parsed.entries)
    baseline = not feed.baselined
    published = [e.published for e in parsed.entries]
    items: list[tuple[Entry, Article | None, list[Match]]]
    if baseline:
        # First sight of a feed: what was published within poll.first_run_window is fetched,
        # extracted and matched, and its alerts wait for one "while you were away" digest per
        # channel (store.record holds them as 'backlog'); the rest is a silent baseline.
        pages = asyncio.Semaphore(ctx.config.poll.per_host)
        items = list(await asyncio.gather(*(
            _process(ctx, feed, e, pages) if schedule.recent(e.published, now, cfg.first_run_window)
            else _as_is(e) for e in new)))
        last_new: float | None = schedule.newest(published, now) or now
    else:
        reposts = await ctx.db.reposts(feed, new, now - REPOST_WINDOW) if new else {}
        for e in new:
            if e.uid in reposts:
                log.info("repost, no alert feed=%s entry=%r reason=%r", feed.url, e.title[:80], reposts[e.uid])
        # At most per_host pages of one feed at a time: a feed with 300 new items must not
        # queue 300 requests whose total timeout runs out while they wait for a connection.
        pages = asyncio.Semaphore(ctx.config.poll.per_host)
        items = list(await asyncio.gather(*(
            _as_is(e) if e.uid in reposts else _process(ctx, feed, e, pages) for e in new)))
        last_new = now if len(new) > len(reposts) else feed.last_new_at
        for changed in edited:
            log.info("entry edited feed=%s entry=%r (no new alert)", feed.url, changed.title[:80])
    cadence = schedule.learn_cadence(published, previous=feed.cadence, last_new_at=feed.last_new_at,
                                     new=0 if baseline else len(new), now=now)
    state, notices = _ok_state(ctx, feed, now, "ok")
    state.update(
        next_check_at=schedule.next_poll(now, _interval(ctx, feed, cadence), max_hint=cfg.max_hint,
                                         hint=schedule.server_hint(result.headers, parsed.ttl, now)),
        etag=result.etag, last_modified=result.last_modified, body_hash=body_hash(result.body),
        cadence_s=cadence, last_new_at=last_new,
    )
    if baseline:
        state["baselined_at"] = now
    alerts = await ctx.db.record(feed, now=time.time(), state=state, new=items, baseline=baseline,
                              feed_title=parsed.title, edited=edited, notices=notices, moved=result.moved,
                              seen=[e.uid for e in parsed.entries])
    status = "baseline" if baseline else "ok"
    return _done(feed, started, Outcome(feed.url, status, new=len(new), alerts=alerts))


def _interval(ctx: Context, feed: Feed, cadence: float | None) -> float:
    cfg = ctx.config.poll
    return schedule.interval_for(feed.interval, pinned=feed.pinned, cadence=cadence, adaptive=cfg.adaptive,
                                 floor=cfg.min_interval, ceiling=cfg.max_interval)


def _ok_state(ctx: Context, feed: Feed, now: float, status: str) -> tuple[dict[str, Any], list[Notice]]:
    """Feed columns after a successful poll, and the "recovered" notice if an ops alert had
    said it was failing or gone."""
    state: dict[str, Any] = {"last_polled_at": now, "last_ok_at": now, "last_status": status,
                             "last_error_kind": None, "last_error": None, "error_count": 0,
                             "failing_since": None, "gone_at": None, "alerted_failing": 0}
    notices: list[Notice] = []
    if feed.alerted_failing or feed.gone:
        down = _duration(now - (feed.failing_since or now))
        notices = _notices(ctx, "recovered", f"Feed recovered: {feed.title or feed.url}",
                           f"{feed.url}\nPolled successfully again after {down} of errors.")
    return state, notices


async def _failed(ctx: Context, feed: Feed, e: FetchError | ParseError | WorkerError, now: float) -> Outcome:
    """Record a failed poll: classify it, back off (never sooner than a Retry-After), mark a
    410 gone, raise one ops alert when the feed has failed for too long, and count a 429
    against its host."""
    cfg = ctx.config.poll
    kind = getattr(e, "kind", "parse-error")  # a WorkerError here: parsing hung or crashed
    detail = e.detail if isinstance(e, FetchError) else str(e)
    retry_after = e.retry_after if isinstance(e, FetchError) else None
    since = feed.failing_since or now
    errors = 61 if kind == "http-410" else feed.error_count + 1  # gone: straight to the cap
    state: dict[str, Any] = {
        "last_polled_at": now, "last_status": "error", "last_error_kind": kind, "last_error": detail[:500],
        "error_count": feed.error_count + 1, "failing_since": since,
        "next_check_at": schedule.after_error(now, _interval(ctx, feed, feed.cadence), errors, cfg.max_backoff,
                                              retry_after=retry_after),
    }
    notices: list[Notice] = []
    name = feed.title or feed.url
    if kind == "http-410" and not feed.gone:
        state.update(gone_at=now, alerted_failing=1)
        log.warning("feed gone (HTTP 410) feed=%s: polled every %s in case it returns; "
                    "'monitor feeds remove' to drop it", feed.url, _duration(cfg.max_backoff))
        notices = _notices(ctx, "gone", f"Feed gone: {name}",
                           f"{feed.url}\nThe server answers 410 Gone: the feed was removed for good. It is "
                           f"still tried every {_duration(cfg.max_backoff)}; remove it with "
                           f"'monitor feeds remove {feed.source_url or feed.url}'.")
    elif not feed.alerted_failing and now - since >= cfg.failing_alert_after:
        state["alerted_failing"] = 1
        log.warning("feed failing for %s feed=%s error=%r", _duration(now - since), feed.url, f"{kind}: {detail}")
        notices = _notices(ctx, "failing", f"Feed failing: {name}",
                           f"{feed.url}\nFailing for {_duration(now - since)} ({feed.error_count + 1} attempts). "
                           f"Last error: {kind}: {detail}\nIt keeps being retried; you will hear when it "
                           "recovers.")
    if kind == "http-429":
        await _host_strike(ctx, feed, now, retry_after)
    await ctx.db.save_poll(feed, state, notices=notices, now=now)
    return Outcome(feed.url, "error", error=f"{kind}: {detail}")


async def _host_strike(ctx: Context, feed: Feed, now: float, retry_after: float | None) -> None:
    """A 429 slows its own feed (backoff, Retry-After). When several feeds of one host get
    429s within HOST_WINDOW, the host itself is throttled: every feed on it waits."""
    strikes = ctx.strikes.setdefault(feed.host, {})
    strikes[feed.url] = (now, retry_after or 0.0)
    for url, (when, _) in list(strikes.items()):
        if now - when > HOST_WINDOW:
            del strikes[url]
    if len(strikes) < HOST_STRIKES:
        return
    wait = min(ctx.config.poll.max_backoff, max(HOST_PAUSE, *(ra for _, ra in strikes.values())))
    ctx.throttled[feed.host] = now + wait
    delayed = await ctx.db.throttle_host(feed.host, now + wait, spread=wait * 0.1)
    log.warning("host throttled host=%s feeds=%d wait=%ds reason=%r", feed.host, delayed, wait,
                f"HTTP 429 from {len(strikes)} of its feeds within {HOST_WINDOW:g}s")
    strikes.clear()


def _notices(ctx: Context, kind: str, title: str, body: str) -> list[Notice]:
    return [Notice(kind, channel, title, body) for channel in ctx.config.notify.ops_channels]


def _duration(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.0f} days"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.0f} hours"
    return f"{max(1, round(seconds / 60))} minutes"


async def _as_is(entry: Entry) -> tuple[Entry, Article | None, list[Match]]:
    return entry, None, []


async def _process(ctx: Context, feed: Feed, entry: Entry,
                   pages: asyncio.Semaphore) -> tuple[Entry, Article, list[Match]]:
    async with pages:
        article = await article_for(ctx, entry)
    defaults = tuple(ctx.config.notify.default_channels)
    matches = [
        dataclasses.replace(m, channels=ctx.notifier.targets(m.channels or defaults))
        for m in rules.match(ctx.ruleset, article, feed)
    ]
    for m in matches:
        log.info("matched rule=%s entry=%r terms=%s field=%s score=%g", m.rule_id, entry.title[:80],
                 ",".join(m.terms), m.field, m.score)
    return entry, article, matches


async def article_for(ctx: Context, entry: Entry) -> Article:
    """The entry's article: its page's text, else the feed's own; with the text's language
    (detected in a worker when the page did not tell)."""
    article = await _article(ctx, entry)
    if article.language is None and article.text:
        try:
            language = await ctx.pool.run(extract.detect_language, article.text,
                                          timeout=ctx.config.extract.timeout)
        except WorkerError as e:
            log.warning("language detection failed link=%s error=%r", entry.link, str(e))
        else:
            article = dataclasses.replace(article, language=language)
    return article


async def _article(ctx: Context, entry: Entry) -> Article:
    """A page is fetched and extracted once per canonical URL: the same story from several
    feeds shares it, whether an earlier poll stored it or it is in flight in this one."""
    if not (ctx.config.extract.pages and entry.link) or entry.shared_link:  # the home page is no article
        return extract.choose(entry, None)
    link = entry.link
    known = await ctx.db.page_article(link)
    if known is not None:
        return extract.choose(entry, known)
    shared = ctx.pages.get(link)
    if shared is None:
        shared = asyncio.ensure_future(_page(ctx, link))
        ctx.pages[link] = shared
        if len(ctx.pages) > PAGE_MEMORY:  # the oldest first: dicts keep insertion order
            ctx.pages.pop(next(iter(ctx.pages)))
    page, error = await asyncio.shield(shared)
    return extract.choose(entry, page, error)


async def _page(ctx: Context, link: str) -> tuple[Article | None, str | None]:
    return await page_article(ctx.http, ctx.pool, link, ctx.config.extract.timeout)


async def page_article(http: Client, pool: Pool, link: str,
                       timeout: float) -> tuple[Article | None, str | None]:
    """The article of the page at ``link`` (``monitor extract URL`` prints the same), or None
    and why not. When the page yields little, its AMP version (or, for an AMP page, its
    canonical page) is tried too and the longer text kept."""
    page, error = await _fetch_extract(http, pool, link, timeout)
    if page is None or page.alternate is None or len(page.text) >= SHORT_PAGE:
        return page, error
    if parse.canonical_url(page.alternate) == parse.canonical_url(link):
        return page, error
    other, _ = await _fetch_extract(http, pool, page.alternate, timeout)
    if other is not None and len(other.text) > len(page.text):
        log.info("alternate page used link=%s alternate=%s", link, page.alternate)
        return other, None
    return page, error


async def _fetch_extract(http: Client, pool: Pool, link: str,
                         timeout: float) -> tuple[Article | None, str | None]:
    try:
        res = await http.page(link)
        if not extract.is_html(res.content_type):
            error = f"not HTML ({res.content_type.split(';')[0]})"
        else:
            return await pool.run(extract.page, res.body, res.url, timeout=timeout), None
    except (FetchError, ExtractError, WorkerError) as e:
        error = str(e) if isinstance(e, FetchError) else f"extract: {e}"  # FetchError: "kind: …"
    log.info("page not used link=%s reason=%r", link, error)
    return None, error


def _done(feed: Feed, started: float, out: Outcome) -> Outcome:
    ms = int((time.monotonic() - started) * 1000)
    log.info("polled feed=%s status=%s new=%d alerts=%d ms=%d%s", feed.url, out.status, out.new,
             out.alerts, ms, f" error={out.error!r}" if out.status == "error" else "")
    return out


async def poll_safely(ctx: Context, feed: Feed) -> Outcome:
    """``poll``, except that a bug in one feed's poll is logged with its traceback and
    reported as an error outcome; it never reaches the caller. A database that fails (locked,
    full, read-only) is an expected failure of the environment: one warning line, no
    traceback, and the feed is left to its lease (the database is what cannot record it)."""
    try:
        return await poll(ctx, feed)
    except StoreError as e:
        log.warning("poll not recorded feed=%s reason=%r: the feed is polled again once the database "
                    "answers", feed.url, str(e))
        return Outcome(feed.url, "error", error=f"database: {e}")
    except MonitorError as e:
        log.warning("poll failed feed=%s error=%r", feed.url, str(e))
        out = Outcome(feed.url, "error", error=str(e))
    except Exception as e:
        log.exception("BUG while polling feed=%s", feed.url)
        out = Outcome(feed.url, "error", error=f"internal: {type(e).__name__}: {e}")
    # Back the feed off like any failure: left due, it would be polled again at once.
    try:
        now = time.time()
        await ctx.db.poll_failed(feed, "internal", out.error, now, schedule.after_error(
            now, _interval(ctx, feed, feed.cadence), feed.error_count + 1, ctx.config.poll.max_backoff))
    except StoreError as e:  # the database itself may be what fails; the next tick retries
        log.warning("cannot record the failed poll feed=%s error=%r", feed.url, str(e))
    return out
