"""Salience: how much an article is ABOUT a rule's topic, from where its evidence sits (issue 17).

A pure decider, like ``match``: the article's fields and the character offsets of the rule's own
hits in, a score between 0 and 1 and its named features out. Keyword rules fire on a word being
there; most false alarms on real news are background mentions (one clause of a long liveblog, a
quote, an aside, a list of other headlines), and the words alone cannot tell them from a story.

The features (each explained by ``Salience.why``):

- ``title``: a topic term in the title. Editors put what a story is about there.
- ``lead``: in the summary or the body's first two sentences (the news lead).
- ``sentences`` / ``of``: how many of the article's sentences carry the topic's own terms.
- ``together``: the rule's parts meet in one sentence (its near/same_sentence windows, or its
  topic beside its context clause); None for a rule of one part.
- ``quoted`` / ``aside`` / ``listed``: the evidence outside title and lead is only inside
  quotation marks (someone else's words), parentheses (a side remark), or list lines (a run of
  three or more short lines, or bulleted lines: a liveblog's "more news" box, a link list).
- ``length``: sentences in the article; past ``LONG`` one sentence is one item among many.

The score is a noisy-OR of independent pieces of evidence, so each adds and none alone needs
to be perfect: ``1 - (1 - T)(1 - L)(1 - M)(1 - C)(1 - G)`` with
T = 0.6 for the title, L = 0.45 for the lead, M = 0.55 for prose sentences that report the topic
(0.25 when the evidence is only quoted, aside or listed), times ``sqrt(LONG / length)`` past
LONG sentences, C = 0.5 * min(1, share / 0.2) for the share of sentences (a fifth of them is a
story about it) and G = 0.15 when the parts meet in one sentence. A rule whose parts never meet
gets its score times 0.8. See README "Salience and tiers" for the reasons of each number.
"""

from __future__ import annotations

import operator
import re
from bisect import bisect_right
from collections.abc import Iterable
from functools import lru_cache
from itertools import compress, count
from math import sqrt
from typing import NamedTuple

from ..models import LONG_ARTICLE, why
from .native import layout

W_TITLE = 0.6      # a title names the story's subject: alone it reaches the default alert_at
W_LEAD = 0.45      # the lead says what the story is; alone it is just below an alert
W_PROSE = 0.55     # one sentence of the article's own prose reporting it: a briefing entry is relevant
W_DEMOTED = 0.25   # only in quotes, asides or lists: informative, digest material
W_SHARE = 0.5      # carried by a fifth of the sentences: the article is about it
FULL_SHARE = 0.2
W_TOGETHER = 0.15  # the parts meet in one sentence: the rule's meaning holds in the text
APART = 0.8        # a rule of several parts whose parts never meet
LONG = LONG_ARTICLE  # 80 sentences (~1,500 words): past this, a liveblog or a page of items
LEAD_SENTENCES = 2
LIST_RUN = 3       # consecutive short lines that make a list
SHORT_LINE = 12    # words: a line this short without an end mark is a heading or a list item

# A sentence ends at an end mark, the quotes and brackets that close on it and white space on
# the same line, or at a line's end. One literal-led pattern per mark (the regex engine jumps
# to a literal; a pattern led by a character set is tried at every character: 3x slower), the
# matches merged: a mark's match holds no other mark and no line end, so none overlap.
_CLOSERS = "[\"”»“’')\\]]*[^\\S\\n]+"
_MARKS = tuple((c, re.compile(re.escape(c) + _CLOSERS)) for c in ".!?…")
_LINE_END = re.compile("\n")
_QUOTES = re.compile(r"„[^“”\"\n]{1,600}[“”\"]|“[^”“\n]{1,600}”|«[^»\n]{1,600}»|»[^«\n]{1,600}«"
                     r"|\"[^\"\n]{1,600}\"|‘[^’\n]{1,600}’(?!\w)")
_OPEN = "„“«»\"‘"  # what a quote in _QUOTES opens with
_ASIDE = re.compile(r"\([^()\n]{1,400}\)")
_BULLET = re.compile(r"^\s*(?:[-–—•·*▪►+]|\d{1,2}[.)])\s+")
_WORD = re.compile(r"\w+")
_LONG_LINE = re.compile(rf"\W*(?:\w+\W+){{{SHORT_LINE}}}\w")  # more than SHORT_LINE words
_SPAN, _START, _STOP = re.Match.span, re.Match.start, re.Match.end

native = layout  # the C part (native.py), None without it


def sentence_starts(text: str) -> list[int]:
    """Where each sentence of ``text`` starts (``python_sentence_starts``, in C when built)."""
    return native.sentence_starts(text) if native is not None else python_sentence_starts(text)


