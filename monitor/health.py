"""Feed health: what one poll changes in its feed's row. A pure decider (reader's ``_update``
Decider): the feed, the poll's result, the time and the settings in, a ``FeedUpdate`` out; no
I/O, no clock (``now`` is given), no global random source unless no ``rng`` is passed.

    decide(feed, Fetched | Unchanged | Failed, now, settings) -> FeedUpdate

- A success (a new body, or 304 / the same body) resets the error streak and schedules the
  next poll at the feed's interval, never sooner than the server asks (``schedule.next_poll``).
  A new body also brings the validators (ETag, Last-Modified, body hash), the learned cadence
  and the time news was last seen; the first one marks the feed baselined.
- A failure counts the streak and backs off exponentially up to ``max_backoff``, never sooner
  than a Retry-After (RFC 9110 10.2.3); polling never stops for good.
- Ops notices, one per ops channel: "gone" on the first 410 (RFC 9110 15.5.11: removed for
  good; it goes straight to the backoff cap); "failing" once per streak, when it has lasted
  ``failing_alert_after``; "recovered" on the first success after either.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

from . import schedule
from .models import Feed, FeedUpdate, Notice

# A success's FeedUpdate but for its times, status, move and notices: every other field as
# ``_ok`` sets it (the streak cleared) or KEEP. Copied into each new update's __dict__ (``_ok``).
_OK_FIELDS = {f.name: f.default for f in fields(FeedUpdate)} | {
    "last_error_kind": None, "last_error": None, "error_count": 0, "failing_since": None, "gone_at": None,
    "alerted_failing": False}
GONE_ERRORS = 61  # a 410 backs off as if it had failed this often: straight to the cap
MAX_ERROR_TEXT = 500  # characters of the error kept in the feed's row


@dataclass(frozen=True)
class Settings:
    """The ``[poll]`` settings health needs, and where ops notices go."""

    adaptive: bool = True
    min_interval: float = 300
    max_interval: float = 3600
    max_hint: float = 21600
    max_backoff: float = 21600
    failing_alert_after: float = 21600
    ops_channels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Fetched:
    """A new body, parsed. ``new``: entries not seen before; ``reposts``: of them, ones that
    repeat a recent story (not news); ``baseline``: the feed's first successful poll."""

    headers: Mapping[str, str]
    etag: str | None
    last_modified: str | None
    body_hash: str
    ttl: float | None = None  # RSS <ttl> in seconds
    published: tuple[str | None, ...] = ()  # every served entry's date (ISO 8601), for the cadence
    new: int = 0
    reposts: int = 0
    baseline: bool = False
    moved: str | None = None


@dataclass(frozen=True)
class Unchanged:
    """304 Not Modified, or the same body as last time."""

    headers: Mapping[str, str]
    moved: str | None = None


@dataclass(frozen=True)
class Failed:
    """The fetch or the parse failed: ``kind`` classifies it (http-410, timeout, parse-error, ...)."""

    kind: str
    detail: str
    retry_after: float | None = None  # seconds the server asked us to wait


Result = Fetched | Unchanged | Failed


def decide(feed: Feed, result: Result, now: float, settings: Settings,
           rng: random.Random | None = None) -> FeedUpdate:
    """The feed's update after a poll that ended with ``result`` at ``now``. Pure."""
    if isinstance(result, Failed):
        return _failed(feed, result, now, settings, rng)
    if isinstance(result, Unchanged):
        hint = schedule.server_hint(result.headers, feed.ttl, now)  # the body's <ttl>, as last parsed
        next_at = schedule.next_poll(now, interval(feed, feed.cadence, settings), hint=hint,
                                     max_hint=settings.max_hint, rng=rng)
        return _ok(feed, now, settings, "not-modified", next_at, result.moved)
    return _fetched(feed, result, now, settings, rng)


def interval(feed: Feed, cadence: float | None, settings: Settings) -> float:
    """Seconds between polls of ``feed`` with ``cadence``, before jitter and server hints."""
    return schedule.interval_for(feed.interval, pinned=feed.pinned, cadence=cadence, adaptive=settings.adaptive,
                                 floor=settings.min_interval, ceiling=settings.max_interval)


