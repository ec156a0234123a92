"""Fetched bytes + headers -> ParsedFeed of normalised Entries, with feedparser.

feedparser never fetches here: it gets the bytes our ``fetch`` read and the response
headers (for the charset and the base URL). Entry identity: guid, else canonical link,
else a hash of title + summary; a link that several items share, or the feed's home page, is
no identity (``_own_links``).

feedparser and the fast path are imported by the parse itself: the daemon's own process imports
this module for ``canonical_url`` and to name ``parse_bytes`` to its workers, whose forkserver
preloads both parsers (daemon.WORKER_PRELOAD); holding them cost it ~10 MB (issue 16).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import logging
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from . import dates
from .errors import ParseError
from .models import Entry, ParsedFeed
from .text import html_to_text

log = logging.getLogger(__name__)

# An internal entity referenced thousands of times slips past expat's guard through
# feedparser's loose-parser fallback (68 KB became 888 MB in ../shared/LIBRARY-NOTES.md). Feeds have no
# business declaring entities: every <!ENTITY ...> declaration is dropped before parsing,
# wherever it stands, quoted values (which may hold '>') included. A scanner, not one regex:
# the regex <!ENTITY\s(?:[^>"']|"[^"]*"|'[^']*')*> backtracks to the end of the body for every
# unterminated "<!ENTITY " (90 KB of them took 32 s); this is linear.
_ENTITY_START = re.compile(rb"<![eE][nN][tT][iI][tT][yY]\s")  # case-blind; re.I would cost the literal "<!" prefix
_DECL_STOP = re.compile(rb"""[>"']""")
_UTF16_32 = {b"\xff\xfe\x00\x00": "utf-32", b"\x00\x00\xfe\xff": "utf-32",
             b"\xff\xfe": "utf-16", b"\xfe\xff": "utf-16",
             b"<\x00?\x00": "utf-16-le", b"\x00<\x00?": "utf-16-be"}
_XML_ENCODING = re.compile(rb"""^(\s*<\?xml[^>]*?encoding=)(["'])[^"']*\2""")
# http(s), a lower-case host without port or user, a path without spaces, no query, no fragment:
# what the full canonicalisation below leaves as it is (an empty path becomes "/")
_PLAIN_URL = re.compile(r"https?://[a-z0-9.-]+(?:/[^?#\s]*)?\Z")
# hashlib.sha256() looks OpenSSL's digest up by name at every call (EVP_MD_fetch in OpenSSL 3):
# a copy of an empty one does not, ~1/3 cheaper for a summary's text (issue 16)
_SHA256 = hashlib.sha256()
_TRACKING = re.compile(
    r"^(utm_[a-z_]+|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|igshid|_hsenc|_hsmi)$", re.I
)


# Aggregators wrap the publisher's URL: a redirect parameter, or (Google News) a base64url
# protobuf whose field 4 holds the URL. Newer Google News ids ("AU_yqL...") need Google's own
# servers to decode; they are left as they are and the entry falls back to the feed's text.
_REDIRECT_PARAMS = {
    ("www.google.com", "/url"): ("url", "q"),
    ("www.bing.com", "/news/apiclick.aspx"): ("url",),
}
_GOOGLE_NEWS = re.compile(r"^/(?:rss/)?articles/([A-Za-z0-9_-]{16,})")


def unwrap(url: str) -> str:
    """The publisher's URL behind an aggregator link, else ``url`` unchanged."""
    lowered = url.lower()
    if "google.com" not in lowered and "bing.com" not in lowered:  # no aggregator's host
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    host = (parts.hostname or "").lower()
    for (h, path), names in _REDIRECT_PARAMS.items():
        if host == h and parts.path == path:
            params = dict(parse_qsl(parts.query))
            for name in names:
                target = params.get(name, "")
                if target.startswith(("http://", "https://")):
                    return target
    m = _GOOGLE_NEWS.match(parts.path) if host == "news.google.com" else None
    return _google_news(m.group(1)) or url if m else url


