"""Why a rule fired: the terms, the field, and a snippet of the original text around the
best hit with every hit in it marked ``**like this**`` (``evidence``). The hits and the fields
they are in (their tokens, and where those stand in the text) are textfield.py's.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from operator import itemgetter
from typing import Any

from .textfield import Field, Hit

SNIPPET_CONTEXT = 110  # characters either side of the best hit
DENSITY_WINDOW = 25    # words: hits of other terms this close make a hit a better quote
_PREFER = {2: 0, 1: 1, 0: 2}  # body, then summary, then title: the body has context
_AT = itemgetter(0, 1)  # a hit's field and start

__all__ = ["Field", "Hit", "context_of", "evidence", "snippet"]


def evidence(hits: list[Hit], fields: list[Field], terms: list[Any], lang: str | None = None,
             core: list[Hit] | None = None) -> tuple[tuple[str, ...], str, str]:
    """The terms that fired, the field and the snippet that explain ``hits``. Where several
    terms matched the same words (a concept's German "Ukraine" and English "Ukraine"), the one
    written for the text's language is named. The
    snippet quotes the densest cluster of hits, taken from ``core`` (the hits of the ``near``
    or ``same_sentence`` windows that made the rule true) when there are any: that is the
    evidence, where a context word such as "Russia" may be anywhere."""
    if len(hits) == 1 and (not core or core == hits):  # the common case, in short
        h = hits[0]
        return (terms[h.term].term.text,), fields[h.field].name, snippet(fields[h.field], h, [(h.start, h.end)])

    hits = _named(hits, terms, lang)
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
    # A token takes a character at least, so a hit more than SNIPPET_CONTEXT tokens from the
    # best one is outside the quote, as is any mark it would join: leaving it out spares
    # looking up where it is.
    near_lo, near_hi = best.start - SNIPPET_CONTEXT - 2, best.end + SNIPPET_CONTEXT
    for s, e in sorted({(h.start, h.end) for h in hits
                        if h.field == best.field and h.end >= near_lo and h.start <= near_hi}):
        if marks and s <= marks[-1][1]:  # adjacent words are marked as one: **North Korean troops**
            marks[-1] = (marks[-1][0], max(e, marks[-1][1]))
        else:
            marks.append((s, e))
    return names, field.name, snippet(field, best, marks)


def _named(hits: list[Hit], terms: list[Any], lang: str | None) -> list[Hit]:
    """One hit per place, in text order: of the terms hit there, the one written for the
    text's language, else a language-free one, else the first."""
    def rank(h: Hit) -> tuple[int, int]:
        tlang = terms[h.term].term.lang
        return (0 if tlang == lang else 1 if tlang is None else 2, h.term)

    best_term: dict[tuple[int, int, int], Hit] = {}
    for h in hits:
        key = h[:3]  # field, start, end
        seen = best_term.get(key)
        if seen is None or (seen.term != h.term and rank(h) < rank(seen)):
            best_term[key] = h
    return sorted(best_term.values(), key=_AT)


def context_of(hits: list[Hit], context: list[Hit], terms: list[Any], lang: str | None) -> tuple[str, ...]:
    """The names (as ``evidence`` gives them) hit only by the rule's context clause: ``hits``
    are all of the rule's, ``context`` the clause's share of them. A word the topic hit too,
    such as "@war_context" inside a ``same_sentence``, stays the topic's (issue 14)."""
    rest = Counter(hits)
    rest.subtract(context)
    topic = {h[:3] for h, n in rest.items() if n > 0}
    own: dict[str, None] = {}
    only: dict[str, None] = {}
    for h in _named(hits, terms, lang):
        (own if h[:3] in topic else only)[terms[h.term].term.text] = None
    return tuple(n for n in only if n not in own)


def snippet(field: Field, best: Hit, marks: list[tuple[int, int]]) -> str:
    """The text around ``best``, ``marks`` marked (the same quote is made once a field)."""
    key = (best.start, best.end, *marks)
    quote = field.quotes.get(key)
    if quote is None:
        quote = field.quotes[key] = _quote(field, best, marks)
    return quote


def _quote(field: Field, best: Hit, marks: list[tuple[int, int]]) -> str:
    text = field.text
    first = field.span(best.start)
    last = first if best.end - 1 == best.start else field.span(best.end - 1)
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
    head: tuple[int, int] | None
    tail: tuple[int, int] | None
    for s, e in marks:  # sorted: once a mark starts past the quote, so do the rest
        if s == best.start and e == best.end:
            head, tail = first, last
        else:
            head, tail = field.span(s), field.span(e - 1)
        if head is None or tail is None or head[0] >= hi:
            break
        cs, ce = head[0], tail[1]
        if cs < pos or ce > hi:
            continue
        out += [text[pos:cs], "**", text[cs:ce], "**"]
        pos = ce
    out.append(text[pos:hi])
    quoted = "".join(out)
    # one space between words: only when there is other white space (any is unprintable)
    if not quoted.isprintable() or "  " in quoted or quoted[:1] == " " or quoted[-1:] == " ":
        quoted = " ".join(quoted.split())
    return ("… " if lo > 0 else "") + quoted + (" …" if hi < len(text) else "")
