"""A match's salience from the engine's evidence: which of a rule's hits are its topic's, the
sentences they are in, and salience.py's score of those, kept per article by what it is computed
from (``Doc.scored``), so that rules firing on the same evidence cost a look-up. ``engine.match``
calls ``salience_of`` for each rule that fired.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from .parts import Parts, met
from .salience import Place, Salience, score
from .textfield import Hit

if TYPE_CHECKING:
    from .document import Doc


def salience_of(doc: Doc, hits: list[Hit], around: list[Hit], core: list[Hit], has_context: bool,
                term: int = -1, shape: Parts | None = None) -> Salience:
    """The salience of a rule's ``hits`` on ``doc`` (``term``: the one term they are all of, or
    -1). Its evidence is every hit of the topic's own terms in the article (a proximity operator
    hands back its first window only), not those of its context clause (``around``); where the
    rule's parts must meet (a proximity window held: ``core``), a sentence is evidence only when
    it holds a term of every part of one proximity operator (``shape``, parts.py), or, for a
    rule without that map, two of the topic's terms. The parts meet when a window held or, for a
    rule with a context clause, when a sentence holds both the topic and its context.

    Kept per article by what it is computed from (the topic's terms in the order taken, whether
    two must meet, whether a window held; one term's, by the caller, by the term): a rule that fired on
    the same evidence as one before costs a look-up (bench/matching.py)."""
    if term >= 0 and not around and not core:  # most: one term's hits, weighed as they come
        # (the caller keeps it by the term). Terms hit on the same words weigh the same, but
        # keying them by their words cost more than weighing them again in C.
        return doc.weigh_term(term)
    own = topic_of(hits, around, term)
    least = 2 if core and len(own) > 1 else 1
    together: bool | None = True if core else None
    known = together is not None or not has_context or not around  # else: where the context is
    key = (tuple(own), least, together, id(shape))
    if known:
        got = doc.scored.get(key)
        if got is not None:
            return got
        if least == 1 and (got := doc.weigh_terms(own, together)) is not None:  # in C: no places
            doc.scored[key] = got
            return got
    places = evidence_places(doc, own, least, shape)
    if not known:
        where = {doc.sentence_of(h) for h in around}
        together = any(k in where for k in places)
    # rules of other terms often fire in the same sentences: the same evidence, the same score
    same = (tuple(places.items()), together)
    got = doc.scored.get(same)
    if got is None:
        got = doc.scored[same] = score(doc.layouts, places, together)
    if known:
        doc.scored[key] = got
    return got


def topic_of(hits: list[Hit], around: list[Hit], term: int) -> Collection[int]:
    """The terms of a rule's topic that its ``hits`` are of: not its context clause's
    (``around``), unless those are all there is; ``term`` when they are all of one."""
    if around:
        rest = set(around)
        return {h.term for h in hits if h not in rest} or {h.term for h in hits}
    return (term,) if term >= 0 else {h.term for h in hits}


def evidence_places(doc: Doc, own: Collection[int], least: int, shape: Parts | None) -> dict[Place, tuple[bool, bool]]:
    """The sentences that are a rule's evidence, each with whether its first hit there is in a
    quote, in an aside: every sentence that holds a term of ``own``, or where the rule's parts
    must meet (``least`` 2), those ``parts.met`` selects."""
    if least == 2:
        return met(own, shape, doc.hits, doc.places_of)
    places: dict[Place, tuple[bool, bool]] = {}
    for t in own:
        for place, flags in doc.places_of(t):
            if place not in places:
                places[place] = flags
    return places
