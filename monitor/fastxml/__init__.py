"""The fast path's expat pass (issue 16): whether feedparser's strict parser would take the feed,
how many entries feedparser makes of it, whether it holds an element feedparser reads in a way
feedparser-rs does not (``FEEDPARSER_ONLY``, a ``type`` it decodes as base64, ``mode="base64"``),
and, when an item may hold more than one summary-like element or a ``dc:identifier``, the
summary, content and whether feedparser gives each item an id: a guid, or RSS 1.0's rdf:about
(feedparser-rs falls back to ``dc:identifier``; feedparser never reads it). Elements are named
as feedparser's handlers name them, whatever the document's prefix: what each name is to the
pass is fastnames's (``key``, ``plain``, ``replay``), which fastparse hands in.

feedparser's rule (feedparser/namespaces/_base.py ``_start_description``, ``_start_summary``,
``_start_content_encoded`` and their end handlers), replayed here in document order:
``description``, ``dc:description``, ``media:description``, ``summary`` and ``itunes:summary``
become the item's content when the item already has a summary and no ``content:encoded`` (or
other content) came before, in the item or, until the first item ends, in the channel; otherwise
they are its summary and replace the one before unless it sits shallower (feedparser's
``property_depth_map``). Every content is also the summary when the item has none yet.
Anything this does not replay (markup in such an element but an RSS description's HTML, a ``type``
other than text or HTML, one in an image, text input or source, Atom content) raises NotReplayed.
What the pass looks at in the bytes and attributes around an element (``checks``) is a module of
its own.
"""

from __future__ import annotations

import xml.parsers.expat
from collections.abc import Callable, Collection
from dataclasses import dataclass
from types import ModuleType

from .checks import NotReplayed, _Checks, _Markup, _Replay

_XML_LANG = "http://www.w3.org/XML/1998/namespace lang xml"  # with expat's namespace_prefixes
_RDF_ABOUT = "http://www.w3.org/1999/02/22-rdf-syntax-ns# about"
# type= values that change nothing here (feedparser decodes other types as base64, escapes XHTML)
_PLAIN_TYPES = {"text", "plain", "text/plain", "html", "text/html"}
_CONTEXTS = ("image", "textinput")  # feedparser's own places for their text, outside items (start_replay)
_COUNT, _REFUSE, _REPLAY, _ONCE, _OUTSIDE = 1, 2, 3, 4, 5  # fastnames' (a test holds them alike)
_ITEMS = frozenset(("item", "entry"))
_ATOM03 = "purl.org/atom/ns"  # its namespace, lower-cased
_ATOM10 = "http://www.w3.org/2005/atom"


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
# that feedparser-rs may misread (fastmarkup) end; what the pass noted (fastnames.mark): Atom's
# elements as RSS does not have them, an <image...> after the first item, an Atom link's URL as text
Scan = tuple[int, list[Item] | None, list[int], bool, bool, bool, bool | None]


def parse(body: bytes, names: ModuleType, reread: Callable[[str], str], empties: Callable[[str], bool] | None = None,
          markup: Collection[str] | None = None) -> Scan | None:
    """None when expat (as feedparser's strict pass runs it) rejects ``body``; else how many entries
    feedparser makes and, where an element needs it (``names.REPLAYED``), each item's (summary,
    contents, has an id, dates) as feedparser reads them (each text as ``reread`` leaves it), and,
    with ``empties`` (an RSS feed with "/>" in it: fastmarkup.safe), where its empty-element tags
    that it does not call safe end. With ``markup`` (an RSS feed: fastmarkup.HTML), the HTML
    elements of descriptions are kept as feedparser does (fastparse hands all these in: a level-0
    module imports none of ours). Raises NotReplayed for what feedparser reads and this does not,
    and for markup in a title, summary or content (or a description without ``markup``).

    The pass starts without replay, which costs about half as much (no end events, no text), and
    starts again replaying at the first element that needs it (most often in the first item), or
    at the first description that holds markup, replaying it from the start."""
    try:
        try:
            return _parse(body, names, False, reread, empties, markup)
        except _Replay:
            return _parse(body, names, True, reread, empties, markup)
    except _Markup:
        return _parse(body, names, True, reread, empties, markup, True)


