"""When to poll a feed next, how healthy it is, and when to retry an alert. Pure functions of
their inputs (the clock and the random source are parameters), so tests can pin them.

A feed's next poll (``next_poll``):
1. its interval: the configured one when pinned, else half its learned cadence (how often it
   publishes) clamped to [min_interval, max_interval], else the default interval;
2. +-10 % jitter, so feeds added together drift apart instead of polling in lock-step;
3. never sooner than the server allows: RSS <ttl>, Cache-Control max-age, Expires (each
   capped at ``max_hint``, so a misconfigured "max-age one year" cannot silence a feed).
Errors back off exponentially from the interval up to a cap, never below a Retry-After, and
polling never stops for good.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

from . import dates

JITTER = 0.1  # +-10 %
CADENCE_SAMPLE = 50  # newest dated entries used to learn a cadence
EWMA = 0.3  # weight of the newest observation when no dates are available


def _jitter(seconds: float, rng: random.Random | None) -> float:
    r = rng or random
    return seconds * r.uniform(1 - JITTER, 1 + JITTER)


def interval_for(interval: float, *, pinned: bool, cadence: float | None, adaptive: bool,
                 floor: float, ceiling: float) -> float:
    """Seconds between polls before jitter and hints."""
    if pinned or not adaptive or cadence is None:
        return interval
    return min(ceiling, max(floor, cadence / 2))


def next_poll(now: float, interval: float, *, hint: float | None = None, max_hint: float = 21600,
              rng: random.Random | None = None) -> float:
    wait = _jitter(interval, rng)
    if hint is not None:
        wait = max(wait, min(hint, max_hint))
    return now + wait


def after_success(now: float, interval: float, rng: random.Random | None = None) -> float:
    return next_poll(now, interval, rng=rng)


def after_error(now: float, interval: float, errors: int, cap: float, rng: random.Random | None = None,
                retry_after: float | None = None) -> float:
    """Exponential backoff: one interval after the first error, doubling up to ``cap``; never
    sooner than the server's Retry-After (itself capped); polling never stops for good."""
    wait = _jitter(_backoff(interval, errors, cap), rng)
    if retry_after is not None:
        wait = max(wait, min(retry_after, cap))
    return now + wait


def retry_alert(now: float, attempts: int, first: float, cap: float,
                rng: random.Random | None = None, retry_after: float | None = None) -> float:
    """Next attempt for an alert that failed ``attempts`` times (>= 1): "full jitter" (AWS
    architecture blog, "Exponential Backoff and Jitter"), drawn uniformly between ``first`` and
    the exponential bound ``first * 2**(attempts-1)`` capped at ``cap``, so senders that failed
    together spread out, and never sooner than the service's Retry-After (RFC 9110 10.2.3),
    which may exceed ``cap`` (up to a day: a year-long Retry-After is a bug, not a plan)."""
    bound = _backoff(first, attempts, cap)
    wait = (rng or random).uniform(min(first, bound), bound)
    if retry_after is not None:
        wait = max(wait, min(retry_after, RETRY_AFTER_CAP))
    return now + wait


RETRY_AFTER_CAP = 86400.0


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date; None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    when = dates.timestamp(value)
    return None if when is None else max(0.0, when - now)


def _backoff(base: float, failures: int, cap: float) -> float:
    """base * 2**(failures-1), capped. The exponent is bounded first: a float power of two
    overflows past 2**1023, i.e. after some weeks of hourly failures."""
    return min(cap, base * 2.0 ** min(max(0, failures - 1), 60))


_MAX_AGE = re.compile(r"(?:^|,)\s*(?:s-maxage|max-age)\s*=\s*\"?([0-9]+)", re.I)


def server_hint(headers: Mapping[str, str], ttl: float | None, now: float) -> float | None:
    """Seconds the server asks us to wait before polling again: the largest of the feed's
    <ttl> (already in seconds), Cache-Control max-age and Expires (against the response's own
    Date, so clock skew does not matter). None when it says nothing usable."""
    cc = headers.get("cache-control", "")
    if not cc and "expires" not in headers:  # most answers (every 304 of many servers): no regex
        return ttl
    hints = [ttl] if ttl is not None else []
    if not re.search(r"no-store|no-cache", cc, re.I):
        ages = [float(a) for a in _MAX_AGE.findall(cc)]
        if ages:
            hints.append(max(ages))
        elif "expires" in headers:
            expires = dates.timestamp(headers["expires"])
            base = dates.timestamp(headers.get("date", "")) or now
            if expires is not None:
                hints.append(max(0.0, expires - base))
    return max(hints) if hints else None


