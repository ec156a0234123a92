"""YAML rule files -> Rules, with errors that name the file and the line.

A file holds one rule (a mapping) or several (``rules:`` followed by a list of mappings):

    id: kursk                       # unique across all files: [a-z0-9][a-z0-9_-]*
    title: Kursk region             # shown in alerts
    any: [Kursk, Kursker*, Курск*]  # at least one of these
    all: []                         # every one of these
    none: [Kurskorrektur]           # none of these
    fields: [title, summary, body]  # where to look (default: all three)
    channels: [team-slack]          # channel names or tags (default: notify.default_channels)

The nodes are walked by hand (``yaml.compose``) rather than loaded into dicts, because only
the node tree still knows each value's line.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from ..errors import RuleError
from ..models import Rule

KEYS = ("id", "title", "description", "any", "all", "none", "fields", "channels")
FIELDS = ("title", "summary", "body")
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def load_dir(folder: str | Path) -> list[Rule]:
    """Every ``*.yaml``/``*.yml`` file in ``folder`` (sorted). Raises the first RuleError;
    ``check_dir`` collects them all."""
    rules, errors = check_dir(folder)
    if errors:
        raise errors[0]
    return rules


def check_dir(folder: str | Path) -> tuple[list[Rule], list[RuleError]]:
    base = Path(folder)
    if not base.is_dir():
        return [], [RuleError(str(base), None, "rules folder does not exist")]
    files = sorted([*base.glob("*.yaml"), *base.glob("*.yml")])
    if not files:
        return [], [RuleError(str(base), None, "no *.yaml rule files in the rules folder")]
    rules: list[Rule] = []
    errors: list[RuleError] = []
    where: dict[str, tuple[str, int]] = {}
    for path in files:
        try:
            found = load_file(path)
        except RuleError as e:
            errors.append(e)
            continue
        for rule, line in found:
            if rule.id in where:
                other = "{}:{}".format(*where[rule.id])
                errors.append(RuleError(str(path), line, f"rule id {rule.id!r} is already used at {other}"))
                continue
            where[rule.id] = (str(path), line)
            rules.append(rule)
    return rules, errors


def load_file(path: str | Path) -> list[tuple[Rule, int]]:
    p = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise RuleError(p, None, f"cannot read: {e}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or str(e)
        raise RuleError(p, mark.line + 1 if mark else None, f"not valid YAML: {problem}") from None
    if root is None:
        raise RuleError(p, None, "the file is empty; expected a rule (id, title, any/all/none)")
    if isinstance(root, yaml.MappingNode) and _keys(root) == ["rules"]:
        seq = root.value[0][1]
        if not isinstance(seq, yaml.SequenceNode) or not seq.value:
            raise RuleError(p, _line(seq), "'rules' must be a non-empty list of rules")
        return [(_rule(n, p), _line(n)) for n in seq.value]
    return [(_rule(root, p), _line(root))]


def _rule(node: yaml.Node, path: str) -> Rule:
    if not isinstance(node, yaml.MappingNode):
        raise RuleError(path, _line(node), "expected a rule: a mapping with id, title, any/all/none")
    values: dict[str, yaml.Node] = {}
    for k, v in node.value:
        key = k.value if isinstance(k, yaml.ScalarNode) else None
        if key not in KEYS:
            raise RuleError(path, _line(k), f"unknown key {key!r} (expected one of: {', '.join(KEYS)})")
        if key in values:
            raise RuleError(path, _line(k), f"key {key!r} appears twice")
        values[key] = v
    for key in ("id", "title"):
        if key not in values:
            raise RuleError(path, _line(node), f"missing required key {key!r}")
    rid = _scalar(values["id"], "id", path)
    if not _ID.match(rid):
        raise RuleError(path, _line(values["id"]), f"id {rid!r}: use lower-case letters, digits, '-' and '_'")
    terms = {k: _terms(values[k], k, path) if k in values else () for k in ("any", "all", "none")}
    if not terms["any"] and not terms["all"]:
        raise RuleError(path, _line(node), f"rule {rid!r} needs at least one term in 'any' or 'all'")
    fields = _list(values["fields"], "fields", path) if "fields" in values else FIELDS
    for f in fields:
        if f not in FIELDS:
            raise RuleError(path, _line(values["fields"]), f"unknown field {f!r} (expected: {', '.join(FIELDS)})")
    channels = _list(values["channels"], "channels", path) if "channels" in values else ()
    return Rule(
        id=rid, title=_scalar(values["title"], "title", path), any=terms["any"], all=terms["all"],
        none=terms["none"], fields=tuple(fields), channels=tuple(channels), path=path,
        line=_line(node),
    )


def _terms(node: yaml.Node, key: str, path: str) -> tuple[str, ...]:
    out = _list(node, key, path)
    for item, sub in zip(out, node.value, strict=True):
        if not re.search(r"\w", item):
            raise RuleError(path, _line(sub), f"{key}: term {item!r} has no letters or digits")
        words = [w for w in re.split(r"[^\w*]+", item) if w]
        if any("*" in w[:-1] or w == "*" for w in words):
            raise RuleError(path, _line(sub), f"{key}: term {item!r}: '*' is only allowed at the end of a word")
    return tuple(out)


def _list(node: yaml.Node, key: str, path: str) -> tuple[str, ...]:
    if not isinstance(node, yaml.SequenceNode):
        raise RuleError(path, _line(node), f"'{key}' must be a list, e.g. {key}: [one, two]")
    return tuple(_scalar(n, key, path) for n in node.value)


def _scalar(node: yaml.Node, key: str, path: str) -> str:
    if not isinstance(node, yaml.ScalarNode) or not str(node.value).strip():
        raise RuleError(path, _line(node), f"'{key}' must be a non-empty text")
    return str(node.value).strip()


def _keys(node: yaml.MappingNode) -> list[str]:
    return [k.value for k, _ in node.value if isinstance(k, yaml.ScalarNode)]


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1
