"""A feed's row as the pipeline's ``Feed``: every poll starts from one (``FeedQueries``)."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from ..models import Feed


def feed_of(r: Mapping[str, Any], default_interval: float) -> Feed:
    feed = Feed(
        id=r["id"], url=r["url"], title=r["title"], etag=r["etag"],
        last_modified=r["last_modified"], body_hash=r["body_hash"],
        interval=float(r["interval_s"] or default_interval), error_count=r["error_count"],
        baselined=r["baselined_at"] is not None, source_url=r["source_url"] or r["url"],
        tags=tags_of(r["tags"]), pinned=r["interval_s"] is not None,
        cadence=r["cadence_s"], last_new_at=r["last_new_at"], failing_since=r["failing_since"],
        gone=r["gone_at"] is not None, alerted_failing=bool(r["alerted_failing"]), ttl=r["ttl_s"],
    )
    if r["host"]:  # host_of(url), kept with the URL (``_move``): Feed.host's value, not parsed again
        feed.__dict__["host"] = r["host"]
    return feed


# What ``feeds_of`` reads, in its order.
FEED_COLUMNS = ("id, url, title, etag, last_modified, body_hash, interval_s, error_count, baselined_at, source_url, "
                "tags, cadence_s, last_new_at, failing_since, gone_at, alerted_failing, host, ttl_s")


def feeds_of(rows: Sequence[Sequence[Any]], default_interval: float) -> list[Feed]:
    """``feed_of`` for rows of FEED_COLUMNS as tuples, the fields given by position. Each Feed's
    fields go into its __dict__ at once: the frozen dataclass's __init__ sets them one
    object.__setattr__ at a time, half of the ~2 us a row cost (every claim of every poll reads
    here; issue 16, G3). test_store holds the two equal."""
    out = []
    new, set_ = object.__new__, object.__setattr__
    for (id_, url, title, etag, last_modified, body_hash, interval_s, error_count, baselined_at, source_url, tags,
         cadence, last_new_at, failing_since, gone_at, alerted_failing, host, ttl) in rows:
        feed = new(Feed)
        fields = {"id": id_, "url": url, "title": title, "etag": etag, "last_modified": last_modified,
                  "body_hash": body_hash, "interval": float(interval_s or default_interval),
                  "error_count": error_count, "baselined": baselined_at is not None, "source_url": source_url or url,
                  "tags": tags_of(tags), "pinned": interval_s is not None, "cadence": cadence,
                  "last_new_at": last_new_at, "failing_since": failing_since, "gone": gone_at is not None,
                  "alerted_failing": bool(alerted_failing), "ttl": ttl}
        if host:  # as in feed_of
            fields["host"] = host
        set_(feed, "__dict__", fields)
        out.append(feed)
    return out


def tags_of(text: str | None) -> tuple[str, ...]:
    """The tags column (JSON); most feeds have none, and a JSON parse per feed claimed cost more
    than the rest of the row (bench/polling, issue 16)."""
    return tuple(json.loads(text)) if text and text != "[]" else ()


MARKS = 500  # ids sent as parameters of their own; more go as one JSON array
_JSON_IDS = {"sqlite": "SELECT value FROM json_each(?)",
             "postgresql": "SELECT value::bigint FROM json_array_elements_text(?::json)"}


def not_among(ids: Collection[int], dialect: str) -> tuple[str, list[Any]]:
    """`` AND id NOT IN (...)`` for ``ids``, and its parameters: a few as parameters of their
    own, more as one JSON array (a daemon may hold tens of thousands of feeds, and SQLite's
    default limit is 32,766 parameters a statement)."""
    if len(ids) > MARKS:
        return f" AND id NOT IN ({_JSON_IDS[dialect]})", [json.dumps(sorted(ids))]
    return f" AND id NOT IN ({','.join('?' * len(ids))})", sorted(ids)
