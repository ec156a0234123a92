"""Feed lists in and out: OPML import/export, and finding a site's feeds from its HTML.

People arrive with an OPML export from another reader (Feedly, Inoreader, Miniflux, FreshRSS,
NetNewsWire, Thunderbird), or with a site's home page instead of its feed URL. Both are user
input from anywhere, so this module is standard library only, refuses DTDs outright (no entity
is ever expanded: no billion laughs, no external entities), caps the size, and never lets
garbage HTML raise. It is a leaf: it fetches nothing and knows nothing of the store.
"""

from __future__ import annotations

import codecs
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from email.utils import formatdate
from html.parser import HTMLParser
from typing import NoReturn
from urllib.parse import urldefrag, urljoin, urlsplit
from xml.parsers import expat

from .errors import MonitorError

MAX_OPML_BYTES = 20 * 1024 * 1024
FEED_TYPES = {"application/rss+xml", "application/atom+xml", "application/feed+json", "application/json"}
_SURE_FEED_TYPES = {"application/rss+xml", "application/atom+xml", "application/rdf+xml", "application/feed+json"}
_FEED_PATH_ENDS = (".rss", ".xml", ".atom", "/feed", "/feed/", "/rss", "/rss/", "/atom.xml", "feed.json")
_DTD = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


@dataclass(frozen=True)
class FeedRef:
    """A feed someone wants monitored: its URL, what to call it, how it was filed."""

    url: str
    title: str = ""
    tags: tuple[str, ...] = ()
    interval: float | None = None


class OPMLError(MonitorError):
    """The data is not OPML we are willing to read; the message names the source and why."""

    def __init__(self, source: str, problem: str, line: int | None = None):
        self.source, self.problem, self.line = source, problem, line
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: not OPML: {problem}")


# --- reading -------------------------------------------------------------------------------

def read_opml(data: bytes, source: str = "OPML") -> list[FeedRef]:
    """The http(s) feeds of an OPML document, in document order, first of each URL kept."""
    return read_opml_report(data, source)[0]


def read_opml_report(data: bytes, source: str = "OPML") -> tuple[list[FeedRef], list[str]]:
    """Like :func:`read_opml`, plus one human-readable note per outline that was skipped."""
    body = _parse_opml(data, source)
    feeds: list[FeedRef] = []
    notes: list[str] = []
    seen: set[str] = set()
    for outline, folders in _walk(body):
        attrs = _attrs(outline)
        label = _title(attrs)
        url = attrs.get("xmlurl", "").strip()
        if not url:
            if not len(outline):
                notes.append(f"outline {label or '(untitled)'!r}: no xmlUrl")
            continue
        if not _is_http(url):
            notes.append(f"outline {label or url!r}: not an http(s) URL: {url}")
            continue
        key = _url_key(url)
        if key in seen:
            notes.append(f"outline {label or url!r}: duplicate of an earlier outline: {url}")
            continue
        seen.add(key)
        tags = _unique([*folders, *_category_tags(attrs.get("category", ""))])
        feeds.append(FeedRef(url=url, title="" if label == url else label, tags=tags,
                             interval=_interval(attrs.get("interval", ""))))
    return feeds, notes


def _parse_opml(data: bytes, source: str) -> ET.Element:
    """The <body> element. Expat is driven directly so a DOCTYPE or ENTITY declaration stops
    the parse the moment it is seen, whatever the encoding; the byte scan only fails fast."""
    if not isinstance(data, bytes | bytearray):
        raise OPMLError(source, f"expected bytes, got {type(data).__name__}")
    if len(data) > MAX_OPML_BYTES:
        raise OPMLError(source, f"{len(data)} bytes, more than the {MAX_OPML_BYTES} allowed")
    if _DTD.search(data):
        raise OPMLError(source, "has a DOCTYPE or ENTITY declaration, which is refused")
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate()
    parser.buffer_text = True

    def refuse(*_: object) -> NoReturn:
        raise OPMLError(source, "has a DOCTYPE or ENTITY declaration, which is refused", parser.CurrentLineNumber)

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(bytes(data), True)
        root = builder.close()
    except expat.ExpatError as e:
        raise OPMLError(source, f"not well-formed XML: {expat.ErrorString(e.code)}, column {e.offset + 1}",
                        e.lineno) from None
    except (LookupError, ValueError) as e:  # an encoding Python does not know, or text it cannot decode
        raise OPMLError(source, f"unreadable XML: {e}") from None
    if _local(root.tag) != "opml":
        raise OPMLError(source, f"the root element is <{root.tag}>, not <opml>")
    body = next((c for c in root if _local(c.tag) == "body"), None)
    if body is None:
        raise OPMLError(source, "no <body> element")
    return body


