"""The rule language, table-driven: ``data/rules_cases.yaml`` (every construct, one small rule
per case, in de/en/ru/uk/fr/pl) and ``data/shipped_rules_cases.yaml`` (the rules in rules/);
then errors that name the file and line, the explanation an alert carries, and the daemon
picking up changed rule files."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import RULES, write_config

from monitor import config, daemon, rules
from monitor.errors import RuleError
from monitor.models import Article, Feed
from monitor.rules.explain import SNIPPET_CONTEXT
from monitor.rules.operators import NAMES as OPS
from monitor.rules.syntax import RULE_KEYS

DATA = Path(__file__).parent / "data"
TABLE = yaml.safe_load((DATA / "rules_cases.yaml").read_text("utf-8"))
SHIPPED_CASES = yaml.safe_load((DATA / "shipped_rules_cases.yaml").read_text("utf-8"))
SHIPPED = rules.load(RULES)


def rule_text(case: dict) -> str:
    body = TABLE["rules"][case["rule"]] if isinstance(case["rule"], str) else case["rule"]
    return yaml.safe_dump({"id": "r", "title": "R", **body}, allow_unicode=True, sort_keys=False)


def article(case: dict) -> Article:
    text = case.get("text", "")
    if "repeat" in case:
        piece, times = case["repeat"]
        text = piece * times + text
    return Article(title=case.get("title", ""), text=text, summary=case.get("summary", ""),
                   language=case.get("language"), date=case.get("date"))


def feed(case: dict) -> Feed | None:
    f = case.get("feed")
    return Feed(id=1, url=f["url"], title=f.get("title"), tags=tuple(f.get("tags", ()))) if f else None


def clock(case: dict) -> float | None:
    return datetime.fromisoformat(case["now"].replace("Z", "+00:00")).timestamp() if "now" in case else None


def params(cases: list[dict], ids: list[str]) -> list[Any]:
    return [pytest.param(c, id=i, marks=[pytest.mark.xfail(strict=True, reason=c["xfail"])] if "xfail" in c else [])
            for c, i in zip(cases, ids, strict=True)]


# --- the language, one construct at a time ----------------------------------------------------

@pytest.mark.parametrize("case", params(TABLE["cases"], [c["id"] for c in TABLE["cases"]]))
def test_rule_language(case: dict):
    ruleset = rules.parse(rule_text(case), f"rules_cases.yaml:{case['id']}")
    found = rules.match(ruleset, article(case), feed(case), clock(case))
    if not case["match"]:
        assert found == []
        return
    [m] = found
    assert (m.rule_id, m.rule_title) == ("r", "R")
    assert list(m.terms) == case["terms"]
    assert list(m.context) == case.get("context", [])
    if "field" in case:
        assert m.field == case["field"]
    if "snippet" in case:
        assert case["snippet"] in m.snippet
    if "score" in case:
        assert m.score == case["score"]


def _keys(node: Any) -> set[str]:
    if isinstance(node, dict):
        return set(node) | {k for v in node.values() for k in _keys(v)}
    if isinstance(node, list):
        return {k for v in node for k in _keys(v)}
    return set()


def _terms(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [t for k, v in node.items() if k != "concepts" for t in _terms(v)]
    if isinstance(node, list):
        return [t for v in node for t in _terms(v)]
    return [str(node)]


def test_table_covers_every_construct_in_six_languages():
    cases = TABLE["cases"]
    ids = [c["id"] for c in cases]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    bodies = [TABLE["rules"][c["rule"]] if isinstance(c["rule"], str) else c["rule"] for c in cases]
    used = set().union(*map(_keys, bodies))
    assert set(RULE_KEYS) - {"id", "title", "description", "severity", "channels", "alert_at", "digest_at"} <= used
    assert {*OPS, "in", "concepts"} <= used
    terms = [t for b in bodies for t in _terms(b)]
    assert any(t.endswith("*") for t in terms) and any(t.startswith("=") for t in terms)
    assert any(t.startswith("/") for t in terms) and any(t.startswith("@") for t in terms)
    assert {"de", "en", "ru", "uk", "fr", "pl"} <= {c.get("language") for c in cases}
    assert all("terms" in c for c in cases if c["match"]), "a match names its terms"
    assert sum(not c["match"] for c in cases) >= 40  # the negative cases are half the point


def test_hostile_text_against_a_backtracking_regex_takes_linear_time():
    # Python's re needs ~2^n steps for (a+)+b on "aaa…!"; RE2 answers in one pass.
    ruleset = rules.parse("id: r\ntitle: R\nany: ['/(a+)+b/']\n")
    started = time.perf_counter()
    [m] = rules.match(ruleset, Article(title="", text="a" * 50_000 + "!ab"))
    assert time.perf_counter() - started < 1.0
    assert m.snippet.endswith("!**ab**")


# --- the shipped rules ----------------------------------------------------------------------

@pytest.mark.parametrize("case", params(SHIPPED_CASES, [
    f"{n:02d}-{c.get('language', 'any')}-{'+'.join(c['fire']) or 'none'}" for n, c in enumerate(SHIPPED_CASES, 1)]))
def test_shipped_rules(case: dict):
    found = rules.match(SHIPPED, Article(title=case.get("title", ""), text=case["text"],
                                         language=case.get("language")))
    assert [m.rule_id for m in found] == case["fire"]
    if "tiers" in case:  # salience: alert, digest or store, rule by rule
        assert [m.tier for m in found] == case["tiers"], [(m.rule_id, m.salience, dict(m.features)) for m in found]


def test_shipped_cases_cover_both_rules_and_their_traps():
    fired = [rid for c in SHIPPED_CASES for rid in c["fire"]]
    assert fired.count("kursk") >= 10 and fired.count("north-korean-troops") >= 10
    assert sum(not c["fire"] for c in SHIPPED_CASES) >= 20


def test_every_file_in_rules_loads_and_is_used():
    files = {p.name for p in [*RULES.glob("*.yaml"), *RULES.glob("*.yml")]}
    assert rules.check(RULES, channels=set(), has_default=True) == []
    assert {r.id for r in SHIPPED.rules} == {"kursk", "north-korean-troops"}
    concept_files = {Path(t.path).name for node in SHIPPED.concepts.values() for t in node.children
                     if hasattr(t, "path")}
    assert {Path(r.path).name for r in SHIPPED.rules} | concept_files == files


# --- errors name the file and the line ------------------------------------------------------

def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("content,line,problem", [
    ("id: r\ntitle: R\nany: [Kursk\n", 4, "not valid YAML"),
    ("id: r\ntitle: R\nany: [Kursk]\ncolour: red\n", 4, "unknown key 'colour'"),
    ("rules:\n  - id: r\n    title: R\n    any: [Kursk]\n    colour: red\n", 5, "unknown key 'colour'"),
    ("id: r\ntitle: R\nall:\n  - Kursk\n  - {any: [Drohne], scope: [title]}\n", 5, "unknown key 'scope'"),
    ("id: r\ntitle: R\nany:\n  - Kursk\n  - \"@nowhere\"\n", 5, "unknown concept @nowhere"),
    ("concepts:\n  a: [Kursk, \"@b\"]\n  b: [Курск, \"@a\"]\nid: r\ntitle: R\nany: [\"@a\"]\n", 3,
     "concept cycle: @a -> @b -> @a"),
    ("id: r\ntitle: R\nany:\n  - Kursk\n  - '/(Kursk) \\1/'\n", 5, "not valid RE2"),
    ("id: r\ntitle: R\nany:\n  - '/Kursk(?! submarine)/'\n", 4, "not valid RE2"),
    ("id: r\ntitle: R\nany: ['Ku*']\n", 3, "a prefix needs at least 3 letters"),
    ("id: r\ntitle: R\nany: ['Kurs*k']\n", 3, "'*' right after one"),
    ("id: r\ntitle: R\nany: ['=Kursk*']\n", 3, "both exact (=) and a prefix (*)"),
    ("id: r\ntitle: R\nnear: [Kursk, Drohne]\nwithin: many\n", 4, "'within' must be a number"),
    ("id: r\ntitle: R\nany: [Kursk]\nmax_age: 3 days\n", 4, "max_age '3 days'"),
    ("concepts:\n  kursk:\n    deu: [Kursk]\n", 3, "'deu' is not a language code"),
    ("id: r\ntitle: R\nany: [Kursk]\nabout:\n  - war\n  - \"@fighting\"\n", 6, "unknown concept @fighting"),
    ("id: r\ntitle: R\nany: [Kursk]\nabout:\n  - war\n  - {none: [peace]}\n", 6,
     "'none' belongs in a rule or an 'all' group, not in 'about'"),
    ("id: r\ntitle: R\nany: [Kursk]\nabout: []\n", 4, "'about' must be a non-empty list"),
])
def test_broken_rule_files_name_file_line_and_problem(tmp_path, content, line, problem):
    path = _write(tmp_path / "r", "bad.yaml", content)
    with pytest.raises(RuleError) as err:
        rules.load(tmp_path / "r")
    assert (err.value.path, err.value.line) == (str(path), line)
    assert problem in err.value.problem
    assert str(err.value).startswith(f"{path}:{line}: ")


def test_bad_regex_is_one_clean_message(tmp_path, capfd):
    path = _write(tmp_path / "r", "rx.yaml", "id: r\ntitle: R\nany: ['/[Kursk/']\n")
    [err] = rules.check(tmp_path / "r")
    assert str(err) == (f"{path}:3: regex /[Kursk/ is not valid RE2 (linear-time: no backreferences or "
                        "lookarounds): missing ]: [Kursk")
    assert capfd.readouterr().err == ""  # RE2 itself logs nothing to stderr


def test_concepts_are_shared_across_files_and_unknown_ones_are_named_where_used(tmp_path):
    folder = tmp_path / "r"
    _write(folder, "concepts.yaml", "concepts:\n  kursk:\n    de: [Kursk]\n    ru: [Курск]\n")
    _write(folder, "uses.yaml", "id: uses\ntitle: Uses\nany: [\"@kursk\"]\n")
    [m] = rules.match(rules.load(folder), Article(title="", text="Бои под Курском.", language="ru"))
    assert m.terms == ("Курск",)
    broken = _write(folder, "zz.yaml", "id: broken\ntitle: Broken\nall:\n  - \"@kursk\"\n  - \"@drones\"\n")
    [err] = rules.check(folder)
    assert (err.path, err.line) == (str(broken), 5)
    assert "unknown concept @drones (known: kursk)" in err.problem


def test_duplicate_ids_across_files(tmp_path):
    folder = tmp_path / "r"
    first = _write(folder, "a.yaml", "rules:\n  - id: one\n    title: One\n    any: [Kursk]\n"
                                     "  - id: two\n    title: Two\n    any: [Belgorod]\n")
    second = _write(folder, "b.yaml", "# again\nid: two\ntitle: Again\nany: [Sudscha]\n")
    [err] = rules.check(folder)
    assert (err.path, err.line) == (str(second), 2)
    assert err.problem == f"rule id 'two' is already used at {first}:5"
    with pytest.raises(RuleError, match="already used"):
        rules.load(folder)


def test_check_reports_every_broken_file(tmp_path):
    folder = tmp_path / "r"
    _write(folder, "a.yaml", "id: a\ntitle: A\nany: [Kursk\n")
    _write(folder, "b.yaml", "id: b\ntitle: B\nany: [Kursk]\n")
    _write(folder, "c.yaml", "id: c\ntitle: C\nnear: [Kursk]\n")
    errors = rules.check(folder)
    assert [(Path(e.path).name, e.line) for e in errors] == [("a.yaml", 4), ("c.yaml", 3)]


# --- what an alert carries ------------------------------------------------------------------

EXPLAINED = """
id: nk-kursk
title: North Korean troops near Kursk
severity: urgent
channels: [team, sms]
all:
  - near: [nordkoreanisch* Soldat*, Kursk]
    within: 6
