"""``rules.match`` after salience was made cheaper (issue 17: layouts found lazily per line,
salience remembered per article by its evidence) gives the salience, features and tier of the
slow path it replaced (tests/salience_reference.py), on the rule cases, texts written here and,
where ``../shared/corpus`` is present, its labelled news (read at run time, never copied)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import salience_reference as reference

from monitor import rules
from monitor.models import Article
from monitor.rules import salience

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus" / "topics" / "dev.jsonl"

RULES = """
concepts:
  war: {en: [fighting, troops, attack*], de: [Kämpfe, Truppen]}
rules:
  - {id: kursk, title: Kursk, any: [Kursk, Sudzha]}
  - {id: near, title: near, near: [Kursk, troops], within: 8}
  - {id: sentence, title: sentence, same_sentence: [Kursk, "@war"]}
  - {id: context, title: context, any: [Kursk], all: ["@war"]}
  - {id: council, title: council, any: [council, budget, "city hall"]}
  - {id: regex, title: regex, any: ["/\\\\d+ soldiers/", Korea]}
"""

PIECES = ["Kursk", "troops", "Sudzha", "fighting", "council", "budget", "city hall", "Korea", "12 soldiers",
          "said.", "\n", "\n\n", "- ", "• ", "1. ", "(", ")", "“", "”", "„", "\"", "«", "»", "…", "!", "?",
          "the", "news", "of", "a", "Kämpfe", "Truppen", "attack", "report:", "'", "’s", "  "]


def texts() -> list[tuple[str, str]]:
    rnd = random.Random(17)
    out = [("Ukraine advances in Kursk", "Troops pushed into Kursk. Fighting near Sudzha went on.\n\n"
            "- Kursk: more news\n- Budget talks\n- City hall\n(Kursk is near.) He said: \"Kursk troops.\"")]
    for _ in range(400):
        words = [rnd.choice(PIECES) for _ in range(rnd.randint(3, 160))]
        title = " ".join(rnd.choice(PIECES) for _ in range(rnd.randint(0, 6)))
        out.append((title, " ".join(words)))
    if CORPUS.exists():
        for line in CORPUS.read_text("utf-8").splitlines():
            row = json.loads(line)
            out.append((row.get("title") or "", row.get("text") or ""))
    return out


def weighed(ruleset: rules.RuleSet, items: list[tuple[str, str]]) -> list:
    return [[(m.rule_id, m.salience, m.features, m.tier, m.terms, m.snippet)
             for m in rules.match(ruleset, Article(title=t, text=x, summary=x[:90] if i % 3 == 0 else None,
                                                   language="en" if i % 2 else "de"))]
            for i, (t, x) in enumerate(items)]


@pytest.mark.parametrize("source", ["written", "shipped"])
def test_match_gives_what_the_slow_path_gave(monkeypatch: pytest.MonkeyPatch, source: str):
    ruleset = rules.parse(RULES) if source == "written" else rules.load(ROOT / "rules")
    items = texts()
    fast = weighed(ruleset, items)
    with monkeypatch.context() as m:
        reference.slow(m)
        slow = weighed(ruleset, items)
    assert sum(map(len, fast)) > 50
    assert fast == slow
    # a rule's about: words are counted in the sentences outside its evidence (salience.passing)
    counted = [dict(f) for ms in fast for _r, _s, f, *_ in ms if "about" in dict(f)]
    assert (source == "shipped") == bool(counted)
    assert all(0 <= f["about"] <= f["of"] - f["sentences"] for f in counted)


def test_a_layout_is_the_slow_layout():
    for _title, text in texts():
        new, old = salience.Layout(text), reference.Layout(text)
        assert (new.starts, new.lead, new.listed) == (old.starts, old.lead, old.listed)
        for at in range(0, len(text), 7):
            assert new.place(at) == old.place(at)