def python_sentence_starts(text: str) -> list[int]:
    """Where each sentence of ``text`` starts: the pieces between sentence ends and line ends
    that hold a word. In C but for a loop over the line ends (finditer, map, sort, compress): an
    article has a hundred pieces, and a Python loop over them cost more than the rest of
    salience; the line ends are found by str.find (a third of splitting the text into lines).
    Only where the pieces begin is kept: an end holds no word character (marks, closers, white
    space), so a piece holds a word when the text from its start to the next piece's does."""
    begins, find = [0], text.find
    at = find("\n")
    while at >= 0:
        at += 1
        begins.append(at)
        at = find("\n", at)
    for mark, rx in _MARKS:
        if mark in text:
            begins += map(_STOP, rx.finditer(text))
    begins.sort()  # ends never overlap, so neither do their ends
    # a piece holds a word when its first character is one (most do: str.isalnum is \w but
    # "_"), else, unless it is empty (a blank line, or the end of the text), when the regex
    # finds one before the next piece starts
    n = len(text)
    if begins[-1] == n:  # the last piece is empty
        has = list(map(str.isalnum, map(text.__getitem__, begins[:-1])))
        has.append(False)
    else:
        has = list(map(str.isalnum, map(text.__getitem__, begins)))
    if not all(has):
        search = _WORD.search
        last = len(begins) - 1
        for i in compress(count(), map(operator.not_, has)):
            b = begins[i]
            if b < n and text[b] != "\n":
                has[i] = search(text, b, begins[i + 1] if i < last else n) is not None
    return list(compress(begins, has))


class Layout:
    """One field's sentences (where each starts) and, asked about a sentence or an offset,
    whether it is in the lead, on a list line, in a quote or an aside: made once per field of
    an article that a rule fired on, and shared by every rule that fired there. Only the
    sentence starts are found for the whole field (the article's length is a feature); lines,
    lists, quotes and asides are looked at where the evidence is, and remembered per line
    (quotes, asides and sentence ends never span a line end). bench/matching.py times it."""

    def __init__(self, text: str, lead: int = LEAD_SENTENCES):
        self.text = text
        self.starts: list[int] = sentence_starts(text)  # each sentence's first character
        self.lead_sentences = lead
        self._short: dict[int, bool] = {}  # line start -> a heading or list item by its length
        self._on_list: dict[int, bool] = {}  # line start -> a list line
        self._listed: dict[int, bool] = {}  # sentence -> on a list line
        self._lines: dict[int, tuple[list[tuple[int, int]], list[tuple[int, int]], bool]] = {}  # line -> ``_line``

    def __len__(self) -> int:
        return len(self.starts)

    def at(self, offset: int) -> int:
        """The index of the sentence holding character ``offset``."""
        return max(0, bisect_right(self.starts, offset) - 1)

    def place(self, offset: int) -> tuple[int, bool, bool]:
        """The sentence holding ``offset``, and whether it is in a quote, in an aside."""
        return self.spot(offset)[:3]

    def spot(self, offset: int) -> tuple[int, bool, bool, bool]:
        """``place`` and whether the sentence is on a list line (``listed_at``), at once: a
        sentence never spans a line end, so its list test is the line's, found with the line's
        quotes and asides and remembered per line."""
        start = self.text.rfind("\n", 0, offset) + 1
        quotes, asides, listed = self._lines.get(start) or self._line(start)
        starts = self.starts
        k = bisect_right(starts, offset) - 1
        if k < 0:
            k = 0
        if starts and start <= starts[k] <= offset:  # the sentence starts on this line: its list test is the line's
            self._listed[k] = listed
        else:  # an offset outside any sentence (before the first): the sentence's own line
            listed = self.listed_at(k) if starts else False
        return (k, bool(quotes) and _inside(quotes, offset), bool(asides) and _inside(asides, offset), listed)

    def _line(self, start: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]], bool]:
        """The quotes and the asides on the line at ``start``, and whether it is a list line, all
        at once with the line cut out once (``weigh`` asks for the list test of every sentence
        with evidence); the regexes only where their first characters are (in C, 10x faster)."""
        text, end = self.text, self._end(start)
        if native is not None:
            quotes, asides, bullet, short = native.line_facts(text, start, end)
            listed = self._on_list.get(start)
            if listed is None:
                self._short[start] = short
                listed = self._on_list[start] = bullet or (short and self._run(start) >= LIST_RUN)
            got = self._lines[start] = (quotes, asides, listed)
            return got
        line = text[start:end]
        listed = self._on_list.get(start)
        if listed is None:
            listed = self._on_list[start] = self._list_line(start, line)
        got = self._lines[start] = (
            list(map(_SPAN, _QUOTES.finditer(text, start, end))) if any(map(line.__contains__, _OPEN)) else [],
            list(map(_SPAN, _ASIDE.finditer(text, start, end))) if "(" in line else [], listed)
        return got

    def listed_at(self, k: int) -> bool:
        """Whether sentence ``k`` is on a list line: a bulleted line, or one of a run of
        LIST_RUN or more short lines (blank lines between them do not count)."""
        got = self._listed.get(k)
        if got is not None:
            return got
        start = self.text.rfind("\n", 0, self.starts[k]) + 1
        got = self._on_list.get(start)
        if got is None:
            got = self._on_list[start] = self._list_line(start)
        self._listed[k] = got
        return got

    def remember_listed(self, k: int, listed: bool) -> None:
        """Sentence ``k``'s list test, found elsewhere (``native.places``), for ``listed_at``."""
        self._listed.setdefault(k, listed)

    def _list_line(self, start: int, line: str | None = None) -> bool:
        """Whether the line at ``start`` (``line``, when cut out already) is a list line
        (``listed_at``)."""
        if native is not None:
            if native.bullet(self.text, start, self._end(start)):
                return True
        else:
            if line is None:
                line = self.text[start:self._end(start)]
            if _BULLET.match(line) is not None:
                return True
        return self._is_short(start) and self._run(start) >= LIST_RUN

    def lead_at(self, k: int) -> bool:
        """Whether sentence ``k`` is in the lead: the first ``lead`` sentences, list lines not."""
        return k < self.lead_sentences and not self.listed_at(k)

    @property
    def lead(self) -> list[bool]:
        return [self.lead_at(k) for k in range(len(self.starts))]

    @property
    def listed(self) -> list[bool]:
        return [self.listed_at(k) for k in range(len(self.starts))]

    def _end(self, start: int) -> int:
        end = self.text.find("\n", start)
        return len(self.text) if end < 0 else end

    def _is_short(self, start: int) -> bool:
        got = self._short.get(start)
        if got is None:
            end = self._end(start)
            got = self._short[start] = (native.is_short(self.text, start, end) if native is not None
                                        else _is_short(self.text[start:end]))
        return got

    def _run(self, start: int) -> int:
        """The short lines around the short line at ``start``, itself included, up to LIST_RUN."""
        run, at = 1, start
        while run < LIST_RUN and (at := self._near(at, -1)) >= 0 and self._is_short(at):
            run += 1
        at = start
        while run < LIST_RUN and (at := self._near(at, 1)) >= 0 and self._is_short(at):
            run += 1
        return run

    def _near(self, start: int, step: int) -> int:
        """The start of the nearest line before (``step`` -1) or after (1) the line at
        ``start`` that is not blank; -1 for none."""
        text = self.text
        while True:
            if step < 0:
                if start == 0:
                    return -1
                end, start = start - 1, text.rfind("\n", 0, start - 1) + 1
            else:
                end = text.find("\n", start)
                if end < 0:
                    return -1
                start = end + 1
                end = self._end(start)
            if text[start:end].strip():
                return start


