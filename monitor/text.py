"""Plain-text helpers with no third-party library: feed HTML to text, whitespace folding.

Feed HTML is never rendered as HTML anywhere (feedparser's sanitiser is partial), only
turned into text here.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCK = {
    "p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table",
    "blockquote", "pre", "section", "article", "header", "footer", "figure", "figcaption", "hr",
}
_SKIP = {"script", "style", "noscript", "template", "head"}


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in _SKIP:
            self.skip += 1
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        if tag in _BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Text of an HTML fragment, paragraphs kept as single newlines."""
    if not html:
        return ""
    if "<" not in html and "&" not in html:
        return squeeze(html)
    p = _Text()
    try:
        p.feed(html)
        p.close()
    except Exception:  # HTMLParser is lenient; this only guards against the unforeseen
        return squeeze(re.sub(r"<[^>]*>", " ", html))
    return squeeze("".join(p.parts))


def squeeze(text: str) -> str:
    """Collapse runs of spaces; keep one newline between paragraphs."""
    lines = (re.sub(r"[ \t\r\f\v\u00a0]+", " ", ln).strip() for ln in text.split("\n"))
    return "\n".join(ln for ln in lines if ln)
