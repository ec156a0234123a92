"""A rules folder -> one Parsed set: its files, their size limits, and the checks across files
(duplicate ids, unknown and cyclic concepts).

The size limits are checked before a file is read: a rule set costs about 60 times its YAML
in memory (issue 15: 2.9 MB of generated rules took a daemon from 99 MB to 271 MB, and to 375 MB
while a reload held the old and the new set), so a file dropped into the folder by mistake must
be refused by its size, not after it has filled the service's MemoryMax.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import RuleError
from .syntax import Node, Parsed, Ref, Rule, Term, parse_text


@dataclass(frozen=True)
class Limits:
    """The largest rule file and the largest folder (bytes) loaded; None: no limit. ``*_setting``:
    the setting to name when one is exceeded."""

    file: int | None = None
    total: int | None = None
    file_setting: str = "monitor.rules_max_file_bytes"
    total_setting: str = "monitor.rules_max_total_bytes"


class TooLarge(RuleError):
    """A rule file (or the folder's files together) over its size limit: nothing was read."""

    def __init__(self, path: str, size: int, limit: int, setting: str):
        self.size, self.limit, self.setting = size, limit, setting
        super().__init__(path, None, f"{size:,} bytes, over the limit of {limit:,} bytes ({setting})")


def files(folder: str | Path) -> list[Path]:
    base = Path(folder)
    return sorted([*base.glob("*.yaml"), *base.glob("*.yml")])


def sizes(folder: str | Path, limits: Limits) -> dict[Path, int]:
    """Each rule file's size; TooLarge for the first one over ``limits.file``, or for the
    folder when together they are over ``limits.total``."""
    out: dict[Path, int] = {}
    for path in files(folder):
        try:
            out[path] = path.stat().st_size
        except OSError:
            continue  # gone since the listing; reading it will say so if it comes back
        if limits.file is not None and out[path] > limits.file:
            raise TooLarge(str(path), out[path], limits.file, limits.file_setting)
    total = sum(out.values())
    if limits.total is not None and total > limits.total:
        raise TooLarge(f"{folder} ({len(out)} files)", total, limits.total, limits.total_setting)
    return out


def parse_dir(folder: str | Path, limits: Limits = Limits()) -> tuple[Parsed, list[RuleError]]:
    """Every ``*.yaml``/``*.yml`` file in ``folder`` (sorted), with every problem found:
    bad files are skipped, duplicate ids and unknown or cyclic concepts reported. A file over
    a size limit is the only problem reported, and nothing is read."""
    base = Path(folder)
    parsed = Parsed()
    if not base.is_dir():
        return parsed, [RuleError(str(base), None, "rules folder does not exist")]
    try:
        found = sizes(base, limits)
    except TooLarge as e:
        return parsed, [e]
    if not found:
        return parsed, [RuleError(str(base), None, "no *.yaml rule files in the rules folder")]
    errors: list[RuleError] = []
    for path in found:
        try:
            with path.open("rb") as fh:  # bounded: the file may have grown since it was measured
                raw = fh.read() if limits.file is None else fh.read(limits.file + 1)
            if limits.file is not None and len(raw) > limits.file:
                raise TooLarge(str(path), len(raw), limits.file, limits.file_setting)
            text = raw.decode("utf-8")
        except TooLarge as e:
            return Parsed(), [e]
        except (OSError, UnicodeDecodeError) as e:
            errors.append(RuleError(str(path), None, f"cannot read: {e}"))
            continue
        one = Parsed(concepts=dict(parsed.concepts), where=dict(parsed.where))
        try:
            parse_text(text, str(path), one)
        except RuleError as e:
            errors.append(e)
            continue
        parsed.concepts, parsed.where = one.concepts, one.where
        parsed.rules.extend(one.rules)
    seen: dict[str, Rule] = {}
    for r in parsed.rules:
        if r.id in seen:
            errors.append(RuleError(r.path, r.line, f"rule id {r.id!r} is already used at "
                                    f"{seen[r.id].path}:{seen[r.id].line}"))
        seen.setdefault(r.id, r)
    parsed.rules = list(seen.values())
    errors.extend(check_refs(parsed))
    return parsed, errors


def check_refs(parsed: Parsed) -> list[RuleError]:
    """Unknown concepts, and concepts that include themselves."""
    errors: list[RuleError] = []

    def walk(node: Node | Term | Ref, stack: tuple[str, ...]) -> None:
        if isinstance(node, Ref):
            if node.name not in parsed.concepts:
                known = ", ".join(sorted(parsed.concepts)) or "none defined"
                errors.append(RuleError(node.path, node.line, f"unknown concept @{node.name} (known: {known})"))
            elif node.name in stack:
                errors.append(RuleError(node.path, node.line, "concept cycle: " +
                                        " -> ".join(f"@{n}" for n in (*stack, node.name))))
            else:
                walk(parsed.concepts[node.name], (*stack, node.name))
        elif isinstance(node, Node):
            for c in node.children:
                walk(c, stack)

    for r in parsed.rules:
        walk(r.tree, ())
        if r.about is not None:
            walk(r.about, ())
    for name, node in parsed.concepts.items():
        walk(node, (name,))
    return errors