def _is_short(line: str) -> bool:
    """A heading or a list item: no end mark and at most SHORT_LINE words (the mark is looked
    at first: most lines are prose, and counting their words is the costly part)."""
    return not line.rstrip().endswith((".", "!", "?", "…", ":")) and _LONG_LINE.match(line) is None


def _inside(spans: list[tuple[int, int]], offset: int) -> bool:
    """Whether ``offset`` is inside one of ``spans`` (in text order, not overlapping)."""
    k = bisect_right(spans, (offset, offset)) - 1
    return k >= 0 and spans[k][0] < offset < spans[k][1]


class Salience(NamedTuple):  # a tuple: made for every distinct piece of evidence, 3x cheaper than a dataclass
    score: float
    features: tuple[tuple[str, float | int | None], ...]

    def feature(self, name: str) -> float | int | None:
        return dict(self.features).get(name)

    @property
    def why(self) -> str:
        """"title and lead; 6 of 14 sentences; parts in one sentence" (models.why)"""
        return why(self.features)


Place = tuple[str, int]  # (field name, sentence index)


def score(layouts: dict[str, Layout], places: dict[Place, tuple[bool, bool]], together: bool | None) -> Salience:
    """Pure: the salience of one rule's evidence in an article whose fields' layouts are
    ``layouts`` (title, summary, body; a missing field has none). ``places``: each sentence that
    holds the topic's own terms, in the order found, with whether its first hit there is in a
    quote, in an aside. ``together``: whether the rule's parts meet in one sentence, None for
    a rule of one part."""
    return weigh(layouts, places.items(), together)


