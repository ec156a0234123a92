"""One field of an article as the matcher sees it (``Field``): its text, its tokens and, on
demand, where each token stands in the text; and a rule term's ``Hit`` in it, by token positions.
explain.py quotes the text around hits, salience.py weighs the sentences they are in: both ask
``Field.span`` for a token's offsets.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from functools import cached_property
from itertools import accumulate, count, islice
from operator import add
from typing import Any, NamedTuple

from . import morph
from .native import layout as native

_SPAN = re.Match.span
_AHEAD = 64  # tokens scanned past the one asked for: a snippet's marks follow its best hit
_LOOK_BACK = 80  # characters: how far a regex match's token is looked for ahead of the match


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
        elif not _in_token(before) and (end == n or not _in_token(text[end])):
            out.append(at)
        at = text.find(token, end)
    return out if len(out) == tokens else None


def _find_all(text: str, chars: str) -> list[int]:
    """The offsets of every one of ``chars`` in ``text``, ascending."""
    out = []
    for c in chars:
        at = text.find(c)
        while at >= 0:
            out.append(at)
            at = text.find(c, at + 1)
    return sorted(out)


def _stand_ins(spaced: str) -> list[int]:
    """Where the sentence ends' stand-ins are in ``Tokens.spaced``: mostly "ª" (for "."), whose
    offsets follow from the lengths of the pieces between them."""
    pieces = spaced.split("\u00aa")
    # the k-th "ª" stands after the first k pieces and the k - 1 stand-ins between them (in C)
    out = list(map(add, accumulate(map(len, pieces[:-1])), count()))
    if "\u00ba" in spaced or "\u00b9" in spaced:
        out = sorted(out + _find_all(spaced, "\u00ba\u00b9"))
    return out


class Field:
    """One field of an article: its text, its tokens, and (on demand) their character offsets.

    A snippet needs the offsets of a few tokens only, nearly always of words that are rule
    atoms, whose token positions ``where`` holds (the engine fills it for them). A word's offset
    is found with ``str.find``: token ``i``, "kursk", is the k-th token "kursk" of the field, so
    it starts at the k-th whole "kursk" of the tokenizer's casefolded text (``Tokens.folded``),
    whose offsets map back to the text's: every sentence end there is three characters (" ª "),
    every "ß" two. A field the regex tokenized looks for the k-th "Kursk" as written instead.
    Short tokens, and words whose occurrences do not add up to their tokens, get their offsets
    from a regex scan of the text, which goes no further than the furthest token asked for."""

    def __init__(self, name: str, text: str, tokens: morph.Tokens):
        self.name, self.text = name, text
        self.words, self.ends = tokens.words, tokens.ends
        self.where: dict[str, list[int]] = {}  # casefolded word -> its token positions, ascending
        self.quotes: dict[tuple[Any, ...], str] = {}  # snippets made, by best hit and marks
        self._tokens = tokens
        self._spans: list[tuple[int, int]] = []
        self._scan: Any = None
        self._written = tokens.written
        self._plain: str | None = None
        self._runs_at: dict[str, list[int]] = {}  # str path: word -> its runs' offsets in ``folded``, so far
        self._at: dict[str, list[int] | None] = {}  # regex path: written token -> offsets, None: scan
        self._got: dict[int, tuple[int, int]] = {}  # token -> its offsets, found with ``_at``
        # str path: the offsets in ``folded`` where an "ß" became "ss", and those in ``spaced``
        # of the sentence ends' stand-ins; None: not worked out yet, or not mappable
        self._map: tuple[list[int], list[int]] | None = None
        self._mappable = tokens.folded is not None
        self._offsets: Any = None  # every token's start and end, flat (``_every``); False: none

    def span(self, i: int) -> tuple[int, int] | None:
        """Start and end of token ``i`` (None past the last token)."""
        offsets = self._offsets
        if offsets is None:
            offsets = self._offsets = self._every()
        if offsets and i >= 0:
            j = 2 * i
            return (offsets[j], offsets[j + 1]) if j < len(offsets) else None
        spans = self._spans
        if i < len(spans):
            return spans[i]
        got = self._got.get(i)
        if got is not None:
            return got
        if 0 <= i < len(self.words):
            got = self._found(i) if self._mappable else self._found_as_written(i)
            if got is not None:
                self._got[i] = got
                return got
        return self._scanned(i)

    def token_spans(self) -> bytes | None:
        """The C part's ``token_spans`` of this field (every token's start and end, ``_every``);
        None where there are none (``span`` finds them one by one)."""
        offsets = self._all_offsets()
        return offsets.obj if offsets else None

    def _all_offsets(self) -> Any:
        """``_every``, worked out once (``span`` reads ``_offsets`` itself: it is called per hit)."""
        if self._offsets is None:
            self._offsets = self._every()
        return self._offsets

    def _every(self) -> Any:
        """Every token's offsets at once, by the C part (``token_spans``: one pass over
        ``Tokens.spaced``, where each run of non-space is a token), as a flat memoryview of
        starts and ends; False without the C part or on the regex path (no ``spaced``), where
        tokens are found one by one as below. A third of what salience cost was finding its
        hits' offsets one token at a time (issue 17)."""
        spaced = self._tokens.spaced
        if native is None or spaced is None or not self._mappable:
            return False
        got = memoryview(native.token_spans(spaced)).cast("q")
        return got if len(got) == 2 * len(self.words) else False

    def _same(self, word: str) -> list[int]:
        same = self.where.get(word)
        if same is None:  # not an atom: ``list.index`` scans in C
            same, words, at = [], self.words, -1
            try:
                while True:
                    at = words.index(word, at + 1)
                    same.append(at)
            except ValueError:
                self.where[word] = same
        return same

    def _found(self, i: int) -> tuple[int, int] | None:
        mapped = self._mapping()
        if mapped is None:
            return self._found_as_written(i)
        word = self.words[i]
        if len(word) < 3:  # "a" is in every other word: the scan is quicker
            return None
        k = bisect_left(self._same(word), i)
        seen = self._runs(word, k=k)
        if len(seen) <= k:
            return None
        size = len(word)
        shifts, stands = mapped
        start = seen[k]
        end = start + size
        if shifts:  # back from ``folded`` to ``spaced``
            start, end = start - bisect_left(shifts, start), end - bisect_left(shifts, end)
        # back from ``spaced`` to the text: each stand-in ahead made one character three
        return start - 2 * bisect_left(stands, start), end - 2 * bisect_left(stands, end)

    def _runs(self, word: str, k: int = -1, reach: int = -1) -> list[int]:
        """Where the runs "word" stand in ``Tokens.folded``, found as far as the k-th of them
        or offset ``reach``. ``folded.split()`` is ``words``, so the k-th "kursk" between
        white space there is the k-th token "kursk"."""
        text = self._tokens.folded or ""
        seen = self._runs_at.get(word)
        if seen is None:
            seen = self._runs_at[word] = []
        size, n = len(word), len(text)
        at = seen[-1] + size if seen else 0
        while len(seen) <= k or (seen[-1] if seen else -1) < reach:
            at = text.find(word, at)
            if at < 0:
                break
            end = at + size
            if (at == 0 or text[at - 1].isspace()) and (end == n or text[end].isspace()):
                seen.append(at)
            at = end
        return seen

    def _mapping(self) -> tuple[list[int], list[int]] | None:
        if self._map is None and self._mappable:
            spaced, folded = self._tokens.spaced or "", self._tokens.folded or ""
            shifts: list[int] = []
            if len(folded) != len(spaced):
                # "ß" is "ss"; another character that casefolds to two or more takes the scan
                if len(folded) != len(spaced) + spaced.count("ß"):
                    self._mappable = False
                    return None
                shifts = [at + n for n, at in enumerate(_find_all(spaced, "ß"))]
            self._map = (shifts, _stand_ins(spaced))
        return self._map

    def _found_as_written(self, i: int) -> tuple[int, int] | None:
        same, written = self._same(self.words[i]), self.written
        token = written[i]
        if token not in self._at:
            self._at[token] = _whole(self._plain_text(), token, sum(1 for j in same if written[j] == token))
        at = self._at[token]
        if at is None:
            return None
        start = at[sum(1 for j in same if j < i and written[j] == token)]
        return start, start + len(token)

    def _plain_text(self) -> str:
        if self._plain is None:
            self._plain = morph.plain(self.text)
        return self._plain

    @property
    def written(self) -> list[str]:
        """The tokens as written (sentence ends maybe as stand-ins)."""
        if self._written is None:
            self._written = (self._tokens.spaced or "").split()
        return self._written

    def _scanned(self, i: int) -> tuple[int, int] | None:
        spans = self._spans
        if i >= len(spans):
            if self._scan is None:
                self._scan = morph.TOKEN.finditer(self._plain_text())
            # in C: islice and map pull the next matches without a Python-level loop
            spans.extend(map(_SPAN, islice(self._scan, i + _AHEAD - len(spans))))
            if i >= len(spans):
                return None
        return spans[i]

    def starts_before(self, points: list[int]) -> list[int]:
        """For each character offset in ``points``, the number of tokens that start before it.

        On the str path these are the runs of non-space in ``Tokens.spaced`` before the same
        place there (sentence ends, one character in the text, are three), so no regex scan
        is needed. With the C part, from every token's offsets (``_every``), as the regex scan's."""
        offsets = self._all_offsets()
        if offsets:  # tokens starting before k: the starts below k (bisect reads the view in C)
            starts = offsets[::2]
            return [bisect_left(starts, k) for k in points]
        mapped = self._mapping()
        if mapped is None:
            starts = [s for s, _e in self.spans]
            return [bisect_left(starts, k) for k in points]
        shifts, stands = mapped
        spaced = self._tokens.spaced or ""
        ends = [at - 1 - 2 * n for n, at in enumerate(stands)]  # the sentence ends in the text
        out = []
        for k in points:
            # tokens starting before k: one more than the index of the last starting at k - 1
            last = self._token_at(k - 1, ends, spaced, bool(shifts)) if k > 0 else -1
            if last is None:  # by counting the runs ahead of it
                last = len(spaced[:k + 2 * bisect_left(ends, k)].split()) - 1
            out.append(last + 1)
        return out

    def _token_at(self, at: int, ends: list[int], spaced: str, sharp_s: bool) -> int | None:
        """The index of the last token that starts at or before offset ``at`` of the text, -1
        for none, found from the run there in ``spaced``; None when that cannot be done."""
        n = bisect_left(ends, at)
        x = at + 2 * n + (1 if n < len(ends) and ends[n] == at else 0)  # a sentence end: its stand-in
        lo = max(0, x - _LOOK_BACK)
        window = spaced[lo:x + 1]
        pieces = window.split()
        if not pieces:
            return -1 if lo == 0 else None
        start = lo + window.rindex(pieces[-1])
        if start == lo and lo and not spaced[lo - 1].isspace():
            return None  # a run longer than the look-back
        written = spaced[start:start + _LOOK_BACK].split(None, 1)[0]
        run = written.casefold()
        if len(written) == _LOOK_BACK or (len(run) < 3 and run not in morph.STAND_INS):
            return None  # a run maybe cut off by the window, or a short one: many a false find
        offset = start + (spaced.count("ß", 0, start) if sharp_s else 0)  # in ``folded``, where "ß" is "ss"
        seen = self._runs(run, reach=offset)
        k = bisect_left(seen, offset)
        return self._same(run)[k] if k < len(seen) and seen[k] == offset else None

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
