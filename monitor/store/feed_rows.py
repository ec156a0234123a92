"""A feed's row as the pipeline's ``Feed``: every poll starts from one (``FeedQueries``)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
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
        gone=r["gone_at"] is not None, alerted_failing=bool(r["alerted_failing"]),
    )
    if r["host"]:  # host_of(url), kept with the URL (``_move``): Feed.host's value, not parsed again
        feed.__dict__["host"] = r["host"]
    return feed


# What ``feeds_of`` reads, in its order.
FEED_COLUMNS = ("id, url, title, etag, last_modified, body_hash, interval_s, error_count, baselined_at, source_url, "
                "tags, cadence_s, last_new_at, failing_since, gone_at, alerted_failing, host")


def feeds_of(rows: Sequence[Sequence[Any]], default_interval: float) -> list[Feed]:
    """``feed_of`` for rows of FEED_COLUMNS as tuples, the fields given by position."""
    out = []
    for (id_, url, title, etag, last_modified, body_hash, interval_s, error_count, baselined_at, source_url, tags,
         cadence, last_new_at, failing_since, gone_at, alerted_failing, host) in rows:
        feed = Feed(id_, url, title, etag, last_modified, body_hash, float(interval_s or default_interval),
                    error_count, baselined_at is not None, source_url or url, tags_of(tags), interval_s is not None,
                    cadence, last_new_at, failing_since, gone_at is not None, bool(alerted_failing))
        if host:  # as in feed_of
            feed.__dict__["host"] = host
        out.append(feed)
    return out


def tags_of(text: str | None) -> tuple[str, ...]:
    """The tags column (JSON); most feeds have none, and a JSON parse per feed claimed cost more
    than the rest of the row (bench/polling, issue 16)."""
    return tuple(json.loads(text)) if text and text != "[]" else ()
