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


def _in_token(ch: str) -> bool:
    """Whether ``morph.TOKEN`` takes ``ch`` into a word: \\w (a letter, digit or "_") or a mark."""
    return ch.isalnum() or ch == "_" or "\u0300" <= ch <= "\u036f"


def _whole(text: str, token: str, tokens: int) -> list[int] | None:
    """Where ``token`` stands in ``text`` as a whole token, each time it does; None when
    ``str.find`` cannot tell: a short token, a mark before one, or whole tokens found that are
    not the ``tokens`` the tokenizer saw."""
    if len(token) < 3:
        return None
    out, size, n, at = [], len(token), len(text), text.find(token)
    while at >= 0:
        end = at + size
        before = text[at - 1] if at else " "
        if "\u0300" <= before <= "\u036f":
            return None  # a mark may stand alone ahead of a token: the regex decides
        if not _in_token(before) and (end == n or not _in_token(text[end])):
            out.append(at)
        at = text.find(token, end)
    return out if len(out) == tokens else None


class Field:
    """One field of an article: its text, its tokens, and (on demand) their character offsets.

    A snippet needs the offsets of a few tokens only, nearly always of words that are rule
    atoms, whose token positions ``where`` holds (the engine fills it). Such a word's offset is
    found with ``str.find``: token ``i`` written "Kursk" is the k-th token "Kursk" of the
    field, so it starts at the k-th "Kursk" of the text that is a whole token. Other tokens,
    short ones, and words whose occurrences do not add up to their tokens get their offsets
    from a regex scan of the text, which goes no further than the furthest token asked for."""

    def __init__(self, name: str, text: str, tokens: tuple[list[str], frozenset[str], str | list[str]]):
        self.name, self.text = name, text
        self.words, self.ends, self._written = tokens
        self._by_str = isinstance(self._written, str)  # tokenized by str methods (``morph.tokenize``)
        self.where: dict[str, list[int]] = {}  # casefolded word -> its token positions, ascending
        self._spans: list[tuple[int, int]] = []
        self._scan: Any = None
        self._plain: str | None = None
        self._fold: str | None = None
        self._at: dict[str, list[int] | None] = {}  # word or written token -> offsets, None: scan
        self._got: dict[int, tuple[int, int]] = {}  # token -> its offsets, found with ``_at``
        self._bare: str | None = None  # for ``starts_before``
        self._end_at: list[int] = []

    def span(self, i: int) -> tuple[int, int] | None:
        """Start and end of token ``i`` (None past the last token)."""
        spans = self._spans
        if i < len(spans):
            return spans[i]
        got = self._got.get(i)
        if got is not None:
            return got
        if 0 <= i < len(self.words):
            word = self.words[i]
            same = self.where.get(word)
            if same is None:
                same = self.where[word] = self._positions(word)
            folded = self._folded()
            if folded:  # the casefolded text lines up with the text: look for the word itself
                if word not in self._at:
                    self._at[word] = _whole(folded, word, len(same))
                at, k, size = self._at[word], bisect_left(same, i), len(word)
            else:  # look for the token as written, the k-th of its kind
                written = self.written
                token = written[i]
                if token not in self._at:
                    tokens = sum(1 for j in same if written[j] == token)
                    self._at[token] = _whole(self._plain_text(), token, tokens)
                at, size = self._at[token], len(token)
                k = sum(1 for j in same if j < i and written[j] == token)
            if at is not None:
                got = self._got[i] = (at[k], at[k] + size)
                return got
        return self._scanned(i)

    def _positions(self, word: str) -> list[int]:
        """Where ``word`` is among the tokens: ``list.index`` scans in C."""
        out, words, at = [], self.words, -1
        try:
            while True:
                at = words.index(word, at + 1)
                out.append(at)
        except ValueError:
            return out

    @property
    def written(self) -> list[str]:
        """The tokens as written (sentence ends maybe as stand-ins)."""
        if isinstance(self._written, str):
            self._written = self._written.split()
        return self._written

    def _plain_text(self) -> str:
        if self._plain is None:
            self._plain = morph.plain(self.text)
        return self._plain

    def _folded(self) -> str:
        """The text casefolded, when that maps every character to one ("" when not: "ß" is
        "ss"); the one mark that folds to a letter (U+0345) also rules it out."""
        if self._fold is None:
            text = self._plain_text()
            folded = text.casefold()
            self._fold = folded if len(folded) == len(text) and "\u0345" not in text else ""
        return self._fold

    def _scanned(self, i: int) -> tuple[int, int] | None:
        spans = self._spans
        if i >= len(spans):
            if self._scan is None:
                self._scan = morph.TOKEN.finditer(morph.plain(self.text))
            # in C: islice and map pull the next matches without a Python-level loop
            spans.extend(map(_SPAN, islice(self._scan, i + _AHEAD - len(spans))))
            if i >= len(spans):
                return None
        return spans[i]

    def starts_before(self, points: list[int]) -> list[int]:
        """For each character offset in ``points``, the number of tokens that start before it.

        A field tokenized by ``str`` methods counts them the same way: its words are the runs
        of non-space in the text with every separator made a space (``_bare``, as long as the
        text), and its sentence ends are counted apart, so no regex scan is needed."""
        if not self._by_str:
            starts = [s for s, _e in self.spans]
            return [bisect_left(starts, k) for k in points]
        if self._bare is None:
            text = morph.plain(self.text)
            self._end_at = [m.start() for m in morph.SENTENCE_END.finditer(text)]
            for c in morph.SEPARATORS:
                text = text.replace(c, " ")
            self._bare = text
        bare, ends, counted = self._bare, self._end_at, {}
        prev = runs = 0
        for k in sorted(set(points)):
            n = len(bare[prev:k].split())
            if n and prev and not bare[prev - 1].isspace() and not bare[prev].isspace():
                n -= 1  # the run that goes across ``prev`` was counted before it
            runs, prev = runs + n, k
            counted[k] = runs + bisect_left(ends, k)
        return [counted[k] for k in points]

    @property
    def spans(self) -> list[tuple[int, int]]:
        """Every token's offsets (scans the whole text)."""
        self._scanned(len(self.words) + 1)
        return self._spans

    @cached_property
    def _ends(self) -> list[int]:
        ends = self.ends
        return [i for i, w in enumerate(self.words) if w in ends]

    def sentence(self, pos: int) -> int:
        """The number of the sentence holding token ``pos`` (0 for the first)."""
        return bisect_right(self._ends, pos)


def explain(rule: Rule, hits: list[Hit], fields: list[Field], score: float, terms: list[Any],
            lang: str | None = None, core: list[Hit] | None = None) -> Match:
    """The Match for ``hits`` (see ``evidence``)."""
    names, field, quote = evidence(hits, fields, terms, lang, core)
    return Match(rule_id=rule.id, rule_title=rule.title, terms=names, field=field, snippet=quote,
                 channels=rule.channels, severity=rule.severity, score=score)


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
