"""The one place that knows the order of the stages.

    poll(feed):  fetch.feed -> parse (worker) -> store.unseen -> fetch.page -> extract (worker)
                 -> rules.match -> health.decide (the feed's FeedUpdate: schedule, validators, ops
                 notices) -> store.record (one transaction, outbox rows); a failed or unchanged
                 fetch goes straight to health.decide -> store.save_poll
    (delivery.py drains the outbox: claim -> notify.send -> mark sent / failed / dead;
    dispatch.py decides which feed is polled when, and throttles a host after 429s)

Expected failures (MonitorError) are caught per feed and per alert, logged as one line and
recorded; anything else is a bug, logged with its traceback, and the other feeds go on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from . import extract, health, learn, parse, rules, schedule
from .config import Config
from .errors import ExtractError, FetchError, MonitorError, ParseError
from .fetch import Client
from .models import Article, Entry, Feed, FeedUpdate, Match
from .notify import Notifier
from .store import StoreError, behind
from .store.aio import AsyncStore
from .store.behind import WriteBehind
from .store.entries import distinct
from .workers import Pool, WorkerError

log = logging.getLogger(__name__)
PAGE_MEMORY = 2000
REPOST_WINDOW = 7 * 86400  # seconds: a new id with a title seen this recently is a repost
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
    clock: Callable[[], float] = time.time  # every decision that depends on the time asks it
    # rule id -> its trained model (learn.py), loaded at start and after each retraining
    models: dict[str, learn.Model] = field(default_factory=dict)
    # unchanged polls' feed updates, written in batches (store/behind.py); None: each at once
    behind: WriteBehind | None = None
    settings: tuple[Config, health.Settings] | None = field(default=None, repr=False)  # (of config, _settings)


@dataclass(frozen=True)
class Outcome:
    feed: str
    status: str  # ok | baseline | not-modified | error
    new: int = 0
    alerts: int = 0
    error: str = ""
    kind: str = ""  # the error's class (http-429, timeout, ...) when status is error
    retry_after: float | None = None  # seconds the server asked us to wait, if it said


async def poll(ctx: Context, feed: Feed) -> Outcome:
    """Poll one feed end to end. Never raises for a feed's own failure."""
    started, now = time.monotonic(), ctx.clock()
    cfg = ctx.config.poll
    try:
        try:
            result, unchanged = await ctx.http.check(feed)  # not NotModified: most polls end here
        finally:
            # the schedule counts from the feed's answer, not from the poll's start: a request
            # sent late (a busy loop, a connection waited for) must not bring the next one closer
            # (bench/cluster.py saw 4.0 s between two requests of a feed polled every 5 s ± 10 %)
            now = ctx.clock()
        if unchanged is None:
            parsed = await ctx.pool.run(
                parse.parse_bytes, result.body, result.content_type, result.url, cfg.fast_parse,
                timeout=ctx.config.extract.timeout,
            )
    except (FetchError, ParseError, WorkerError) as e:
        return _done(feed, started, await _failed(ctx, feed, e, now))
    if unchanged is not None:  # 304, or the same body as last time
        update = health.decide(feed, health.Unchanged(result.headers, moved=result.moved), now, _settings(ctx))
        if ctx.behind is not None and behind.plain(feed, update):
            ctx.behind.save(feed, update)  # the lease ends when it is written (store/behind.py)
        else:
            await ctx.db.save_poll(feed, update, now=now)
        return _done(feed, started, Outcome(feed.url, "not-modified", error=unchanged))

    baseline = not feed.baselined  # as claimed: a first poll has nothing stored to look up
    new, edited = (distinct(feed, parsed.entries), []) if baseline else \
        await ctx.db.sort_entries(feed, parsed.entries)
    items: list[tuple[Entry, Article | None, list[Match]]]
    reposts: dict[str, str] = {}
    if baseline:
        # First sight of a feed: what was published within poll.first_run_window is fetched,
        # extracted and matched, and its alerts wait for one "while you were away" digest per
        # channel (store.record holds them as 'backlog'); the rest is a silent baseline.
        items = await _each(ctx, feed, new, [schedule.recent(e.published, now, cfg.first_run_window) for e in new])
    else:
        reposts = await ctx.db.reposts(feed, new, now - REPOST_WINDOW) if new else {}
        for uid, why in reposts.items():
            log.info("repost, no alert feed=%s uid=%s reason=%r", feed.url, uid, why)
        items = await _each(ctx, feed, new, [e.uid not in reposts for e in new])
        for changed in edited:
            log.info("entry edited feed=%s entry=%r (no new alert)", feed.url, changed.title[:80])
    fetched = health.Fetched(result.headers, result.etag, result.last_modified, result.digest,
                             ttl=parsed.ttl, published=tuple(e.published for e in parsed.entries), new=len(new),
                             reposts=len(reposts), baseline=baseline, moved=result.moved)
    update = _warned(health.decide(feed, fetched, now, _settings(ctx)))
    alerts = await ctx.db.record(feed, now=ctx.clock(), update=update, new=items, baseline=baseline,
                              feed_title=parsed.title, edited=edited, seen=[e.uid for e in parsed.entries])
    status = "baseline" if baseline else "ok"
    return _done(feed, started, Outcome(feed.url, status, new=len(new), alerts=alerts))


def _settings(ctx: Context) -> health.Settings:
    """What feed health needs of the config, made again when a reload replaced the config."""
    made = ctx.settings
    if made is None or made[0] is not ctx.config:
        p = ctx.config.poll
        made = ctx.settings = (ctx.config, health.Settings(
            adaptive=p.adaptive, min_interval=p.min_interval, max_interval=p.max_interval, max_hint=p.max_hint,
            max_backoff=p.max_backoff, failing_alert_after=p.failing_alert_after,
            ops_channels=tuple(ctx.config.notify.ops_channels)))
    return made[1]