def recent(published: str | None, now: float, window: float) -> bool:
    """Was an entry published within ``window`` seconds before ``now`` (or after it: a clock
    ahead of ours)? False when it carries no date: a feed's first poll keeps undated entries
    as its silent baseline. Pure."""
    when = dates.timestamp(published)
    return window > 0 and when is not None and now - when <= window


def learn_cadence(published: Sequence[str | None], *, previous: float | None, last_new_at: float | None,
                  new: int, now: float) -> float | None:
    """Seconds between a feed's entries. From the entries' own dates when at least three are
    dated (their span over their count: bursts and quiet nights average out); otherwise from
    what the polls saw (time since news was last seen over the count of new entries, smoothed)."""
    times = sorted(t for t in map(dates.timestamp, published) if t is not None and t <= now + 3600)
    times = times[-CADENCE_SAMPLE:]
    if len(times) >= 3 and times[-1] > times[0]:
        return (times[-1] - times[0]) / (len(times) - 1)
    if new <= 0 or last_new_at is None or now <= last_new_at:
        return previous
    seen = (now - last_new_at) / new
    return seen if previous is None else EWMA * seen + (1 - EWMA) * previous


def newest(published: Sequence[str | None], now: float) -> float | None:
    """The newest entry date that is not in the future."""
    times = [t for t in map(dates.timestamp, published) if t is not None and t <= now + 3600]
    return min(max(times), now) if times else None


# Every answer of ``status``, in the order /metrics and ``monitor status`` list them.
HEALTH = ("ok", "new", "failing", "silent", "paused", "gone", "inactive")


def status(*, active: bool = True, gone: bool = False, error_count: int = 0, baselined: bool = True,
           cadence: float | None = None, last_new_at: float | None = None, now: float,
           silent_after: float = 10, silent_min: float = 43200, paused: bool = False) -> str:
    """A feed's health: gone (HTTP 410), failing (its last poll failed), silent (it normally
    publishes, and nothing new came for ``silent_after`` times its cadence, at least
    ``silent_min`` seconds), new (never polled successfully), ok; inactive when removed, paused
    when paused from the console (issue 18: not polled until resumed)."""
    if not active:
        return "inactive"
    if paused:
        return "paused"
    if gone:
        return "gone"
    if error_count:
        return "failing"
    if not baselined:
        return "new"
    if cadence and last_new_at and now - last_new_at > max(silent_after * cadence, silent_min):
        return "silent"
    return "ok"


def feed_row(r: Mapping[str, Any], poll: Any, now: float) -> dict[str, Any]:
    """A ``Store.feed_table`` row as ``monitor feeds --json`` and the console's feed table (and
    its JSON twin) show it: the feed's ``status`` with the stored fields beside it."""
    st = status(
        active=bool(r["active"]), gone=r["gone_at"] is not None, error_count=r["error_count"],
        baselined=r["baselined_at"] is not None, cadence=r["cadence_s"], last_new_at=r["last_new_at"],
        now=now, silent_after=poll.silent_after, silent_min=poll.silent_min, paused=r.get("paused_at") is not None)
    try:
        tags = json.loads(r.get("tags") or "[]")
    except ValueError:
        tags = []
    return {"id": r["id"], "url": r["url"], "source_url": r.get("source_url"), "title": r["title"], "tags": tags,
            "status": st, "origin": r.get("origin"), "active": bool(r["active"]),
            "paused_at": r.get("paused_at"), "last_error": f"{r['last_error_kind']}: {r['last_error']}"
            if r["last_error_kind"] else None, "last_polled_at": r.get("last_polled_at"),
            "last_ok_at": r["last_ok_at"], "next_check_at": r["next_check_at"] if r["active"] else None,
            "cadence_s": r["cadence_s"], "errors": r["error_count"], "entries": r.get("entries"),
            "failing_since": r["failing_since"]}
