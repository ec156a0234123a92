"""The fast path's expat pass (issue 16): whether feedparser's strict parser would take the feed,
how many entries feedparser makes of it, whether it holds an element feedparser reads in a way
feedparser-rs does not (``_FEEDPARSER_ONLY``, a ``type`` it decodes as base64, ``mode="base64"``),
and, when an item may hold more than one summary-like element or a ``dc:identifier``, the
summary, content and whether feedparser gives each item an id: a guid, or RSS 1.0's rdf:about
(feedparser-rs falls back to ``dc:identifier``; feedparser never reads it). Elements are named
as feedparser's handlers name them (``_key``), so a prefix of the document's own choosing does
not hide one.

feedparser's rule (feedparser/namespaces/_base.py ``_start_description``, ``_start_summary``,
``_start_content_encoded`` and their end handlers), replayed here in document order:
``description``, ``dc:description``, ``media:description``, ``summary`` and ``itunes:summary``
become the item's content when the item already has a summary and no ``content:encoded`` (or
other content) came before, in the item or, until the first item ends, in the channel; otherwise
they are its summary and replace the one before unless it sits shallower (feedparser's
``property_depth_map``). Every content is also the summary when the item has none yet.
Anything this does not replay (markup in such an element but an RSS description's HTML, a ``type``
other than text or HTML, one in an image, text input or source, Atom content) raises NotReplayed.
"""

from __future__ import annotations

import re
import xml.parsers.expat
from collections.abc import Callable, Collection
from dataclasses import dataclass

# feedparser's prefix for a namespace (feedparser.mixin.XMLParserMixin.namespaces, lower-cased)
# wherever it leads to a handler of summaries or content ("" for the feed formats' own); for any
# other namespace the document's prefix names the handler, as feedparser's does.
_PREFIX = {
    "": "", "http://backend.userland.com/rss": "", "http://blogs.law.harvard.edu/tech/rss": "",
    "http://purl.org/rss/1.0/": "", "http://my.netscape.com/rdf/simple/0.9/": "",
    "http://purl.org/rss/1.0/modules/rss091#": "", "http://www.w3.org/2005/atom": "", "http://purl.org/atom/ns#": "",
    "http://example.com/newformat#": "", "http://example.com/necho": "", "http://purl.org/echo/": "",
    "uri/of/echo/namespace#": "", "http://purl.org/pie/": "",
    "http://purl.org/dc/elements/1.1/": "dc", "http://purl.org/dc/terms/": "dcterms",
    "http://purl.org/rss/1.0/modules/content/": "content", "http://www.w3.org/1999/xhtml": "xhtml",
    "http://www.itunes.com/dtds/podcast-1.0.dtd": "itunes", "http://example.com/dtds/podcast-1.0.dtd": "itunes",
    "http://search.yahoo.com/mrss": "media", "http://search.yahoo.com/mrss/": "media",
}
# feedparser's handler for each name: what the element is to an item
_ROLE = {"description": "description", "dc:description": "description", "media:description": "description",
         "summary": "summary", "itunes:summary": "summary", "abstract": "abstract",
         "content:encoded": "content", "fullitem": "content",
         **dict.fromkeys(("published", "issued", "pubdate", "dcterms:issued"), "published"),
         **dict.fromkeys(("updated", "modified", "lastbuilddate", "dc:date", "dcterms:modified"), "updated"),
         "dcterms:created": "created"}