async def _failed(ctx: Context, feed: Feed, e: FetchError | ParseError | WorkerError, now: float) -> Outcome:
    """Record a failed poll; health decides the backoff and whether ops hear of it."""
    kind = getattr(e, "kind", "parse-error")  # a WorkerError here: parsing hung or crashed
    detail = e.detail if isinstance(e, FetchError) else str(e)
    retry_after = e.retry_after if isinstance(e, FetchError) else None
    update = _warned(health.decide(feed, health.Failed(kind, detail, retry_after), now, _settings(ctx)))
    await ctx.db.save_poll(feed, update, now=now)
    return Outcome(feed.url, "error", error=f"{kind}: {detail}", kind=kind, retry_after=retry_after)


def _warned(update: FeedUpdate) -> FeedUpdate:
    if update.warning:
        log.warning("%s", update.warning)
    return update


async def _each(ctx: Context, feed: Feed, new: list[Entry],
                processed: list[bool]) -> list[tuple[Entry, Article | None, list[Match]]]:
    """(entry, article, matches) of each new entry, in feed order: those ``processed`` marks
    fetched, extracted and matched concurrently, the others as they are. No task for the
    others: a first poll of a feed of 60 old items made 60 tasks that returned their argument
    (~1 ms of the event loop's CPU per feed; issue 16, G2)."""
    # At most per_host pages of one feed at a time: a feed with 300 new items must not
    # queue 300 requests whose total timeout runs out while they wait for a connection.
    pages = asyncio.Semaphore(ctx.config.poll.per_host)
    todo = [e for e, p in zip(new, processed, strict=True) if p]
    done = iter(await asyncio.gather(*(_process(ctx, feed, e, pages) for e in todo)) if todo else ())
    return [next(done) if p else (e, None, []) for e, p in zip(new, processed, strict=True)]


async def _process(ctx: Context, feed: Feed, entry: Entry,
                   pages: asyncio.Semaphore) -> tuple[Entry, Article, list[Match]]:
    async with pages:
        article = await article_for(ctx, entry)
    defaults = tuple(ctx.config.notify.default_channels)
    matches = [
        dataclasses.replace(m, channels=ctx.notifier.targets(m.channels or defaults))
        for m in _recalibrated(ctx, article, rules.match(ctx.ruleset, article, feed))
    ]
    for m in matches:
        log.info("matched rule=%s entry=%r terms=%s field=%s score=%g", m.rule_id, entry.title[:80],
                 ",".join(m.terms), m.field, m.score)
    return entry, article, matches


def _recalibrated(ctx: Context, article: Article, matches: list[Match]) -> list[Match]:
    """Rules that learn (issue 17): a match of a rule with a trained model takes the model's
    salience, and the tier that gives under the rule's own thresholds; the plain salience stays
    among its features. Rules without one keep their plain salience."""
    if not ctx.models or not matches:
        return matches
    out = []
    for m in matches:
        model = ctx.models.get(m.rule_id)
        rule = ctx.ruleset.get(m.rule_id) if model is not None else None
        if model is None or rule is None:
            out.append(m)
            continue
        value, why = learn.score(model, dict(m.features), f"{article.title}\n{article.text}", m.salience,
                                 rule.digest_at)
        log.info("recalibrated rule=%s plain=%.2f learned=%.2f why=%r", m.rule_id, m.salience, value, why)
        out.append(dataclasses.replace(m, salience=value, tier=rules.tier(value, rule.alert_at, rule.digest_at),
                                       features=(*m.features, (learn.PLAIN, m.salience), (learn.LEARNED, why))))
    return out


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
    """Log the poll's line: INFO when it found something or failed (a baseline, new entries,
    alerts, an error), DEBUG when nothing changed. Most polls change nothing: at INFO their
    lines were a million a day for 10,000 feeds, and writing them cost an unchanged poll 14 %
    of its CPU (bench/polling/unchanged_ab.py, issue 16). ``monitor feeds`` and /metrics count
    them all."""
    level = logging.INFO if out.new or out.alerts or out.status in _TOLD else logging.DEBUG
    if not log.isEnabledFor(level):
        return out
    ms = int((time.monotonic() - started) * 1000)
    log.log(level, "polled feed=%s status=%s new=%d alerts=%d ms=%d%s", feed.url, out.status, out.new,
            out.alerts, ms, f" error={out.error!r}" if out.status == "error" else "")
    return out


_TOLD = frozenset({"baseline", "error"})  # polls whose line is INFO whatever they found


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
        return Outcome(feed.url, "error", error=f"database: {e}", kind="database")
    except MonitorError as e:
        log.warning("poll failed feed=%s error=%r", feed.url, str(e))
        out = Outcome(feed.url, "error", error=str(e))
    except Exception as e:
        log.exception("BUG while polling feed=%s", feed.url)
        out = Outcome(feed.url, "error", error=f"internal: {type(e).__name__}: {e}")
    # Back the feed off like any failure: left due, it would be polled again at once.
    try:
        now = ctx.clock()
        update = _warned(health.decide(feed, health.Failed("internal", out.error), now, _settings(ctx)))
        await ctx.db.save_poll(feed, update, now=now)
    except StoreError as e:  # the database itself may be what fails; the next tick retries
        log.warning("cannot record the failed poll feed=%s error=%r", feed.url, str(e))
    return out
