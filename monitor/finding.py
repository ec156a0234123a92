"""Find the feed a URL stands for: the feed itself, or the one its web page names with
``<link rel=alternate>`` (issue 18: ``monitor feeds add`` and the console's "add a feed" call
this one function)."""

from __future__ import annotations

from typing import NamedTuple

from . import parse
from .errors import MonitorError
from .fetch import Client, Limits
from .opml import discover, looks_like_feed


class Found(NamedTuple):
    url: str  # the feed's address
    title: str  # the title asked for, else the feed's own, else ""
    page: str | None = None  # the page it was found on, when the URL was a page
    offered: tuple[str, ...] = ()  # the page's other feeds (with their titles), not added


async def find_feed(limits: Limits, url: str, title: str = "") -> Found:
    """Fetch ``url``; a page leads to its first named feed, which is fetched and parsed to be
    sure it is one. MonitorError (fetch.FetchError is one) says why not."""
    async with Client(limits) as http:
        res = await http.get(url)
        page = None
        offered: tuple[str, ...] = ()
        if not looks_like_feed(res.body, res.content_type):
            candidates = discover(res.body, res.url)
            if not candidates:
                raise MonitorError("not a feed, and the page names no feed (<link rel=alternate>)")
            offered = tuple(c.url + (f" ({c.title})" if c.title else "") for c in candidates[1:])
            page, url = res.url, candidates[0].url
            res = await http.get(url)
        parsed = parse.parse_bytes(res.body, res.content_type, res.url)
    return Found(url, title or parsed.title or "", page, offered)


def limits_of(fetch: object) -> Limits:
    """fetch.Limits from the config's ``[fetch]`` section."""
    f = fetch
    return Limits(connect_timeout=f.connect_timeout, timeout=f.timeout, max_bytes=f.max_bytes,  # type: ignore[attr-defined]
                  user_agent=f.user_agent or Limits.user_agent,  # type: ignore[attr-defined]
                  allow_private=tuple(f.allow_private))  # type: ignore[attr-defined]
