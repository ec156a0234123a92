"""The JSON Schema (draft 2020-12) of rule files, for editors: ``monitor rules schema > rules.schema.json``
and a first line ``# yaml-language-server: $schema=rules.schema.json`` in a rule file give completion,
hover help (every key has a description with examples) and most errors while typing.

``syntax.py`` is the authority; this schema accepts what it accepts, as far as JSON Schema can say it.
Only keywords that draft-07 validators understand too are used (the VS Code YAML extension validates
with draft-07 semantics): ``if``/``then`` instead of ``dependentRequired``, no ``unevaluatedProperties``,
and every ``$ref`` stands alone (draft-07 ignores a ``$ref``'s siblings).

Checked by the loader only (``monitor rules check``), not here:

- a key given twice; rule ids and concept names used twice, also across files;
- ``@name`` naming a concept that exists, and concepts that include themselves;
- a ``/regex/`` term being valid RE2 (no backreferences or lookarounds);
- the inside of a word term: ``=`` right before a word and ``*`` right after one, not both on one word,
  at least three letters before ``*``, at least one letter or digit (Unicode letters: JSON Schema
  patterns differ between Python and JavaScript there, so the schema does not try);
- YAML merge keys (``<<: *base``): the loader rejects them, a YAML library merges them before
  validation, so the schema never sees them.

Known differences, all from YAML scalars being read as typed values for the schema but as text by the
loader: enum values (severity, fields, in) padded with spaces inside quotes (``severity: " urgent"``)
are rejected here and accepted by the loader; ``null`` (``title: null``, ``- null``) is rejected here
and read as the text "null" by the loader; a YAML 1.1 reader (PyYAML) turns ``no`` into false (accepted
as a language: Norwegian), ``2024-02-24`` into a date (rejected here: no JSON type) and ``0x10`` into
16 (a number here, not a number for the loader); quoted numbers (``min_hits: "2"``) are rejected here.
"""

from __future__ import annotations

import copy
from typing import Any

from .operators import NAMES, OPERATORS
from .operators import WITHIN as WITHIN_OPS
from .tree import _AGE, _CONCEPT, _ID, DEFAULT_WITHIN, FIELDS, SEVERITIES

DRAFT = "https://json-schema.org/draft/2020-12/schema"
NAME = _CONCEPT.pattern[1:-1]
LOOKING = tuple(name for name, op in OPERATORS.items() if not op.negates)  # they look for something

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/$defs/{name}"}


def one_or_list(item: Schema, description: str, **extra: Any) -> Schema:
    """One value, or a non-empty list of them (how the loader reads channels, fields, tags, ...)."""
    return {"description": description, **extra, "if": {"type": "array"},
            "then": {"minItems": 1, "items": item}, "else": item}


def text(description: str) -> Schema:
    # YAML scalars such as 2024 or yes are text to the loader; not empty, not only spaces
    return {"description": description, "type": ["string", "number", "boolean"], "pattern": r"\S"}


def number(description: str, default: float) -> Schema:
    return {"description": description, "type": "number", "minimum": 0, "maximum": 1_000_000, "default": default}


def terms(items: str, description: str, min_items: int = 1, scalar: bool = True) -> Schema:
    """An operator's value: a list of ``items`` (at least ``min_items``), or one term."""
    listed = {"type": "array", "minItems": min_items, "items": ref(items)}
    if not scalar:
        return {"description": description, **listed}
    return {"description": description, "if": {"type": "array"}, "then": listed, "else": ref("term")}


FIELD = {"enum": list(FIELDS)}
WITHIN_NEEDS_NEAR = {"if": {"required": ["within"]}, "then": {"anyOf": [{"required": [op]} for op in WITHIN_OPS]}}

# Each operator's value, from its entry in operators.OPERATORS.
OP_PROPERTIES: dict[str, Schema] = {
    name: terms("item" if op.holds_none else "strict_item", op.help, min_items=op.min_children, scalar=op.scalar)
    for name, op in OPERATORS.items()
}
WITHIN = number(f"For {' and '.join(f'`{op}`' for op in WITHIN_OPS)} only: at most this many words between "
                f"the hits (default {DEFAULT_WITHIN}). E.g. `within: 5`.", DEFAULT_WITHIN)

