"""The first rule language: folding, word boundaries, prefixes, any/all/none, fields,
snippets, and the shipped rules against hand-written cases."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from monitor import rules
from monitor.errors import RuleError
from monitor.models import Article, Rule

ROOT = Path(__file__).resolve().parent.parent
CASES = yaml.safe_load((Path(__file__).parent / "data" / "rules_cases.yaml").read_text("utf-8"))
SHIPPED = rules.load(ROOT / "rules")


@pytest.mark.parametrize("case", CASES, ids=[c["text"][:40] for c in CASES])
def test_shipped_rules(case):
    fired = [m.rule_id for m in rules.match(SHIPPED, Article(title="", text=case["text"]))]
    assert fired == case["fire"]


def _one(text: str, title: str = "", summary: str = "", **rule) -> list:
    rs = rules.RuleSet.of([Rule(id="r", title="R", **rule)])
    return rules.match(rs, Article(title=title, text=text, summary=summary))


@pytest.mark.parametrize("term,text,hit", [
    ("Kursk*", "Kursk-Region", True),
    ("Kursk*", "die Kursker Gegend", True),
    ("Kurs", "Kurskorrektur", False),
    ("Kurs", "der Kurs fällt", True),
    ("Kursk", "KURSK", True),
    ("Straße", "Hauptstrasse", False),
    ("Straße", "an der STRASSE", True),
    ("Kyiv", "Kyïv", True),
    ("Żytomierz", "Zytomierz", True),
    ("North Korean troops", "north-korean\ntroops", True),
    ("North Korean troops", "North Koreans troops", False),
    ("nordkoreanisch* Soldat*", "nordkoreanischer Soldaten", True),
    ("Курск*", "в Курской области", True),
    ("ё", "е", True),
])
def test_term_semantics(term, text, hit):
    assert bool(_one(text, any=(term,))) is hit


def test_all_any_none_and_fields():
    rule = {"all": ("Kursk",), "any": ("Truppen", "Soldaten"), "none": ("Übung",)}
    assert _one("Truppen in Kursk", **rule)
    assert not _one("Truppen in Moskau", **rule)  # all missing
    assert not _one("Kursk im Winter", **rule)  # any missing
    assert not _one("Truppen in Kursk bei einer Übung", **rule)  # none present
    assert _one("nichts", title="Kursk", summary="Truppen", **rule)  # across fields
    assert not _one("Kursk Truppen", fields=("title",), **rule)  # body not in scope


def test_match_explains_terms_field_and_snippet():
    text = ("Lange Einleitung über das Wetter. " * 10 + "Dann meldeten Beobachter Gefechte bei "
            "Kursk, wo nordkoreanische Soldaten gesehen wurden. " + "Schluss. " * 30)
    [m] = _one(text, any=("Kursk", "nordkoreanisch* Soldat*", "Moskau"))
    assert m.terms == ("Kursk", "nordkoreanisch* Soldat*")
    assert m.field == "body"
    assert "**Kursk**" in m.snippet and "**nordkoreanische Soldaten**" in m.snippet
    assert m.snippet.startswith("… ") and m.snippet.endswith(" …")
    assert len(m.snippet) < 300


def test_snippet_keeps_original_text_around_folded_hits():
    [m] = _one("Die Straße nach Kyïv ist gesperrt.", any=("kyiv",))
    assert m.snippet == "Die Straße nach **Kyïv** ist gesperrt."


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    p = folder / name
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize("content,line,problem", [
    ("id: x\ntitle: X\nany: [a\n", 4, "not valid YAML"),
    ("id: x\ntitle: X\n", 1, "needs at least one term"),
    ("title: X\nany: [a]\n", 1, "missing required key 'id'"),
    ("id: x\ntitle: X\nany: Kursk\n", 3, "'any' must be a list"),
    ("id: x\ntitle: X\nany: [a]\ncolour: red\n", 4, "unknown key 'colour'"),
    ("id: X Y\ntitle: X\nany: [a]\n", 1, "id 'X Y'"),
    ("id: x\ntitle: X\nany: [a]\nfields: [title, footer]\n", 4, "unknown field 'footer'"),
    ("id: x\ntitle: X\nany: ['Ku*rsk']\n", 3, "'*' is only allowed at the end"),
    ("id: x\ntitle: X\nany: ['North-*']\n", 3, "'*' is only allowed at the end"),
    ("id: x\ntitle: X\nany: ['--']\n", 3, "no letters or digits"),
    ("- just a list\n", 1, "expected a rule"),
])
def test_broken_rule_files_name_file_line_and_problem(tmp_path, content, line, problem):
    path = _write(tmp_path / "r", "bad.yaml", content)
    with pytest.raises(RuleError) as err:
        rules.load(tmp_path / "r")
    assert err.value.path == str(path)
    assert err.value.line == line
    assert problem in err.value.problem
    assert str(err.value).startswith(f"{path}:{line}: ")


def test_duplicate_ids_across_files_and_rules_lists(tmp_path):
    folder = tmp_path / "r"
    _write(folder, "a.yaml", "rules:\n  - id: one\n    title: One\n    any: [a]\n"
                             "  - id: two\n    title: Two\n    any: [b]\n")
    _write(folder, "b.yaml", "id: two\ntitle: Again\nany: [c]\n")
    found, errors = rules.loader.check_dir(folder)
    assert [r.id for r in found] == ["one", "two"]
    assert len(errors) == 1 and "already used at" in str(errors[0]) and "a.yaml:5" in str(errors[0])


def test_unknown_channel_is_reported_with_rule_line(tmp_path):
    folder = tmp_path / "r"
    _write(folder, "a.yaml", "id: one\ntitle: One\nany: [a]\nchannels: [nowhere]\n")
    errors = rules.check(folder, channels={"console"})
    assert len(errors) == 1
    assert "channel 'nowhere' is not in the config" in str(errors[0]) and ":1:" in str(errors[0])


def test_every_shipped_rule_file_loads():
    assert {r.id for r in SHIPPED.rules} == {"kursk", "north-korean-troops"}
    assert rules.check(ROOT / "rules", channels=set()) == []
