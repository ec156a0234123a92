"""Frozen dataclasses passed between stages. No library type ever leaves its module:
each stage normalises into these at its boundary."""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Feed:
    """A feed row as the pipeline needs it: where to fetch and what validators to send."""

    id: int
    url: str
    title: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    interval: float = 900  # configured, else the default
    error_count: int = 0
    baselined: bool = False
    source_url: str = ""  # as configured or added; ``url`` follows permanent redirects
    tags: tuple[str, ...] = ()
    pinned: bool = False  # its interval was set explicitly: no adaptive cadence
    cadence: float | None = None  # learned seconds between new entries
    last_new_at: float | None = None
    failing_since: float | None = None
    gone: bool = False  # answered 410
    alerted_failing: bool = False  # an ops alert went out for the current failure streak
    ttl: float | None = None  # seconds its last parsed body asked to be cached (RSS <ttl>): a 304 keeps it

    @cached_property  # asked several times a poll by the dispatcher; frozen: the URL never changes
    def host(self) -> str:
        return (urlsplit(self.url).hostname or "").lower()


class Keep(enum.Enum):
    """A column a poll leaves as it is (``FeedUpdate``); None, by contrast, clears it."""

    KEEP = "keep"


KEEP = Keep.KEEP


@dataclass(frozen=True)
class Notice:
    """An ops message about a feed (failing, recovered, gone) for one channel."""

    kind: str
    channel: str
    title: str
    body: str


@dataclass(frozen=True)
class FeedUpdate:
    """What one poll changes in its feed's row: decided by ``health.decide`` (pure), written
    by the store (``save_poll``, or ``record`` with the poll's entries) in one transaction.
    A field left at KEEP is not written; None clears its column."""

    last_polled_at: float | Keep = KEEP
    last_ok_at: float | Keep = KEEP
    last_status: str | Keep = KEEP  # ok | not-modified | error
    last_error_kind: str | None | Keep = KEEP
    last_error: str | None | Keep = KEEP
    error_count: int | Keep = KEEP
    failing_since: float | None | Keep = KEEP  # start of the current failure streak
    gone_at: float | None | Keep = KEEP  # when it first answered 410
    alerted_failing: bool | Keep = KEEP  # an ops alert went out for the current streak
    next_check_at: float | Keep = KEEP
    etag: str | None | Keep = KEEP
    last_modified: str | None | Keep = KEEP
    body_hash: str | None | Keep = KEEP
    cadence_s: float | None | Keep = KEEP
    last_new_at: float | None | Keep = KEEP
    baselined_at: float | Keep = KEEP
    ttl_s: float | None | Keep = KEEP  # the parsed body's <ttl>, None for none (a 304 keeps the last)
    moved: str | None = None  # its new address after permanent redirects only (301/308)
    notices: tuple[Notice, ...] = ()  # ops messages to queue with the update
    warning: str = ""  # the one log line the change deserves (gone, failing); "" for none


@dataclass(frozen=True)
class FetchResult:
    url: str  # final URL after redirects
    status: int
    headers: dict[str, str]  # lower-case keys, the last of a repeated header
    body: bytes
    elapsed_ms: int = 0

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")

    @property
    def last_modified(self) -> str | None:
        return self.headers.get("last-modified")

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    @cached_property
    def digest(self) -> str:
        """The body's SHA-256 (hex), worked out once: the fetch compares it with the last poll's,
        the poll stores it; a changed body from a server that ignores validators was hashed
        twice (~40 us for 60 KB)."""
        return hashlib.sha256(self.body).hexdigest()

    moved: str | None = None  # the new URL when every redirect was permanent (301/308)


@dataclass(frozen=True)
class Entry:
    """One feed item. ``uid`` is its identity: guid, else canonical link, else content hash."""

    uid: str
    title: str
    link: str | None
    summary: str  # plain text
    content: str  # plain text of the feed's full content, "" when the feed has none
    published: str | None  # ISO 8601 UTC
    guid: str | None = None
    content_hash: str = ""
    # the link is not this item's own page: other items of the feed share it, or it is the feed's
    # home page. It identifies nothing, and the item's text is the feed's (issue 14).
    shared_link: bool = False

    @property
    def story(self) -> str:
        """The story's key across feeds: its canonical link, else its identity here."""
        return self.link if self.link and not self.shared_link else self.uid


@dataclass(frozen=True)
class ParsedFeed:
    title: str | None
    entries: tuple[Entry, ...]
    version: str = ""
    ttl: float | None = None  # seconds the feed asks to be cached (RSS <ttl>), if it says


@dataclass(frozen=True)
class Article:
    """What the rules see: the entry plus the best body we could get."""

    title: str
    text: str
    summary: str = ""
    url: str | None = None
    language: str | None = None
    author: str | None = None
    date: str | None = None
    source: str = "feed"  # page | feed-content | feed-summary
    error: str | None = None  # why the page was not used, when it was not
    alternate: str | None = None  # the page's AMP version, or an AMP page's canonical URL


# a match's salience features, (name, value): numbers (rules/salience.py), and for a match a
# rule's model recalibrated, its plain salience ("plain") and the model's words ("learned")
Features = tuple[tuple[str, float | int | str | None], ...]


