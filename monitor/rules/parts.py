"""The parts of a rule whose topic must meet (issue 17): where a rule says ``near: [@north_korea,
@troops]`` or ``same_sentence: [...]``, salience counts a sentence as evidence only when it holds
terms of two of one such operator's parts, as the operator itself would: "Russian troops are
fighting in Ukraine" holds two of the North Korean troops rule's terms (troops, fighting) but no
North Korea, and is not that rule's evidence, nor its lead.

``parts(tree, skip)`` maps each term of a compiled rule tree (``engine.Engine.trees``) to the
parts it is in: (operator, child) pairs, the operators numbered in the order met, leaving out the
rule's context clause ``skip``. Rules of the same shape share one map, interned per engine
(``interned``), so that a salience remembered per article for one serves the others
(``engine.salience_of``).
"""

from __future__ import annotations

from typing import Any

Parts = dict[int, frozenset[tuple[int, int]]]  # term -> the (operator, child) parts it is in
Interned = dict[frozenset[tuple[int, frozenset[tuple[int, int]]]], Parts]


def parts(tree: Any, skip: Any, interned: Interned) -> Parts | None:
    """The parts of ``tree``'s proximity operators (min_children >= 2), or None for a tree
    without one (its evidence is any sentence with a term of its topic)."""
    found: dict[int, set[tuple[int, int]]] = {}
    count = 0
    terms_under: dict[int, frozenset[int]] = {}

    def terms(node: Any) -> frozenset[int]:
        if node.__class__ is int:
            return frozenset((node,))
        got = terms_under.get(id(node))
        if got is None:
            got = terms_under[id(node)] = frozenset().union(*map(terms, node[1]))
        return got

    def walk(node: Any) -> None:
        nonlocal count
        if node.__class__ is int or node is skip:
            return
        op, children = node[0], node[1]
        if op is not None and op.min_children >= 2:
            n, count = count, count + 1
            for c, child in enumerate(children):
                for t in terms(child):
                    found.setdefault(t, set()).add((n, c))
        for child in children:
            walk(child)

    walk(tree)
    if not found:
        return None
    key = frozenset((t, frozenset(ps)) for t, ps in found.items())
    got = interned.get(key)
    if got is None:
        got = interned[key] = {t: frozenset(ps) for t, ps in found.items()}
    return got


def meet(covered: set[tuple[int, int]]) -> bool:
    """Whether the parts a sentence's terms are in hold two children of one operator."""
    return len({n for n, _c in covered}) < len(covered)
