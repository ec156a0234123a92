"""Why a rule fired: the terms, the field, and a snippet of the original text around the
best hit with every hit in it marked ``**like this**``."""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from functools import cached_property
from itertools import islice
from operator import itemgetter
from typing import Any, NamedTuple

from ..models import Match
from . import morph
from .tree import Rule

SNIPPET_CONTEXT = 110  # characters either side of the best hit
_SPAN = re.Match.span
_AHEAD = 64  # tokens scanned past the one asked for: a snippet's marks follow its best hit
DENSITY_WINDOW = 25    # words: hits of other terms this close make a hit a better quote
_PREFER = {2: 0, 1: 1, 0: 2}  # body, then summary, then title: the body has context
_AT = itemgetter(0, 1)  # a hit's field and start


class Hit(NamedTuple):
    field: int   # index into title, summary, body
    start: int   # token positions, end exclusive
    end: int
    term: int


class Field:
    """One field of an article: its text, its tokens, and (on demand) their character offsets.

    Offsets cost a regex pass over the text; a snippet needs only those up to a little past its
    best hit, so ``span`` scans no further than the furthest token asked for."""

    def __init__(self, name: str, text: str, words: list[str]):
        self.name, self.text, self.words = name, text, words
        self._spans: list[tuple[int, int]] = []
        self._scan: Any = None

    def span(self, i: int) -> tuple[int, int] | None:
        """Start and end of token ``i`` (None past the last token)."""
        spans = self._spans
        if i >= len(spans):
            if self._scan is None:
                self._scan = morph.TOKEN.finditer(morph.plain(self.text))
            # in C: islice and map pull the next matches without a Python-level loop
            spans.extend(map(_SPAN, islice(self._scan, i + _AHEAD - len(spans))))
            if i >= len(spans):
                return None
        return spans[i]

    @property
    def spans(self) -> list[tuple[int, int]]:
        """Every token's offsets (scans the whole text)."""
        self.span(len(self.words) + 1)
        return self._spans

    @cached_property
    def _ends(self) -> list[int]:
        return [i for i, w in enumerate(self.words) if w in morph.END]

    def sentence(self, pos: int) -> int:
        """The number of the sentence holding token ``pos`` (0 for the first)."""
        return bisect_right(self._ends, pos)


def explain(rule: Rule, hits: list[Hit], fields: list[Field], score: float, terms: list[Any],
            lang: str | None = None, core: list[Hit] | None = None) -> Match:
    """The Match for ``hits``. Where several terms matched the same words (a concept's German
    "Ukraine" and English "Ukraine"), the one written for the text's language is named. The
    snippet quotes the densest cluster of hits, taken from ``core`` (the hits of the ``near``
    or ``same_sentence`` windows that made the rule true) when there are any: that is the
    evidence, where a context word such as "Russia" may be anywhere."""
    def rank(h: Hit) -> tuple[int, int]:
        tlang = terms[h.term].term.lang
        return (0 if tlang == lang else 1 if tlang is None else 2, h.term)

    best_term: dict[tuple[int, int, int], Hit] = {}
    for h in hits:
        key = h[:3]  # field, start, end
        seen = best_term.get(key)
        if seen is None or (seen.term != h.term and rank(h) < rank(seen)):
            best_term[key] = h
    hits = sorted(best_term.values(), key=_AT)
    names = tuple(dict.fromkeys(terms[h.term].term.text for h in hits))

    by_field: dict[int, tuple[list[int], list[Hit]]] = {}
    for h in hits:
        starts, same = by_field.setdefault(h.field, ([], []))
        starts.append(h.start)
        same.append(h)

    def density(h: Hit) -> tuple[int, int, int]:
        """Distinct terms hit within DENSITY_WINDOW words of ``h``, then body first, then earliest."""
        starts, same = by_field[h.field]
        window = same[bisect_left(starts, h.start - DENSITY_WINDOW):bisect_right(starts, h.start + DENSITY_WINDOW)]
        return (len({o.term for o in window}), -_PREFER[h.field], -h.start)

    best = max(core or hits, key=density)
    field = fields[best.field]
    marks: list[tuple[int, int]] = []
    for s, e in sorted({(h.start, h.end) for h in hits if h.field == best.field}):
        if marks and s <= marks[-1][1]:  # adjacent words are marked as one: **North Korean troops**
            marks[-1] = (marks[-1][0], max(e, marks[-1][1]))
        else:
            marks.append((s, e))
    return Match(rule_id=rule.id, rule_title=rule.title, terms=names, field=field.name,
                 snippet=snippet(field, best, marks), channels=rule.channels,
                 severity=rule.severity, score=score)


def snippet(field: Field, best: Hit, marks: list[tuple[int, int]]) -> str:
    text = field.text
    first, last = field.span(best.start), field.span(best.end - 1)
    if first is None or last is None:  # cannot happen unless the tokenizers disagree; quote the start
        return " ".join(text[: 2 * SNIPPET_CONTEXT].split())
    start, end = first[0], last[1]
    lo = max(0, start - SNIPPET_CONTEXT)
    hi = min(len(text), end + SNIPPET_CONTEXT)
    if lo > 0:
        lo = text.find(" ", lo, start) + 1 or lo
    if hi < len(text):
        cut = text.rfind(" ", end, hi)
        hi = cut if cut > end else hi
    out, pos = [], lo
    for s, e in marks:  # sorted: once a mark starts past the quote, so do the rest
        head, tail = field.span(s), field.span(e - 1)
        if head is None or tail is None or head[0] >= hi:
            break
        cs, ce = head[0], tail[1]
        if cs < pos or ce > hi:
            continue
        out += [text[pos:cs], "**", text[cs:ce], "**"]
        pos = ce
    out.append(text[pos:hi])
    quoted = " ".join("".join(out).split())
    return ("… " if lo > 0 else "") + quoted + (" …" if hi < len(text) else "")
