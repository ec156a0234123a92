"""Term matching: case-, accent- and ß/ss-insensitive, on word boundaries, with a trailing
``*`` for prefixes. Pure functions, no I/O.

Text and terms are folded the same way (casefold, NFKD, combining marks dropped), and a map
from folded to original offsets lets snippets quote the original text. "Kursk*" matches
"Kursk-Region" and "Kursker"; "Kurs" never matches "Kurskorrektur", because a term must end
at a word boundary unless it ends in ``*``. Words of a phrase may be separated by any run of
spaces or punctuation ("North Korean" matches "North-Korean").
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from ..models import Article, Match, Rule

SNIPPET_CONTEXT = 110  # characters either side of the best hit


@lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    folded = unicodedata.normalize("NFKD", ch.casefold())
    return "".join(c for c in folded if not unicodedata.combining(c))


def fold(text: str) -> tuple[str, list[int] | None]:
    """Folded text and, unless the text is ASCII, each folded char's original offset."""
    if text.isascii():
        return text.lower(), None
    out: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        f = _fold_char(ch)
        out.append(f)
        where.extend([i] * len(f))
    return "".join(out), where


def term_pattern(term: str) -> str:
    words = [w for w in re.split(r"[^\w*]+", fold(term)[0]) if w.strip("*")]
    parts = [re.escape(w[:-1]) + r"\w*" if w.endswith("*") else re.escape(w) for w in words]
    return r"(?<!\w)" + r"\W+".join(parts) + r"(?!\w)"


@dataclass(frozen=True)
class Compiled:
    rule: Rule
    patterns: tuple[tuple[str, str, re.Pattern[str]], ...]  # (kind, term, pattern)


def compile_rule(rule: Rule) -> Compiled:
    pats = tuple(
        (kind, term, re.compile(term_pattern(term)))
        for kind in ("all", "any", "none")
        for term in getattr(rule, kind)
    )
    return Compiled(rule, pats)


@dataclass(frozen=True)
class _Field:
    name: str
    text: str
    folded: str
    where: list[int] | None

    def original(self, start: int, end: int) -> tuple[int, int]:
        if self.where is None:
            return start, end
        return self.where[start], (self.where[end - 1] + 1 if end > start else self.where[start])


def prepare(article: Article) -> dict[str, _Field]:
    texts = {"title": article.title, "summary": article.summary, "body": article.text}
    out = {}
    for name, text in texts.items():
        folded, where = fold(text or "")
        out[name] = _Field(name, text or "", folded, where)
    return out


def match_rule(c: Compiled, fields: dict[str, _Field]) -> Match | None:
    rule = c.rule
    scope = [fields[f] for f in rule.fields]
    hits: dict[str, list[tuple[_Field, int, int]]] = {}
    for kind, term, pat in c.patterns:
        found = [(f, m.start(), m.end()) for f in scope for m in pat.finditer(f.folded)]
        if kind == "none" and found:
            return None
        if kind == "all" and not found:
            return None
        if found and kind != "none":
            hits[term] = found
    if rule.any and not any(t in hits for t in rule.any):
        return None
    if not hits:
        return None
    field, snippet = _snippet(hits)
    return Match(
        rule_id=rule.id, rule_title=rule.title, terms=tuple(hits), field=field,
        snippet=snippet, channels=rule.channels,
    )


def _snippet(hits: dict[str, list[tuple[_Field, int, int]]]) -> tuple[str, str]:
    """Quote the original text around the best hit (body first: it has context; then
    summary, then title) and mark every hit inside the window with ``**``."""
    order = {"body": 0, "summary": 1, "title": 2}
    spans = sorted((order[f.name], f.original(s, e), f) for v in hits.values() for f, s, e in v)
    _, (start, end), field = spans[0]
    text = field.text
    lo = max(0, start - SNIPPET_CONTEXT)
    hi = min(len(text), end + SNIPPET_CONTEXT)
    if lo > 0:
        lo = text.find(" ", lo, start) + 1 or lo
    if hi < len(text):
        cut = text.rfind(" ", end, hi)
        hi = cut if cut > end else hi
    marks = sorted({fld.original(s, e) for v in hits.values() for fld, s, e in v if fld is field})
    out, pos = [], lo
    for s, e in marks:
        if s < pos or e > hi:
            continue
        out += [text[pos:s], "**", text[s:e], "**"]
        pos = e
    out.append(text[pos:hi])
    snippet = " ".join("".join(out).split())
    return field.name, ("… " if lo > 0 else "") + snippet + (" …" if hi < len(text) else "")
