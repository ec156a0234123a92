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

import re
from bisect import bisect_right
from dataclasses import dataclass
from math import sqrt

from ..models import LONG_ARTICLE, why

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

# an end mark, the quotes and brackets that close on it, white space (a look-behind for the
# mark would be tried at every character: twice as slow)
_SENTENCE = re.compile(r"[.!?…][\"”»“’')\]]*\s+")
_QUOTES = re.compile(r"„[^“”\"\n]{1,600}[“”\"]|“[^”“\n]{1,600}”|«[^»\n]{1,600}»|»[^«\n]{1,600}«"
                     r"|\"[^\"\n]{1,600}\"|‘[^’\n]{1,600}’(?!\w)")
_ASIDE = re.compile(r"\([^()\n]{1,400}\)")
_BULLET = re.compile(r"^\s*(?:[-–—•·*▪►+]|\d{1,2}[.)])\s+")
_WORD = re.compile(r"\w+")
_LONG_LINE = re.compile(rf"\W*(?:\w+\W+){{{SHORT_LINE}}}\w")  # more than SHORT_LINE words


class Layout:
    """One field's sentences (where each starts, whether it is in the lead, in a list) and its
    quotes and asides: made once per field of an article that a rule fired on, and shared by
    every rule that fired there. Parallel lists, not an object per sentence: a 5 KB article has
    a hundred, and the matcher pays for every one (bench/matching.py)."""

    def __init__(self, text: str, lead: int = LEAD_SENTENCES):
        self.starts: list[int] = []   # each sentence's first character
        self.lead: list[bool] = []    # in the first ``lead`` sentences that are not list lines
        self.listed: list[bool] = []  # on a list line
        lines, at = [], 0
        for line in text.split("\n"):
            if line.strip():
                lines.append((at, at + len(line), line))
            at += len(line) + 1
        short = [_is_short(line) for _s, _e, line in lines]
        listed = [_BULLET.match(line) is not None for _s, _e, line in lines]
        i = 0
        while i < len(lines):  # runs of LIST_RUN or more short lines are lists
            j = i
            while j < len(lines) and short[j]:
                j += 1
            if j - i >= LIST_RUN:
                listed[i:j] = [True] * (j - i)
            i = max(j, i + 1)
        word, starts, lists = _WORD.search, self.starts, self.listed
        for (s, e, _line), is_list in zip(lines, listed, strict=True):
            at = s
            for m in _SENTENCE.finditer(text, s, e):
                end = m.start() + 1  # after the end mark
                if word(text, at, end):
                    starts.append(at)
                    lists.append(is_list)
                at = m.end()
            if word(text, at, e):
                starts.append(at)
                lists.append(is_list)
        self.lead = [k < lead and not is_list for k, is_list in enumerate(lists)]
        self.quotes = [m.span() for m in _QUOTES.finditer(text)]
        self.asides = [m.span() for m in _ASIDE.finditer(text)]

    def __len__(self) -> int:
        return len(self.starts)

    def at(self, offset: int) -> int:
        """The index of the sentence holding character ``offset``."""
        return max(0, bisect_right(self.starts, offset) - 1)

    def place(self, offset: int) -> tuple[int, bool, bool]:
        """The sentence holding ``offset``, and whether it is in a quote, in an aside."""
        return self.at(offset), _inside(self.quotes, offset), _inside(self.asides, offset)


def _is_short(line: str) -> bool:
    """A heading or a list item: no end mark and at most SHORT_LINE words (the mark is looked
    at first: most lines are prose, and counting their words is the costly part)."""
    return not line.rstrip().endswith((".", "!", "?", "…", ":")) and _LONG_LINE.match(line) is None


def _inside(spans: list[tuple[int, int]], offset: int) -> bool:
    """Whether ``offset`` is inside one of ``spans`` (in text order, not overlapping)."""
    k = bisect_right(spans, (offset, offset)) - 1
    return k >= 0 and spans[k][0] < offset < spans[k][1]


@dataclass(frozen=True)
class Salience:
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
    in_title = lead = False
    seen = prose = quoted = aside = listed = 0
    for (name, k), (q, a) in places.items():
        if name == "title":
            in_title = True
            continue
        lay = layouts.get(name)
        if lay is None or not lay.starts:
            continue
        seen += 1
        if name == "summary" or lay.lead[k]:
            lead = True
        on_list = lay.listed[k]
        listed += on_list
        quoted += q
        aside += a
        if not (on_list or q or a):
            prose += 1
    body = layouts.get("body")
    summary = layouts.get("summary")
    total = sum(len(lay.starts) for lay in (body, summary) if lay is not None) or 1
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
        ("quoted", int(only and quoted > 0)), ("aside", int(only and aside > 0)),
        ("listed", int(only and listed > 0)))
    return Salience(round(min(1.0, max(0.0, value)), 3), features)


ALERT_AT = 0.5   # one prose sentence of a normal-length article (M = 0.55) alerts; a quote does not
DIGEST_AT = 0.15  # a lone quoted, aside or listed mention (0.25) reaches the digest; a damped one
                  # in a very long page (0.25 * sqrt(80 / 230) < 0.15) is stored only


def tier(value: float, alert_at: float, digest_at: float) -> str:
    """alert at or above ``alert_at``; digest at or above ``digest_at``; else store only."""
    return "alert" if value >= alert_at else "digest" if value >= digest_at else "store"
