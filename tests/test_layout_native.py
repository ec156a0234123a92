"""Salience's layout in C (monitor/rules/_layout.c) gives what salience.py's Python gives: where
sentences start, a line's quotes and asides, its list tests, on texts made of the characters
those tests turn on (end marks, closers, every kind of quote, bullets, digits of other scripts,
white space that is not a space), and the layout and salience of whole articles with C and
without it (tests/test_salience_reference.py holds both to the slow path)."""

from __future__ import annotations

import shutil
import sysconfig
from bisect import bisect_left

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor import rules
from monitor.models import Article
from monitor.rules import morph, salience, textfield
from monitor.rules.textfield import Field

native = salience.native

PIECES = list("ab _1²٣\u00a0\u2028\t\r\n.!?…\"”»“’')]([„«‘-–—•·*▪►+:x") + ["word", "  ", "12", "3)", "4.", "_"]
texts = st.lists(st.sampled_from(PIECES) | st.text(max_size=3), max_size=80).map("".join)


def python_line(text: str, start: int, end: int) -> tuple:
    line = text[start:end]
    return ([m.span() for m in salience._QUOTES.finditer(text, start, end)],
            [m.span() for m in salience._ASIDE.finditer(text, start, end)],
            salience._BULLET.match(line) is not None, salience._is_short(line))


def test_the_c_layout_is_built_where_a_compiler_is():
    """The install builds it when it finds a C compiler; a build that failed silently
    would leave salience on its Python, ten times slower."""
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None:
        assert native is None
    else:
        assert native is not None, f"{cc} is here but monitor/rules/_layout.c was not built: pip install -e ."


needs_native = pytest.mark.skipif(native is None, reason="no C compiler at install: salience runs on its Python")


@needs_native
@settings(max_examples=3000, deadline=None)
@given(texts, st.data())
def test_c_and_python_agree(text: str, data: st.DataObject):
    assert native.sentence_starts(text) == salience.python_sentence_starts(text)
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    assert native.line_facts(text, start, end) == python_line(text, start, end)
    assert native.is_short(text, start, end) == salience._is_short(text[start:end])
    assert native.bullet(text, start, end) == (salience._BULLET.match(text[start:end]) is not None)