_DATES = {"published", "updated", "created"}
_XML_LANG = "http://www.w3.org/XML/1998/namespace lang xml"  # with expat's namespace_prefixes
_CP1252 = {i: bytes([i]).decode("cp1252") for i in range(0x80, 0xA0) if i not in (0x81, 0x8D, 0x8F, 0x90, 0x9D)}
_C1 = re.compile("[\x80-\x9f]")
_RDF_ABOUT = "http://www.w3.org/1999/02/22-rdf-syntax-ns# about"
_NOT_REPLAYED = {"content", "body", "xhtml:body"}  # Atom content and XHTML bodies: other rules
_STRUCTURE = {"item", "entry", "guid", "id", *_NOT_REPLAYED}
# type= values that change nothing here (feedparser decodes other types as base64, escapes XHTML)
_PLAIN_TYPES = {"text", "plain", "text/plain", "html", "text/html"}
_CONTEXTS = ("image", "textinput")  # feedparser's own places for their text, outside items (start_replay)
# content and dates only feedparser reads (feedparser-rs ignores them)
_FEEDPARSER_ONLY = {"body", "xhtml:body", "fullitem", "dcterms:issued", "dcterms:created"}
# the local names of the elements feedparser reads as text with content params (push_content):
# only their type= and mode= mean anything to it
_PUSHED = {"title", "description", "summary", "content", "encoded", "body", "fullitem", "info", "browserfriendly",
           "subtitle", "tagline", "rights", "copyright", "abstract"}
# elements whose type= feedparser reads: any other type it decodes as base64 (_is_base64)
_TYPED = {"title", "summary", "content", "description"}
_TEXT_TYPES = {"text", "plain", "html", "xhtml", "text/plain", "text/html", "application/xhtml+xml"}
# The elements whose reading is replayed (feedparser's summary/content rule, its ids and dates): a
# second summary-like element, dc:identifier, dcterms:issued/created, under a prefix in the
# document (or abstract under none). Elements are met in the pass, not searched for in the bytes
# (six literal scans of every body cost ~3 % of the parse stage).
_REPLAYED = {"summary", "description", "abstract", "identifier", "issued", "created"}
_COUNT, _REFUSE, _REPLAY = 1, 2, 3  # what the pass without replay does at an element
_ITEMS = frozenset(("item", "entry"))
# The elements that may hold markup feedparser keeps as HTML: a start tag written (whatever its
# namespace) title, description, summary or content, followed by a word boundary (content:encoded
# too), as fastparse's regex over the whole body found them before (it cost ~3.5 % of the parse
# stage: tried at every "<"); 1 for a description, 2 for the others.
_TEXT_NAME = re.compile(rb"(title|description|summary|content)\b")
# Elements fastparse's regexes looked for in the whole body before (~2 % of the parse stage), now
# noted as the pass meets them, by their names as written (case-sensitive, as those regexes were):
# an item or entry start tag (a prefix of word characters or none), Atom's summary, id or updated
# in RSS (feedparser reads them there), an RSS <link> with an href, an <image...> after the first
# item started (feedparser reads an image's title, link and id as the item's), and an Atom link
# without an href but with text (its URL written as text).
_ITEM_NAME = re.compile(rb"(?:\w+:)?(?:item|entry)\Z")
_ATOM_NAME = re.compile(rb"(?:summary|id|updated)\b")
_ATOM_LINK = re.compile(rb"(?:\w+:)?link\b")
_HREF = re.compile(rb"\bhref")
_TEXT_AFTER = re.compile(rb"\s*[^<\s]")
# _mark's bits (a name may be more than one); the length of "<" and the name as written above them
_ITEM_MARK, _ATOM_MARK, _LINK_MARK, _IMAGE_MARK, _ATOM_LINK_MARK = 1, 2, 4, 8, 16
_ATOM03 = "purl.org/atom/ns"  # its namespace, lower-cased


class NotReplayed(Exception):
    """The feed holds what this replay does not cover: feedparser answers."""


class _Replay(Exception):  # noqa: N818 - a signal, not an error
    """The pass without replay met an element that needs it: the pass starts again, replaying."""


class _Markup(Exception):  # noqa: N818 - a signal, not an error
    """An RSS description holds HTML elements: the pass starts again, replaying them."""


@dataclass(slots=True)
class Item:
    """One item as feedparser reads it: its summary (None: none), contents, whether it has an id,
    and the text of its last published and updated dates (feedparser's _end_published and
    _end_updated overwrite), which parse reads with feedparser's date parser."""

    summary: str | None
    contents: list[str]
    has_id: bool
    published: str | None
    updated: str | None