def _parse(body: bytes, names: ModuleType, replay: bool, reread: Callable[[str], str], empties: Callable[[str], bool]
           | None, markup: Collection[str] | None = None, keep: bool = False) -> Scan | None:
    # intern=None: pyexpat does not look each name up in a dict to hand on one object per name
    parser = xml.parsers.expat.ParserCreate(namespace_separator=" ", intern=None)
    state = _Pass(names, replay, reread, parser, body, empties, markup, keep)
    parser.namespace_prefixes = True
    parser.StartNamespaceDeclHandler = state.declare
    if replay:
        parser.StartElementHandler = state.start_replay
        parser.buffer_text = True
        parser.EndElementHandler = state.end
        # the CharacterDataHandler is set only while a text this replays is read (start_replay)
    else:
        parser.StartElementHandler = state.start  # (which sets end_plain where it is needed)
    try:
        parser.Parse(body, True)
    except xml.parsers.expat.ExpatError:
        return None
    return (state.count, state.items if replay else None, state.empty, state.atomish, state.image, state.linktext,
            state.permalinks())


class _Pass(_Checks):
    def __init__(self, names: ModuleType, replay: bool, reread: Callable[[str], str],
                 parser: xml.parsers.expat.XMLParserType, body: bytes,
                 safe: Callable[[str], bool] | None = None, markup: Collection[str] | None = None,
                 keep: bool = False) -> None:
        self.names, self.replay, self.reread, self.parser = names, replay, reread, parser
        self.safe = safe  # whether feedparser-rs reads an element's empty-element tag right
        self.doc = body  # where a text element's start tag is followed by markup is read
        self.html = markup  # the HTML elements an RSS description may hold (None: not RSS)
        self.markup = markup if keep and markup else ()  # those replayed (a description held one)
        self.markup_ok = self.escaping = False  # in a text that may hold them; one did (feedparser escapes)
        self.later: tuple[int, Callable[[str], None] | None] | None = None  # markup_later
        self.inner = self.count = 0  # how many of them are open; the entries
        self.items_started = self.atomish = self.image = self.linktext = False  # (fastnames.mark)
        self.alternates = 0  # links in the Atom namespace an item may take for its link (marked)
        self.guids = self.said = self.false = 0  # guids; those with isPermaLink; those saying false
        self.atom = False  # Atom's namespace is the default one (declare)
        self.seen: set[str] = set()  # the ONCE_KEYS elements of the item (fastnames)
        self.body = body if safe else b""  # empty: no empty-element tag is looked for
        self.ahead = self.body  # while a "/>" is ahead (start), and where the next one is
        self.close = -1
        self.leaf: object = False  # no element started since the last start (_LATER: markup_later)
        self.empty: list[int] = []  # where the empty-element tags to rewrite end
        self.defaults: set[str] = set()
        self.stack: list[str] = []
        self.items: list[Item] = []
        self.in_item = self.has_id = self.has_content = False  # feedparser's hasContent: reset when an item ends
        # the item's last published and updated dates' text, and its summary (None: none yet)
        self.published: str | None = None
        self.updated: str | None = None
        self.summary: str | None = None
        self.summary_depth: int | None = None
        self.content: list[str] = []
        self.summarised: set[str] = set()  # the contexts outside items that have a summary
        self.text: list[str] | None = None
        self.mode = self.context = ""
        self.prefixes: dict[str, str] = {}
        self.bound: set[str] = set()  # (declare)
        self.declared: set[tuple[str | None, str]] = set()
        names.bound()
        self.keys, self.replay_keys = names.PLAIN, names.REPLAYS  # name -> names.plain's, names.replay's

    def declare(self, prefix: str | None, uri: str | None) -> None:
        """feedparser names an unknown namespace's elements by the first prefix bound to it:
        one prefix per namespace (the default one included) and one namespace per prefix, or
        this is not replayed."""
        if not uri or (prefix, uri) in self.declared:  # feeds may declare them again on every item
            return
        lowered = uri.lower()
        if _ATOM03 in lowered:  # Atom 0.3, which feedparser-rs does not read as feedparser does
            raise NotReplayed
        unknown = lowered not in self.names.PREFIX
        if not prefix:
            if unknown and uri in self.bound:
                raise NotReplayed
            self.defaults.add(uri)
            self.atom = self.atom or lowered == _ATOM10
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
            known = self.names.plain(name)
        key, pushed, does, text, mark = known
        self.leaf = True
        ahead = self.ahead
        if ahead:  # end_plain for this element's end if its start tag may be an empty-element one
            i = self.parser.CurrentByteIndex
            close = self.close
            if close < i:
                close = self.close = ahead.find(b"/>", i)
                if close < 0:  # none ahead: no start tag from here on is one
                    self.ahead = b""
            if close >= 0 and ahead.find(b"<", i + 1, close) < 0:
                self.parser.EndElementHandler = self.end_plain
        if mark:
            self.marked(mark, attrs)
        if text:  # (what text_start reads first, inline: ~30k elements a pass)
            doc = self.doc
            end = self.parser.CurrentByteIndex + abs(text)
            if doc[end:end + 1] != b">":  # attributes, white space or "/>"
                self.text_start(text)
            else:  # (text_start's answer for "<name>", inline: a title or description of every item)
                lt = doc.find(b"<", end)
                if lt >= 0 and (after := doc[lt + 1:lt + 2]) != b"/":
                    self.followed(text, after)
        if attrs and pushed and self.names.refused(key, attrs):
            raise NotReplayed
        if does:
            if does == _COUNT:
                self.count += 1
                self.seen.clear()
            elif does == _ONCE:
                if self.items_started:  # (an item's; the channel's title and its image's are two)
                    seen = self.seen
                    if key in seen:
                        raise NotReplayed if key in self.names.ONCE_KEYS else _Replay
                    if key == "dc:date" and ("pubdate" in seen or not self._w3c_date()):
                        raise _Replay  # feedparser-rs's published, or a date it does not read: its text lost
                    seen.add(key)
                elif key == "title":  # the feed's own, twice: feedparser keeps the first, the fast parser
                    if key in self.seen:  # the last (an image's or a text input's clears ``seen``: OUTSIDE)
                        raise NotReplayed
                    self.seen.add(key)
            elif does == _REPLAY:
                raise _Replay
            elif does == _OUTSIDE:
                self.seen.clear()
            else:
                raise NotReplayed

    def start_replay(self, name: str, attrs: dict[str, str]) -> None:
        """``start``, and the replay: most elements of an item are none of its summary, content,
        dates or structure, and are only pushed (a third of this pass's cost was asking each one)."""
        known = self.replay_keys.get(name)
        if known is None:
            known = self.names.replay(name)
        key, pushed, special, text, mark = known
        self.leaf = True
        if mark:
            self.marked(mark, attrs)
        if text and self.text is None:  # (inside a text this replays, child() decides)
            doc = self.doc
            end = self.parser.CurrentByteIndex + abs(text)
            if doc[end:end + 1] != b">":  # attributes, white space or "/>"
                self.text_start(text)
            else:  # (text_start's answer for "<name>", inline: a title or description of every item)
                lt = doc.find(b"<", end)
                if lt >= 0 and (after := doc[lt + 1:lt + 2]) != b"/":
                    self.followed(text, after)
        if attrs and pushed and self.names.refused(key, attrs):
            raise NotReplayed
        if self.text is not None:  # markup inside a text element: feedparser keeps it as HTML
            self.child(name)
            return
        self.stack.append(key)
        if not special:
            return
        names = self.names
        if key in names.FEEDPARSER_ONLY and not key.startswith("dcterms:"):
            raise NotReplayed  # (dates feedparser reads are replayed)
        if key in ("item", "entry"):
            self.count += 1
        elif key in names.ONCE_KEYS and self.in_item:  # (in a source too: feedparser's then, as can be)
            if key in self.seen:
                raise NotReplayed
            self.seen.add(key)
        role = names.ROLE.get(key)
        if role is None:
            if key in names.STRUCTURE:
                self.structure(key, attrs)
            return
        stack = self.stack  # (the first of _CONTEXTS in it)
        context = "image" if "image" in stack else "textinput" if "textinput" in stack else ""
        if role in names.DATES:  # no content params; in a source or outside items, not the item's
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
            self.seen.clear()
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
        an end tag is its "<"; a text ending in "/>" is taken for one too, which only costs time).
        Called at the first end after a start tag that may be one (a "/>" comes before the next
        "<": an attribute value holds no "<"), and only then: expat calling Python at every end
        was ~5 % of the parse stage on RSS feeds, most of which have a "/>" (an atom:link) but
        none in their items."""
        self.parser.EndElementHandler = None
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
        value, self.text = self.reread("".join(self.text).strip()), None
        if self.mode in self.names.DATES or not self.mode:
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
