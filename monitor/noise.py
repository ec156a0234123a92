"""Noise control, decided: which alert waits for a digest, when held alerts are released, and
when two texts tell the same story. Pure: data in, data out, no I/O (the SQL is in
store/noise.py, the sending in delivery.py).

Per channel (``[channels.NAME]``): ``digest`` (cron, run by the daemon's scheduler), ``quiet_hours``
in ``timezone``, ``rate_limit`` per rule, ``followup_every``. An alert that may not go now is
*held* (outbox state 'held', with why); held alerts leave together as ONE digest message, which
is itself an outbox row and goes through the same claim / sent / failed / dead states.
``urgent`` never waits.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import time

from . import dates

RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_WORD = re.compile(r"\w+", re.UNICODE)
SHINGLE = 3  # words per shingle
MIN_WORDS = 80  # shorter texts (a teaser, a headline) say too little to tell stories apart
# ... so a shorter text is compared whole (``text_hash``), from this many words: below it ("Live
# updates", "Watch the video") two stories can share a text honestly
MIN_SHORT_WORDS = 8
GROUP_WINDOW = 48 * 3600  # seconds: a near-identical text later than this is a story of its own
# most differing bits of two 64-bit SimHashes that still mean "the same story": edited copies of
# an 800-word text differ by ~2 (max 6), of a 200-word text by ~5 (max 11); unrelated texts by
# 20 or more (measured, see issue 5's note)
NEAR = 10
# seconds the "while you were away" digest waits for feeds whose first poll has not succeeded yet
# (a feed failing from the start must not hold back what the others found)
BACKLOG_SETTLE = 600


def rate(spec: str) -> tuple[int, float] | None:
    """'5/h' -> (5, 3600.0); '10/30m' -> (10, 1800.0); '' -> None. ValueError if malformed."""
    if not spec.strip():
        return None
    m = RATE.match(spec)
    if not m or int(m.group(1)) < 1:
        raise ValueError(f"expected N/UNIT such as '5/h' or '20/30m' (UNIT: s, m, h, d), got {spec!r}")
    return int(m.group(1)), int(m.group(2) or 1) * UNITS[m.group(3)]


def quiet_window(spec: str) -> tuple[time, time] | None:
    """'22:00-07:00' -> (22:00, 07:00); '' -> None. ValueError if malformed or empty."""
    if not spec.strip():
        return None
    parts = spec.split("-")
    try:
        if len(parts) != 2:
            raise ValueError(spec)
        start, end = dates.clock(parts[0]), dates.clock(parts[1])
    except ValueError:
        raise ValueError(f"expected HH:MM-HH:MM such as '22:00-07:00', got {spec!r}") from None
    if start == end:
        raise ValueError(f"start and end are the same: {spec!r}")
    return start, end


@dataclass(frozen=True)
class Policy:
    """A channel's noise settings, parsed (see ``policy``)."""

    digest: str = ""  # cron expression; the daemon's scheduler runs it
    quiet: tuple[time, time] | None = None
    zone: str = "UTC"
    rate: tuple[int, float] | None = None  # (alerts, seconds) per rule
    followup_every: float = 3600.0


def policy(digest: str = "", quiet_hours: str = "", timezone: str = "UTC", rate_limit: str = "",
           followup_every: float = 3600.0) -> Policy:
    return Policy(digest.strip(), quiet_window(quiet_hours), timezone or "UTC", rate(rate_limit), followup_every)


def quiet(p: Policy, now: float) -> bool:
    """Is ``now`` (a Unix time) inside the channel's quiet hours, on its wall clock? A window
    such as 22:00-07:00 crosses midnight. Wall clock, so it follows daylight saving time."""
    if p.quiet is None:
        return False
    t = dates.wall_clock(now, p.zone)
    start, end = p.quiet
    return start <= t < end if start < end else (t >= start or t < end)


def hold(p: Policy, severity: str, now: float, sent_in_window: int) -> str | None:
    """Why a due alert must wait ('quiet', 'digest', 'rate'), or None to send it now.
    ``sent_in_window``: alerts of its rule this channel sent on their own within the rate
    window. ``urgent`` never waits."""
    if severity == "urgent":
        return None
    if quiet(p, now):
        return "quiet"
    if p.digest:
        return "digest"
    if p.rate is not None and sent_in_window >= p.rate[0]:
        return "rate"
    return None


# A channel without a digest schedule still gets its 'mention' rows (matches between a rule's
# digest_at and alert_at, issue 17): they leave as one digest once the oldest has waited a day.
MENTION_EVERY = 86_400.0


def release(p: Policy, now: float, held: dict[str, float], rate_freed: bool, first_polls: bool = False) -> bool:
    """Should the channel's held alerts leave now, as one digest? ``held``: reason -> the
    oldest held alert's time. Never in quiet hours; at their end; when a rule's rate window
    has room again (``rate_freed``); follow-ups after ``followup_every``; what feeds' first
    polls found ('backlog') once no feed awaits its first poll (``first_polls``: some do), or
    BACKLOG_SETTLE after the first of it, so that a new team gets one "while you were away"
    digest soon, not a burst. A channel with a ``digest`` schedule waits for it (the daemon's
    cron job), except at the end of quiet hours and for the backlog."""
    if not held or quiet(p, now):
        return False
    if "quiet" in held:
        return True
    if "backlog" in held and (not first_polls or now - held["backlog"] >= BACKLOG_SETTLE):
        return True
    if p.digest:
        return False
    if "rate" in held and rate_freed:
        return True
    if "mention" in held and now - held["mention"] >= MENTION_EVERY:
        return True
    return "followup" in held and now - held["followup"] >= p.followup_every


# bit -> a table that maps each byte to 1 when that bit is set, else 0: counting the ones at a bit
# position over all shingles' hashes is then bytes.translate + count, in C.
_BIT = [bytes((b >> bit) & 1 for b in range(256)) for bit in range(8)]


def simhash(text: str) -> int | None:
    """A 64-bit SimHash (Charikar) over 3-word shingles of the text; None for a text under
    MIN_WORDS words. Near-identical texts differ in few bits (see ``near``)."""
    words = _WORD.findall(text.lower())
    if len(words) < MIN_WORDS:
        return None
    shingles = {" ".join(words[i:i + SHINGLE]) for i in range(len(words) - SHINGLE + 1)}
    hashes = b"".join(hashlib.blake2b(s.encode(), digest_size=8).digest() for s in shingles)
    half, value = len(shingles) / 2, 0
    for k in range(8):  # byte k of every hash
        column = hashes[k::8]
        for bit in range(8):
            if column.translate(_BIT[bit]).count(1) > half:
                value |= 1 << (k * 8 + bit)
    return value - (1 << 64) if value >= 1 << 63 else value  # SQLite integers are signed


def text_hash(text: str) -> str | None:
    """An exact fingerprint of a text too short for ``simhash`` (MIN_SHORT_WORDS to MIN_WORDS
    words): its words, case and punctuation aside. The same teaser at two URLs from two feeds
    is one story. None for other texts."""
    words = _WORD.findall(text.lower())
    if not MIN_SHORT_WORDS <= len(words) < MIN_WORDS:
        return None
    return hashlib.blake2b(" ".join(words).encode(), digest_size=16).hexdigest()


def near(fp: int, candidates: Iterable[tuple[int, int]], max_bits: int = NEAR) -> int | None:
    """The id of the first candidate (id, simhash) within ``max_bits`` of ``fp``, else None."""
    for cid, other in candidates:
        if ((fp ^ other) & ((1 << 64) - 1)).bit_count() <= max_bits:
            return cid
    return None