# feedparser's entries; the replayed items, None without; where an RSS feed's empty-element tags
# that feedparser-rs may misread (fastmarkup) end
Scan = tuple[int, list[Item] | None, list[int], bool, bool, bool]  # and whether it met Atom's elements
# as RSS does not have them (_ATOM_NAME, an href on <link>), an <image...> after the first item,
# and an Atom link with its URL as text


def parse(body: bytes, c1: bool = True, empties: Callable[[str], bool] | None = None,
          markup: Collection[str] | None = None) -> Scan | None:
    """None when expat (as feedparser's strict pass runs it) rejects ``body``; else how many
    entries feedparser makes and, where an element needs it (``_REPLAYED``), each item's (summary,
    contents, has an id, dates) as feedparser reads them (``c1``: the feed may hold C1 controls),
    and, with ``empties`` (an RSS feed with "/>" in it: fastmarkup.safe), where its empty-element
    tags that it does not call safe end. With ``markup`` (an RSS feed with HTML elements in a
    <description>: fastmarkup.HTML), the pass replays from the start and keeps the elements of
    those names as feedparser does (fastparse hands both in: a level-0 module imports none of
    ours). Raises NotReplayed for what feedparser reads and this does not, and for markup in a
    title, summary or content element (or in a description without ``markup``): what the
    element's start tag is followed by is read in the bytes (``_Pass.text_start``).

    The pass starts without replay, which costs about half as much (no end events, no text), and
    starts again replaying at the first element that needs it (most often in the first item), or
    at the first description that holds markup, replaying it from the start."""
    try:
        try:
            return _parse(body, False, c1, empties, markup)
        except _Replay:
            return _parse(body, True, c1, empties, markup)
    except _Markup:
        return _parse(body, True, c1, empties, markup, True)


def _parse(body: bytes, replay: bool, c1: bool, empties: Callable[[str], bool] | None,
           markup: Collection[str] | None = None, keep: bool = False) -> Scan | None:
    # intern=None: pyexpat does not look every name up in a dict of its own to hand on one object
    # per name (the handlers' own lookups hash it once either way): ~1 % of the parse stage
    parser = xml.parsers.expat.ParserCreate(namespace_separator=" ", intern=None)
    state = _Pass(replay, c1, parser, body, empties, markup, keep)
    parser.namespace_prefixes = True
    parser.StartNamespaceDeclHandler = state.declare
    if replay:
        parser.StartElementHandler = state.start_replay
        parser.buffer_text = True
        parser.EndElementHandler = state.end
        # the CharacterDataHandler is set only while a text this replays is read (start_replay)
    else:
        parser.StartElementHandler = state.start
        if empties:
            parser.EndElementHandler = state.end_plain
    try:
        parser.Parse(body, True)
    except xml.parsers.expat.ExpatError:
        return None
    return state.count, state.items if replay else None, state.empty, state.atomish, state.image, state.linktext


def _plain(name: str) -> tuple[str, bool, int, int]:
    """What the pass without replay does with an element (``_Pass.keys``)."""
    key = _key(name)
    uri, _, rest = name.partition(" ")
    local, _, prefix = rest.partition(" ")
    local = (local if rest else uri).lower()
    if local in _REPLAYED if prefix else local == "abstract":
        does = _REPLAY
    elif key in _FEEDPARSER_ONLY:
        does = _REFUSE
    else:
        does = _COUNT if key in ("item", "entry") else 0
    return key, key.rpartition(":")[2] in _PUSHED, does, _text(name), _mark(name)


