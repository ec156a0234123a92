"""The one place that knows the order of the stages.

    poll(feed):  fetch.feed -> parse (worker) -> store.unseen -> fetch.page -> extract (worker)
                 -> rules.match -> store.record (one transaction, outbox rows) -> reschedule
    deliver():   store.pending_alerts -> notify.send -> store.mark_sent / mark_failed

Expected failures (MonitorError) are caught per feed and per alert, logged as one line and
recorded; anything else is a bug, logged with its traceback, and the other feeds go on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass, field

from . import extract, parse, rules, schedule
from .config import Config
from .errors import ExtractError, FetchError, MonitorError, NotifyError, NotModified, ParseError
from .fetch import Client, body_hash
from .models import Article, Entry, Feed, Match
from .notify import Notifier
from .store import Store
from .workers import Pool, WorkerError

log = logging.getLogger(__name__)
PAGE_MEMORY = 2000
SHORT_PAGE = 1000  # characters: below this a page's alternate (AMP / canonical) is tried


@dataclass
class Context:
    config: Config
    store: Store
    http: Client
    pool: Pool
    notifier: Notifier
    ruleset: rules.RuleSet
    # canonical URL -> its page's extraction, done or in flight (the last PAGE_MEMORY URLs)
    pages: dict[str, asyncio.Future[tuple[Article | None, str | None]]] = field(default_factory=dict)


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
        ctx.store.poll_unchanged(feed, now, schedule.after_success(now, feed.interval))
        return _done(feed, started, Outcome(feed.url, "not-modified", error=e.detail))
    except (FetchError, ParseError, WorkerError) as e:
        kind = getattr(e, "kind", "parse-error")  # a WorkerError here: parsing hung or crashed
        detail = e.detail if isinstance(e, FetchError) else str(e)
        next_at = schedule.after_error(now, feed.interval, feed.error_count + 1, cfg.max_backoff)
        ctx.store.poll_failed(feed, kind, detail, now, next_at)
        return _done(feed, started, Outcome(feed.url, "error", error=f"{kind}: {detail}"))

    fresh = ctx.store.unseen(feed, parsed.entries)
    baseline = not feed.baselined
    if baseline:
        # First sight of a feed: remember what is there, alert only on what comes after.
        items: list[tuple[Entry, Article | None, list[Match]]] = [(e, None, []) for e in fresh]
    else:
        # At most per_host pages of one feed at a time: a feed with 300 new items must not
        # queue 300 requests whose total timeout runs out while they wait for a connection.
        pages = asyncio.Semaphore(ctx.config.poll.per_host)
        items = list(await asyncio.gather(*(_process(ctx, e, pages) for e in fresh)))
    alerts = ctx.store.record(
        feed, now=time.time(), next_at=schedule.after_success(now, feed.interval),
        validators={"etag": result.etag, "last_modified": result.last_modified,
                    "body_hash": body_hash(result.body)},
        feed_title=parsed.title, new=items, baseline=baseline,
    )
    status = "baseline" if baseline else "ok"
    return _done(feed, started, Outcome(feed.url, status, new=len(fresh), alerts=alerts))


async def _process(ctx: Context, entry: Entry,
                   pages: asyncio.Semaphore) -> tuple[Entry, Article, list[Match]]:
    async with pages:
        article = await article_for(ctx, entry)
    defaults = tuple(ctx.config.notify.default_channels)
    matches = [
        dataclasses.replace(m, channels=ctx.notifier.targets(m.channels or defaults))
        for m in rules.match(ctx.ruleset, article)
    ]
    for m in matches:
        log.info("matched rule=%s entry=%r terms=%s", m.rule_id, entry.title[:80], ",".join(m.terms))
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
    if not (ctx.config.extract.pages and entry.link):
        return extract.choose(entry, None)
    link = entry.link
    known = ctx.store.page_article(link)
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


async def poll_safely(ctx: Context, feed: Feed, slots: asyncio.Semaphore) -> Outcome:
    """``poll`` within a concurrency slot. A bug in one feed's poll is logged with its
    traceback and reported as an error outcome; it never reaches the caller."""
    async with slots:
        try:
            return await poll(ctx, feed)
        except MonitorError as e:
            log.warning("poll failed feed=%s error=%r", feed.url, str(e))
            return Outcome(feed.url, "error", error=str(e))
        except Exception as e:
            log.exception("BUG while polling feed=%s", feed.url)
            return Outcome(feed.url, "error", error=f"internal: {type(e).__name__}: {e}")


async def poll_all(ctx: Context, feeds: list[Feed]) -> list[Outcome]:
    """Poll feeds concurrently, at most poll.concurrency at a time."""
    slots = asyncio.Semaphore(ctx.config.poll.concurrency)
    return list(await asyncio.gather(*(poll_safely(ctx, f, slots) for f in feeds)))


async def deliver(ctx: Context, limit: int = 100) -> tuple[int, int]:
    """Send due pending alerts one by one, oldest first. An alert is marked sent only when
    apprise reports success; otherwise it stays pending with a later attempt time.
    Returns (sent, failed)."""
    sent = failed = 0
    cfg = ctx.config.notify
    for alert in ctx.store.pending_alerts(time.time(), limit):
        try:
            await asyncio.wait_for(asyncio.to_thread(ctx.notifier.send, alert), cfg.timeout)
        except Exception as e:  # NotifyError, TimeoutError, or a bug that must not stall the rest
            if not isinstance(e, NotifyError | TimeoutError):
                log.exception("BUG while sending alert id=%d", alert.id)
            reason = str(e) or f"no answer within {cfg.timeout:g}s"
            attempts = alert.attempts + 1
            next_at = schedule.retry_alert(time.time(), attempts, cfg.retry, cfg.max_retry)
            ctx.store.mark_failed(alert.id, reason, next_at)
            log.warning("alert failed id=%d channel=%s attempts=%d retry_in=%ds error=%r",
                        alert.id, alert.channel, attempts, next_at - time.time(), reason)
            failed += 1
            continue
        ctx.store.mark_sent(alert.id, time.time())
        log.info("alert sent id=%d channel=%s rule=%s title=%r", alert.id, alert.channel,
                 alert.rule_id, alert.title[:80])
        sent += 1
    return sent, failed