def _google_news(article_id: str) -> str | None:
    try:
        raw = base64.urlsafe_b64decode(article_id + "=" * (-len(article_id) % 4))
    except (ValueError, binascii.Error):
        return None
    if not raw.startswith(b"\x08\x13\x22"):
        return None
    length, shift, pos = 0, 0, 3
    while pos < len(raw):  # protobuf varint
        byte = raw[pos]
        length |= (byte & 0x7F) << shift
        pos += 1
        shift += 7
        if not byte & 0x80:
            break
    target = raw[pos:pos + length].decode("utf-8", "replace")
    return target if target.startswith(("http://", "https://")) else None


def canonical_url(url: str) -> str:
    """Scheme and host lower-cased, default port, fragment and tracking parameters dropped."""
    if _PLAIN_URL.match(url):  # already canonical but for an empty path: most feed links
        return url if url.count("/") > 2 else url + "/"
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url.strip()
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    if (scheme, port) in {("http", 80), ("https", 443)}:
        port = None
    if ":" in host:  # IPv6 literal: urlsplit().hostname dropped its brackets
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                       if not _TRACKING.match(k)])
    return urlunsplit((scheme, netloc, parts.path or "/", query, ""))


def parse_bytes(body: bytes, content_type: str = "", url: str = "", fast: bool = True) -> ParsedFeed:
    """Parse feed bytes (RSS, Atom, JSON Feed); ``content_type`` and ``url`` come from the
    response headers. ``fast``: let the fast path answer the feeds it is sure of ([poll]
    fast_parse). Raises ParseError when the bytes are not a usable feed."""
    if not body.strip():  # feedparser calls an empty body under an RSS content type "rss", 0 entries
        raise ParseError("not a feed (empty body)", kind="not-a-feed")
    if "json" in content_type.lower() or body[:256].lstrip()[:1] == b"{":
        return _json_feed(body, url)
    if fast:
        body = _defused(_trim(body))
        d = _fast(body, content_type, url)
    else:
        body, d = _defuse(_trim(body)), None
    if d is None:
        d = _feedparser(body, content_type, url)
    # bozo feeds usually still have good entries; fail only when nothing is usable.
    if not d.get("version") and not d["entries"]:
        why = d.get("bozo_exception")
        raise ParseError(f"not a feed ({why})" if why else "not a feed", kind="not-a-feed")
    return _parsed(d)


def parse_fast(body: bytes, content_type: str = "", url: str = "") -> ParsedFeed | None:
    """What the fast path alone answers, None when it leaves the feed to feedparser: for the
    differential test and the bench, which compare the two paths."""
    if not body.strip() or "json" in content_type.lower() or body[:256].lstrip()[:1] == b"{":
        return None
    body = _defused(_trim(body))
    d = _fast(body, content_type, url)
    return None if d is None or not (d.get("version") or d["entries"]) else _parsed(d)


def _fast(body: bytes, content_type: str, url: str) -> Mapping[str, Any] | None:
    """fastparse's answer; None when it is unsure, missing, or fails in any way: a bad release
    of the fast parser costs speed, never a poll (issue 16)."""
    from . import fastparse

    if not fastparse.AVAILABLE:
        return None
    try:
        d = fastparse.read(body, content_type, url)
        if d is not None:
            _read_dates(d["entries"])
        return d
    except Exception as e:  # noqa: BLE001 - anything it raises means "feedparser answers"
        log.debug("fast parser failed, feedparser answers url=%s error=%s: %s", url, type(e).__name__, e)
        return None
    except BaseException as e:  # a Rust panic arrives as pyo3's PanicException, a BaseException
        if isinstance(e, KeyboardInterrupt | SystemExit | GeneratorExit):
            raise
        log.debug("fast parser panicked, feedparser answers url=%s error=%s", url, e)
        return None


def _read_dates(entries: list[dict[str, Any]]) -> None:
    """The dates feedparser-rs left unread ("Sun, 12 August 2012 10:00:00 EST"), read by
    feedparser's own date parser, so the date is the one feedparser's parse would give."""
    from feedparser.datetimes import _parse_date  # private, stable across feedparser 6

    for e in entries:
        for when, value in e.pop("unread", {}).items():
            e[f"{when}_parsed"] = _parse_date(value)


