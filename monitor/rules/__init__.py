"""Topic rules: YAML files -> RuleSet (compiled once into one matcher) -> ``match``.

``match`` is a pure decider: article (and the feed it came from) in, matches out, no I/O.
The language: ``syntax`` (files, concepts, terms, groups), ``morph`` (words, folding,
stems), ``engine`` (the multi-pattern matcher), ``document`` (one article's tokens, atoms and
hits, and a rule's tree evaluated on them), ``operators`` (each operator's syntax, prefilter and
evaluation), ``explain`` (snippets), ``filters`` (feeds, tags, languages, age), ``folder`` (a
folder's files, their size limits, checks across files), ``schema`` (the JSON Schema for editors).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RuleError
from ..models import Article, Match
from .engine import Engine
from .folder import Limits, TooLarge, check_refs, files, parse_dir
from .salience import tier
from .syntax import Node, Parsed, Rule, parse_text
from .tree import Ref, Term

__all__ = ["RuleSet", "Rule", "tier", "load", "load_checked", "check", "match", "find", "parse", "RuleError",
           "Problems", "Limits", "TooLarge", "signature", "loosened", "warnings"]


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    concepts: dict[str, Node] = field(default_factory=dict)
    source: str = ""
    engine: Engine = field(init=False, repr=False, compare=False)
    by_id: dict[str, Rule] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "engine", Engine(list(self.rules), self.concepts))
        object.__setattr__(self, "by_id", {r.id: r for r in self.rules})

    @classmethod
    def of(cls, rules: list[Rule] | tuple[Rule, ...], concepts: dict[str, Node] | None = None,
           source: str = "") -> RuleSet:
        return cls(tuple(rules), dict(concepts or {}), source)

    def __len__(self) -> int:
        return len(self.rules)

    def get(self, rule_id: str) -> Rule | None:
        return self.by_id.get(rule_id)


def parse(text: str, path: str = "<text>") -> RuleSet:
    """A RuleSet from one YAML text (tests, ``monitor rules`` tools); raises RuleError."""
    parsed = Parsed()
    parse_text(text, path, parsed)
    errors = check_refs(parsed)
    if errors:
        raise errors[0]
    return RuleSet.of(parsed.rules, parsed.concepts, path)


class Problems(RuleError):
    """Every problem found in a rules folder (each one a RuleError)."""

    def __init__(self, problems: list[RuleError]):
        self.problems = problems
        super().__init__(problems[0].path, problems[0].line, problems[0].problem)

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


DEFAULT_LIMITS = Limits()  # the settings' defaults, for callers without a config


def load(folder: str | Path, limits: Limits = DEFAULT_LIMITS) -> RuleSet:
    """Load and compile every rule file in ``folder``; raise RuleError on the first problem."""
    parsed, errors = parse_dir(folder, limits)
    if errors:
        raise errors[0]
    return RuleSet.of(parsed.rules, parsed.concepts, str(folder))


def load_checked(folder: str | Path, channels: set[str], has_default: bool, limits: Limits = DEFAULT_LIMITS) -> RuleSet:
    """``load`` with ``check``'s channel checks, reading the folder once; a file over a limit
    raises TooLarge, any other problems raise Problems (all of them)."""
    parsed, errors = _checked(folder, channels, has_default, limits)
    if errors:
        raise errors[0] if isinstance(errors[0], TooLarge) else Problems(errors)
    return RuleSet.of(parsed.rules, parsed.concepts, str(folder))


def check(folder: str | Path, channels: set[str] | None = None,
          has_default: bool = True, limits: Limits = DEFAULT_LIMITS) -> list[RuleError]:
    """Every problem in the rules folder, including channels the config does not define and
    rules whose alerts would go nowhere (no channels named and no default channels)."""
    return _checked(folder, channels, has_default, limits)[1]


def _checked(folder: str | Path, channels: set[str] | None, has_default: bool,
             limits: Limits) -> tuple[Parsed, list[RuleError]]:
    parsed, errors = parse_dir(folder, limits)
    if channels is not None:
        for r in parsed.rules:
            if not r.channels and not has_default:
                errors.append(RuleError(
                    r.path, r.line, f"rule {r.id!r} names no channels and notify.default_channels "
                    "is empty: its alerts would go nowhere",
                ))
            for ch in r.channels:
                if ch not in channels:
                    known = ", ".join(sorted(channels)) or "none"
                    errors.append(RuleError(
                        r.path, r.line,
                        f"rule {r.id!r}: channel {ch!r} is not in the config (defined: {known})",
                    ))
    return parsed, errors


def signature(folder: str | Path) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and modification times of the rule files: changes when a file does."""
    out = []
    for p in files(folder):
        try:
            st = p.stat()
        except OSError:
            continue
        out.append((p.name, st.st_size, st.st_mtime_ns))
    return tuple(out)


