"""Rule files (YAML) -> Rule trees and concepts, with errors that name the file and line.

The nodes are walked by hand (``yaml.compose``) rather than loaded into dicts, because only
the node tree still knows each value's line. The language itself is described in the
README ("Rules") and, for editors, by the JSON Schema in ``schema.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import yaml

from ..errors import RuleError
from . import morph
from .operators import NAMES, OPERATORS, WITHIN, Operator
from .salience import ALERT_AT, DIGEST_AT
from .tree import (
    _AGE,
    _CONCEPT,
    _ID,
    _UNITS,
    _WORD,
    DEFAULT_WITHIN,
    FIELDS,
    MIN_PREFIX,
    SEVERITIES,
    Node,
    Ref,
    Rule,
    Term,
    Word,
)

__all__ = ["Node", "Ref", "Rule", "Term", "Word", "Parsed", "parse_text"]

RULE_KEYS = ("id", "title", "description", "severity", "channels", "fields", "min_hits", "title_weight",
             "alert_at", "digest_at", "about",
             "feeds", "skip_feeds", "tags", "languages", "max_age", "match", "within", *NAMES)
NODE_KEYS = (*NAMES, "within", "in")


# libyaml's loader composes the same nodes, line marks included, ~7x faster (10,000 rules: 11 s
# with the pure-Python one); PyYAML built without libyaml falls back to that.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class Parsed:
    rules: list[Rule] = field(default_factory=list)
    concepts: dict[str, Node] = field(default_factory=dict)
    where: dict[str, str] = field(default_factory=dict)  # concept -> "file:line"


class _File:
    def __init__(self, path: str):
        self.path = path

    def error(self, node: yaml.Node | None, problem: str) -> RuleError:
        return RuleError(self.path, line(node) if node is not None else None, problem)

    # --- file level ---------------------------------------------------------------------

    def parse(self, text: str, into: Parsed) -> None:
        try:
            root = yaml.compose(text, Loader=_LOADER)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            problem = getattr(e, "problem", None) or str(e)
            raise RuleError(self.path, mark.line + 1 if mark else None, f"not valid YAML: {problem}") from None
        if root is None:
            raise self.error(None, "the file is empty; expected a rule (id, title, any/all/none) "
                             "or 'rules:' and/or 'concepts:'")
        if not isinstance(root, yaml.MappingNode):
            raise self.error(root, "expected a mapping: a rule, or 'rules:' and/or 'concepts:'")
        values = self.mapping(root, None)
        if "id" not in values:
            extra = [k for k in values if k not in ("rules", "concepts")]
            if extra or not values:
                raise self.error(root, f"unknown top-level key {extra[0] if extra else None!r}: a file holds "
                                 "one rule (id, title, …) or 'rules:' (a list) and/or 'concepts:'")
        if "concepts" in values:
            self.concepts(values.pop("concepts"), into)
        if "rules" in values:
            seq = values.pop("rules")
            if not isinstance(seq, yaml.SequenceNode) or not seq.value:
                raise self.error(seq, "'rules' must be a non-empty list of rules")
            into.rules.extend(self.rule(n) for n in seq.value)
        if "id" in values:
            into.rules.append(self.rule(root, values))

    def mapping(self, node: yaml.MappingNode, allowed: tuple[str, ...] | None) -> dict[str, yaml.Node]:
        out: dict[str, yaml.Node] = {}
        for k, v in node.value:
            key = k.value if isinstance(k, yaml.ScalarNode) else None
            if key is None or (allowed is not None and key not in allowed):
                expected = f" (expected one of: {', '.join(allowed)})" if allowed else ""
                raise self.error(k, f"unknown key {key!r}{expected}")
            if key in out:
                raise self.error(k, f"key {key!r} appears twice")
            out[key] = v
        return out

    # --- concepts -----------------------------------------------------------------------

    def concepts(self, node: yaml.Node, into: Parsed) -> None:
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, "'concepts' must map names to terms, e.g. concepts: {kursk: [Kursk, Курск]}")
        for k, v in node.value:
            name = str(k.value) if isinstance(k, yaml.ScalarNode) else ""
            if not _CONCEPT.match(name):
                raise self.error(k, f"concept name {name!r}: use letters, digits, '_' and '-'")
            if name in into.concepts:
                raise self.error(k, f"concept {name!r} is already defined at {into.where[name]}")
            into.concepts[name] = self.concept(name, v)
            into.where[name] = f"{self.path}:{line(k)}"

    def concept(self, name: str, node: yaml.Node) -> Node:
        if isinstance(node, yaml.SequenceNode):
            return Node("any", self.terms(node, None, name), line=line(node))
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, f"concept {name!r}: expected a list of terms or a mapping "
                             "of languages to lists (en: […], de: […], common: […])")
        children: list[Node | Term | Ref] = []
        for k, v in node.value:
            lang = str(k.value) if isinstance(k, yaml.ScalarNode) else ""
            if lang != "common" and not re.fullmatch(r"[a-z]{2}", lang):
                raise self.error(k, f"concept {name!r}: {lang!r} is not a language code "
                                 "(two letters such as de, en, ru, uk, fr, pl; or 'common')")
            children.extend(self.terms(v, None if lang == "common" else lang, name))
        if not children:
            raise self.error(node, f"concept {name!r} has no terms")
        return Node("any", tuple(children), line=line(node))

    # --- rules --------------------------------------------------------------------------

    def rule(self, node: yaml.Node, values: dict[str, yaml.Node] | None = None) -> Rule:
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, "expected a rule: a mapping with id, title and terms (any/all/…)")
        v = values if values is not None else self.mapping(node, RULE_KEYS)
        for k, _ in node.value:  # a file's top level was read without knowing it held a rule
            if k.value in v and k.value not in RULE_KEYS:
                raise self.error(k, f"unknown key {k.value!r} (expected one of: {', '.join(RULE_KEYS)})")
        for key in ("id", "title"):
            if key not in v:
                raise self.error(node, f"missing required key {key!r}")
        rid = self.scalar(v["id"], "id")
        if not _ID.match(rid):
            raise self.error(v["id"], f"id {rid!r}: use lower-case letters, digits, '-' and '_'")
        parts: list[Node | Term | Ref] = []
        if "match" in v:
            parts.append(self.item(v["match"]))
        parts.extend(self.node_of(v, rid, node))
        # The rule's own ``all`` beside a topic (any, near, ...) is the context the topic appears in.
        topic = "match" in v or any(k in v for k, op in OPERATORS.items() if op.topic)
        context = next((i for i, p in enumerate(parts) if i >= ("match" in v) and isinstance(p, Node)
                        and _context(OPERATORS[p.op])), -1) if topic else -1
        if not parts or all(isinstance(p, Node) and OPERATORS[p.op].negates for p in parts):
            looking = ", ".join(n for n, op in OPERATORS.items() if not op.negates)
            negating = ", ".join(n for n, op in OPERATORS.items() if op.negates)
            raise self.error(node, f"rule {rid!r} needs something to look for: {looking} or match "
                             f"({negating} only excludes)")
        fields = self.names(v, "fields", FIELDS) or FIELDS
        severity = self.scalar(v["severity"], "severity") if "severity" in v else "normal"
        if severity not in SEVERITIES:
            raise self.error(v["severity"], f"severity {severity!r}: expected one of {', '.join(SEVERITIES)}")
        langs = self.names(v, "languages", None)
        for lang in langs:
            if not re.fullmatch(r"[a-z]{2}", lang):
                raise self.error(v["languages"], f"language {lang!r}: expected a two-letter code such as de")
        alert_at, digest_at = self.share(v, "alert_at", ALERT_AT), self.share(v, "digest_at", DIGEST_AT)
        if digest_at > alert_at:
            raise self.error(v.get("digest_at") or v["alert_at"],
                             f"rule {rid!r}: digest_at {digest_at:g} is above alert_at {alert_at:g}")
        return Rule(
            id=rid, title=self.scalar(v["title"], "title"), tree=Node("all", tuple(parts), line=line(node)),
            description=self.scalar(v["description"], "description") if "description" in v else "",
            fields=fields, channels=self.names(v, "channels", None), severity=severity,
            min_hits=self.number(v, "min_hits", 1), title_weight=self.number(v, "title_weight", 2),
            alert_at=alert_at, digest_at=digest_at,
            feeds=self.names(v, "feeds", None), skip_feeds=self.names(v, "skip_feeds", None),
            tags=self.names(v, "tags", None), languages=langs,
            max_age=self.age(v["max_age"]) if "max_age" in v else None, path=self.path, line=line(node),
            context=context,
            about=Node("any", self.items(v["about"], "about"), line=line(v["about"])) if "about" in v else None,
        )

    def node_of(self, v: dict[str, yaml.Node], what: str, where: yaml.Node) -> list[Node]:
        """The operator keys of a rule or node mapping, each as a Node."""
        if "within" in v and not any(k in v for k in WITHIN):
            raise self.error(v["within"], f"{what}: 'within' belongs to " + " or ".join(f"'{k}'" for k in WITHIN))
        out = []
        for name, op in OPERATORS.items():
            if name not in v:
                continue
            children = self.items(v[name], name)
            within = int(self.number(v, "within", DEFAULT_WITHIN)) if op.within else DEFAULT_WITHIN
            if len(children) < op.min_children:
                at_least = _COUNT.get(op.min_children, op.min_children)
                raise self.error(v[name], f"'{name}' needs at least {at_least} terms or groups")
            out.append(Node(name, children, within=within, line=line(v[name])))
        return out

    def item(self, node: yaml.Node) -> Node | Term | Ref:
        if isinstance(node, yaml.ScalarNode):
            return self.term(node, None, None)
        if isinstance(node, yaml.SequenceNode):
            return Node("any", self.items(node, "match"), line=line(node))
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, "expected a term or a group such as {any: […]}")
        v = self.mapping(node, NODE_KEYS)
        ops = [k for k in NAMES if k in v]
        if len(ops) != 1:
            raise self.error(node, "a group has exactly one of: " + ", ".join(NAMES) +
                             (f" (found {', '.join(ops)})" if ops else ""))
        (built,) = self.node_of(v, ops[0], node)
        if "in" in v:
            scope = self.names(v, "in", FIELDS)
            built = Node(built.op, built.children, built.within, scope, built.line)
        return built

    def items(self, node: yaml.Node, key: str) -> tuple[Node | Term | Ref, ...]:
        if isinstance(node, yaml.ScalarNode):
            return (self.term(node, None, None),)
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            raise self.error(node, f"'{key}' must be a non-empty list of terms or groups, e.g. {key}: [one, two]")
        out = tuple(self.item(n) for n in node.value)
        if key == "about" or (key != "match" and not OPERATORS[key].holds_none):
            for child, n in zip(out, node.value, strict=True):
                if isinstance(child, Node) and OPERATORS[child.op].negates:
                    raise self.error(n, f"'{child.op}' belongs in a rule or an 'all' group, not in '{key}'")
        return out

    def terms(self, node: yaml.Node, lang: str | None, concept: str) -> tuple[Term | Ref, ...]:
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            raise self.error(node, f"concept {concept!r}: expected a non-empty list of terms")
        out = []
        for n in node.value:
            if not isinstance(n, yaml.ScalarNode):
                raise self.error(n, f"concept {concept!r}: each term is a text")
            out.append(self.term(n, lang, concept))
        return tuple(out)

    def term(self, node: yaml.ScalarNode, lang: str | None, concept: str | None) -> Term | Ref:
        raw = str(node.value).strip()
        if not raw:
            raise self.error(node, "empty term")
        if raw.startswith("@"):
            if not _CONCEPT.match(raw[1:]):
                raise self.error(node, f"{raw!r}: '@' is followed by a concept name")
            return Ref(raw[1:], self.path, line(node))
        if len(raw) > 2 and raw.startswith("/") and raw.endswith("/"):
            return Term(raw, regex=self.regex(raw[1:-1], node), lang=lang, concept=concept,
                        path=self.path, line=line(node))
        return Term(raw, words=self.words(raw, node), lang=lang, concept=concept, path=self.path, line=line(node))

    def words(self, raw: str, node: yaml.Node) -> tuple[Word, ...]:
        out: list[Word] = []
        pos = 0
        for m in _WORD.finditer(raw):
            gap = raw[pos:m.start()]
            if "*" in gap or "=" in gap or (pos and not gap):  # no gap: "Kurs*k", "Ku=rsk"
                raise self.error(node, f"term {raw!r}: '=' goes right before a word, '*' right after one")
            pos = m.end()
            exact, word, star = m.groups()
            text = " ".join(w for w in morph.words(word) if w not in morph.END)
            for part in text.split():
                out.append(Word(part, exact=bool(exact), prefix=False))
            if star:
                if exact:
                    raise self.error(node, f"term {raw!r}: a word cannot be both exact (=) and a prefix (*)")
                last = out[-1]
                if len(morph.fold(last.text)) < MIN_PREFIX:
                    raise self.error(node, f"term {raw!r}: a prefix needs at least {MIN_PREFIX} letters before '*'")
                out[-1] = Word(last.text, prefix=True)
        if "*" in raw[pos:] or "=" in raw[pos:]:
            raise self.error(node, f"term {raw!r}: '=' goes right before a word, '*' right after one")
        if not out:
            raise self.error(node, f"term {raw!r} has no letters or digits")
        return tuple(out)

    def regex(self, pattern: str, node: yaml.Node) -> str:
        import re2

        quiet = re2.Options()
        quiet.log_errors = False  # else RE2 also writes the problem to stderr, unasked
        try:
            re2.compile(pattern, quiet)
        except re2.error as e:
            why = e.args[0].decode(errors="replace") if e.args and isinstance(e.args[0], bytes) else str(e)
            raise self.error(node, f"regex /{pattern}/ is not valid RE2 (linear-time: no backreferences "
                             f"or lookarounds): {why}") from None
        return pattern

    # --- scalars ------------------------------------------------------------------------

    def scalar(self, node: yaml.Node, key: str) -> str:
        if not isinstance(node, yaml.ScalarNode) or not str(node.value).strip():
            raise self.error(node, f"'{key}' must be a non-empty text")
        return str(node.value).strip()

    def names(self, v: dict[str, yaml.Node], key: str, allowed: tuple[str, ...] | None) -> tuple[str, ...]:
        if key not in v:
            return ()
        node = v[key]
        items = [node] if isinstance(node, yaml.ScalarNode) else node.value if isinstance(
            node, yaml.SequenceNode) else None
        if items is None or not items:
            raise self.error(node, f"'{key}' must be a list, e.g. {key}: [one, two]")
        out = tuple(self.scalar(n, key) for n in items)
        for name in out:
            if allowed is not None and name not in allowed:
                raise self.error(node, f"{key}: unknown value {name!r} (expected: {', '.join(allowed)})")
        return out

    def number(self, v: dict[str, yaml.Node], key: str, default: float, high: float = 1e6) -> float:
        """A number from 0 to ``high`` (``share``: a salience threshold, 0 to 1)."""
        if key not in v:
            return default
        text = self.scalar(v[key], key)
        try:
            value = float(text)
        except ValueError:
            value = -1
        if not 0 <= value <= high:  # NaN fails both comparisons
            what = "a number from 0 to 1" if high == 1 else "a number >= 0"
            raise self.error(v[key], f"'{key}' must be {what}, not {text!r}")
        return value

    def share(self, v: dict[str, yaml.Node], key: str, default: float) -> float:
        """A salience threshold: a number from 0 to 1."""
        return self.number(v, key, default, high=1)

    def age(self, node: yaml.Node) -> float:
        text = self.scalar(node, "max_age")
        m = _AGE.match(text)
        if not m:
            raise self.error(node, f"max_age {text!r}: expected a number and a unit (s, m, h, d, w), e.g. 3d")
        return float(m.group(1)) * _UNITS[m.group(2)]


_COUNT = {2: "two", 3: "three"}


def _context(op: Operator) -> bool:
    """A clause that may be a rule's context: it looks for something without naming the topic (all)."""
    return not op.topic and not op.negates


def line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def parse_text(text: str, path: str, into: Parsed) -> None:
    _File(path).parse(text, into)
