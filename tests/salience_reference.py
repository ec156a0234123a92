"""Salience as it was computed before it was made cheaper (issue 17): every field's layout in
full, per line, per rule, nothing remembered. tests/test_salience_reference.py checks that
``rules.match`` gives the same salience, features and tier as this slow path."""

from __future__ import annotations

import re
from bisect import bisect_right
from typing import Any

from monitor.rules import engine, parts, salience

_SENTENCE = re.compile(r"[.!?…][\"”»“’')\]]*\s+")


class Layout:
    def __init__(self, text: str):
        self.starts: list[int] = []
        lists: list[bool] = []
        lines, at = [], 0
        for line in text.split("\n"):
            if line.strip():
                lines.append((at, at + len(line), line))
            at += len(line) + 1
        short = [salience._is_short(line) for _s, _e, line in lines]
        listed = [salience._BULLET.match(line) is not None for _s, _e, line in lines]
        i = 0
        while i < len(lines):
            j = i
            while j < len(lines) and short[j]:
                j += 1
            if j - i >= salience.LIST_RUN:
                listed[i:j] = [True] * (j - i)
            i = max(j, i + 1)
        for (s, e, _line), is_list in zip(lines, listed, strict=True):
            at = s
            for m in _SENTENCE.finditer(text, s, e):
                if salience._WORD.search(text, at, m.start() + 1):
                    self.starts.append(at)
                    lists.append(is_list)
                at = m.end()
            if salience._WORD.search(text, at, e):
                self.starts.append(at)
                lists.append(is_list)
        self.listed = lists
        self.lead = [k < salience.LEAD_SENTENCES and not x for k, x in enumerate(lists)]
        self.quotes = [m.span() for m in salience._QUOTES.finditer(text)]
        self.asides = [m.span() for m in salience._ASIDE.finditer(text)]
        # what salience.score asks a layout
        self.lead_sentences = salience.LEAD_SENTENCES
        self.listed_at = self.listed.__getitem__

    def at(self, offset: int) -> int:
        return max(0, bisect_right(self.starts, offset) - 1)

    def place(self, offset: int) -> tuple[int, bool, bool]:
        return self.at(offset), salience._inside(self.quotes, offset), salience._inside(self.asides, offset)


def salience_of(doc: Any, hits: list, around: list, core: list, has_context: bool, term: int = -1,
                shape: Any = None) -> Any:
    """engine.salience_of as it was: the layouts of every field, each term's places found again
    for every rule; where a rule's parts must meet, the sentences ``parts.met`` selects."""
    layouts = {f.name: Layout(f.text) for f in doc.fields if f.text}

    def places_of(t: int) -> list:
        out = []
        for h in doc.hits.get(t, ()):
            f = doc.fields[h.field]
            at = f.span(h.start)
            if at is not None and f.name in layouts:
                k, quoted, aside = layouts[f.name].place(at[0])
                out.append(((f.name, k), (quoted, aside)))
        return out

    rest = set(around)
    own = {h.term for h in hits if h not in rest} or {h.term for h in hits}
    least = 2 if core and len(own) > 1 else 1
    if least == 2:  # where its parts meet: the same selection as the fast path's (rules/parts.py)
        places = parts.met(own, shape, doc.hits, places_of)
    else:
        places = {}
        for t in own:
            for key, flags in places_of(t):
                places.setdefault(key, flags)
    together = True if core else None
    if together is None and has_context and around:
        where = set()
        for h in around:
            f = doc.fields[h.field]
            where.add((f.name, layouts[f.name].at((f.span(h.start) or (0, 0))[0]) if f.name in layouts else -1))
        together = any(k in where for k in places)
    return salience.score(layouts, places, together)


class Forgetful(dict):
    """A Doc's ``scored`` that remembers nothing: every rule's salience computed again."""

    def __setitem__(self, key: Any, value: Any) -> None:
        pass


def slow(monkeypatch: Any) -> None:
    """Make ``rules.match`` take the slow path (a pytest monkeypatch undoes it)."""
    from monitor.rules import document

    init = document.Doc.__init__

    def forgetting(self: Any, *args: Any) -> None:
        init(self, *args)
        self.scored = Forgetful()

    monkeypatch.setattr(document.Doc, "__init__", forgetting)
    monkeypatch.setattr(engine, "salience_of", salience_of)
