"""Rule filters: which feeds (and which not), feed tags, languages and article ages a rule looks at."""

from __future__ import annotations

import time
from fnmatch import fnmatchcase
from typing import Any

from .. import dates
from ..models import Article
from .tree import Rule


def passes(rule: Rule, article: Article, feed: Any, now: float | None) -> bool:
    """False when a filter of ``rule`` excludes the article. A filter on feeds or tags
    excludes an article whose feed is unknown (``skip_feeds`` does not: it names the feeds it
    leaves out); an article with no date passes ``max_age``."""
    if rule.languages and (article.language or "").lower()[:2] not in rule.languages:
        return False
    if rule.feeds or rule.skip_feeds:
        names = [str(getattr(feed, "url", "") or ""), str(getattr(feed, "title", "") or "")]
        if rule.feeds and (feed is None or not _any_glob(rule.feeds, names)):
            return False
        if rule.skip_feeds and feed is not None and _any_glob(rule.skip_feeds, names):
            return False
    if rule.tags:
        tags = {t.lower() for t in (getattr(feed, "tags", None) or ())}
        if not tags & {t.lower() for t in rule.tags}:
            return False
    if rule.max_age is not None and article.date:
        when = dates.timestamp(article.date)  # no zone: UTC
        if when is not None and (now if now is not None else time.time()) - when > rule.max_age:
            return False
    return True


def _any_glob(globs: tuple[str, ...], names: list[str]) -> bool:
    """Whether one of ``names`` (a feed's URL and title) matches one of ``globs``, case-insensitively."""
    return any(fnmatchcase(n.lower(), g.lower()) for g in globs for n in names if n)