def _feedparser(body: bytes, content_type: str, url: str) -> Mapping[str, Any]:
    import feedparser

    headers = {"content-location": url} if url else {}
    if content_type:
        headers["content-type"] = content_type
    try:
        # No sanitising, no URI rewriting inside content: feed HTML only ever becomes text
        # (text.html_to_text drops script/style), and the two passes cost ~35 % of the parse
        # (bench/parse_cost.py: 1.09-1.18x -> 0.76x of feedparser's defaults; identical
        # entries on the real-feed corpus).
        d: Mapping[str, Any] = feedparser.parse(body, response_headers=headers, sanitize_html=False,
                                                resolve_relative_uris=False)
    except Exception as e:  # feedparser swallows most errors; a crash is still bad input
        raise ParseError(f"feed parser failed: {type(e).__name__}: {e}") from e
    return d


def _parsed(d: Mapping[str, Any]) -> ParsedFeed:
    """One normalisation for both paths: feedparser's dict, or fastparse's of the same shape."""
    entries = [e for e in (_entry(raw) for raw in d["entries"]) if e is not None]
    feed = d["feed"]
    home = feed.get("link")
    title = html_to_text(feed.get("title", "")) or None
    return ParsedFeed(title=title, entries=_own_links(entries, home), version=d.get("version", ""),
                      ttl=_ttl(feed.get("ttl")))


def _trim(body: bytes) -> bytes:
    """``body`` without the blank lines some servers send before ``<?xml``: an XML declaration
    must come first (XML 1.0 section 2.8), so expat rejects the feed and feedparser reads it with
    its loose parser instead, bozo. Trimmed, both paths read it as the well-formed XML it is."""
    if body[:1].isspace():
        stripped = body.lstrip()
        if stripped.startswith(b"<?xml"):
            return stripped
    return body


def _own_links(entries: list[Entry], home: object) -> tuple[Entry, ...]:
    """Entries whose link is not their own page: a link two items of the feed share, or the
    feed's home page. Such a link is no identity (every item would be one entry, and one story):
    identity falls back to the guid, else the hash of the text, and the entry is marked
    ``shared_link`` so nobody takes that page for its article."""
    counts = Counter(e.link for e in entries if e.link)
    is_url = isinstance(home, str) and home.startswith(("http://", "https://"))
    home_url = canonical_url(unwrap(str(home))) if is_url else None
    out = []
    for e in entries:
        if e.link and (counts[e.link] > 1 or e.link == home_url):
            uid = e.uid if e.guid else f"hash:{e.content_hash}"
            e = dataclasses.replace(e, uid=uid, shared_link=True)
        out.append(e)
    return tuple(out)


def _ttl(value: object) -> float | None:
    """RSS <ttl>: minutes the feed may be cached; None when absent, not a number or not > 0."""
    try:
        minutes = float(str(value).strip())
    except ValueError:
        return None
    return minutes * 60 if 0 < minutes < 1e7 else None


def _defuse(body: bytes) -> bytes:
    """Remove entity declarations. UTF-16/32 feeds are re-encoded as UTF-8 first, or their
    declarations would not be seen in the bytes."""
    for bom, codec in _UTF16_32.items():
        if body.startswith(bom):
            try:
                text = body.decode(codec).lstrip("\ufeff")
            except UnicodeDecodeError:
                break
            body = _XML_ENCODING.sub(rb'\1"utf-8"', text.encode("utf-8"), count=1)
            break
    if _ENTITY_START.search(body):
        body = _strip_entity_decls(body)
    return body


def _defused(body: bytes) -> bytes:
    """``_defuse``'s answer, found without a regex scan of every body (~1.5 % of the parse
    stage) nor a lower-cased copy of it (~3 %): a declaration starts with "<!", and most of the
    "<!" in a feed open a CDATA section or a comment, told apart by the bytes after them."""
    for bom in _UTF16_32:
        if body.startswith(bom):
            return _defuse(body)
    at = body.find(b"<!")
    while at >= 0:
        if body[at + 2:at + 8].lower() == b"entity":  # where _ENTITY_START may match
            return _strip_entity_decls(body)
        at = body.find(b"<!", at + 2)
    return body


def _strip_entity_decls(body: bytes) -> bytes:
    """``body`` without its ``<!ENTITY ...>`` declarations, in one pass; an unterminated one
    runs to the end of the body (the feed is broken from there anyway)."""
    out, pos = [], 0
    while m := _ENTITY_START.search(body, pos):
        out.append(body[pos:m.start()])
        pos = _decl_end(body, m.end())
        if pos < 0:
            return b"".join(out)
    out.append(body[pos:])
    return b"".join(out)


