"""The fast path of ``parse``: feedparser-rs (Rust) for the feeds it reads exactly as feedparser.

feedparser stays the reference (issue 16). ``read`` answers only for input it is sure of and
returns None for everything else, which feedparser then parses:

- bytes feedparser decodes with its first choice of encoding (``_decoded``: they are handed on
  as UTF-8), so its legacy-encoding fallbacks cannot matter;
- well-formed XML with namespaces (pyexpat, the parser feedparser's strict pass uses): an
  ill-formed feed goes through feedparser's loose parser, whose recovery nobody else copies;
- no DOCTYPE in the prolog (feedparser reads Netscape RSS 0.91 entities from it), no xml:base
  but on content elements (links are joined here against the response URL only);
- a format and elements both parsers read alike (``_VERSION``; the differential test
  tests/test_parse_differential.py and the README's table list what is not), or whose reading
  by feedparser is replayed: its summary/content rule and ids (fastxml), its re-reading of each
  element's text (_reread), its date parser (parse._read_dates).

The answer has the shape ``parse._entry`` reads from feedparser (``title``, ``summary``,
``content``, ``link``, ``id``, ``published_parsed``, ``updated_parsed``), so both paths share
one normalisation into Entry. Any exception here means "not sure": the caller falls back.
"""

from __future__ import annotations

import codecs
import functools
import html
import importlib.util
import re
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import urljoin, uses_relative

from . import fastmarkup, fastnames, fastxml

try:  # a missing or broken install means no fast path, never a failed poll
    import feedparser_rs
except ImportError:  # pragma: no cover - exercised by the setting's test instead
    feedparser_rs = None  # type: ignore[assignment]

AVAILABLE = feedparser_rs is not None

# feedparser.encodings: how it finds the declared encoding and what it puts in its place
_PI_ENCODING = re.compile(rb"^<\?.*encoding=['\"](.*?)['\"].*\?>")
_XML_DECLARATION = re.compile(r"^<\?xml[^>]*?>")
_NEW_DECLARATION = "<?xml version='1.0' encoding='utf-8'?>"
_CHARDET = "chardet?"  # where feedparser asks chardet, if installed, in its list of encodings to try
_XML_DECLARATION_BYTES = re.compile(rb"^<\?xml[^>]*?>")
_NEW_DECLARATION_BYTES = _NEW_DECLARATION.encode()
_XML_TYPES = {"application/xml", "application/xml-dtd", "application/xml-external-parsed-entity", "text/xml",
              "text/xml-external-parsed-entity"}
# Markup feedparser reads in ways the fast parser does not, found by the differential test
# (tests/test_parse_differential.py) on the corpus; each is a reason to let feedparser answer.
# (Elements and attributes are checked during the expat pass: fastnames.FEEDPARSER_ONLY.)
# Each regex runs only when one of its literals is in the body (a whole-body regex scan costs
# ~1 ms per 100 KB; a literal search a tenth of that), written case-blind where it must be
# (re.I would cost the scan its literal prefix). No regex: the literal alone.
#
# Markup as child elements of a text element (feedparser keeps it as HTML; Atom's type="xhtml"
# excepted: both give its inner markup) is found during the expat pass, which replays it in an
# RSS <description> (fastnames.text).
_VERSION = {  # what feedparser needs to see to give the version the fast parser gave
    "rss20": re.compile(rb"<rss\b[^>]*\bversion\s*=\s*[\"']2\.0[\"']"),
    "atom10": re.compile(rb"[\"']http://www\.w3\.org/2005/Atom[\"']"),
    "rss10": re.compile(rb"[\"']http://(?:purl\.org/rss/1\.0/|my\.netscape\.com/rdf/simple/0\.9/)[\"']"),
}
_VERSION_LITERALS = {"rss20": (b"<rss",), "atom10": (b"http://www.w3.org/2005/Atom",),
                     "rss10": (b"http://purl.org/rss/1.0/", b"http://my.netscape.com/rdf/simple/0.9/")}