@dataclass(frozen=True)
class Match:
    rule_id: str
    rule_title: str
    terms: tuple[str, ...]
    field: str
    snippet: str
    channels: tuple[str, ...] = ()
    severity: str = "normal"  # info | normal | urgent
    score: float = 0  # weighted hits (a title hit weighs the rule's title_weight)
    context: tuple[str, ...] = ()  # terms hit only by the rule's context clauses (``all``), not the topic's own
    # how much the article is about the topic, 0 to 1, and why (rules/salience.py, issue 17); the
    # tier follows from the rule's alert_at and digest_at: alert | digest | store
    salience: float = 1.0
    tier: str = "alert"
    features: Features = ()


TIERS = ("store", "digest", "alert")  # lowest first


LONG_ARTICLE = 80  # sentences: past this salience calls an article long (rules/salience.py LONG)


def why(features: Features | dict) -> str:
    """A match's salience features in words (rules/salience.py names them): "title and lead;
    6 of 14 sentences; parts in one sentence". Here, not in rules/, so that messages and the
    CLI can word stored features without importing the matcher."""
    f = dict(features)
    if not f:
        return ""
    where = [w for w in ("title", "lead") if f.get(w)]
    out = [" and ".join(where)] if where else []
    out.append(f"{f.get('sentences', 0)} of {f.get('of', 0)} sentences")
    if f.get("passing") == 1:  # salience.passing: the rule's ``about:`` words are hardly elsewhere
        others = f.get("of", 0) - f.get("sentences", 0)
        out.append(f"in passing: 'about' words in {f.get('about', 0)} of {others} other sentences")
    if f.get("together") == 1:
        out.append("parts in one sentence")
    elif f.get("together") == 0:
        out.append("parts apart")
    only = [{"quoted": "in quotes", "aside": "in an aside", "listed": "in a list"}[w]
            for w in ("quoted", "aside", "listed") if f.get(w)]
    if only:
        out.append("only " + " / ".join(only))
    of = f.get("of")
    if isinstance(of, (int, float)) and of > LONG_ARTICLE:
        out.append("long article")
    plain, learned = f.get("plain"), f.get("learned")
    if isinstance(plain, (int, float)) and isinstance(learned, str):  # recalibrated by the rule's model
        out.append(f"plain {plain:.2f}, {learned}")
    return "; ".join(out)


SEVERITIES = ("info", "normal", "urgent")  # lowest first


@dataclass(frozen=True)
class AlertRule:
    """One rule that fired on an alert's story: an alert names every one (issue 14)."""

    rule_id: str
    title: str
    terms: tuple[str, ...]  # the topic's own terms that matched
    context: tuple[str, ...] = ()  # context words the rule also required (``all``)
    severity: str = "normal"
    salience: float = 1.0
    tier: str = "alert"
    features: Features = ()


@dataclass(frozen=True)
class Alert:
    """One outbox row: a story to deliver through one channel. ``rule_id``, ``rule_title``,
    ``terms`` and ``snippet`` are the lead rule's (the story's most severe, then first);
    ``rules`` lists every rule that fired on the story, the lead first."""

    id: int
    channel: str
    rule_id: str
    rule_title: str
    title: str
    link: str | None
    feed_title: str | None
    published: str | None
    terms: tuple[str, ...]
    snippet: str
    attempts: int = 0
    created_at: float = 0.0
    # delivery state: pending | sending | sent | failed | dead (see delivery.py)
    state: str = "pending"
    last_error: str | None = None
    last_status: int | None = None  # the service's last HTTP status, if it speaks HTTP
    next_attempt_at: float = 0.0
    last_attempt_at: float | None = None
    sent_at: float | None = None
    dead_at: float | None = None
    revived_at: float | None = None  # `monitor alerts retry`: max_age counts from here
    severity: str = "normal"  # info | normal | urgent: the rule's when the match was made
    language: str | None = None  # the article's, when known
    held: str | None = None  # why it waits: quiet | digest | rate | followup | backlog | mention (noise.py)
    digest_id: int | None = None  # the carrier row of the digest that lists it; its own id: a digest
    rules: tuple[AlertRule, ...] = ()  # every rule that fired on the story, the lead first
    lease_until: float | None = None  # 'sending': its sender's claim runs out then (monitor/leases.py)
    context: tuple[str, ...] = ()  # the lead rule's context words (see AlertRule)
    salience: float = 1.0  # the lead rule's salience, tier and features (see Match)
    tier: str = "alert"
    features: Features = ()


@dataclass(frozen=True)
class Answer:
    """What a service answered to one message: its HTTP status, Retry-After and body, or
    (for SMTP and other non-HTTP channels) apprise's account of the exchange."""

    ok: bool
    detail: str
    status: int | None = None
    retry_after: float | None = None


@dataclass(frozen=True)
class Channel:
    name: str
    urls: tuple[str, ...]
    tag: str
    default: bool = False
    templates: str = ""  # folder of message templates overriding the built-in ones; "" = none
    digest: str = ""  # noise control (noise.py): cron of the channel's digest; "" = none
    quiet_hours: str = ""  # "22:00-07:00"; "" = none
    timezone: str = "UTC"
    rate_limit: str = ""  # per rule, "5/h"; "" = none
    followup_every: float = 3600.0


@dataclass(frozen=True)
class DigestItem:
    """One alert in a digest: a story of a rule, with the other sources that told it."""

    alert: Alert
    reason: str  # why it was held: quiet | digest | rate | followup
    sources: tuple[tuple[str, str | None], ...] = ()  # follow-ups: (feed, link)


@dataclass(frozen=True)
class Digest:
    """One message listing a channel's held alerts, grouped by rule and story."""

    id: int  # the carrier outbox row
    channel: str
    items: tuple[DigestItem, ...]
    held_back: int = 0  # alerts held by the rate limit
    rate_limit: str = ""