RULE_PROPERTIES: dict[str, Schema] = {
    "id": {"description": "Required. Unique across all rule files; lower-case letters, digits, `-` and `_`, "
           "starting with a letter or digit. E.g. `id: kursk-nuclear-plant`.",
           "type": ["string", "integer"], "pattern": rf"^\s*{_ID.pattern[1:-1]}\s*$",
           "minimum": 0},
    "title": text("Required. Shown in alerts. E.g. `title: Kursk region`."),
    "description": text("Free text for people; the matcher ignores it. E.g. `description: Fighting in "
                        "and around the Kursk region`."),
    "severity": {"description": "How urgent an alert is: `info`, `normal` (default) or `urgent`. E.g. "
                 "`severity: urgent`.", "enum": list(SEVERITIES), "default": "normal"},
    "channels": one_or_list(text("A channel name or tag from the config."), "Channels (names or tags) "
                            "to alert; default: `notify.default_channels`. E.g. `channels: [team, sms]` or "
                            "`channels: team`."),
    "fields": one_or_list(FIELD, "Where to look: any of `title`, `summary`, `body` (default: all three). "
                          "E.g. `fields: [title, summary]`.", default=list(FIELDS)),
    "min_hits": number("Fire only when the hits score at least this; a hit in the title counts "
                       "`title_weight`, elsewhere 1. E.g. `min_hits: 2`.", 1),
    "title_weight": number("What a hit in the title counts towards `min_hits` (default 2). E.g. "
                           "`title_weight: 3`.", 2),
    "alert_at": {"description": "Salience (0 to 1: how much the article is about the topic) from which a match "
                 "alerts (default 0.5). E.g. `alert_at: 0.7`.", "type": "number", "minimum": 0, "maximum": 1,
                 "default": 0.5},
    "digest_at": {"description": "Salience from which a match below `alert_at` goes to the channel's digest "
                  "under \"Also mentioned\"; below it the match is stored only (default 0.15). E.g. "
                  "`digest_at: 0.3`.", "type": "number", "minimum": 0, "maximum": 1, "default": 0.15},
    "about": one_or_list(ref("strict_item"), "Words an article ABOUT the topic uses besides the topic's own "
                         "(for Kursk: the war). They never make the rule fire; a mention outside title and "
                         "lead in an article whose other sentences hardly use them weighs as passing (digest, "
                         "not alert). E.g. `about: [\"@war\"]`."),
    "feeds": one_or_list(text("A glob on the feed's URL or title, e.g. `*.bbc.co.uk/*`."), "Only articles "
                         "from feeds whose URL or title matches one of these globs (case-insensitive). E.g. "
                         "`feeds: [\"*tagesschau.de*\", \"Meduza*\"]`."),
    "skip_feeds": one_or_list(text("A glob on the feed's URL or title, e.g. `*/sport/*`."), "Leave out "
                              "articles from feeds whose URL or title matches one of these globs (case-"
                              "insensitive): a source whose matches the team keeps judging not relevant "
                              "(`monitor rules test` names them). E.g. `skip_feeds: [\"*/sport/*\"]`."),
    "tags": one_or_list(text("A feed tag."), "Only articles from feeds with at least one of these tags. "
                        "E.g. `tags: [ukraine, osint]`."),
    "languages": one_or_list(
        {"anyOf": [{"type": "string", "pattern": r"^\s*[a-z]{2}\s*$"},
                   {"const": False, "description": "`no` (Norwegian), which YAML 1.1 reads as false"}]},
        "Only articles in these languages (two-letter codes). E.g. `languages: [de, en, ru, uk]`."),
    "max_age": {"description": "Ignore articles older than this (by their date): a number and a unit "
                "s, m, h, d or w. E.g. `max_age: 3d`, `max_age: 12h`.", "type": "string",
                "pattern": _AGE.pattern},
    "match": {"description": "What to look for, as one term, a list (any one of it) or a group. E.g. "
              "`match: {near: [\"@kursk\", \"@nuclear\"], within: 8}`.", "allOf": [ref("item")]},
    "within": WITHIN,
    **OP_PROPERTIES,
}

GROUP_PROPERTIES: dict[str, Schema] = {
    **OP_PROPERTIES,
    "within": WITHIN,
    "in": one_or_list(FIELD, "Where this group looks instead of the rule's `fields`. E.g. `{any: [Kursk], "
                      "in: title}` or `in: [title, summary]`."),
}

# A rule must look for something: an operator other than none, or a match that is not a none group.
LOOKS_FOR_SOMETHING = {"anyOf": [{"required": [op]} for op in LOOKING] + [
    {"required": ["match"], "properties": {"match": {"not": {"type": "object", "required": ["none"]}}}}]}