def _walk(body: ET.Element) -> Iterable[tuple[ET.Element, tuple[str, ...]]]:
    """Every outline in document order with the titles of the folders it is filed in. An outline
    with children is a folder; if it also has an xmlUrl it is a feed as well. A stack, not
    recursion: a hostile file may nest outlines far deeper than Python's recursion limit."""
    stack: list[tuple[Iterator[ET.Element], tuple[str, ...]]] = [(iter(body), ())]
    while stack:
        children, folders = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
        elif _local(child.tag) == "outline":
            yield child, folders
            if len(child):
                name = _title(_attrs(child))
                stack.append((iter(child), (*folders, name) if name else folders))


def _attrs(element: ET.Element) -> dict[str, str]:
    """Attributes by lower-case local name: xmlUrl, xmlurl and XMLURL are one attribute."""
    out: dict[str, str] = {}
    for name, value in element.attrib.items():
        out.setdefault(_local(name).lower(), value)
    return out


def _local(name: str) -> str:
    return name.rpartition("}")[2].rpartition(":")[2] if ("}" in name or ":" in name) else name


def _title(attrs: dict[str, str]) -> str:
    return _squeeze(attrs.get("title", "")) or _squeeze(attrs.get("text", ""))


def _category_tags(category: str) -> list[str]:
    """OPML 2.0 category: comma-separated, each a word or a "/"-path ("/News/World")."""
    return [part.strip() for item in category.split(",") for part in item.split("/") if part.strip()]


def _interval(value: str) -> float | None:
    """Our own ``interval`` attribute (seconds), written by :func:`write_opml`; junk is ignored."""
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 < seconds < float("inf") else None


# --- writing -------------------------------------------------------------------------------