def _decl_end(body: bytes, i: int) -> int:
    """Index after the '>' closing a declaration that starts before ``i``; quoted strings may
    hold '>'. -1 when it never closes."""
    while stop := _DECL_STOP.search(body, i):
        if stop.group() == b">":
            return stop.end()
        close = body.find(stop.group(), stop.end())
        if close < 0:
            return -1
        i = close + 1
    return -1


def _json_feed(body: bytes, url: str) -> ParsedFeed:
    """JSON Feed 1.0 / 1.1 (https://jsonfeed.org/version/1.1), which feedparser does not read."""
    try:
        doc = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ParseError(f"not valid JSON: {str(e)[:120]}") from None
    if not (isinstance(doc, dict) and str(doc.get("version", "")).startswith("https://jsonfeed.org/")
            and isinstance(doc.get("items"), list)):
        raise ParseError("not a feed (JSON, but not a JSON Feed)", kind="not-a-feed")
    base = url or str(doc.get("feed_url") or doc.get("home_page_url") or "")
    entries = []
    for item in doc["items"]:
        if not isinstance(item, dict):
            continue
        html = item.get("content_html")
        content = html_to_text(_str(html)) if isinstance(html, str) else _str(item.get("content_text"))
        link = item.get("url") or item.get("external_url")
        entry = _make_entry(
            title=html_to_text(_str(item.get("title"))),
            summary=html_to_text(_str(item.get("summary"))), content=content,
            link=_join(base, _str(link)) if isinstance(link, str) else None,
            guid=_str(item["id"]) if item.get("id") not in (None, "") else None,
            published=_date(item.get("date_published") or item.get("date_modified")),
        )
        if entry is not None:
            entries.append(entry)
    title = html_to_text(_str(doc.get("title"))) or None
    return ParsedFeed(title=title, entries=_own_links(entries, doc.get("home_page_url")), version=str(doc["version"]))


def _str(value: object) -> str:
    """A JSON value as text that UTF-8 can hold: a "\\ud800" escape decodes to a lone surrogate,
    which neither hashing nor SQLite would take; it becomes "?"."""
    text = str(value or "")
    if text.isascii():
        return text
    return text.encode("utf-8", "replace").decode("utf-8")


def _join(base: str, link: str) -> str | None:
    """``link`` resolved against ``base``; None when either is no URL ("http://[::1": ValueError)."""
    try:
        return urljoin(base, link)
    except ValueError:
        return None


def _date(value: object) -> str | None:
    """A JSON Feed date (RFC 3339 text, which JSON does not type) in the storage form."""
    return dates.stamp(value) if isinstance(value, str) else None


def _entry(raw: dict) -> Entry | None:
    marked_up = raw.get("summary", "")
    summary = html_to_text(marked_up)
    # feedparser's summary is often a copy of the content: its text is not made twice
    content = "\n".join(summary if c.get("value", "") == marked_up else html_to_text(c.get("value", ""))
                        for c in raw.get("content") or [])
    return _make_entry(
        title=html_to_text(raw.get("title", "")), summary=summary,
        content="" if content == summary else content, link=raw.get("link") or None,
        guid=(raw.get("id") or "").strip() or None,
        # feedparser read the date (its struct_time is UTC): stored as dates.stamp writes it
        published=dates.stamp(raw.get("published_parsed") or raw.get("updated_parsed")),
    )


def _make_entry(*, title: str, summary: str, content: str, link: str | None, guid: str | None,
                published: str | None) -> Entry | None:
    """Normalise one item: an http(s) link unwrapped and canonical; identity guid, else
    canonical link, else a hash of the text. None for an item with nothing in it."""
    if link and not link.startswith(("http://", "https://")):
        link = None
    link = canonical_url(unwrap(link)) if link else None
    guid = (guid.strip() or None) if guid else None
    sha = _SHA256.copy()
    sha.update(f"{title}\n{summary}\n{content}".encode())
    digest = sha.hexdigest()[:32]
    if not (title or summary or content or link):
        return None
    uid = f"guid:{guid}" if guid else f"link:{link}" if link else f"hash:{digest}"
    return Entry(uid=uid, guid=guid, title=title, link=link, summary=summary, content=content,
                 published=published, content_hash=digest)