TERM = {
    "description": "A term: a word or phrase (`North Korean troops`, any punctuation between the words), "
                   "a prefix (`Soldat*`), an exact form without stemming (`=Kurs`), an RE2 regex "
                   "(`/\\bF-?16s?\\b/`) or a concept (`@kursk`, quoted in YAML: `\"@kursk\"`). "
                   "Case-, accent- and ß-insensitive, whole words.",
    "type": ["string", "number", "boolean"],
    "pattern": rf"^\s*(?:@{NAME}\s*$|[^@\s])",
}

DEFS: dict[str, Schema] = {
    "term": TERM,
    # in `all`, `match` and nested lists: anything, including a `none` group
    "item": {"if": {"type": "object"}, "then": ref("group"),
             "else": {"if": {"type": "array"}, "then": ref("list"), "else": ref("term")}},
    # in `any`, `none`, `near`, `same_sentence`: no `none` group
    "strict_item": {"if": {"type": "object"}, "then": ref("group_not_none"),
                    "else": {"if": {"type": "array"}, "then": ref("list"), "else": ref("term")}},
    "list": {"description": "A nested list: any one of its terms or groups, e.g. `all: [[Kursk, Курск*], "
             "drone*]`.", "type": "array", "minItems": 1, "items": ref("item")},
    "group": {
        "description": f"A group: exactly one of {', '.join(NAMES)}; `within` with near; "
                       "`in` to look in other fields. E.g. `{near: [Kursk, \"AKW\"], within: 5, in: [body]}`.",
        "type": "object", "properties": GROUP_PROPERTIES, "additionalProperties": False,
        "oneOf": [{"required": [op]} for op in NAMES], **WITHIN_NEEDS_NEAR,
    },
    "group_not_none": {"description": "A group (a `none` group belongs in a rule or an `all` group).",
                       "allOf": [ref("group")], "not": {"required": ["none"]}},
    "checks": {"required": ["id", "title"], "allOf": [LOOKS_FOR_SOMETHING, WITHIN_NEEDS_NEAR]},
    "rule": {"description": f"A rule: `id`, `title` and what to look for ({', '.join(LOOKING)} "
                            "or match; none only excludes).",
             "type": "object", "properties": RULE_PROPERTIES, "additionalProperties": False,
             "allOf": [ref("checks")]},
}

TERM_LIST = {"type": "array", "minItems": 1, "items": ref("term")}
CONCEPTS = {
    "description": "Named lists of terms, used in any rule (of any file) as `\"@name\"`. A list, or a "
                   "mapping of two-letter language codes (for stemming) or `common` to lists. E.g. "
                   "`concepts: {kursk: {de: [Kursk, Kursker*], ru: [Курск*], common: [\"/Kursk-?\\d+/\"]}}`.",
    "type": "object",
    "propertyNames": {"pattern": _CONCEPT.pattern},
    "additionalProperties": {
        "description": "A concept: a list of terms (`[Kursk, Курск*]`) or languages to lists "
                       "(`{de: [Kursk], uk: [Курськ*], common: [\"@region\"]}`).",
        "if": {"type": "object"},
        "then": {"minProperties": 1, "propertyNames": {"pattern": "^(?:[a-z]{2}|common)$"},
                 "additionalProperties": TERM_LIST},
        "else": TERM_LIST,
    },
}
RULES = {"description": "Several rules in one file: a non-empty list of rules (each with id, title, ...).",
         "type": "array", "minItems": 1, "items": ref("rule")}


def schema() -> dict:
    """The JSON Schema of one rule file: a rule (with `id`), or `rules:` and/or `concepts:`."""
    return copy.deepcopy({
        "$schema": DRAFT,
        "title": "monitor rule file",
        "description": f"A rule (id, title, {'/'.join(NAMES)}/match), or `rules:` (a list of "
                       "rules) and/or `concepts:` (named term lists). A rule file may also carry `concepts:`.",
        "type": "object",
        "properties": {"rules": RULES, "concepts": CONCEPTS, **RULE_PROPERTIES},
        "additionalProperties": False,
        "if": {"required": ["id"]},
        "then": ref("checks"),
        "else": {"propertyNames": {"enum": ["rules", "concepts"]},
                 "anyOf": [{"required": ["rules"]}, {"required": ["concepts"]}]},
        "$defs": DEFS,
    })
