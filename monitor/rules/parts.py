"""The parts of a rule whose topic must meet (issue 17): where a rule says ``near: [@north_korea,
@troops]`` or ``same_sentence: [...]``, salience counts a sentence as evidence only when it holds
a term of every part of one such operator, as the operator itself would: "Russian troops are
fighting in Ukraine" holds two of the North Korean troops rule's terms (troops, fighting) but no
North Korea, and is not that rule's evidence, nor its lead. A term of the topic outside every
such operator (a rule's ``any`` beside them) is evidence alone, as in a rule of one part.

``parts(tree, skip)`` maps each term of a compiled rule tree (``engine.Engine.trees``) to the
parts it is in: (operator, child) pairs, the operators numbered in the order met, leaving out the
rule's context clause ``skip``; with it, how many parts each operator has. Rules of the same
shape share one map, interned per engine (``interned``), so that a salience remembered per
article for one serves the others (``engine.salience_of``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Any

from .salience import Place

# (term -> the (operator, child) parts it is in, each operator's count of parts)
Parts = tuple[dict[int, frozenset[tuple[int, int]]], tuple[int, ...]]
Interned = dict[tuple[frozenset[tuple[int, frozenset[tuple[int, int]]]], tuple[int, ...]], Parts]


def parts(tree: Any, skip: Any, interned: Interned, terms_under: dict[int, frozenset[int]]) -> Parts | None:
    """The parts of ``tree``'s proximity operators (min_children >= 2), or None for a tree
    without one (its evidence is any sentence with a term of its topic). ``terms_under``: the
    terms under each compiled node, by its id, kept by the engine for all its rules (a concept's
    node is one node, shared by every rule that names it)."""
    found: dict[int, set[tuple[int, int]]] = {}
    sizes: list[int] = []

    def terms(node: Any) -> frozenset[int]:
        if node.__class__ is int:
            return frozenset((node,))
        got = terms_under.get(id(node))
        if got is None:
            got = terms_under[id(node)] = frozenset().union(*map(terms, node[1]))
        return got

    def walk(node: Any) -> None:
        if node.__class__ is int or node is skip:
            return
        op, children = node[0], node[1]
        if op is not None and op.min_children >= 2:
            n = len(sizes)
            sizes.append(len(children))
            for c, child in enumerate(children):
                for t in terms(child):
                    found.setdefault(t, set()).add((n, c))
        for child in children:
            walk(child)

    walk(tree)
    if not found:
        return None
    key = (frozenset((t, frozenset(ps)) for t, ps in found.items()), tuple(sizes))
    got = interned.get(key)
    if got is None:
        got = interned[key] = ({t: frozenset(ps) for t, ps in found.items()}, tuple(sizes))
    return got


ALONE = (-1, -1)  # a place holds a topic term outside every proximity operator: evidence alone


def meet(covered: set[tuple[int, int]], sizes: tuple[int, ...]) -> bool:
    """Whether the parts a sentence's terms are in are every part of one operator (or ALONE)."""
    if ALONE in covered:
        return True
    held: dict[int, int] = {}
    for n, _c in covered:
        held[n] = held.get(n, 0) + 1
    return any(k == sizes[n] for n, k in held.items())


Flags = tuple[bool, bool]  # the first hit in a sentence is in a quote, in an aside


def met(own: Collection[int], shape: Parts | None, hits: Collection[int],
        places_of: Callable[[int], Iterable[tuple[Place, Flags]]]) -> dict[Place, Flags]:
    """The sentences (with their first hit's quote and aside flags) where a rule's parts meet:
    with its ``shape``, where a term of every part of one operator is, counting each of the
    operators' terms with ``hits`` in the article (an operator hands back its first window only,
    ``own``: that window's terms) and a term of ``own`` outside them alone; without one, where
    two of ``own`` are."""
    places: dict[Place, Flags] = {}
    covered: dict[Place, set[Any]] = {}
    if shape:
        of_term, sizes = shape
        terms: Iterable[int] = {*own, *(t for t in (hits if len(hits) < len(of_term) else of_term)
                                        if t in of_term and t in hits)}
    else:
        terms = own
    for t in terms:
        of: Any = of_term.get(t, _ALONE) if shape else (t,)
        for place, flags in places_of(t):
            if place not in places:
                places[place] = flags
            covered.setdefault(place, set()).update(of)
    if shape:
        return {k: v for k, v in places.items() if meet(covered[k], sizes)}
    return {k: v for k, v in places.items() if len(covered[k]) >= 2}


_ALONE = frozenset((ALONE,))