_RSS090_LITERAL = b"http://my.netscape.com/rdf/simple/0.9/"
_RSS090 = re.compile(rb"[\"']http://my\.netscape\.com/rdf/simple/0\.9/[\"']")
# (Atom elements in RSS, which feedparser reads there, <summary>, <id>, <link href>, and Atom links
# carrying their URL as text are noted by the expat pass: fastnames.mark.)
# xml:base on a content element only: what feedparser reads inside content is its text, so no
# link or id is joined against that base (feedparser's base stack pops at the element's end)
_CONTENT_BASE = re.compile(rb"<content\s[^>]*\bxml:base\s*=")
# feedparser-rs's complaint about a date it cannot read: it reads the rest, and parse reads the
# date as feedparser does (a feed's own dates are not used)
_DATE_BOZO = re.compile(r"Invalid \w+ format\Z")
_CP1252 = {i: bytes([i]).decode("cp1252") for i in range(0x80, 0xA0) if i not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)}
_C1 = re.compile("[\x80-\x9f]")
# C1 controls, as UTF-8 or as references (either case of hex); two regexes, each led by a
# literal its scan skips to (one with both alternatives took 6x as long)
_C1_UTF8 = re.compile(rb"\xc2[\x80-\x9f]")
_C1_REFERENCE = re.compile(rb"&#(?:0*(?:12[89]|1[3-5]\d)|[xX]0*[89][0-9a-fA-F]);")
_ELEMENT = re.compile(rb"<\w")  # the first ends the prolog (feedparser.encodings.replace_doctype)
_URIFIXER = re.compile(r"^([A-Za-z][A-Za-z0-9+-.]*://)(/*)(.*?)")  # feedparser.urls._urifixer
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
# An absolute http(s) URL that urljoin gives back exactly as written, whatever the base: ASCII,
# a host of letters, digits, dots and hyphens (no user, no IPv6 brackets), a port, a path without
# ";" (urlparse's params), a query and a fragment each absent or not empty (an empty one is
# dropped), no white space or control character (urlsplit strips or removes them). Most links
# and guids are: urljoin parsed both URLs and rebuilt this one, ~15 % of a feed's parse when they
# are unique, as they are across feeds (urlsplit keeps only 128 answers) (issue 16, G1).
_AS_JOINED = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]*)?(?:/[A-Za-z0-9._~!$&'()*+,=:@%/-]*)?"
                        r"(?:\?[!-\"$-~]+)?(?:#[!-~]+)?\Z")
_REFERENCE = re.compile(r"&(?:#\d+|#x[0-9a-fA-F]+|\w+);")
_SUMMARY_TYPES = {"text/plain", "text/html", "application/xhtml+xml"}


class Unsure(Exception):
    """The fast parser's answer may differ from feedparser's: feedparser answers."""


def read(body: bytes, content_type: str = "", url: str = "") -> dict[str, Any] | None:
    """The feed as ``parse`` needs it, or None when feedparser must answer."""
    if feedparser_rs is None:
        return None
    d = _read(body, content_type, url, False)
    # UTF-8 was taken on trust, expat rejected the bytes and they are not UTF-8: feedparser would
    # have decoded them with a fallback encoding, which is read as it did
    return _read(body, content_type, url, True) if d is _NOT_UTF8 else d  # type: ignore[return-value]


_NOT_UTF8 = object()  # _read's answer: the bytes taken for UTF-8 on trust are not


def _read(body: bytes, content_type: str, url: str, validate: bool) -> dict[str, Any] | None | object:
    original = body
    decoded = _decoded(body, content_type, url, validate)
    if decoded is None:
        return None
    body, trusted = decoded
    # (nothing here reads the whole body lower-cased: body.lower() was ~3 % of the parse stage)
    root = _ELEMENT.search(body)
    prolog = (body[:root.start()] if root else body).lower()  # all feedparser reads a doctype from
    if b"<!doctype" in prolog or b"<!entity" in prolog:
        return None  # Netscape RSS 0.91 entities, internal subsets
    rss = root is not None and body[root.start():root.start() + 4].lower() == b"<rss"
    markup = fastmarkup.HTML if rss else None  # (Atom 0.3 is refused where its namespace is declared: fastxml)
    # else no text needs its C1 controls translated
    c1 = _found((b"\xc2",), _C1_UTF8, body) or _found((b"&#",), _C1_REFERENCE, body)

    def reread(text: str | None) -> str | None:  # (an ASCII text, most, is as it was: no second call)
        return _reread(text, c1) if text and not text.isascii() else text
    empties = fastmarkup.safe if rss and b"/>" in body else None
    try:  # before feedparser-rs: an ill-formed feed is feedparser's anyway
        # feedparser's strict pass: expat, namespaces on
        scan = fastxml.parse(body, fastnames, cast(Callable[[str], str], reread), empties, markup)  # (str in, str out)
    except fastxml.NotReplayed:
        return None
    if scan is None:  # ill-formed, or (taken on trust) not UTF-8: expat rejects any byte that is not
        return _NOT_UTF8 if trusted and not _utf8(original) else None
    # empty: feedparser-rs misreads these empty-element tags (fastmarkup); atomish, image, linktext: fastnames.mark
    count, items, empty, atomish, image, linktext, permalinks = scan
    given = fastmarkup.start_end(body, empty) if empty else body
    if b"\r" in given:  # XML's line ends (2.11), as expat reads them and feedparser-rs does not (an id, a link)
        given = given.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    d = feedparser_rs.parse(given, sanitize_html=False, resolve_relative_uris=False)
    version = d.version
    bozo = d.bozo and not _DATE_BOZO.match(str(d.get("bozo_exception")))
    if bozo or version not in _VERSION or not _found(_VERSION_LITERALS[version], _VERSION[version], body):
        return None
    family = "atom" if version.startswith("atom") else "rss"
    if (atomish if family == "rss" else linktext) or image:
        return None  # an <image> in an item: feedparser reads its title, link and id as the item's
    if len(d.entries) != count:  # feedparser-rs dropped or added an entry
        return None
    if version == "rss10" and _found((_RSS090_LITERAL,), _RSS090, body):
        version = "rss090"  # the RDF of RSS 0.90 under its own namespace, which feedparser names
    based = b"xml:base" in body and body.count(b"xml:base") != len(_CONTENT_BASE.findall(body))
    try:
        entries = [_entry(e, url, version, based, permalinks, items[i] if items is not None else None, reread)
                   for i, e in enumerate(d.entries)]
    except Unsure:
        return None
    feed = d.feed
    if family == "atom" and _spaced(feed.get("link")):
        return None
    return {"version": version, "entries": entries,
            "feed": {"title": reread(feed.get("title")) or "",
                     "link": feed.get("link") if family == "atom" else reread(feed.get("link")),
                     "ttl": feed.get("ttl")}}


@functools.cache
def _chardet_installed() -> bool:
    """Whether feedparser can import cchardet or chardet (feedparser.encodings)."""
    return any(importlib.util.find_spec(name) is not None for name in ("cchardet", "chardet"))


def _found(literals: tuple[bytes, ...], regex: re.Pattern[bytes] | None, text: bytes) -> bool:
    """Whether ``regex`` matches ``text``, searched only when one of ``literals`` (which every
    match contains) is in it; with no regex, whether a literal is."""
    if not any(literal in text for literal in literals):
        return False
    return regex is None or regex.search(text) is not None


def _utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _decoded(body: bytes, content_type: str, url: str, validate: bool = True) -> tuple[bytes, bool] | None:
    """``body`` as UTF-8, decoded as feedparser decodes it (feedparser.encodings.convert_to_utf8:
    its first choice, the HTTP charset, else the XML declaration's, else RFC 3023's default for
    the media type; then, where Python's codec for it fails, the declared encoding, a UTF-8 byte
    order mark's, UTF-8, windows-1252, ISO-8859-2); None where chardet would be asked, or a
    byte order mark or another sniffed encoding comes into play. And whether UTF-8, the first
    choice, was taken on trust (``validate`` False): the bytes are not decoded, since the expat
    pass rejects any that are not UTF-8 (a test holds it to that); decoding every body only to
    check it cost ~2 % of the parse stage (issue 16). ``read`` asks again, validating, when expat
    rejected such bytes and they are not UTF-8."""
    bom, whole = "", body
    if body[:3] == b"\xef\xbb\xbf":
        body, bom = body[3:], "utf-8"  # feedparser drops a UTF-8 byte order mark and tries it third
    elif body[:1] not in (b"<", b" ", b"\t", b"\r", b"\n") or body[1:2] == b"\x00":
        return None  # other byte order marks or sniffed encodings (UTF-16/32, EBCDIC)
    declared = _PI_ENCODING.match(body)
    xml_encoding = declared.group(1).decode("utf-8", "replace").lower() if declared else ""
    if declared and not declared.group(1).isascii():
        return None
    mime, _, params = content_type.partition(";")
    mime = mime.strip()
    http_encoding = ""
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            http_encoding = value.strip().strip("\"'")
    if mime in _XML_TYPES or (mime.startswith("application/") and mime.endswith("+xml")):
        first = http_encoding or xml_encoding or "utf-8"
    elif mime.startswith("text/"):
        first = http_encoding or "us-ascii"
    elif (url or content_type) and not content_type:  # feedparser was given headers, no type
        first = xml_encoding or "iso-8859-1"
    else:
        first = xml_encoding or "utf-8"
    if first.lower() == "gb2312":
        first = "gb18030"
    if xml_encoding == "gb2312":
        xml_encoding = "gb18030"
    tried: list[str] = []
    for encoding in (first, xml_encoding, bom, _CHARDET, "utf-8", "windows-1252", "iso-8859-2"):
        if encoding == _CHARDET:  # feedparser asks chardet next, where it is installed
            if _chardet_installed():
                return None
            continue
        if not encoding or encoding in tried:
            continue
        tried.append(encoding)
        try:
            utf8 = codecs.lookup(encoding).name == "utf-8"
            trusted = utf8 and not validate and encoding == first
            text = "" if trusted else body.decode(encoding)
            break
        except (UnicodeDecodeError, LookupError):
            continue
    else:
        return None
    # as feedparser hands it to its parser: UTF-8, declared so (the HTTP charset may overrule the
    # declaration, which feedparser's regex may not even have read)
    if not utf8:
        decl = _XML_DECLARATION.match(text)
        return (_NEW_DECLARATION + (text[decl.end():] if decl else "\n" + text)).encode("utf-8"), False
    decl_bytes = _XML_DECLARATION_BYTES.match(body)
    if decl_bytes and decl_bytes.group() != _NEW_DECLARATION_BYTES:
        if trusted and not decl_bytes.group().isascii():  # bytes the expat pass never sees, which
            return _decoded(whole, content_type, url)  # may not be UTF-8: decoded to know (noticed at stop 27)
        body = _NEW_DECLARATION_BYTES + body[decl_bytes.end():]
    return body, trusted


def _reread(text: str, c1: bool = True) -> str:
    """An element's text as feedparser's pop leaves it (its strict parser always thinks it reads
    UTF-8, whatever the feed was decoded from): UTF-8 that was read as ISO-8859-1 read again as
    UTF-8 ("CafÃ©" -> "Café"), then C1 controls read as windows-1252 ("\x93" -> "\u201c",
    feedparser.html._cp1252)."""
    if text.isascii():
        return text
    try:
        text = text.encode("iso-8859-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass
    # (translate costs ~40 ns a character; c1 False: the feed has no C1 control at all)
    return text.translate(_CP1252) if c1 and _C1.search(text) else text


def _spaced(value: str | None) -> bool:
    """Whether an Atom href as the fast parser gives it holds a tab or a line end, which expat reads
    as a space (XML's attribute-value normalization; one written as a reference it keeps) and the
    fast parser leaves as written (an rdf:about it reads as expat does)."""
    return value is not None and ("\n" in value or "\t" in value or "\r" in value)


def _uri(value: str, url: str, based: bool) -> str:
    """``value`` as feedparser's resolve_uri leaves it (feedparser.urls._urljoin on the response
    URL): extra slashes after the scheme dropped, joined, scheme lower-cased."""
    if _AS_JOINED.match(value):
        return value
    # Under an xml:base feedparser joins with it, unknown here: sure only of a scheme urljoin never
    # joins (tag:, urn:, mailto:), given back as written whatever the base; not of a relative URL,
    # nor of an absolute one urljoin rebuilds only under a base of its scheme ("HTTP://X/a", "http://x/a?").
    if based and ((scheme := _SCHEME.match(value)) is None or scheme.group()[:-1].lower() in uses_relative):
        raise Unsure
    try:
        return urljoin(url, _URIFIXER.sub(r"\1\3", value) if ":///" in value else value)
    except ValueError:
        return ""


def _entry(e: Any, url: str, version: str, based: bool, permalinks: bool | None,
           replayed: fastxml.Item | None, reread: Callable[[str | None], str | None]) -> dict[str, Any]:
    # Each field of the fast parser's entry is read once, as an attribute: each read converts it
    # anew (a date ~2 us, .get() half as much again), and this ran 5 to 7 of them twice an entry.
    # An element's text is re-read as feedparser's pop does; an attribute's (Atom's link href,
    # RSS 1.0's rdf:about) is not.
    link = e.link if version == "atom10" else reread(e.link)
    guid = e.id
    if version == "atom10" and _spaced(link):
        raise Unsure
    if version == "atom10" and link == guid and link and ("&" in link or reread(link) != link):
        # an entry without a link has its id's text as its link (feedparser's too), read already,
        # where an href is as written: "a&#38;lt;b" or "a&amp;lt;b", a C1 control read or not
        raise Unsure
    if version not in ("rss10", "rss090"):
        guid = reread(guid)
    if replayed is not None and not replayed.has_id:
        guid = None  # feedparser-rs's dc:identifier; feedparser gives no id
    if link == "":  # feedparser-rs blanks links to loopback/private hosts (0.7.1); feedparser keeps them
        raise Unsure
    if link and "&" in link:
        if version == "atom10":  # the fast parser leaves an href attribute's references as written
            link = html.unescape(link)
        if _REFERENCE.search(link):  # "&amp;amp;": feedparser's answer differs again
            raise Unsure
    if link:
        link = _uri(link, url, based)
    if guid and version in ("rss10", "rss090"):
        pass  # rdf:about, which feedparser takes as it stands
    elif guid and permalinks is not False and (version == "atom10" or permalinks or _SCHEME.match(guid)):
        # feedparser resolves an Atom id, and an RSS guid unless isPermaLink="false"
        guid = _uri(guid, url, based)
    elif guid and permalinks is None:
        raise Unsure  # a relative guid, and only some guids say whether they are permalinks
    published, updated = e.published, e.updated
    if replayed is not None:  # the dates feedparser keeps, read by its parser (parse._read_dates) unless
        # the fast parser read that same text, whose reading is taken as below (as for a feed not replayed)
        unread, parsed = {}, {}
        for when, value, its in (("published", replayed.published, published), ("updated", replayed.updated, updated)):
            read = None
            if value is not None and value == its:
                read = e.published_parsed if when == "published" else e.updated_parsed
            parsed[f"{when}_parsed"] = read
            if value is not None and read is None:
                unread[when] = value
    elif (first := e.published_parsed):  # parse stores the published date, or else the updated one:
        parsed, unread = {"published_parsed": first, "updated_parsed": None}, {}  # (this is not read: ~1 us)
    else:
        parsed = {"published_parsed": None, "updated_parsed": e.updated_parsed}
        unread = {when: value for when, value in (("published", published), ("updated", updated))
                  if value and not parsed[f"{when}_parsed"]}
    if replayed is not None:  # feedparser's summary and contents, replayed in document order
        summary, contents = replayed.summary, replayed.contents
        content = [{"value": value, "type": None} for value in contents]
    else:
        content = [{"value": reread(c.value) or "", "type": c.type} for c in e.content or []]
        summary = reread(e.summary)
        if summary is None and content:  # feedparser copies the first content to a missing summary
            if content[0]["type"] not in _SUMMARY_TYPES:
                raise Unsure
            summary = content[0]["value"]
    return {"title": reread(e.title) or "", "summary": summary or "", "content": content,
            "link": link, "id": guid, **parsed, "unread": unread}  # unread: parse reads them as feedparser
