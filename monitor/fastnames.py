"""What each element name is to the fast path's expat pass (fastxml), asked once per process:
feedparser's name for it (``key``), what the pass without replay does at it (``plain``), what the
replay does (``replay``), whether it may hold markup (``text``) and what fastparse's whole-body
regexes used to look for at it (``mark``). A name's answers depend on it alone; fastparse hands
this module to fastxml (a level-0 module imports none of ours).
"""

from __future__ import annotations

import re

# feedparser's prefix for a namespace (feedparser.mixin.XMLParserMixin.namespaces, lower-cased)
# wherever it leads to a handler of summaries or content ("" for the feed formats' own); for any
# other namespace the document's prefix names the handler, as feedparser's does.
PREFIX = {
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
ROLE = {"description": "description", "dc:description": "description", "media:description": "description",
        "summary": "summary", "itunes:summary": "summary", "abstract": "abstract",
        "content:encoded": "content", "fullitem": "content",
        **dict.fromkeys(("published", "issued", "pubdate", "dcterms:issued"), "published"),
        **dict.fromkeys(("updated", "modified", "lastbuilddate", "dc:date", "dcterms:modified"), "updated"),
        "dcterms:created": "created"}
DATES = {"published", "updated", "created"}
NOT_REPLAYED = {"content", "body", "xhtml:body"}  # Atom content and XHTML bodies: other rules
STRUCTURE = {"item", "entry", "guid", "id", *NOT_REPLAYED}
# content and dates only feedparser reads (feedparser-rs ignores them)
FEEDPARSER_ONLY = {"body", "xhtml:body", "fullitem", "dcterms:issued", "dcterms:created"}
# the local names of the elements feedparser reads as text with content params (push_content):
# only their type= and mode= mean anything to it
PUSHED = {"title", "description", "summary", "content", "encoded", "body", "fullitem", "info", "browserfriendly",
          "subtitle", "tagline", "rights", "copyright", "abstract"}
# elements whose type= feedparser reads: any other type it decodes as base64 (_is_base64)
_TYPED = {"title", "summary", "content", "description"}
_TEXT_TYPES = {"text", "plain", "html", "xhtml", "text/plain", "text/html", "application/xhtml+xml"}
# The elements whose reading is replayed (feedparser's summary/content rule, its ids and dates): a
# second summary-like element, dc:identifier, dcterms:issued/created, under a prefix in the
# document (or abstract under none). Elements are met in the pass, not searched for in the bytes
# (six literal scans of every body cost ~3 % of the parse stage).
REPLAYED = {"summary", "description", "abstract", "identifier", "issued", "created", "published", "updated"}
COUNT, REFUSE, REPLAY, ONCE, OUTSIDE = 1, 2, 3, 4, 5  # what the pass without replay does at an element
# Elements an item holds once as feedparser-rs reads it: a second title or id (the same name twice)
# is read by feedparser-rs another way (the last, not the first), so an item with one is
# feedparser's; a second description or summary is feedparser's content, which the replay reads.
# (An image or a text input, OUTSIDE, starts the titles of no item: RSS 1.0's follow the items.)
ONCE_KEYS = {"title", "id"}
TWICE_REPLAYED = {"description", "summary", "pubdate", "dc:date", "published", "updated"}  # (the last date counts)
# The elements that may hold markup feedparser keeps as HTML: a start tag written (whatever its
# namespace) title, description, summary or content, followed by a word boundary (content:encoded
# too), as fastparse's regex over the whole body found them before (it cost ~3.5 % of the parse
# stage: tried at every "<").
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
# mark's bits (a name may be more than one); the length of "<" and the name as written above them
ITEM_MARK, ATOM_MARK, LINK_MARK, IMAGE_MARK, ATOM_LINK_MARK, ATOM_NS_LINK_MARK, ATOM_NS_MARK, GUID_MARK = \
    1, 2, 4, 8, 16, 32, 64, 128
# Atom's elements under a prefix (in an RSS item, "atom:link"), which feedparser reads as the
# item's own and feedparser-rs does not: a link that may be the item's, and these
_ATOM_IN_RSS = {"content", "summary", "id", "title"}  # (its dates the replay reads: REPLAYED)

# The answers, kept for the process (once per pass, it cost ~1,400 names a pass over the dev
# corpus, ~3 % of the expat pass). expat's name -> plain's, replay's
PLAIN: dict[str, tuple[str, bool, int, int, int]] = {}
REPLAYS: dict[str, tuple[str, bool, bool, int, int]] = {}
NAMES = 20_000  # a bound on what feeds' names may hold in memory (bound)


def bound() -> None:
    """Forget the answers past NAMES names (a pass asks at its start)."""
    if len(PLAIN) + len(REPLAYS) > NAMES:
        PLAIN.clear()
        REPLAYS.clear()


def plain(name: str) -> tuple[str, bool, int, int, int]:
    """What the pass without replay does with an element: (key, whether it is PUSHED, COUNT,
    REFUSE, REPLAY or 0, text's, mark's); kept in PLAIN."""
    k = key(name)
    uri, _, rest = name.partition(" ")
    local, _, prefix = rest.partition(" ")
    local = (local if rest else uri).lower()
    if local in REPLAYED if prefix else local == "abstract":
        does = REPLAY
    elif k in FEEDPARSER_ONLY:
        does = REFUSE
    else:
        does = (COUNT if k in ("item", "entry") else ONCE if k in ONCE_KEYS or k in TWICE_REPLAYED
                else OUTSIDE if k in ("image", "textinput") else 0)
    answer = PLAIN[name] = (k, k.rpartition(":")[2] in PUSHED, does, text(name), mark(name))
    return answer


def replay(name: str) -> tuple[str, bool, bool, int, int]:
    """What the replay does with an element: (key, whether it is PUSHED, whether it has more to
    do than push it: an item or entry, a feedparser-only element, one with a role or a structure,
    text's, mark's); kept in REPLAYS."""
    k = key(name)
    answer = REPLAYS[name] = (k, k.rpartition(":")[2] in PUSHED,
                              k in ("item", "entry") or k in FEEDPARSER_ONLY or k in ROLE or k in STRUCTURE
                              or k in ONCE_KEYS,
                              text(name), mark(name))
    return answer


def key(name: str) -> str:
    """The name feedparser's handlers know the element by (expat gives "uri local prefix")."""
    uri, _, rest = name.partition(" ")
    if not rest:
        return name.lower()
    local, _, given = rest.partition(" ")
    prefix = PREFIX.get(uri.lower(), given) if "backend.userland.com/rss" not in uri.lower() else ""
    return f"{prefix}:{local}".lower() if prefix else local.lower()


def written(name: str) -> bytes:
    """An element's name as the document writes it."""
    uri, _, rest = name.partition(" ")
    local, _, prefix = rest.partition(" ")
    return (f"{prefix}:{local}" if prefix else local if rest else uri).encode("utf-8")


def text(name: str) -> int:
    """Whether an element is one that may hold markup (_TEXT_NAME, on its name as written): 0 no,
    else the length of "<" and its name in the bytes, negative for a description."""
    w = written(name)
    m = _TEXT_NAME.match(w.lower())
    if m is None or b"xhtml" in w.lower():  # (such a name is followed by "xhtml" in its tag: no match)
        return 0
    return -1 - len(w) if m.group(1) == b"description" else 1 + len(w)


def mark(name: str) -> int:
    """What the pass notes for fastparse at an element (its name as written): the _MARK bits that
    apply, with 256 times the length of "<" and the name (where its start tag goes on); or 0."""
    w = written(name)
    uri, _, rest = name.partition(" ")
    bits = ((ITEM_MARK if _ITEM_NAME.match(w) else 0) | (ATOM_MARK if _ATOM_NAME.match(w) else 0)
            | (LINK_MARK if w == b"link" else 0) | (IMAGE_MARK if w.startswith(b"image") else 0)
            | (GUID_MARK if w == b"guid" else 0)
            | (ATOM_LINK_MARK if _ATOM_LINK.match(w) else 0)
            | _atom_prefixed(uri, rest))
    return bits | (1 + len(w)) << 8 if bits else 0


def refused(key: str, attrs: dict[str, str]) -> bool:
    """Whether a PUSHED element has an attribute feedparser reads and feedparser-rs does not: a
    type= feedparser decodes as base64 (media:content's is an enclosure's, no text's), a
    mode="base64"."""
    for name, value in attrs.items():
        name = name.lower()
        if name == "mode" and value.lower().startswith("base64"):
            return True
        if (name == "type" and key.rpartition(":")[2] in _TYPED and key != "media:content"
                and value.lower() not in _TEXT_TYPES):
            return True
    return False


def _atom_prefixed(uri: str, rest: str) -> int:
    """ATOM_NS_LINK_MARK for a link of Atom's namespace (an Atom entry's, or one in an RSS item),
    ATOM_NS_MARK for one of _ATOM_IN_RSS under a prefix (expat's "uri local prefix"; an Atom
    feed's own elements have none), else 0."""
    if uri.lower() != "http://www.w3.org/2005/atom":
        return 0
    local, _, prefix = rest.partition(" ")
    return ATOM_NS_LINK_MARK if local == "link" else ATOM_NS_MARK if prefix and local in _ATOM_IN_RSS else 0
