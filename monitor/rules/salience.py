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

_SENTENCE = re.compile(r"(?<=[.!?…])[\"”»“’')\]]*\s+")
_QUOTES = re.compile(r"„[^“”\"\n]{1,600}[“”\"]|“[^”“\n]{1,600}”|«[^»\n]{1,600}»|»[^«\n]{1,600}«"
                     r"|\"[^\"\n]{1,600}\"|‘[^’\n]{1,600}’(?!\w)")
_ASIDE = re.compile(r"\([^()\n]{1,400}\)")
_BULLET = re.compile(r"^\s*(?:[-–—•·*▪►+]|\d{1,2}[.)])\s+")
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Sentence:
    start: int
    end: int
    lead: bool
    listed: bool


class Layout:
    """One field's sentences, paragraphs, quotes and asides (made once per field and article)."""

    def __init__(self, text: str, lead: int = LEAD_SENTENCES):
        self.sentences: list[Sentence] = []
        lines = [(m.start(), m.end()) for m in re.finditer(r"[^\n]+", text) if text[m.start():m.end()].strip()]
        short = [_is_short(text[s:e]) for s, e in lines]
        listed = [bool(_BULLET.match(text[s:e])) for s, e in lines]
        i = 0
        while i < len(lines):  # runs of LIST_RUN or more short lines are lists
            j = i
            while j < len(lines) and short[j]:
                j += 1
            if j - i >= LIST_RUN:
                for k in range(i, j):
                    listed[k] = True
            i = max(j, i + 1)
        for (s, e), is_list in zip(lines, listed, strict=True):
            at = s
            for m in _SENTENCE.finditer(text, s, e):
                self._add(text, at, m.start(), is_list, lead)
                at = m.end()
            self._add(text, at, e, is_list, lead)
        self.starts = [x.start for x in self.sentences]
        self.quotes = [m.span() for m in _QUOTES.finditer(text)]
        self.asides = [m.span() for m in _ASIDE.finditer(text)]
        self._info: dict[int, tuple[int, bool, bool]] = {}  # offset -> (sentence, quoted, aside)

    def info(self, offset: int) -> tuple[int, bool, bool]:
        """The sentence holding ``offset``, and whether it is in a quote, in an aside; remembered,
        since the rules that fire on an article share most of their terms' places."""
        got = self._info.get(offset)
        if got is None:
            got = self._info[offset] = (self.at(offset), _inside(self.quotes, offset), _inside(self.asides, offset))
        return got

    def _add(self, text: str, s: int, e: int, is_list: bool, lead: int) -> None:
        if _WORD.search(text, s, e):
            self.sentences.append(Sentence(s, e, len(self.sentences) < lead and not is_list, is_list))

    def at(self, offset: int) -> int:
        """The index of the sentence holding character ``offset``."""
        return max(0, bisect_right(self.starts, offset) - 1)


def _is_short(line: str) -> bool:
    stripped = line.rstrip()
    return len(_WORD.findall(line)) <= SHORT_LINE and not stripped.endswith((".", "!", "?", "…", ":"))


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


def score(layouts: dict[str, Layout], hits: list[tuple[str, int]], together: bool | None) -> Salience:
    """Pure: the salience of one rule's ``hits`` ((field name, character offset) of each hit of
    its topic's own terms) in an article whose fields' layouts are ``layouts`` (title, summary,
    body; a missing field has none). ``together``: whether the rule's parts meet in one sentence,
    None for a rule of one part."""
    in_title = any(f == "title" for f, _ in hits)
    lead = False
    seen: set[tuple[str, int]] = set()
    demoted: dict[str, set[tuple[str, int]]] = {"quoted": set(), "aside": set(), "listed": set()}
    for name, offset in hits:
        lay = layouts.get(name)
        if name == "title" or lay is None or not lay.sentences:
            continue
        k, quoted, aside = lay.info(offset)
        sent = lay.sentences[k]
        if name == "summary" or sent.lead:
            lead = True
        key = (name, k)
        if key in seen:
            continue
        seen.add(key)
        if sent.listed:
            demoted["listed"].add(key)
        if quoted:
            demoted["quoted"].add(key)
        if aside:
            demoted["aside"].add(key)
    body = layouts.get("body")
    summary = layouts.get("summary")
    total = sum(len(lay.sentences) for lay in (body, summary) if lay is not None) or 1
    prose = {k for k in seen if not any(k in d for d in demoted.values())}
    only = {w: bool(seen) and not prose and bool(d) for w, d in demoted.items()}
    length_damp = min(1.0, sqrt(LONG / total))
    mention = (W_PROSE if prose else W_DEMOTED if seen else 0.0) * length_damp
    counted = len(prose) + 0.5 * (len(seen) - len(prose))
    share = W_SHARE * min(1.0, counted / total / FULL_SHARE)
    parts = [W_TITLE if in_title else 0.0, W_LEAD if lead and (prose or not seen) else
             W_LEAD / 2 if lead else 0.0, mention, share, W_TOGETHER if together else 0.0]
    rest = 1.0
    for p in parts:
        rest *= 1 - p
    value = 1 - rest
    if together is False:
        value *= APART
    features: tuple[tuple[str, float | int | None], ...] = (
        ("title", int(in_title)), ("lead", int(lead)), ("sentences", len(seen)), ("of", total),
        ("together", None if together is None else int(together)),
        ("quoted", int(only["quoted"])), ("aside", int(only["aside"])), ("listed", int(only["listed"])))
    return Salience(round(min(1.0, max(0.0, value)), 3), features)


ALERT_AT = 0.5   # one prose sentence of a normal-length article (M = 0.55) alerts; a quote does not
DIGEST_AT = 0.15  # a lone quoted, aside or listed mention (0.25) reaches the digest; a damped one
                  # in a very long page (0.25 * sqrt(80 / 230) < 0.15) is stored only


def tier(value: float, alert_at: float, digest_at: float) -> str:
    """alert at or above ``alert_at``; digest at or above ``digest_at``; else store only."""
    return "alert" if value >= alert_at else "digest" if value >= digest_at else "store"
