"""The rule language's operators, each declared once: how it is written (``syntax``, ``schema``),
what it requires of an article before it can be true (the engine's prefilter) and how it is
evaluated on an article's hits (``document.Doc.eval``).

Adding an operator is one entry in ``OPERATORS``; every other module reads this table, and an
operator the table does not hold is an error (``of``), never another operator's behaviour
(issue 15). ``@concept`` references are terms, not operators: ``engine`` and ``document`` handle
them beside the table.

An evaluation takes the ``Doc``, the compiled children, ``within`` and the fields in scope, and
returns the hits that make the node true, or None when it is false (an empty list: true without
hits of its own, what a satisfied ``none`` gives its ``all``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import RuleError
from .tree import DEFAULT_WITHIN, FIELDS

if TYPE_CHECKING:
    from .document import Doc
    from .explain import Hit

Evaluate = Callable[["Doc", tuple[Any, ...], int, frozenset[int]], Any]
Require = Callable[[list[list[set[int]]]], list[set[int]]]
_ALL_FIELDS = len(FIELDS)


@dataclass(frozen=True)
class Operator:
    name: str
    help: str                # for editors: the schema's description, with an example
    evaluate: Evaluate
    # Prefilter: from each child's atom groups (sets of which one atom must be in the article for
    # the child to be true), this node's. [] means no requirement (``none`` finds nothing).
    require: Require
    min_children: int = 1    # near, same_sentence: 2; below 2 a single term may stand for the list
    within: bool = False     # takes ``within`` (words between the hits)
    holds_none: bool = False  # a ``none`` group may be one of its children
    negates: bool = False    # only excludes: a rule of it alone looks for nothing
    topic: bool = True       # names what a rule is about; a rule's own ``all`` beside one is context
    flat: bool = False       # over plain terms: true on any one term's hits, which are its hits
    unwrap: bool = False     # of one child (no ``in``) is that child: the compiled tree skips it

    @property
    def scalar(self) -> bool:
        """Whether one term may be written without a list (``any: Kursk``)."""
        return self.min_children < 2


# --- evaluations ------------------------------------------------------------------------------

def _any(doc: Doc, children: tuple[Any, ...], within: int, sc: frozenset[int]) -> Any:
    hits, narrow = doc.hits, len(sc) < _ALL_FIELDS
    out: list[Hit] = []
    for c in children:
        if c.__class__ is int:  # a term, inline: most children are
            r = hits.get(c)
            if r and narrow:
                r = [h for h in r if h.field in sc]
        else:
            r = doc.eval(c, sc)
        if r:
            out += r
    return out or None


def _all(doc: Doc, children: tuple[Any, ...], within: int, sc: frozenset[int]) -> Any:
    hits, narrow = doc.hits, len(sc) < _ALL_FIELDS
    out: list[Hit] = []
    for c in children:
        if c.__class__ is int:
            r = hits.get(c)
            if r and narrow:
                r = [h for h in r if h.field in sc]
            if not r:
                return None
        else:
            r = doc.eval(c, sc)  # a satisfied ``none`` gives [], true without hits
            if r is None:
                return None
        out += r
    return out


def _none(doc: Doc, children: tuple[Any, ...], within: int, sc: frozenset[int]) -> Any:
    for c in children:
        if doc.eval(c, sc):
            return None
    return []


def _proximity(find: Callable[[Doc, list[list[Hit]], int], list[Hit] | None]) -> Evaluate:
    """Every child has hits, and ``find`` finds a window holding one of each: those hits,
    remembered as the window that made the rule true (``Doc.core``, quoted in the snippet)."""

    def evaluate(doc: Doc, children: tuple[Any, ...], within: int, sc: frozenset[int]) -> Any:
        lists = []
        for c in children:
            r = doc.eval(c, sc)
            if not r:
                return None
            lists.append(r)
        found = find(doc, lists, within)
        if found:
            doc.core += found
        return found

    return evaluate


def near(doc: Doc, lists: list[list[Hit]], within: int) -> list[Hit] | None:
    """The first window in one field holding a hit of every child, with at most ``within``
    words between the end of its first hit and the start of its last."""
    tagged = sorted((h.field, h.start, n, h) for n, hits in enumerate(lists) for h in hits)
    need = len(lists)
    count: dict[int, int] = defaultdict(int)
    lo = 0
    for hi, (f, start, n, _h) in enumerate(tagged):
        count[n] += 1
        while tagged[lo][0] != f:
            count[tagged[lo][2]] -= 1
            lo += 1
        while len([c for c in count.values() if c]) == need:
            first = tagged[lo][3]
            if start - first.end <= within:
                return [t[3] for t in tagged[lo:hi + 1]]
            count[tagged[lo][2]] -= 1
            lo += 1
    return None


def same_sentence(doc: Doc, lists: list[list[Hit]], within: int) -> list[Hit] | None:
    """The hits of the first sentence (in field and text order) holding a hit of every child."""
    groups: dict[tuple[int, int], dict[int, list[Hit]]] = defaultdict(dict)
    for n, hits in enumerate(lists):
        for h in hits:
            groups[(h.field, doc.fields[h.field].sentence(h.start))].setdefault(n, []).append(h)
    for _key, by_child in sorted(groups.items()):
        if len(by_child) == len(lists):
            return [h for hs in by_child.values() for h in hs]
    return None


# --- prefilter requirements -------------------------------------------------------------------

def _either(children: list[list[set[int]]]) -> list[set[int]]:
    """One atom of any child's first group: a child with no requirement leaves none."""
    union: set[int] = set()
    for groups in children:
        if not groups:
            return []
        union |= groups[0]
    return [union]


def _every(children: list[list[set[int]]]) -> list[set[int]]:
    return [g for groups in children for g in groups]


def _nothing(children: list[list[set[int]]]) -> list[set[int]]:
    return []


# --- the table --------------------------------------------------------------------------------

OPERATORS: dict[str, Operator] = {op.name: op for op in (
    Operator("any", "At least one of these must be found. One term or a list of terms and groups, e.g. "
             "`any: [Kursk, Курск*, \"@kursk\"]`.", _any, _either, flat=True),
    Operator("all", "Every one of these must be found (in any order and field). E.g. "
             "`all: [\"@kursk\", {any: [drone*, missile*]}]`; a `none` group may go in here.",
             _all, _every, holds_none=True, topic=False, unwrap=True),
    Operator("none", "Excludes: nothing fires if any of these is found. E.g. "
             "`none: [Kurskorrektur*, {all: [Kursk, submarine]}]`.", _none, _nothing,
             negates=True, topic=False),
    Operator("near", f"At least two terms or groups found close together in one field: at most `within` "
             f"words apart (default {DEFAULT_WITHIN}). E.g. `near: [\"@troops\", \"@dprk\"]`.",
             _proximity(near), _every, min_children=2, within=True),
    Operator("same_sentence", "At least two terms or groups found in one sentence. E.g. "
             "`same_sentence: [Kursk, evacuat*]`.", _proximity(same_sentence), _every, min_children=2),
)}
NAMES = tuple(OPERATORS)  # in the order rules are read and documented
WITHIN = tuple(name for name, op in OPERATORS.items() if op.within)  # the operators ``within`` belongs to


def of(name: str, path: str = "", line: int | None = None) -> Operator:
    """The operator called ``name``; RuleError for one the table does not hold."""
    op = OPERATORS.get(name)
    if op is None:
        raise RuleError(path or "<rules>", line, f"unknown operator {name!r} (known: {', '.join(NAMES)})")
    return op
