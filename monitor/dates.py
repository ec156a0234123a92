"""Every parse of a date or a time, and the one rule for a value without a zone. Pure.

Feeds (RSS pubDate, Atom updated, JSON Feed date_published), HTTP headers (Date, Expires,
Retry-After), our own stored values and the CLI's "--since 14d" are read here and nowhere
else, so that one text never means two moments in two modules (issue 15).

**A time without a zone is UTC.** Every standard we read requires a zone except two that
say what a missing one means, UTC: RFC 9110's HTTP-date (its asctime form has no zone; it is
GMT) and RFC 5322's ``-0000`` (a UTC time, the sender's zone unknown; Python reads it as
naive). Our own values are UTC (the parser stores ``2026-11-01T08:00:00Z``, an article's page
date is a bare ``2026-11-01``), and render and rule filters always read a zoneless one as
UTC. A zoneless feed date is a
publisher's mistake; read as UTC it is off by at most 14 hours, whereas dropping it (what
``schedule`` did before) loses the date: the entry is never "recent", never counts for the
feed's cadence, while the parser had stored it as UTC all along. feedparser reads a zoneless
ISO date and an unknown zone name (``CEST``) as UTC too, so the feed path and this module
agree: an unknown zone name is no zone. A date without a time is midnight UTC.

A moment that cannot be placed in UTC (``0001-01-01T00:00:00+01:00``) is None, like garbage.
"""

from __future__ import annotations

import calendar
import email.utils
import re
import time
from datetime import UTC, datetime
from datetime import time as clock_time
from functools import lru_cache
from zoneinfo import ZoneInfo

Moment = str | int | float | time.struct_time | datetime | None

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_CLOCK = re.compile(r"^\s*([01]\d|2[0-3]):([0-5]\d)\s*$")
_BAD = (ValueError, TypeError, OverflowError, OSError, IndexError)


def parse(value: Moment) -> datetime | None:
    """An aware datetime, its own offset kept, from ISO 8601 / RFC 3339 text (``Z``, an offset
    or none), RFC 5322 / HTTP-date text (all three RFC 9110 forms), a Unix time, a struct_time
    (feedparser's ``*_parsed``, which it gives in UTC) or a datetime. None for anything else."""
    moment: datetime | None
    try:
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, time.struct_time):
            moment = datetime.fromtimestamp(calendar.timegm(value), UTC)  # timegm: a leap second rolls over
        elif isinstance(value, int | float) and not isinstance(value, bool):
            moment = datetime.fromtimestamp(value, UTC)
        elif isinstance(value, str) and value.strip():
            moment = _text(value.strip())
        else:
            return None
    except _BAD:
        return None
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)  # the rule


def _text(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)  # 3.11: Z, offsets, a bare date, 20261101
    except ValueError:
        pass
    try:
        return email.utils.parsedate_to_datetime(text)
    except _BAD:
        return None


def utc(value: Moment) -> datetime | None:
    """``parse`` in UTC."""
    moment = parse(value)
    try:
        return moment.astimezone(UTC) if moment is not None else None
    except _BAD:  # past year 1 or year 9999 once in UTC
        return None


def timestamp(value: Moment) -> float | None:
    """Seconds since the epoch; None when unknown."""
    if value.__class__ is str:
        return _text_timestamp(value)
    moment = utc(value)
    return moment.timestamp() if moment is not None else None


@lru_cache(maxsize=4096)
def _text_timestamp(value: str) -> float | None:
    """``timestamp`` of a text, remembered: a poll reads each entry's stored date three times
    (is it recent, the feed's cadence, its newest entry), ~1.1 us each; a repeat costs 0.05 us
    (issue 16: a first pass over 1,000 feeds reads 59,000 dates)."""
    moment = utc(value)
    return moment.timestamp() if moment is not None else None


def stamp(value: Moment) -> str | None:
    """``2026-11-01T08:00:00Z``: the storage form, UTC to the second."""
    if type(value) is time.struct_time:  # feedparser's, in UTC: every parsed entry's date (issue 16)
        try:  # a date that exists is written as it stands, ~4x cheaper than through a timestamp
            return datetime(*value[:6]).isoformat() + "Z"
        except _BAD:  # a leap second, Feb 30, ...: rolled over as timegm does, below
            pass
    moment = utc(value)
    return moment.replace(microsecond=0, tzinfo=None).isoformat() + "Z" if moment is not None else None


def iso(value: Moment) -> str | None:
    """ISO 8601 with its own zone, to the second: ``2026-11-01T10:00:00+02:00``, ``...Z`` for
    UTC. A stored 0 or "" is unknown: None."""
    if value in (0, "") or utc(value) is None:  # utc(): the moment can be placed at all
        return None
    moment = parse(value)
    assert moment is not None
    text = moment.isoformat(timespec="seconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def readable(value: Moment) -> str:
    """``2026-11-01 08:00 UTC`` for a person; anything unparseable as it came ("" for None)."""
    moment = utc(value)
    return f"{moment.replace(tzinfo=None).isoformat(' ', 'minutes')} UTC" if moment else str(value or "")


def local(ts: float | None) -> str:
    """``2026-11-01 09:00:00`` on this machine's wall clock; "-" when unknown."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


def span(seconds: float | None) -> str:
    """``45s``, ``12m``, ``5h``, ``3d``: a length of time, coarsened for reading."""
    if seconds is None:
        return "-"
    s = int(seconds)
    return f"{s}s" if s < 120 else f"{s // 60}m" if s < 7200 else f"{s // 3600}h" if s < 172800 else f"{s // 86400}d"


def ago(ts: float | None, now: float) -> str:
    """``5m ago``, ``in 2h``; ``never`` for None and ``now`` for 0 (a row due at once)."""
    if not ts:
        return "never" if ts is None else "now"
    d = ts - now
    return f"in {span(d)}" if d > 0 else f"{span(-d)} ago"


def duration(text: str) -> float:
    """``14d`` -> 1209600.0: a number and a unit (s, m, h, d, w). ValueError if malformed."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"expected a number and a unit (s, m, h, d, w), e.g. 14d, got {text!r}")
    return float(m.group(1)) * UNITS[m.group(2)]


def clock(text: str) -> clock_time:
    """``22:00`` -> 22:00, a time of day (HH:MM, 24-hour). ValueError if malformed."""
    m = _CLOCK.match(text)
    if not m:
        raise ValueError(f"expected HH:MM, got {text!r}")
    return clock_time(int(m.group(1)), int(m.group(2)))


def wall_clock(ts: float, zone: str) -> clock_time:
    """The time of day a Unix time shows in ``zone`` (an IANA name): follows daylight saving."""
    return datetime.fromtimestamp(ts, ZoneInfo(zone)).time()
