"""What the expat pass (``monitor.fastxml``) looks at around an element, in its bytes and
attributes, to tell feedparser's reading from feedparser-rs's: what fastparse's whole-body regexes
looked for (fastnames.mark), whether a text holds markup, and a dc:date feedparser-rs reads
otherwise. A base class of the pass, whose state it reads and sets; the exceptions it raises."""

from __future__ import annotations

import re
import xml.parsers.expat
from collections.abc import Callable, Collection
from types import ModuleType

_HREF = re.compile(rb"\bhref")  # (marked)
_TEXT_AFTER = re.compile(rb"\s*[^<\s]")


_LATER = object()  # _Pass.leaf, while a text's comment or CDATA section may be followed by markup


class NotReplayed(Exception):
    """The feed holds what this replay does not cover: feedparser answers."""


class _Replay(Exception):  # noqa: N818 - a signal, not an error
    """The pass without replay met an element that needs it: the pass starts again, replaying."""


class _Markup(Exception):  # noqa: N818 - a signal, not an error
    """An RSS description holds HTML elements: the pass starts again, replaying them."""


class _Checks:
    # the pass's state these read and set (fastxml._Pass.__init__)
    names: ModuleType
    parser: xml.parsers.expat.XMLParserType
    doc: bytes
    html: Collection[str] | None
    markup: Collection[str]
    later: tuple[int, Callable[[str], None] | None] | None
    items_started: bool
    atomish: bool
    image: bool
    linktext: bool
    alternates: int
    atom: bool
    leaf: object
    guids: int
    said: int
    false: int

    def marked(self, mark: int, attrs: dict[str, str]) -> None:
        """Note what fastnames.mark names, read in the bytes as fastparse's regexes read them: an RSS
        "<link" and white space, then "href" at a word's start before the first ">"; an Atom link:
        no such "href" after its name, then text (white space aside) before any "<". And, read in
        its attributes, a link in the Atom namespace that feedparser may take for the item's link:
        in an RSS item (feedparser-rs reads none), or a second one in an Atom entry (feedparser
        takes the last, feedparser-rs the first)."""
        names = self.names
        if mark & names.GUID_MARK:  # whether it says it is a permalink, and whether it says false
            self.guids += 1
            for name, value in attrs.items():
                if name.lower() == "ispermalink":
                    self.said += 1
                    self.false += value.lower() == "false"
                    break
        if mark & names.ITEM_MARK:
            self.items_started = True
            self.alternates = 0
        if mark & names.ATOM_NS_MARK and self.items_started:
            self.atomish = True
        if mark & names.ATOM_NS_LINK_MARK and self.items_started:
            rel = attrs.get("rel")
            if "href" not in attrs:  # its text is the link (feedparser's; "" if none)
                self.atomish = self.linktext = True
            elif rel is None or rel.strip().lower() == "alternate":
                self.atomish = True  # (an RSS feed's answer; an Atom feed's is ``linktext``)
                self.alternates += 1
                if self.alternates > 1:
                    self.linktext = True
        if mark & names.ATOM_MARK:
            self.atomish = True
        if mark & names.IMAGE_MARK:
            self.image = self.image or self.items_started
        if mark & (names.LINK_MARK | names.ATOM_LINK_MARK):
            doc, i = self.doc, self.parser.CurrentByteIndex
            end = doc.find(b">", i)
            if (mark & names.LINK_MARK and doc[i + 5:i + 6] in (b" ", b"\t", b"\n", b"\r", b"\f", b"\v")
                    and _HREF.search(doc, i + 5, end)):
                self.atomish = True
            if (mark & names.ATOM_LINK_MARK and not _HREF.search(doc, i + (mark >> 8), end)
                    and _TEXT_AFTER.match(doc, end + 1)):
                self.linktext = True

    def text_start(self, text: int) -> None:
        """A title, description, summary or content starts: whether its start tag (expat's index is
        at its "<"; no "xhtml" in it, no "/>") is followed by text, then an element (or a processing
        instruction), read in the bytes as fastparse's regex over the body read it before. Markup in
        an RSS description is replayed (from the start: _Markup), any other not. (Callers read a
        "<title>", the commonest, inline.)"""
        doc, i = self.doc, self.parser.CurrentByteIndex
        end = doc.find(b">", i)
        if end < 0 or b"xhtml" in doc[i:end].lower():
            return
        if doc[end - 1] == 47:  # "/": an empty-element tag, which feedparser-rs reads as the next
            if self.atom:  # element's text in RSS (fastmarkup rewrites them) and Atom (an Atom
                raise NotReplayed  # <summary/> took its <content>): an Atom feed's is feedparser's
            return
        lt = doc.find(b"<", end)
        if lt >= 0 and (after := doc[lt + 1:lt + 2]) != b"/":
            self.followed(text, after)

    def followed(self, text: int, after: bytes) -> None:
        """A text's first "<" is not its end tag: ``after``, the byte past it, says whether a
        comment or CDATA section comes first (markup may follow them) or markup does."""
        if after == b"!":
            self.markup_later(text)
        else:
            self.markup_found(text)

    def _w3c_date(self) -> bool:
        """Whether the text of the dc:date starting here starts as a W3C date ("2026-"), which
        feedparser-rs reads as feedparser does; it reads a dc:date after a pubDate as the item's
        published date (feedparser: updated) and drops one written otherwise ("Tue, 3 Nov
        2026 ..."), where feedparser reads it."""
        doc = self.doc
        gt = doc.find(b">", self.parser.CurrentByteIndex)
        head = doc[gt + 1:gt + 6].lstrip()
        return head[:4].isdigit() and head[4:5] in (b"-", b"")

    def markup_later(self, text: int) -> None:
        """A text's start tag is followed by a comment or a CDATA section: whether an element
        follows them inside it, expat says as it reads on: "<title><!-- c -->a<b>b</b>c" holds
        markup as "<title>a<b>b</b>c" does (feedparser-rs read "a" of it, and the content hash
        and the uid followed). ``leaf``, which every start sets, is marked here: at the next end,
        the text's own or a child's, it is still the mark unless an element started meanwhile.
        One handler changes for that text only (a scan of the bytes ahead read every CDATA
        section twice, a full article in content:encoded; two handlers more cost twice this)."""
        p = self.parser
        self.later = (text, p.EndElementHandler)
        p.EndElementHandler = self._later_end
        self.leaf = _LATER

    def _later_end(self, name: str) -> None:
        later, self.later = self.later, None
        text, end = later  # type: ignore[misc]
        self.parser.EndElementHandler = end
        if self.leaf is _LATER:  # nothing started inside: the text's own end, right after its start
            self.leaf = True
        else:
            self.markup_found(text)  # raises, or (a description whose markup is replayed) goes on
        if end is not None:
            end(name)

    def markup_found(self, text: int) -> None:
        """A title, description, summary or content holds markup (text_start)."""
        if text < 0 and self.html:
            if not self.markup:
                raise _Markup
            return
        raise NotReplayed

    def permalinks(self) -> bool | None:
        """Whether the RSS guids are permalinks: True if no guid says, False if every guid says
        isPermaLink="false", None when it varies (feedparser-rs does not report it per item).
        Counted at the guids (``marked``), where four literal counts over the whole body were
        ~1 % of the parse stage."""
        if not self.said:
            return True
        return False if self.said == self.false == self.guids else None
