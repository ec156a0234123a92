"""HTML page -> Article with trafilatura; choosing between the page and the feed's own text.

``page()`` runs in a worker process (see workers.py): trafilatura has no timeout and can
crash on hostile pages. It is called with ``deduplicate=False``: trafilatura's dedup cache is
process-wide and empties the 5th extraction of the same page (../shared/LIBRARY-NOTES.md).

trafilatura (with lxml and numpy: ~40 MB) is imported in ``page()``, not at the top: the daemon's
own process imports this module for ``choose`` and ``is_html`` and to name ``page`` to its
workers, and never extracts; the workers' forkserver preloads it (daemon.WORKER_PRELOAD).
"""

from __future__ import annotations

import re
from urllib.parse import urljoin

from .errors import ExtractError
from .models import Article, Entry

HTML_TYPES = ("text/html", "application/xhtml+xml", "")


TRUST_DETECTION = 200  # characters of text from which the detected language wins


def detect_language(text: str) -> str | None:
    """The text's language. Runs in worker processes only: see language.py."""
    from .language import detect

    return detect(text)


def is_html(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() in HTML_TYPES


def page(html: bytes | str, url: str | None = None) -> Article:
    """Extract the main text and metadata of one page. Raises ExtractError when nothing
    usable is found. Pure CPU: no I/O."""
    import trafilatura
    from trafilatura.metadata import examine_meta, extract_title

    try:
        tree = trafilatura.load_html(html)
    except Exception as e:  # lxml raises a zoo of errors on hostile input
        raise ExtractError(f"not parseable as HTML: {type(e).__name__}") from None
    if tree is None:
        raise ExtractError("not parseable as HTML")
    lang = _lang(tree.get("lang") or tree.get("xml:lang") or "")
    # An AMP page points to its canonical page, a normal page to its AMP version: whichever
    # it is, the other one is the place to look when this one yields too little text.
    is_amp = tree.get("amp") is not None or tree.get("\u26a1") is not None
    alternate = _link(tree, "canonical" if is_amp else "amphtml", url)
    try:
        # Metadata from the <meta> tags only (title, author): trafilatura's full metadata pass
        # (JSON-LD, htmldate's date search, sitename, categories) cost ~30 % of the page's time
        # in bench/eval_extract.py; the feed already gives the date. Read before extraction,
        # which prunes the tree.
        meta = examine_meta(tree)
        title = meta.title or extract_title(tree) or ""
        doc = trafilatura.bare_extraction(
            tree, url=url, include_comments=False, deduplicate=False,
        )
    except Exception as e:
        raise ExtractError(f"extraction failed: {type(e).__name__}: {e}"[:200]) from None
    if doc is None or isinstance(doc, dict):
        raise ExtractError("no main text found")
    text = (doc.text or "").strip()
    if not text:
        raise ExtractError("no main text found")
    # The text says more than the page's lang attribute (templates declare "en" on German
    # pages): trust detection on a text long enough, the attribute otherwise.
    language = (detect_language(text) if len(text) >= TRUST_DETECTION else None) or lang \
        or detect_language(text)
    return Article(title=title, text=text, url=url, language=language, author=meta.author,
                   date=meta.date or _meta_date(tree), source="page", alternate=alternate)


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


# The publication date as pages declare it in <meta> (Open Graph / article:, schema.org,
# Dublin Core). htmldate's full search costs ~5 ms a page; these look-ups cost microseconds,
# and the feed's own date is the fallback anyway.
_DATE_META = (
    '//meta[@property="article:published_time" or @property="og:published_time" or '
    '@itemprop="datePublished" or @name="date" or @name="dc.date" or @name="DC.date.issued" '
    'or @name="pubdate" or @name="publishdate"]/@content'
)
_ISO_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})")


def _meta_date(tree: object) -> str | None:
    for value in tree.xpath(_DATE_META):  # type: ignore[attr-defined]
        m = _ISO_DATE.match(str(value).strip())
        if m:
            return m.group(1)
    return None


def _link(tree: object, rel: str, base: str | None) -> str | None:
    for href in tree.xpath(f'//link[@rel="{rel}"]/@href'):  # type: ignore[attr-defined]
        target = urljoin(base or "", str(href).strip())
        if target.startswith(("http://", "https://")) and target != base:
            return target
    return None


def _lang(value: str) -> str | None:
    m = re.match(r"^([A-Za-z]{2,3})\b", value.strip())
    return m.group(1).lower() if m else None