TOGETHER_WORDS = 3  # plain words a near/same_sentence may ask for together before it reads like an "any"


def warnings(ruleset: RuleSet | Iterable[Rule]) -> list[RuleError]:
    """What is valid but likely not meant: a ``near`` or ``same_sentence`` that requires more
    than TOGETHER_WORDS plain words all at once (every item must be found), the shape of "the
    topic near any of these words" written without the inner list that says "any". A shipped
    rule carried one for many stops: an exclusion that could never hold."""
    out: list[RuleError] = []

    def walk(node: Node | Term | Ref, rule: Rule) -> None:
        if not isinstance(node, Node):
            return
        words = [c.text for c in node.children if isinstance(c, Term)]
        if node.op in ("near", "same_sentence") and len(words) > TOGETHER_WORDS:
            other = next((f"@{c.name}" for c in node.children if isinstance(c, Ref)), "X")
            out.append(RuleError(rule.path, node.line or rule.line, (
                f"rule {rule.id!r}: {node.op} needs all {len(node.children)} of its items found together "
                f"({', '.join(words[:3])}, …); for {other} near any one of these words, put the words in a "
                f"list of their own: {node.op}: [\"{other}\", [{', '.join(words[:2])}, …]]")))
        for c in node.children:
            walk(c, rule)

    for rule in ruleset.rules if isinstance(ruleset, RuleSet) else ruleset:
        walk(rule.tree, rule)
    return out


def loosened(rule: Rule) -> tuple[Rule, Rule] | None:
    """For "find what it missed": ``rule`` with its topic alone, and with its topic and context
    clause but no exclusions (``none``); None for a rule that has neither a context clause nor an
    exclusion (nothing to loosen). A story the first fires on and ``rule`` does not is a near
    miss: the second says whether the context kept it out (it does not fire) or an exclusion."""
    from dataclasses import replace

    from .operators import OPERATORS

    parts = rule.tree.children
    negating = {i for i, p in enumerate(parts) if isinstance(p, Node) and OPERATORS[p.op].negates}
    if rule.context < 0 and not negating:
        return None
    topic = tuple(p for i, p in enumerate(parts) if i != rule.context and i not in negating)
    kept = tuple(p for i, p in enumerate(parts) if i not in negating)
    if not topic:  # a rule of exclusions and a context alone: no topic to look for
        return None
    return (replace(rule, tree=replace(rule.tree, children=topic), context=-1),
            replace(rule, tree=replace(rule.tree, children=kept)))


def match(ruleset: RuleSet, article: Article, feed: Any = None, now: float | None = None) -> list[Match]:
    """Pure: the rules that fire on ``article`` (from ``feed``, when known), in rule order, each
    with its salience and tier (salience.py; computed only for the rules that fired)."""
    return ruleset.engine.match(article, feed, now)


def find(ruleset: RuleSet, article: Article, feed: Any = None, now: float | None = None) -> list[Match]:
    """Pure: ``match`` without salience (every match salience 1.0, tier "alert", no features):
    the matching alone, which bench/matching.py times beside ``match``. Not for deciding what
    to send."""
    return ruleset.engine.match(article, feed, now, salience=False)
