"""Plain-text helpers with no third-party library: feed HTML to text, whitespace folding.

Feed HTML is never rendered as HTML anywhere (feedparser's sanitiser is off), only turned
into text here, with regular expressions rather than ``html.parser``: this runs on every
summary and content of every changed feed, and the C regex engine does it ~4x faster than
the pure-Python parser, with the same text for what feeds carry.
"""

from __future__ import annotations

import html
import re

_BLOCK = ("p|div|br|li|ul|ol|h[1-6]|tr|table|blockquote|pre|section|article|header|footer|figure|"
          "figcaption|hr")
# the same names as a tree by their letters, which the regex below tries in fewer branches (an
# alternation of 20 names was tried name by name at every tag: ~9 % of its cost); a test holds
# the two to the same names
_BLOCK_TREE = ("p(?:re)?|div|b(?:r|lockquote)|li|ul|ol|h(?:[1-6]|eader|r)|t(?:r|able)|section|article|"
               "f(?:ooter|ig(?:ure|caption))")
_DROPPED = "script|style|noscript|template|head"
# Whole elements whose content is not text (an unclosed one runs to the end), and comments.
_DROP = re.compile(rf"<({_DROPPED})\b[^>]*>.*?(?:</\1\s*>|\Z)|<!--.*?(?:-->|\Z)", re.I | re.S)
# Case-blind by character classes: re.I would double the cost of the scan. The classes hold every
# character re.I lets match a letter (U+0130/U+0131 for i, the Kelvin sign for k, the long s).
_FOLDS = {"i": "iI\u0130\u0131", "k": "kK\u212a", "s": "sS\u017f"}


def _fold(letters: str) -> str:
    return re.sub("[a-z]", lambda m: f"[{_FOLDS.get(m[0], m[0] + m[0].upper())}]", letters)


# The lookahead on the names' first letters turns most other tags (<img>, <em>) away before the
# names are tried: the same matches, ~12 % less time;
_FIRST = "".join(_FOLDS.get(c, c + c.upper()) for c in sorted({name[0] for name in _BLOCK.split("|")} - {"a", "s"}))
# and the two commonest inline tags, <a> and <span> (half the tags of feed HTML), by their second
# letter: the only block names that start with a or s are article and section
_BLOCK_TAG = re.compile(f"</?(?=[{_FIRST}]|" + _fold("ar|se") + ")(?:" + _fold(_BLOCK_TREE) + r")\b[^>]*>")
# where _DROP could match: its start without re.I, which makes its scan twice as costly (~45 % of
# a _DROP.sub that finds nothing, what nearly every fragment gets)
# (after a lookahead on the names' first letters, as _BLOCK_TAG's)
_DROP_FIRST = "".join(_FOLDS.get(c, c + c.upper()) for c in sorted({name[0] for name in _DROPPED.split("|")}))
_DROP_START = re.compile(f"<(?=[{_DROP_FIRST}!])(?:(?:" + _fold(_DROPPED) + r")\b|!--)")
# A tag starts with "<" and a letter ("a < b" is text), or is a declaration / processing
# instruction; CDATA markers are dropped and their content kept.
_TAG = re.compile(r"</?[A-Za-z][^>]*>|<!\[CDATA\[|\]\]>|<![A-Za-z][^>]*>|<\?[^>]*>")
# the same without the CDATA end, for text that has none: every branch then starts with "<",
# which the scan skips to (1.5x faster on tag-dense HTML)
_TAG_PLAIN = re.compile(r"<(?:/?[A-Za-z][^>]*>|!\[CDATA\[|![A-Za-z][^>]*>|\?[^>]*>)")
_ODD_SPACES = "\t\r\f\v\u00a0"  # (squeeze, unrolled; a test holds the two together)
_SPACES = re.compile("  +")  # starts with a literal: the scan skips to each "  " at C speed
_NEWLINES = re.compile("\n[ \n]*")  # likewise to each newline


def html_to_text(fragment: str) -> str:
    """Text of an HTML fragment, paragraphs kept as single newlines."""
    if not fragment:
        return ""
    if "<" not in fragment:  # no markup (a CDATA end is dropped only where references are decoded)
        if "&" not in fragment:
            return squeeze(fragment)
        if "]]>" not in fragment:
            return squeeze(unescape(fragment))
    text = _DROP.sub(" ", fragment) if _DROP_START.search(fragment) else fragment
    text = _BLOCK_TAG.sub("\n", text)
    text = (_TAG if "]]>" in text else _TAG_PLAIN).sub("", text)
    return squeeze(unescape(text))


def unescape(text: str) -> str:
    """``html.unescape``, with the three references feeds hold most (two in three on the dev
    corpus: &nbsp; &#32; &#39;) replaced first by string methods, not one Python call each. The
    same text: what they become (a no-break space, a space, an apostrophe) is no part of a
    reference's name, number or ";", so a reference before one is read as before (its name's
    longest known prefix and the rest as they were)."""
    if "&" not in text:
        return text
    if "&nbsp;" in text:
        text = text.replace("&nbsp;", "\u00a0")
    if "&#32;" in text:
        text = text.replace("&#32;", " ")
    if "&" in text and "&#39;" in text:
        text = text.replace("&#39;", "'")
    return html.unescape(text) if "&" in text else text


def squeeze(text: str) -> str:
    """Collapse runs of spaces; keep one newline between paragraphs. String methods and a regex
    with a literal start: a regex scan for a class of characters costs ~20x a substring search,
    and was 90 % of html_to_text (issue 16)."""
    # _ODD_SPACES, unrolled (this runs for every title and text): ~1/3 of squeeze's cost for a title
    if "\t" in text:
        text = text.replace("\t", " ")
    if "\r" in text:
        text = text.replace("\r", " ")
    if "\f" in text:
        text = text.replace("\f", " ")
    if "\v" in text:
        text = text.replace("\v", " ")
    if not text.isascii() and "\u00a0" in text:
        text = text.replace("\u00a0", " ")
    if "\n" in text:  # the spaces and newlines after each newline first: most runs of spaces in
        # text made of HTML are a line's indent, which then needs no second regex (~half of squeeze)
        text = _NEWLINES.sub("\n", text)
        if "  " in text:
            text = _SPACES.sub(" ", text)
        # a run of spaces and newlines is now at most one space and a newline: the newline alone
        return text.replace(" \n", "\n").strip(" \n")
    if "  " in text:
        text = _SPACES.sub(" ", text)
    return text.strip(" \n")
