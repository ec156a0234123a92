"""Rule filters: which feeds, feed tags, languages and article ages a rule looks at."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any

from ..models import Article
from .tree import Rule


def passes(rule: Rule, article: Article, feed: Any, now: float | None) -> bool:
    """False when a filter of ``rule`` excludes the article. A filter on feeds or tags
    excludes an article whose feed is unknown; an article with no date passes ``max_age``."""
    if rule.languages and (article.language or "").lower()[:2] not in rule.languages:
        return False
    if rule.feeds:
        names = [str(getattr(feed, "url", "") or ""), str(getattr(feed, "title", "") or "")]
        if feed is None or not any(fnmatchcase(n.lower(), g.lower()) for g in rule.feeds for n in names if n):
            return False
    if rule.tags:
        tags = {t.lower() for t in (getattr(feed, "tags", None) or ())}
        if not tags & {t.lower() for t in rule.tags}:
            return False
    if rule.max_age is not None and article.date:
        when = timestamp(article.date)
        if when is not None and (now if now is not None else time.time()) - when > rule.max_age:
            return False
    return True


def timestamp(date: str) -> float | None:
    """Seconds since the epoch of an ISO date or date-time (UTC when it has no zone)."""
    try:
        d = datetime.fromisoformat(date.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if d.tzinfo is None:
        d = d.replace(tzinfo=UTC)
    return d.timestamp()