def python_weigh(text: str, offsets: list[int], summary: bool) -> tuple:
    """Doc.weigh_term's Python loop over one field's offsets, on salience.py's Python alone."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(salience, "native", None)
        lay = salience.Layout(text)
        lead, seen, prose, quoted, aside, listed, done = False, 0, 0, 0, 0, 0, set()
        for at in offsets:
            k, q, a, on_list = lay.spot(at)
            if k in done:
                continue
            done.add(k)
            seen += 1
            lead = lead or summary or (k < lay.lead_sentences and not on_list)
            listed += on_list
            quoted += q
            aside += a
            prose += not (on_list or q or a)
        return lead, seen, prose, quoted, aside, listed


@needs_native
@settings(max_examples=1500, deadline=None)
@given(texts, st.data())
def test_c_weighs_and_places_as_python_does(text: str, data: st.DataObject):
    starts = salience.python_sentence_starts(text)
    offsets = data.draw(st.lists(st.integers(0, len(text)), max_size=12))
    summary = data.draw(st.booleans())
    if starts:
        assert native.weigh(text, starts, offsets, salience.LEAD_SENTENCES, summary) == \
            python_weigh(text, offsets, summary)
        with pytest.MonkeyPatch.context() as m:
            m.setattr(salience, "native", None)
            lay = salience.Layout(text)
            assert native.places(text, starts, offsets) == [lay.spot(at) for at in offsets]
    else:
        assert native.weigh(text, starts, offsets, salience.LEAD_SENTENCES, summary)[1] == 0


@needs_native
@pytest.mark.parametrize("opens,closes,longest", [("„", "“", 600), ("“", "”", 600), ("«", "»", 600),
                                                  ("»", "«", 600), ('"', '"', 600), ("‘", "’", 600),
                                                  ("(", ")", 400)])
def test_the_longest_quote_and_aside(opens: str, closes: str, longest: int):
    for size in (0, 1, longest - 1, longest, longest + 1):
        text = f"He said {opens}{'a' * size}{closes} and left."
        got = native.line_facts(text, 0, len(text))
        assert got == python_line(text, 0, len(text))
        assert bool(got[0] or got[1]) == (1 <= size <= longest)


@needs_native
def test_offsets_outside_the_text_are_clamped_and_wrong_types_refused():
    text = "One. Two (three) “four”."
    assert native.line_facts(text, -5, 999) == python_line(text, 0, len(text))
    assert native.line_facts(text, 10, 3) == ([], [], False, True)
    with pytest.raises(TypeError):
        native.sentence_starts(b"bytes")
    with pytest.raises(TypeError):
        native.line_facts(None, 0, 1)
    with pytest.raises(ValueError):
        native.weigh(text, [0, 5], [999], 2, False)
    many = "Kursk. " * 5000  # every sentence once, however many there are
    starts = native.sentence_starts(many)
    assert native.weigh(many, starts, list(range(0, len(many), 3)), 2, False)[1] == 5000


ARTICLES = [
    ("Kursk", "Troops pushed into Kursk. Fighting near Sudzha went on!\n\n- Kursk: more news\n- Budget\n"
     "- City hall\n(Kursk is near.) He said: „Kursk troops.“ «Kursk» ‘Kursk’s’ … Kursk?\n1) Kursk\n2) one"),
    ("", "Short\nlines\nabout\nKursk\nhere.\n\nA long paragraph on Kursk that goes on and on, with many words, "
     "more than twelve of them, and ends without a mark"),
]


@pytest.mark.parametrize("title,text", ARTICLES)
def test_layout_and_salience_the_same_with_c_and_without(monkeypatch: pytest.MonkeyPatch, title: str, text: str):
    ruleset = rules.parse("rules:\n  - {id: k, title: K, any: [Kursk, troops]}\n"
                          "  - {id: s, title: S, near: [Kursk, Sudzha]}")

    def seen() -> tuple:
        lay = salience.Layout(text)
        places = [lay.spot(at) for at in range(len(text))]
        matches = rules.match(ruleset, Article(title=title, text=text))
        weighed = [(m.rule_id, m.salience, m.features, m.tier) for m in matches]
        return lay.starts, lay.lead, lay.listed, places, weighed

    with_c = seen()
    monkeypatch.setattr(salience, "native", None)
    monkeypatch.setattr(textfield, "native", None)
    assert seen() == with_c
    assert with_c[-1]


# What the tokenizer turns on: words of one and more letters, "ß" and letters that casefold to
# two ("ﬁ", "İ"), possessives, end marks with and without white space after, separators, a
# combining mark, "_", digits, the stand-ins' own characters (the regex path), odd white space.
TOKEN_PIECES = ["Kursk", "a", "Straße", "ﬁne", "İz", "Putin's", "it’s", ".", "!", "?", "!.", "3.5", " ", "  ",
                "\n", "\u00a0", "\x1c", ",", "-", "(", "»", "_", "e\u0301", "ª", "º", "…", "x1", "Ёлка", "٣"]
token_texts = st.lists(st.sampled_from(TOKEN_PIECES) | st.text(max_size=2), max_size=60).map("".join)


@needs_native
@settings(max_examples=3000, deadline=None)
@given(token_texts)
def test_every_tokens_offsets_in_c_are_the_tokenizers(text: str):
    """``Field.span`` from the C part's ``token_spans`` (one pass over ``Tokens.spaced``) is the
    span found one token at a time without it, and the regex scan's (``morph.spans``); and so is
    ``starts_before`` (the tokens starting before each character offset: where a regex's match
    starts and ends), from those offsets or, without them, from the runs of ``spaced``."""
    tokens = morph.tokenize(text)
    points = list(range(len(text) + 1))
    with pytest.MonkeyPatch.context() as m:
        m.setattr(textfield, "native", None)
        alone = Field("body", text, tokens)
        one_by_one = [alone.span(i) for i in range(len(tokens.words) + 2)]
        before_alone = Field("body", text, tokens).starts_before(points)
    field = Field("body", text, tokens)
    assert [field.span(i) for i in range(len(tokens.words) + 2)] == one_by_one
    assert one_by_one[:len(tokens.words)] == morph.spans(text)
    starts = [s for s, _e in morph.spans(text)]
    assert Field("body", text, tokens).starts_before(points) == before_alone == \
        [bisect_left(starts, k) for k in points]
    assert (field.token_spans() is not None) == (tokens.spaced is not None)  # the str path: in C


weigh_texts = st.lists(st.sampled_from(PIECES + ["Kursk", "troops", "Sudzha", "Straße", "\n- ", "\n\n"]),
                       max_size=120).map("".join)


@needs_native
@settings(max_examples=800, deadline=None)
@given(st.sampled_from(["", "Kursk", "troops near Sudzha"]), weigh_texts, weigh_texts)
def test_matches_weigh_the_same_in_one_c_call_and_without(title: str, summary: str, text: str):
    """``Doc.weigh_hits`` (a rule's hits weighed in one call to C) against the fallback that finds
    each hit's offsets in Python and weighs them field by field, and against Python alone."""
    ruleset = rules.parse("rules:\n  - {id: k, title: K, any: [Kursk, troops]}\n"
                          "  - {id: t, title: T, any: [troops, Sudzha, Straße]}\n"
                          "  - {id: s, title: S, near: [Kursk, Sudzha]}")
    article = Article(title=title, summary=summary, text=text)

    def weighed() -> list:
        return [(m.rule_id, m.salience, m.features, m.tier) for m in rules.match(ruleset, article)]

    in_one = weighed()
    with pytest.MonkeyPatch.context() as m:
        m.setattr(textfield, "native", None)  # no token offsets from C: Doc.weigh_terms' own loop
        assert weighed() == in_one
        m.setattr(salience, "native", None)
        assert weighed() == in_one


@needs_native
def test_weigh_hits_refuses_what_is_not_hits_and_spans():
    text = "Kursk is near. Troops came."
    tokens = morph.tokenize(text)
    spans = native.token_spans(tokens.spaced)
    layout = (text, native.sentence_starts(text), 2)
    assert native.weigh_hits([[(2, 0, 1, 0)]], (None, None, spans), (None, None, layout)) == \
        (False, True, 1, 1, False, False, False)
    assert native.weigh_hits([[(2, 99, 100, 0)]], (None, None, spans), (None, None, layout))[2] == 0  # past the end
    assert native.weigh_hits([[(1, 0, 1, 0)]], (None, None, spans), (None, None, layout)) is None  # no spans there
    assert native.weigh_hits([[(2, -1, 0, 0)]], (None, None, spans), (None, None, layout)) is None
    for bad in ([[(3, 0, 1, 0)]],):
        with pytest.raises(ValueError):
            native.weigh_hits(bad, (None, None, spans), (None, None, layout))
    for args in (([[(2,)]], (None, None, spans), (None, None, layout)),
                 ([[None]], (None, None, spans), (None, None, layout)),
                 ([[(2, 0)]], (None, None, b"123"), (None, None, layout)),
                 ([[(2, 0)]], (None, None, spans), (None, None, ("x", [0]))),
                 ([[(2, 0)]], (None, spans), (None, None, layout)),
                 (5, (None, None, spans), (None, None, layout))):
        with pytest.raises(TypeError):
            native.weigh_hits(*args)
    with pytest.raises(TypeError):
        native.token_spans(b"bytes")
    assert native.token_spans("") == b""


def test_check_says_when_salience_runs_on_python(tmp_path):
    """The real ``monitor check``, once as installed and once in a process where the C part
    cannot be imported (as after an install without a C compiler): the second warns (the first
    only where the C part was not built), and both pass the same rules."""
    import subprocess
    import sys

    from conftest import write_config

    cfg = write_config(tmp_path, feeds=["http://127.0.0.1:9/f.xml"], channels={"console": ["log://"]})
    run = ("import sys\n{}from monitor.cli import main\n"
           f"sys.argv = ['monitor', 'check', '--config', {str(cfg)!r}]\nmain()\n")
    plain = subprocess.run([sys.executable, "-c", run.format("")], capture_output=True, text=True, timeout=60)
    blocked = subprocess.run([sys.executable, "-c", run.format("sys.modules['monitor.rules._layout'] = None\n")],
                             capture_output=True, text=True, timeout=60)
    assert plain.returncode == blocked.returncode == 0, (plain.stderr, blocked.stderr)
    assert ("salience runs on its Python" in plain.stderr) == (native is None)
    assert "warning: salience runs on its Python" in blocked.stderr and "_layout.c" in blocked.stderr
    assert plain.stdout == blocked.stdout