def _mark(name: str) -> int:
    """What the pass notes for fastparse at an element (its name as written): the _MARK bits
    that apply, with 256 times the length of "<" and the name (where its start tag goes on); or 0."""
    uri, _, rest = name.partition(" ")
    local, _, prefix = rest.partition(" ")
    written = (f"{prefix}:{local}" if prefix else local if rest else uri).encode("utf-8")
    mark = ((_ITEM_MARK if _ITEM_NAME.match(written) else 0) | (_ATOM_MARK if _ATOM_NAME.match(written) else 0)
            | (_LINK_MARK if written == b"link" else 0) | (_IMAGE_MARK if written.startswith(b"image") else 0)
            | (_ATOM_LINK_MARK if _ATOM_LINK.match(written) else 0))
    return mark | (1 + len(written)) << 8 if mark else 0


def _text(name: str) -> int:
    """Whether an element is one that may hold markup (``_TEXT_NAME``, on its name as written):
    0 no, else the length of "<" and its name in the bytes, negative for a description."""
    uri, _, rest = name.partition(" ")
    local, _, prefix = rest.partition(" ")
    written = (f"{prefix}:{local}" if prefix else local if rest else uri).encode("utf-8")
    m = _TEXT_NAME.match(written.lower())
    if m is None or b"xhtml" in written.lower():  # (such a name is followed by "xhtml" in its tag: no match)
        return 0
    return -1 - len(written) if m.group(1) == b"description" else 1 + len(written)


def _key(name: str) -> str:
    """The name feedparser's handlers know the element by (expat gives "uri local prefix")."""
    uri, _, rest = name.partition(" ")
    if not rest:
        return name.lower()
    local, _, given = rest.partition(" ")
    prefix = _PREFIX.get(uri.lower(), given) if "backend.userland.com/rss" not in uri.lower() else ""
    return f"{prefix}:{local}".lower() if prefix else local.lower()


def _attributes(key: str, attrs: dict[str, str]) -> None:
    """Raises NotReplayed for attributes feedparser reads and feedparser-rs does not: a type=
    feedparser decodes as base64 (media:content's is an enclosure's, no text's), a mode="base64"."""
    for name, value in attrs.items():
        name = name.lower()
        if name == "mode" and value.lower().startswith("base64"):
            raise NotReplayed
        if (name == "type" and key.rpartition(":")[2] in _TYPED and key != "media:content"
                and value.lower() not in _TEXT_TYPES):
            raise NotReplayed


def reread(text: str, c1: bool = True) -> str:
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


# What each element name is to the passes, asked once per process (once per pass, it cost ~1,400
# names a pass over the dev corpus, ~3 % of the expat pass): a name's answers depend on it alone.
# expat's name -> (_key's, whether it is _PUSHED, what start does: _COUNT, _REFUSE, _REPLAY or 0,
# _text's, _mark's)
_KEYS: dict[str, tuple[str, bool, int, int, int]] = {}
# expat's name -> (_key's, whether it is _PUSHED, whether start_replay has more to do than push it:
# an item or entry, a feedparser-only element, one with a role or a structure, _text's, _mark's)
_REPLAY_KEYS: dict[str, tuple[str, bool, bool, int, int]] = {}
_NAMES = 20_000