def write_opml(feeds: Sequence[FeedRef], title: str = "rss-monitor feeds") -> bytes:
    """OPML 2.0 in UTF-8: one folder per first tag (untagged feeds at the top level), all tags
    in ``category``. Folders and feeds keep the order of first appearance."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    ET.SubElement(head, "dateCreated").text = formatdate(usegmt=True)
    body = ET.SubElement(root, "body")
    folders: dict[str, ET.Element] = {}
    for feed in feeds:
        parent = body
        if feed.tags:
            first = feed.tags[0]
            if first not in folders:
                folders[first] = ET.SubElement(body, "outline", text=first, title=first)
            parent = folders[first]
        name = feed.title or feed.url
        outline = ET.SubElement(parent, "outline", type="rss", text=name, title=name, xmlUrl=feed.url)
        if feed.tags:
            outline.set("category", ",".join(feed.tags))
        if feed.interval is not None:
            outline.set("interval", f"{feed.interval:g}")
    ET.indent(root)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode").encode() + b"\n"


# --- discovery -----------------------------------------------------------------------------

class _Links(HTMLParser):
    """Collects <base href>, feed <link>s and <a> links (with their text), unresolved."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.base: str | None = None
        self.links: list[tuple[str, str]] = []
        self.anchors: list[tuple[str, str]] = []
        self._anchor: tuple[str, list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "base" and self.base is None and a.get("href", "").strip():
            self.base = a["href"].strip()
        elif tag == "link" and a.get("href", "").strip():
            rel = a.get("rel", "").lower().split()
            if "alternate" in rel and _mime(a.get("type", "")) in FEED_TYPES:
                self.links.append((a["href"].strip(), _squeeze(a.get("title", ""))))
        elif tag == "a":
            self._close_anchor()
            if a.get("href", "").strip():
                self._anchor = (a["href"].strip(), [a.get("title", "")])

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag == "a":
            self._close_anchor()

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._close_anchor()

    def handle_data(self, data: str) -> None:
        if self._anchor is not None:
            self._anchor[1].append(data)

    def close(self) -> None:
        super().close()
        self._close_anchor()

    def _close_anchor(self) -> None:
        if self._anchor is not None:
            href, parts = self._anchor
            text = _squeeze(" ".join(parts[1:])) or _squeeze(parts[0])
            self.anchors.append((href, text))
            self._anchor = None


def discover(html: bytes | str, base_url: str) -> list[FeedRef]:
    """The feeds a page advertises with <link rel="alternate">, in document order; only when
    it advertises none, its same-host <a> links whose path looks like a feed's."""
    text = html if isinstance(html, str) else _decode_html(html)
    p = _Links()
    try:
        p.feed(text)
        p.close()
    except Exception:  # HTMLParser is lenient; this only guards against the unforeseen
        pass  # keep what was collected before the failure
    base = (_join(base_url, p.base) or base_url) if p.base else base_url
    found = _resolve(p.links, base)
    if found:
        return found
    host = _host(base_url)
    return [f for f in _resolve(p.anchors, base) if _host(f.url) == host and _feedish_path(urlsplit(f.url).path)]


def _resolve(pairs: list[tuple[str, str]], base: str) -> list[FeedRef]:
    out: list[FeedRef] = []
    seen: set[str] = set()
    for href, title in pairs:
        url = _join(base, href)
        if url and _is_http(url) and _url_key(url) not in seen:
            seen.add(_url_key(url))
            out.append(FeedRef(url=url, title=title))
    return out


def _join(base: str, href: str) -> str | None:
    """``href`` resolved against ``base``, without fragment; None when either is not a URL."""
    try:
        return urldefrag(urljoin(base, href))[0]
    except ValueError:  # e.g. an invalid IPv6 literal such as "http://["
        return None


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def _feedish_path(path: str) -> bool:
    path = path.lower()
    last = path.rpartition("/")[2]
    return path.endswith(_FEED_PATH_ENDS) and not last.startswith("sitemap")


def _decode_html(data: bytes) -> str:
    """UTF-8 unless a BOM or an early <meta charset> / http-equiv names another known codec."""
    if data.startswith(codecs.BOM_UTF8):
        return data[3:].decode("utf-8", errors="replace")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace")
    m = re.search(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]{1,40})""", data[:4096], re.I)
    encoding = "utf-8"
    if m:
        try:
            encoding = codecs.lookup(m.group(1).decode("ascii")).name
        except LookupError:
            pass
    if encoding.startswith("utf-16"):  # declared in ASCII-compatible bytes, so it cannot be UTF-16
        encoding = "utf-8"
    return data.decode(encoding, errors="replace")


# --- sniffing ------------------------------------------------------------------------------

_PRELUDE = re.compile(r"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE\s+(?!html)[^>]*>)", re.S | re.I)
_FEED_ROOT = re.compile(r"<(?:rss|feed|rdf:RDF)[\s>/]")
_HTML_ROOT = re.compile(r"<(?:!DOCTYPE\s+html|html|head|body)[\s>/]", re.I)
_JSON_FEED = re.compile(r'"version"\s*:\s*"https?:\\?/\\?/jsonfeed\.org\\?/version\\?/')


def looks_like_feed(body: bytes, content_type: str) -> bool:
    """Whether a response is a feed rather than a web page: a feed content type (unless the
    body is plainly HTML), else the body's start (after BOM, XML declaration, processing
    instructions and comments, skipped within the first 8 KiB) looked at for 1,024 bytes."""
    start = _start(body)
    if _HTML_ROOT.match(start):
        return False
    if _mime(content_type) in _SURE_FEED_TYPES:
        return True
    if _FEED_ROOT.match(start):
        return True
    return start.startswith("{") and bool(_JSON_FEED.search(start))


def looks_like_page(body: bytes) -> bool:
    """Whether the body is plainly an HTML document (its root element, after the prelude)."""
    return bool(_HTML_ROOT.match(_start(body)))


def _start(body: bytes) -> str:
    """The first 1,024 characters after BOM, XML declaration, processing instructions and comments."""
    head = _sniff_text(body[:8192])
    pos = 0
    while m := _PRELUDE.match(head, pos):
        if m.end() == pos:
            break
        pos = m.end()
    while pos < len(head) and head[pos].isspace():
        pos += 1
    return head[pos:pos + 1024]


def _sniff_text(data: bytes) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace")
    if data.startswith(codecs.BOM_UTF8):
        data = data[3:]
    return data.decode("latin-1")  # every byte maps; only ASCII markup is looked at


# --- small shared helpers ------------------------------------------------------------------

def _mime(content_type: str) -> str:
    return content_type.partition(";")[0].strip().lower()


def _is_http(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def _url_key(url: str) -> str:
    """Duplicates differ at most in the case of scheme and host."""
    parts = urlsplit(url)
    return parts._replace(scheme=parts.scheme.lower(), netloc=parts.netloc.lower()).geturl()


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(i for i in items if i))


def _squeeze(text: str) -> str:
    return " ".join(text.split())
