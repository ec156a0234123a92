"""Markup the fast path (issue 16) reads around feedparser-rs: the empty-element tags feedparser-rs
misreads, and the HTML elements feedparser keeps in an RSS description.

The expat pass (fastxml) finds where an RSS feed's empty-element tags end; ``safe`` says which
feedparser-rs reads right; ``start_end`` writes the others as start and end tags for it. ``HTML``
names the elements the pass replays inside a description.
"""

from __future__ import annotations

import functools
import re

# feedparser-rs 0.7.1's RSS 2.0 parser reads an element it takes text from up to the next end tag, and
# an empty-element tag has none: <category domain="x"/>, <comments/> or <dc:creator /> takes the next
# element's text and that element is lost (its <description>, silently), or the feed is "truncated".
# Its Atom and RSS 1.0 parsers do not. The empty elements it was seen to read right in RSS, as
# (namespace, local name); any other one in an RSS feed is noted by the expat pass (fastxml),
# and fastparse hands feedparser-rs the feed with those written as start and end tags (start_end).
SAFE = {("", "enclosure"), ("", "cloud"), ("", "image"), ("", "textinput"), ("", "br"), ("", "img"),
        ("http://www.w3.org/2005/atom", "link"), ("http://www.w3.org/2005/atom", "category"),
        ("http://search.yahoo.com/mrss/", "thumbnail"), ("http://search.yahoo.com/mrss/", "content"),
        ("http://search.yahoo.com/mrss/", "credit"), ("http://search.yahoo.com/mrss", "thumbnail"),
        ("http://search.yahoo.com/mrss", "content"), ("http://search.yahoo.com/mrss", "credit"),
        ("http://www.itunes.com/dtds/podcast-1.0.dtd", "image"),
        ("http://www.itunes.com/dtds/podcast-1.0.dtd", "category"),
        ("http://www.itunes.com/dtds/podcast-1.0.dtd", "owner"),
        ("http://www.itunes.com/dtds/podcast-1.0.dtd", "keywords"), ("", "docs"),
        ("http://rssnamespace.org/feedburner/ext/1.0", "info"), ("http://podlove.org/simple-chapters", "chapter"),
        ("http://www.google.com/schemas/play-podcasts/1.0", "image")}
_XHTML = "http://www.w3.org/1999/xhtml"  # elements of Atom content type="xhtml"

# HTML elements inside an RSS <description> (reddit's): feedparser keeps them as markup, "<tag>" and
# "</tag>" among the text, which it escapes from the first such element on (its contentparams type
# becomes application/xhtml+xml). A <div> before that it drops (typepad's, 10/2007), and at the
# div's end it returns before its depth and base stacks are popped: every later element sits one
# level deeper, which changes which summary or title it keeps; such a feed is not replayed. Only
# names none of its handlers knows (a test checks): at an element's end feedparser calls _end_<name>.
# Their attributes are left out: feedparser writes them escaped, no ">" in them, so html_to_text
# drops each such tag whole either way and the text is the same.
HTML = frozenset(
    "a abbr acronym address article aside audio b bdi bdo big blockquote br caption center cite code col "
    "colgroup dd del details dfn div dl dt em figcaption figure font footer h1 h2 h3 h4 h5 h6 header hr i "
    "iframe img ins kbd label li main mark nav ol p picture pre q s samp section small span strike strong "
    "sub sup table tbody td tfoot th thead time tr tt u ul var video wbr".split())


@functools.lru_cache(maxsize=1024)
def safe(name: str) -> bool:
    """Whether feedparser-rs reads an empty-element tag of this element right (``name`` as expat
    names it with namespace_prefixes: "uri local prefix", "uri local" or "local")."""
    uri, _, rest = name.partition(" ")
    local = rest.partition(" ")[0] if rest else uri
    uri = uri.lower() if rest else ""
    return uri == _XHTML or (uri, local.lower()) in SAFE


def start_end(body: bytes, ends: list[int]) -> bytes:
    """``body`` with the empty-element tags ending at ``ends`` (expat's indexes, after "/>")
    written as start and end tags: the same XML (XML 1.0 section 3.1). A tag starts at the last
    "<" before its end: an attribute value holds none."""
    out: list[bytes] = []
    pos = 0
    for end in ends:
        start = body.rfind(b"<", pos, end)
        name = re.match(rb"[^\s/>]+", body[start + 1:end]).group()  # type: ignore[union-attr]
        out += (body[pos:end - 2], b"></", name, b">")
        pos = end
    out.append(body[pos:])
    return b"".join(out)
