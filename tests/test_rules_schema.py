"""The JSON Schema for rule files (monitor/rules/schema.py) agrees with the loader (syntax.py):
the shipped rules pass both, and small good and bad rule texts get the same verdict from both."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from monitor import rules
from monitor.errors import RuleError
from monitor.rules.operators import OPERATORS
from monitor.rules.schema import schema

ROOT = Path(__file__).resolve().parent.parent
RULES_DIR = ROOT / "rules"
VALIDATOR = Draft202012Validator(schema())


def rule_files() -> list[Path]:
    return sorted([*RULES_DIR.glob("*.yaml"), *RULES_DIR.glob("*.yml")])


def schema_errors(text: str) -> list[str]:
    return [e.message for e in VALIDATOR.iter_errors(yaml.safe_load(text))]


def test_schema_is_valid_2020_12():
    Draft202012Validator.check_schema(schema())
    assert schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    json.dumps(schema(), ensure_ascii=False)  # what `monitor rules schema` prints


def test_schema_is_a_fresh_copy():
    s = schema()
    s["$defs"]["term"]["pattern"] = "x"
    assert schema()["$defs"]["term"]["pattern"] != "x"


def test_every_property_has_a_description():
    missing = []

    def walk(node: object, path: str) -> None:
        if isinstance(node, dict):
            described = node.get("type") == "object"  # not the "properties" of a check such as anyOf
            for name, sub in (node.get("properties") or {}).items() if described else ():
                if not sub.get("description"):
                    missing.append(f"{path}/properties/{name}")
            for key, sub in node.items():
                walk(sub, f"{path}/{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{path}/{i}")

    walk(schema(), "#")
    assert not missing


def test_keys_match_the_loader():
    from monitor.rules import syntax

    s = schema()
    assert set(s["$defs"]["rule"]["properties"]) == set(syntax.RULE_KEYS)
    assert set(s["$defs"]["group"]["properties"]) == set(syntax.NODE_KEYS)
    assert set(s["properties"]) == {*syntax.RULE_KEYS, "rules", "concepts"}


def test_rules_folder_has_files():
    assert rule_files(), f"no rule files in {RULES_DIR}"


@pytest.mark.parametrize("path", rule_files(), ids=lambda p: p.name)
def test_shipped_rule_file_validates(path: Path):
    errors = schema_errors(path.read_text(encoding="utf-8"))
    assert not errors, f"{path.name}: {errors}"


def test_shipped_rules_load():
    assert len(rules.load(RULES_DIR)) >= 1  # raises RuleError on the first problem


GOOD = {
    "minimal": """
        id: kursk
        title: Kursk region
        any: [Kursk, Курск*]
    """,
    "filters": """
        id: kursk-urgent
        title: Kursk, urgent
        description: Fighting in the Kursk region
        severity: urgent
        channels: team
        fields: [title, summary]
        min_hits: 2
        title_weight: 3.5
        feeds: ["*tagesschau.de*", "Meduza*"]
        tags: [ukraine]
        languages: [de, en, ru, uk]
        max_age: 3d
        any: Kursk
    """,
    "concepts by language": """
        concepts:
          kursk:
            de: [Kursk, Kursker*]
            ru: [Курск*]
            common: ["/Kursk-?\\\\d+/"]
          drones: [drone*, Drohne*, "@kursk_region"]
          kursk_region: [Курщин*]
        rules:
          - id: kursk-drones
            title: Drones over Kursk
            all: ["@kursk", "@drones"]
          - id: kursk-any
            title: Kursk
            any: ["@kursk"]
    """,
    "concepts only": """
        concepts:
          nuclear: [nuclear power plant, AKW, АЭС]
    """,
    "rule with its own concepts": """
        concepts: {dprk: [North Korea*, КНДР]}
        id: dprk
        title: DPRK
        any: ["@dprk"]
    """,
    "nested groups": """
        id: nested
        title: Nested
        all:
          - {any: [Kursk, Курск*]}
          - all: [drone*, {any: [attack*, strike*]}]
          - none: [exercise*]
          - [evacuat*, shelling]
        none: [{all: [Kursk, submarine]}, Kurskorrektur*]
    """,
    "near and within": """
        id: near
        title: Near
        near: [North Korean, soldier*]
        within: 5
        all:
          - {near: [Kursk, {any: [AKW, nuclear plant]}], within: 3}
    """,
    "same_sentence and in": """
        id: sentence
        title: Sentence
        same_sentence: [Kursk, evacuat*]
        any:
          - {any: [Kursk], in: title}
          - {all: [Курск*, эвакуац*], in: [summary, body]}
    """,
    "match term": """
        id: match-term
        title: Match
        match: =Kurs
    """,
    "match list and group": """
        rules:
          - id: match-list
            title: Match list
            match: [Kursk, Курск*]
          - id: match-group
            title: Match group
            match: {near: [Kursk, nuclear], within: 8, in: [body]}
            none: exercise
    """,
    "numbers and yes as terms": """
        id: f16
        title: F-16
        any: [F-16, 2000, 1.5, yes]
        none: ["/\\\\bF-?16s?\\\\b/"]
    """,
    "scalars as text": """
        id: 2024
        title: 2024
        channels: [1]
        languages: [de, no]
        fields: title
        all: Wahl
    """,
}

BAD = {
    "unknown key": "id: a\ntitle: A\nany: [x]\nanny: [y]",
    "unknown top-level key": "rules: [{id: a, title: A, any: [x]}]\nextra: 1",
    "missing id": "title: A\nany: [x]",
    "missing title": "id: a\nany: [x]",
    "empty title": "id: a\ntitle: ''\nany: [x]",
    "bad id": "id: Kursk\ntitle: A\nany: [x]",
    "bad severity": "id: a\ntitle: A\nseverity: high\nany: [x]",
    "bad field": "id: a\ntitle: A\nfields: [title, text]\nany: [x]",
    "within without near": "id: a\ntitle: A\nwithin: 5\nany: [x, y]",
    "within in a group without near": "id: a\ntitle: A\nall: [{any: [x, y], within: 3}]",
    "group with two operators": "id: a\ntitle: A\nall: [{any: [x], all: [y]}]",
    "group with no operator": "id: a\ntitle: A\nall: [{in: [title]}]",
    "unknown group key": "id: a\ntitle: A\nall: [{any: [x], scope: [title]}]",
    "bad in": "id: a\ntitle: A\nall: [{any: [x], in: [headline]}]",
    "empty list": "id: a\ntitle: A\nany: []",
    "empty nested list": "id: a\ntitle: A\nall: [[], x]",
    "empty term": "id: a\ntitle: A\nany: ['  ']",
    "bad concept reference": "id: a\ntitle: A\nany: ['@ kursk']",
    "bad language code": "id: a\ntitle: A\nlanguages: [deu]\nany: [x]",
    "bad max_age": "id: a\ntitle: A\nmax_age: 3 days\nany: [x]",
    "max_age without unit": "id: a\ntitle: A\nmax_age: 3\nany: [x]",
    "negative min_hits": "id: a\ntitle: A\nmin_hits: -1\nany: [x]",
    "title_weight not a number": "id: a\ntitle: A\ntitle_weight: heavy\nany: [x]",
    "empty channels": "id: a\ntitle: A\nchannels: []\nany: [x]",
    "nothing to look for": "id: a\ntitle: A\nfields: [title]",
    "only none": "id: a\ntitle: A\nnone: [x]",
    "match only excludes": "id: a\ntitle: A\nmatch: {none: [x]}",
    "near with one term": "id: a\ntitle: A\nnear: [x]",
    "near as one term": "id: a\ntitle: A\nnear: x",
    "same_sentence with one term": "id: a\ntitle: A\nall: [{same_sentence: [x]}]",
    "none inside any": "id: a\ntitle: A\nany: [{none: [x]}, y]",
    "none inside none": "id: a\ntitle: A\nany: [y]\nnone: [{none: [x]}]",
    "operator as mapping": "id: a\ntitle: A\nany: {x: y}",
    "empty rules": "rules: []",
    "rule in rules without title": "rules: [{id: a, any: [x]}]",
    "concepts in a rule of rules": "rules: [{id: a, title: A, any: [x], concepts: {k: [x]}}]",
    "empty mapping": "{}",
    "a list at the top": "- id: a\n  title: A\n  any: [x]",
    "bad concept name": "concepts: {1kursk: [Kursk]}",
    "bad concept language": "concepts: {kursk: {eng: [Kursk]}}",
    "empty concept": "concepts: {kursk: []}",
    "concept without a list": "concepts: {kursk: Kursk}",
    "concept language without a list": "concepts: {kursk: {de: Kursk}}",
    "concept with a group": "concepts: {kursk: [{any: [Kursk]}]}",
    "concepts not a mapping": "concepts: [kursk]",
}


def dedent(text: str) -> str:
    import textwrap

    return textwrap.dedent(text).strip() + "\n"


def test_tables_are_big_enough():
    assert len(GOOD) >= 10 and len(BAD) >= 15


@pytest.mark.parametrize("text", GOOD.values(), ids=list(GOOD))
def test_good_rules_pass_both(text: str):
    text = dedent(text)
    assert not schema_errors(text)
    assert len(rules.parse(text)) >= (0 if "id:" not in text else 1)


@pytest.mark.parametrize("text", BAD.values(), ids=list(BAD))
def test_bad_rules_fail_both(text: str):
    assert schema_errors(text), "the schema accepts it"
    with pytest.raises(RuleError):
        rules.parse(text)


# --- one table of operators (monitor/rules/operators.py) -------------------------------------

@pytest.mark.parametrize("name", list(OPERATORS))
def test_every_operator_has_syntax_schema_and_evaluation(name: str):
    """Each entry of the table is read by the loader, described by the schema and evaluated by
    the matcher: a rule using it parses, validates, compiles and decides on an article."""
    from monitor.models import Article

    op = OPERATORS[name]
    s = schema()
    for where in (s["$defs"]["rule"]["properties"], s["$defs"]["group"]["properties"]):
        assert name in where and where[name]["description"] == op.help
    assert {"required": [name]} in s["$defs"]["group"]["oneOf"]
    # A rule of the operator alone, or, for one that only excludes, beside what it excludes from.
    text = f"id: t\ntitle: T\n{name}: [Sturm, Berlin]\n" + ("any: [Sturm]\n" if op.negates else "")
    assert not schema_errors(text)
    ruleset = rules.parse(text)
    assert name in {part.op for part in ruleset.rules[0].tree.children}
    found = rules.match(ruleset, Article(title="Sturm über Berlin", text="", language="de"))
    assert [m.rule_id for m in found] == ([] if op.negates else ["t"])
    grouped = f"id: g\ntitle: G\nall: [Regen, {{{name}: [Sturm, Berlin]}}]\n"
    assert not schema_errors(grouped)
    found = rules.match(rules.parse(grouped), Article(title="Regen, Sturm, Berlin", text="", language="de"))
    assert [m.rule_id for m in found] == ([] if op.negates else ["g"])


def test_an_unknown_operator_is_refused_everywhere():
    """Not in the table: the loader and the schema refuse the key, and a tree built in code
    (no YAML) is refused when compiled instead of being evaluated as another operator."""
    from monitor.rules.tree import Node, Rule, Term, Word

    text = "id: t\ntitle: T\nnearby: [Sturm, Berlin]\n"
    assert schema_errors(text)
    with pytest.raises(RuleError, match="unknown key 'nearby'"):
        rules.parse(text)
    terms = tuple(Term(w, words=(Word(w.casefold()),)) for w in ("Sturm", "Berlin"))
    odd = Rule(id="t", title="T", tree=Node("all", (Node("nearby", terms, line=3),)), path="x.yaml")
    with pytest.raises(RuleError, match=r"^x\.yaml:3: unknown operator 'nearby' \(known: any, all, none, "):
        rules.RuleSet.of([odd])