def _fetched(feed: Feed, r: Fetched, now: float, settings: Settings, rng: random.Random | None) -> FeedUpdate:
    last_new: float | None
    if r.baseline:  # news "last seen" when the newest entry was published
        last_new = schedule.newest(r.published, now) or now
    else:
        last_new = now if r.new > r.reposts else feed.last_new_at
    cadence = schedule.learn_cadence(r.published, previous=feed.cadence, last_new_at=feed.last_new_at,
                                     new=0 if r.baseline else r.new, now=now)
    hint = schedule.server_hint(r.headers, r.ttl, now)
    next_at = schedule.next_poll(now, interval(feed, cadence, settings), hint=hint, max_hint=settings.max_hint,
                                 rng=rng)
    update = replace(_ok(feed, now, settings, "ok", next_at, r.moved), etag=r.etag, last_modified=r.last_modified,
                     body_hash=r.body_hash, cadence_s=cadence, last_new_at=last_new, ttl_s=r.ttl)
    return replace(update, baselined_at=now) if r.baseline else update


def _ok(feed: Feed, now: float, settings: Settings, status: str, next_at: float, moved: str | None) -> FeedUpdate:
    notices: tuple[Notice, ...] = ()
    if feed.alerted_failing or feed.gone:
        down = duration(now - (feed.failing_since or now))
        notices = _notices(settings, "recovered", f"Feed recovered: {feed.title or feed.url}",
                           f"{feed.url}\nPolled successfully again after {down} of errors.")
    # The frozen dataclass's __init__ sets its 19 fields one object.__setattr__ at a time (~1.9 us);
    # one dict update makes the same object (~0.5 us). Every poll that succeeds comes here (issue 16,
    # G3); test_health holds the two equal.
    update = object.__new__(FeedUpdate)
    state = update.__dict__
    state.update(_OK_FIELDS)
    state["last_polled_at"] = state["last_ok_at"] = now
    state["last_status"], state["next_check_at"], state["moved"], state["notices"] = status, next_at, moved, notices
    return update


def _failed(feed: Feed, r: Failed, now: float, settings: Settings, rng: random.Random | None) -> FeedUpdate:
    since = feed.failing_since or now
    gone = r.kind == "http-410"
    errors = GONE_ERRORS if gone else feed.error_count + 1
    next_at = schedule.after_error(now, interval(feed, feed.cadence, settings), errors, settings.max_backoff,
                                   rng=rng, retry_after=r.retry_after)
    update = FeedUpdate(last_polled_at=now, last_status="error", last_error_kind=r.kind,
                        last_error=r.detail[:MAX_ERROR_TEXT], error_count=feed.error_count + 1,
                        failing_since=since, next_check_at=next_at)
    name, cap = feed.title or feed.url, duration(settings.max_backoff)
    if gone and not feed.gone:
        return replace(
            update, gone_at=now, alerted_failing=True,
            warning=f"feed gone (HTTP 410) feed={feed.url}: polled every {cap} in case it returns; "
                    "'monitor feeds remove' to drop it",
            notices=_notices(settings, "gone", f"Feed gone: {name}",
                             f"{feed.url}\nThe server answers 410 Gone: the feed was removed for good. It is "
                             f"still tried every {cap}; remove it with "
                             f"'monitor feeds remove {feed.source_url or feed.url}'."))
    if not feed.alerted_failing and now - since >= settings.failing_alert_after:
        down = duration(now - since)
        return replace(
            update, alerted_failing=True,
            warning=f"feed failing for {down} feed={feed.url} error={f'{r.kind}: {r.detail}'!r}",
            notices=_notices(settings, "failing", f"Feed failing: {name}",
                             f"{feed.url}\nFailing for {down} ({feed.error_count + 1} attempts). "
                             f"Last error: {r.kind}: {r.detail}\nIt keeps being retried; you will hear when it "
                             "recovers."))
    return update


def _notices(settings: Settings, kind: str, title: str, body: str) -> tuple[Notice, ...]:
    return tuple(Notice(kind, channel, title, body) for channel in settings.ops_channels)


def duration(seconds: float) -> str:
    """A span as people say it: minutes, hours or days."""
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.0f} days"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.0f} hours"
    return f"{max(1, round(seconds / 60))} minutes"