class _Pass:
    def __init__(self, replay: bool, c1: bool, parser: xml.parsers.expat.XMLParserType, body: bytes,
                 safe: Callable[[str], bool] | None = None, markup: Collection[str] | None = None,
                 keep: bool = False) -> None:
        self.replay, self.c1, self.parser = replay, c1, parser
        self.safe = safe  # whether feedparser-rs reads an element's empty-element tag right
        self.doc = body  # where a text element's start tag is followed by markup is read
        self.html = markup  # the HTML elements an RSS description may hold (None: not RSS)
        self.markup = markup if keep and markup else ()  # those replayed (a description held one)
        self.markup_ok = self.escaping = False  # in a text that may hold them; one did (feedparser escapes)
        self.inner = 0  # how many of them are open
        self.count = 0
        self.items_started = self.atomish = self.image = self.linktext = False  # (_mark)
        self.body = body if safe else b""  # empty: no empty-element tag is looked for
        self.leaf = False  # no element started since the last start
        self.empty: list[int] = []  # where the empty-element tags to rewrite end
        self.defaults: set[str] = set()
        self.stack: list[str] = []
        self.items: list[Item] = []
        self.in_item = self.has_id = self.has_content = False  # feedparser's hasContent: reset when an item ends
        self.published: str | None = None  # the item's last published and updated dates' text
        self.updated: str | None = None
        self.summary: str | None = None  # None: the item has no summary yet
        self.summary_depth: int | None = None
        self.content: list[str] = []
        self.summarised: set[str] = set()  # the contexts outside items that have a summary
        self.text: list[str] | None = None
        self.mode = self.context = ""
        self.prefixes: dict[str, str] = {}
        self.bound: set[str] = set()
        self.declared: set[tuple[str | None, str]] = set()
        self.keys, self.replay_keys = _KEYS, _REPLAY_KEYS
        if len(_KEYS) + len(_REPLAY_KEYS) > _NAMES:  # a bound on what feeds' names may hold in memory
            _KEYS.clear()
            _REPLAY_KEYS.clear()

    def declare(self, prefix: str | None, uri: str | None) -> None:
        """feedparser names an unknown namespace's elements by the first prefix bound to it:
        one prefix per namespace (the default one included) and one namespace per prefix, or
        this is not replayed."""
        if not uri or (prefix, uri) in self.declared:  # feeds may declare them again on every item
            return
        lowered = uri.lower()
        if _ATOM03 in lowered:  # Atom 0.3, which feedparser-rs does not read as feedparser does
            raise NotReplayed
        unknown = lowered not in _PREFIX
        if not prefix:
            if unknown and uri in self.bound:
                raise NotReplayed
            self.defaults.add(uri)
        else:
            bound = self.prefixes.get(prefix)
            if bound is None:
                if unknown and (uri in self.bound or uri in self.defaults):
                    raise NotReplayed
                self.prefixes[prefix] = uri
                self.bound.add(uri)
            elif bound != uri:
                raise NotReplayed
        # a declaration that passed passes again: a namespace bound to a prefix never becomes
        # the default one, nor the reverse, without this raising
        self.declared.add((prefix, uri))

    def start(self, name: str, attrs: dict[str, str]) -> None:
        """The pass without replay: entries counted, what feedparser alone reads refused, and a
        restart replaying at the first element that needs it."""
        known = self.keys.get(name)
        if known is None:
            known = self.keys[name] = _plain(name)
        key, pushed, does, text, mark = known
        self.leaf = True
        if mark:
            self.marked(mark)
        if text:  # (what text_start reads first, inline: ~30k elements a pass)
            doc = self.doc
            end = self.parser.CurrentByteIndex + abs(text)
            if doc[end:end + 1] != b">":  # attributes, white space or "/>"
                self.text_start(text)
            else:  # (text_start's answer for "<name>", inline: a title or description of every item)
                lt = doc.find(b"<", end)
                if lt >= 0 and doc[lt + 1:lt + 2] not in (b"!", b"/"):
                    self.markup_found(text)
        if attrs and pushed:
            _attributes(key, attrs)
        if does:
            if does == _COUNT:
                self.count += 1
            elif does == _REPLAY:
                raise _Replay
            else:
                raise NotReplayed

    def start_replay(self, name: str, attrs: dict[str, str]) -> None:
        """``start``, and the replay: most elements of an item are none of its summary, content,
        dates or structure, and are only pushed (a third of this pass's cost was asking each one)."""
        known = self.replay_keys.get(name)
        if known is None:
            key = _key(name)
            known = self.replay_keys[name] = (key, key.rpartition(":")[2] in _PUSHED,
                                              key in ("item", "entry") or key in _FEEDPARSER_ONLY
                                              or key in _ROLE or key in _STRUCTURE, _text(name), _mark(name))
        key, pushed, special, text, mark = known
        self.leaf = True
        if mark:
            self.marked(mark)
        if text and self.text is None:  # (inside a text this replays, child() decides)
            doc = self.doc
            end = self.parser.CurrentByteIndex + abs(text)
            if doc[end:end + 1] != b">":  # attributes, white space or "/>"
                self.text_start(text)
            else:  # (text_start's answer for "<name>", inline: a title or description of every item)
                lt = doc.find(b"<", end)
                if lt >= 0 and doc[lt + 1:lt + 2] not in (b"!", b"/"):
                    self.markup_found(text)
        if attrs and pushed:
            _attributes(key, attrs)
        if self.text is not None:  # markup inside a text element: feedparser keeps it as HTML
            self.child(name)
            return
        self.stack.append(key)
        if not special:
            return
        if key in _FEEDPARSER_ONLY and not key.startswith("dcterms:"):
            raise NotReplayed  # (dates feedparser reads are replayed)
        if key in ("item", "entry"):
            self.count += 1
        role = _ROLE.get(key)
        if role is None:
            if key in _STRUCTURE:
                self.structure(key, attrs)
            return
        stack = self.stack  # (the first of _CONTEXTS in it)
        context = "image" if "image" in stack else "textinput" if "textinput" in stack else ""
        if role in _DATES:  # no content params; in a source or outside items, not the item's
            self.mode = role if self.in_item and not context and "source" not in self.stack else ""
            self.markup_ok = False
            self._read_text()
            return
        self.markup_ok = bool(self.markup) and key == "description"
        if ((attrs and any(k != _XML_LANG and (k != "type" or v.lower() not in _PLAIN_TYPES) for k, v in attrs.items()))
                or "source" in self.stack or (context and self.in_item)):
            raise NotReplayed  # base64, XHTML, or a context whose text feedparser stores elsewhere
        self.context = context if context or not self.in_item else "item"
        has_summary = self.summary is not None if self.context == "item" else self.context in self.summarised
        if role == "content" or (role != "abstract" and has_summary and not self.has_content):
            self.mode, self.has_content = "content", True
        else:
            self.mode = role
        self._read_text()

    def marked(self, mark: int) -> None:
        """Note an element _mark names (an RSS <link>: with an href in its start tag, read in the
        bytes as fastparse's regex read it, "<link" and white space, then "href" at a word's start
        before the first ">"; an Atom link: no "href" at a word's start after its name and before
        the first ">", then text, white space aside, before any "<")."""
        if mark & _ITEM_MARK:
            self.items_started = True
        if mark & _ATOM_MARK:
            self.atomish = True
        if mark & _IMAGE_MARK:
            self.image = self.image or self.items_started
        if mark & (_LINK_MARK | _ATOM_LINK_MARK):
            doc, i = self.doc, self.parser.CurrentByteIndex
            end = doc.find(b">", i)
            if (mark & _LINK_MARK and doc[i + 5:i + 6] in (b" ", b"\t", b"\n", b"\r", b"\f", b"\v")
                    and _HREF.search(doc, i + 5, end)):
                self.atomish = True
            if mark & _ATOM_LINK_MARK and not _HREF.search(doc, i + (mark >> 8), end) and _TEXT_AFTER.match(doc, end + 1):
                self.linktext = True

    def text_start(self, text: int) -> None:
        """A title, description, summary or content starts: whether its start tag (expat's index
        is at its "<") is followed by text and then an element (or a processing instruction),
        read in the bytes as fastparse's regex over the body read it before (no comment or CDATA
        section first, a start tag that does not hold "xhtml" and is no empty-element tag).
        Markup in a description of an RSS feed is replayed (from the start: _Markup); any other is
        not (feedparser keeps it as HTML). (The callers read a start tag of the name alone,
        "<title>", the commonest, inline.)"""
        doc, i = self.doc, self.parser.CurrentByteIndex
        end = doc.find(b">", i)
        if end < 0 or doc[end - 1] == 47 or b"xhtml" in doc[i:end].lower():  # 47: "/"
            return
        lt = doc.find(b"<", end)
        if lt < 0 or doc[lt + 1:lt + 2] in (b"!", b"/"):
            return
        self.markup_found(text)

    def markup_found(self, text: int) -> None:
        """A title, description, summary or content holds markup (text_start)."""
        if text < 0 and self.html:
            if not self.markup:
                raise _Markup
            return
        raise NotReplayed

    def child(self, name: str) -> None:
        """An element inside a text this replays: an HTML element of an RSS <description> is
        kept as feedparser keeps it (``markup``), anything else is not replayed."""
        tag = name.lower()  # (a namespaced one is "uri local ...", in no markup)
        if not self.markup_ok or tag not in self.markup:
            raise NotReplayed
        self.leaf = True
        self.inner += 1
        if not self.escaping:
            if tag == "div":  # dropped by feedparser, whose depth then drifts (fastmarkup.HTML)
                raise NotReplayed
            self.escaping = True
            self.parser.CharacterDataHandler = self.escaped
        self.text.append(f"<{tag}>")  # type: ignore[union-attr]

    def escaped(self, data: str) -> None:
        """Text after the first HTML element of a description, as feedparser's handle_data
        escapes it then (xml.sax.saxutils.escape)."""
        self.text.append(data.replace("&", "&amp;").replace(">", "&gt;").replace("<", "&lt;"))  # type: ignore[union-attr]

    def _read_text(self) -> None:
        """Collect the element's text until it ends: expat calls Python for text only then, not
        for the white space between the other elements (setting the handler flushes nothing: expat
        has just flushed its buffered text to call start)."""
        self.text = []
        self.parser.CharacterDataHandler = self.text.append

    def structure(self, key: str, attrs: dict[str, str]) -> None:
        if key in ("item", "entry"):
            self.in_item, self.summary, self.summary_depth, self.content = True, None, None, []
            self.published = self.updated = None
            self.has_id = bool(attrs) and any(k.startswith(_RDF_ABOUT) and v for k, v in attrs.items())  # RSS 1.0's id
        elif key in ("guid", "id"):
            self.has_id = True
        else:
            raise NotReplayed

    def end_plain(self, name: str) -> None:
        """Whether an element with nothing in it was written as an empty-element tag: its end
        event comes right after its start, and expat's index is then just after the "/>" (that of
        an end tag is its "<"; a text ending in "/>" is taken for one too, which only costs time)."""
        if self.leaf:
            self.leaf = False
            i = self.parser.CurrentByteIndex
            if self.body[i - 2:i] == b"/>" and not self.safe(name):  # type: ignore[misc]
                self.empty.append(i)

    def end(self, name: str) -> None:
        if self.leaf:  # end_plain, inline: a call less at every element (~2 % of the stage)
            self.leaf = False
            body = self.body
            if body:
                i = self.parser.CurrentByteIndex
                if body[i - 1] == 62 and body[i - 2] == 47 and not self.safe(name):  # type: ignore[misc]  # "/>"
                    self.empty.append(i)
        if self.inner:  # an HTML element of a description ends (after the first, so escaping)
            self.inner -= 1
            self.text.append(f"</{name.lower()}>")  # type: ignore[union-attr]
            return
        key = self.stack.pop()
        if self.text is None:  # (an item ends outside any text: markup inside one raised)
            if key in _ITEMS and self.in_item:
                self.items.append(Item(self.summary, self.content, self.has_id, self.published, self.updated))
                self.in_item = self.has_content = False
            return
        depth = len(self.stack) + 1
        self.parser.CharacterDataHandler = None
        self.escaping = False
        value, self.text = reread("".join(self.text).strip(), self.c1), None
        if self.mode in _DATES or not self.mode:
            if self.mode == "published":
                self.published = value
            elif self.mode == "updated":
                self.updated = value
            return
        if self.context != "item":
            if self.mode in ("content", "summary"):
                self.summarised.add(self.context)
        elif self.mode == "content":
            self.content.append(value)
            if self.summary is None:  # feedparser's _save: setdefault, no depth recorded
                self.summary = value
        elif self.summary_depth is None or depth <= self.summary_depth:
            self.summary, self.summary_depth = value, depth