def weigh(layouts: dict[str, Layout], found: Iterable[tuple[Place, tuple[bool, bool]]], together: bool | None,
          total: int = 0) -> Salience:
    """``score`` of the sentences in ``found`` (one found again counts once, with its first
    flags); ``total``: the sentences of summary and body, when the caller has counted them. A
    rule of one term weighs its term's places as ``Doc.places_of`` gives them, no dict between."""
    in_title = lead = False
    seen = prose = quoted = aside = listed = 0
    done: set[Place] = set()
    for place, (q, a) in found:
        if place in done:
            continue
        done.add(place)
        name, k = place
        if name == "title":
            in_title = True
            continue
        lay = layouts.get(name)
        if lay is None or not lay.starts:
            continue
        seen += 1
        on_list = lay.listed_at(k)
        if name == "summary" or (k < lay.lead_sentences and not on_list):
            lead = True
        listed += on_list
        quoted += q
        aside += a
        if not (on_list or q or a):
            prose += 1
    if not total:
        total = sum(len(lay.starts) for lay in (layouts.get("body"), layouts.get("summary")) if lay is not None) or 1
    return weigh_counts(in_title, lead, seen, prose, quoted > 0, aside > 0, listed > 0, total, together)


@lru_cache(maxsize=4096)
def weigh_counts(in_title: bool, lead: bool, seen: int, prose: int, quoted: bool, aside: bool, listed: bool,
             total: int, together: bool | None) -> Salience:
    """``score`` from its counts: few distinct counts recur across articles (most evidence is one
    sentence), so each is worked out once and remembered (issue 17: a third of what score cost)."""
    only = seen > 0 and not prose
    length_damp = min(1.0, sqrt(LONG / total))
    mention = (W_PROSE if prose else W_DEMOTED if seen else 0.0) * length_damp
    counted = prose + 0.5 * (seen - prose)
    share = W_SHARE * min(1.0, counted / total / FULL_SHARE)
    parts = (W_TITLE if in_title else 0.0, W_LEAD if lead and (prose or not seen) else
             W_LEAD / 2 if lead else 0.0, mention, share, W_TOGETHER if together else 0.0)
    rest = 1.0
    for p in parts:
        rest *= 1 - p
    value = 1 - rest
    if together is False:
        value *= APART
    features: tuple[tuple[str, float | int | None], ...] = (
        ("title", int(in_title)), ("lead", int(lead)), ("sentences", seen), ("of", total),
        ("together", None if together is None else int(together)),
        ("quoted", int(only and quoted)), ("aside", int(only and aside)),
        ("listed", int(only and listed)))
    return Salience(round(min(1.0, max(0.0, value)), 3), features)


ABOUT_MIN = 6       # other sentences an article needs before what they do not say tells
ABOUT_SHARE = 0.1   # fewer than one in ten of them use the rule's ``about`` words: about something else


def passing(sal: Salience, about: int) -> Salience:
    """``sal`` for a rule with ``about:`` words (the words an article about the topic uses
    besides the topic's own: for Kursk, the war), ``about`` of the other sentences of summary
    and body (those without evidence: ``of`` - ``sentences``) using them. Evidence outside title
    and lead in an article of ABOUT_MIN or more other sentences, fewer than ABOUT_SHARE of which
    use them, is a passing mention in an article about something else (a council report that
    names a twin town near Kursk; Christmas markets "despite the fighting in Kursk"): it weighs
    as a quoted mention does (W_DEMOTED, each sentence half towards the share), which is digest
    material, not an alert. Features ``about`` and ``passing`` (1 when it weighed so) are added
    either way."""
    f = dict(sal.features)
    seen = f.get("sentences") or 0
    others = (f.get("of") or 0) - seen
    off = (not f.get("title") and not f.get("lead") and seen > 0 and others >= ABOUT_MIN
           and about < ABOUT_SHARE * others)
    if off:
        together = f.get("together")
        sal = weigh_counts(False, False, seen, 0, bool(f.get("quoted")), bool(f.get("aside")), bool(f.get("listed")),
                           f.get("of") or 1, None if together is None else bool(together))
    return Salience(sal.score, (*sal.features, ("about", about), ("passing", int(off))))


ALERT_AT = 0.5   # one prose sentence of a normal-length article (M = 0.55) alerts; a quote does not
DIGEST_AT = 0.15  # a lone quoted, aside or listed mention (0.25) reaches the digest; a damped one
                  # in a very long page (0.25 * sqrt(80 / 230) < 0.15) is stored only


def tier(value: float, alert_at: float, digest_at: float) -> str:
    """alert at or above ``alert_at``; digest at or above ``digest_at``; else store only."""
    return "alert" if value >= alert_at else "digest" if value >= digest_at else "store"