"""


def test_match_explains_rule_terms_field_snippet_severity_and_channels():
    text = ("Lange Einleitung über das Wetter und die Ernte. " * 6 + "Dann meldeten Beobachter Gefechte "
            "bei Kursk, wo nordkoreanische Soldaten gesehen wurden. " + "Sonst blieb es ruhig. " * 12)
    [m] = rules.match(rules.parse(EXPLAINED), Article(title="Lage", text=text, language="de"))
    assert (m.rule_id, m.rule_title) == ("nk-kursk", "North Korean troops near Kursk")
    assert m.terms == ("Kursk", "nordkoreanisch* Soldat*")
    assert (m.field, m.severity, m.channels, m.score) == ("body", "urgent", ("team", "sms"), 2)
    assert m.snippet.startswith("… ") and m.snippet.endswith(" …")
    assert "Gefechte bei **Kursk**, wo **nordkoreanische Soldaten** gesehen wurden." in m.snippet
    assert len(m.snippet) < 2 * SNIPPET_CONTEXT + 80
    assert m == dataclasses.replace(m)  # a whole Match, though the engine builds it without __init__


def test_shipped_rule_keeps_its_war_context_apart_from_its_topic():
    # north-korean-troops requires "@war_context" (its all:); kursk has no such clause (issue 14)
    text = "Ukraine says it captured two North Korean soldiers near Kursk."
    kursk, nk = rules.match(SHIPPED, Article(title="", text=text, language="en"))
    assert (nk.rule_id, nk.terms) == ("north-korean-troops", ("North Korean", "soldier"))
    assert nk.context == ("Ukraine", "Kursk")  # Kursk is in @war_context too
    assert "**Ukraine** says" in nk.snippet  # the snippet still marks the context words
    assert (kursk.rule_id, kursk.terms, kursk.context) == ("kursk", ("Kursk",), ())


def test_snippet_quotes_the_original_text_and_marks_adjacent_hits_as_one():
    ruleset = rules.parse("id: r\ntitle: R\nall: [Kyiv, {near: [North Korean, troops], within: 0}]\n")
    text = "In Kyïv, officials said\nNorth-Korean troops had moved."
    [m] = rules.match(ruleset, Article(title="", text=text, language="en"))
    assert m.snippet == "In **Kyïv**, officials said **North-Korean troops** had moved."
    assert (m.severity, m.channels) == ("normal", ())


def test_snippet_quotes_the_window_that_made_the_rule_true():
    ruleset = rules.parse("id: r\ntitle: R\nnear: [Kursk, Drohne]\nwithin: 2\n")
    text = "Kursk meldete am Morgen nichts. " + "Es war ruhig. " * 20 + "Später stürzte bei Kursk eine Drohne ab."
    [m] = rules.match(ruleset, Article(title="Kursk", text=text, language="de"))
    assert m.field == "body"
    assert m.snippet.endswith("Später stürzte bei **Kursk** eine **Drohne** ab.")
    assert m.snippet.startswith("… ")


def test_a_title_hit_is_quoted_when_only_the_title_matches():
    ruleset = rules.parse("id: r\ntitle: R\nany: [Курськ]\n")
    [m] = rules.match(ruleset, Article(title="Вибухи в Курську", text="Деталі згодом.", language="uk"))
    assert (m.field, m.snippet, m.score) == ("title", "Вибухи в **Курську**", 2)


def test_full_word_caches_start_again_without_losing_a_match(monkeypatch):
    """The engine remembers each word's atoms, and morph each word's stems, up to a limit;
    a full cache is replaced by a new one. Articles keep matching across the replacements."""
    from monitor.rules import engine, morph
    monkeypatch.setattr(engine, "_WORD_CACHE_LIMIT", 8)
    monkeypatch.setattr(morph, "_CACHE_LIMIT", 8)
    monkeypatch.setattr(morph, "_KEYS", {})
    ruleset = rules.parse("id: r\ntitle: R\nany: [Kursk, Truppe]\n")
    for n in range(30):
        filler = " ".join(f"Wort{n}x{k}" for k in range(n % 7 + 3))
        found = rules.match(ruleset, Article(title="", text=f"{filler} Truppen bei Kursk {filler}.", language="de"))
        assert [m.terms for m in found] == [("Truppe", "Kursk")], n
    assert len(ruleset.engine._words[morph.keys_for("de")]) <= 8 + 16


# --- the daemon picks up changed rule files ---------------------------------------------------

def _touch(path: Path, text: str) -> None:
    """Write and move the modification time on, so the change shows even within one clock tick."""
    path.write_text(text, encoding="utf-8")
    bumped = path.stat().st_mtime_ns + 5_000_000_000
    os.utime(path, ns=(bumped, bumped))


def _watch(d: daemon.Daemon) -> None:
    """One tick's look at the folder, and the reload it started (on a thread) to its end."""

    async def tick() -> None:
        d.watch_rules()
        if d.loading is not None:
            await d.loading

    asyncio.run(tick())


