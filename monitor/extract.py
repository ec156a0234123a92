"""HTML page -> Article with trafilatura; choosing between the page and the feed's own text.

``page()`` runs in a worker process (see workers.py): trafilatura has no timeout and can
crash on hostile pages. It is called with ``deduplicate=False``: trafilatura's dedup cache is
process-wide and empties the 5th extraction of the same page (LIBRARY-NOTES).
"""

from __future__ import annotations

import re

import trafilatura

from .errors import ExtractError
from .models import Article, Entry

HTML_TYPES = ("text/html", "application/xhtml+xml", "")


def is_html(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() in HTML_TYPES


def page(html: bytes | str, url: str | None = None) -> Article:
    """Extract the main text and metadata of one page. Raises ExtractError when nothing
    usable is found. Pure CPU: no I/O."""
    try:
        tree = trafilatura.load_html(html)
    except Exception as e:  # lxml raises a zoo of errors on hostile input
        raise ExtractError(f"not parseable as HTML: {type(e).__name__}") from None
    if tree is None:
        raise ExtractError("not parseable as HTML")
    lang = _lang(tree.get("lang") or tree.get("xml:lang") or "")
    try:
        doc = trafilatura.bare_extraction(
            tree, url=url, with_metadata=True, include_comments=False, deduplicate=False,
        )
    except Exception as e:
        raise ExtractError(f"extraction failed: {type(e).__name__}: {e}"[:200]) from None
    if doc is None or isinstance(doc, dict):
        raise ExtractError("no main text found")
    text = (doc.text or "").strip()
    if not text:
        raise ExtractError("no main text found")
    return Article(
        title=doc.title or "", text=text, url=url, language=lang or doc.language,
        author=doc.author, date=doc.date, source="page",
    )


def choose(entry: Entry, page_article: Article | None, error: str | None = None) -> Article:
    """Pure: the Article the rules will see. The page's text wins, unless it is missing or
    shorter than the feed's own text (paywall, consent wall, script-only page, a nav-only
    "extraction"): then the feed's full content, else its summary, is used."""
    if page_article is not None and len(page_article.text) >= len(entry.content or entry.summary):
        return Article(
            title=entry.title or page_article.title, text=page_article.text,
            summary=entry.summary, url=entry.link, language=page_article.language,
            author=page_article.author, date=page_article.date or entry.published,
            source="page",
        )
    if page_article is not None:
        error = error or "page text shorter than the feed's content"
    source = "feed-content" if entry.content else "feed-summary"
    return Article(
        title=entry.title, text=entry.content or entry.summary, summary=entry.summary,
        url=entry.link, language=page_article.language if page_article else None,
        date=entry.published, source=source, error=error,
    )


def _lang(value: str) -> str | None:
    m = re.match(r"^([A-Za-z]{2,3})\b", value.strip())
    return m.group(1).lower() if m else None
