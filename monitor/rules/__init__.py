"""Topic rules: YAML files -> RuleSet (compiled once) -> ``match(ruleset, article)``.

``match`` is a pure decider: article in, matches out, no I/O. The full rule language
(concepts, morphology, nesting, proximity) is a later issue; this is its first version.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import RuleError
from ..models import Article, Match, Rule
from .loader import check_dir, load_dir, load_file
from .matcher import Compiled, compile_rule, fold, match_rule, prepare

__all__ = ["RuleSet", "load", "check", "match", "fold", "load_file", "RuleError"]


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    compiled: tuple[Compiled, ...]
    source: str = ""

    @classmethod
    def of(cls, rules: list[Rule] | tuple[Rule, ...], source: str = "") -> RuleSet:
        return cls(tuple(rules), tuple(compile_rule(r) for r in rules), source)

    def __len__(self) -> int:
        return len(self.rules)


def load(folder: str | Path) -> RuleSet:
    """Load and compile every rule file in ``folder``; raise RuleError on the first problem."""
    return RuleSet.of(load_dir(folder), str(folder))


def check(folder: str | Path, channels: set[str] | None = None,
          has_default: bool = True) -> list[RuleError]:
    """Every problem in the rules folder, including channels the config does not define and
    rules whose alerts would go nowhere (no channels named and no default channels)."""
    rules, errors = check_dir(folder)
    if channels is not None:
        for r in rules:
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
    return errors


def match(ruleset: RuleSet, article: Article) -> list[Match]:
    """Pure: the rules that fire on ``article``, in rule order."""
    fields = prepare(article)
    return [m for c in ruleset.compiled if (m := match_rule(c, fields)) is not None]