def test_changed_rule_files_are_reloaded_and_a_broken_one_keeps_the_last_good_set(
        tmp_path, rules_copy, caplog):
    cfg = config.load(write_config(tmp_path, feeds=[], channels={"console": ["log://"]}, rules=rules_copy))
    d = daemon.Daemon(cfg, daemon.load_rules(cfg, daemon.notifier_for(cfg)))
    _watch(d)  # nothing changed: the same set
    first = d.ruleset
    assert [r.id for r in first.rules] == ["kursk", "north-korean-troops"]

    _touch(rules_copy / "weather.yaml", "id: weather\ntitle: Weather\nany: [Gewitter]\n")
    _watch(d)
    assert [r.id for r in d.ruleset.rules] == ["kursk", "north-korean-troops", "weather"]
    good = d.ruleset

    caplog.set_level(logging.INFO, logger="monitor.daemon")
    _touch(rules_copy / "weather.yaml", "id: weather\ntitle: Weather\nany: [Gewitter\n")
    _watch(d)
    assert d.ruleset is good
    assert "rules reload failed, keeping the last good set of 3 rules" in caplog.text
    assert f"{rules_copy / 'weather.yaml'}:4: not valid YAML" in caplog.text
    _watch(d)  # the broken file is not retried until it changes again
    assert caplog.text.count("rules reload failed") == 1

    _touch(rules_copy / "weather.yaml", "id: storm\ntitle: Storm\nany: [Sturm]\n")
    _watch(d)
    assert [r.id for r in d.ruleset.rules] == ["kursk", "north-korean-troops", "storm"]
    [m] = rules.match(d.ruleset, Article(title="Sturm über Berlin", text="", language="de"))
    assert m.rule_id == "storm"
