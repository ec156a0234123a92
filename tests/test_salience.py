"""Salience and tiers (issue 17): a story about Kursk alerts, a passing clause in a long liveblog
and a Kursk headline in a list of other news do not. Texts written for these tests."""

from monitor import rules
from monitor.models import Article
from monitor.rules import salience as _salience  # noqa: F401  (rules.salience)

RULE = """
id: kursk
title: Kursk region
any: [Kursk]
"""

STORY_EN = ("Ukrainian troops pushed deeper into the Kursk region on Tuesday. " * 1
            + "Fighting around Sudzha in the Kursk region continued overnight. "
            + "Officials in Kursk said thousands were evacuated. The governor asked for calm. "
            + "Russia moved reserves towards Kursk, the ministry said. Analysts called it a turning point.")
FILLER = "The council debated the new budget for schools and roads in the city. "


def _match(title: str, text: str, lang: str = "en"):
    found = rules.match(rules.parse(RULE), Article(title=title, text=text, language=lang))
    return found[0] if found else None


def test_a_story_about_kursk_alerts_in_english_and_german():
    m = _match("Ukraine advances in Kursk", STORY_EN)
    assert m is not None and m.tier == "alert" and m.salience >= 0.8
    de = ("Die ukrainische Armee rückt im Gebiet Kursk weiter vor. Im Raum Kursk dauern die Kämpfe an. "
          "Der Gouverneur von Kursk ordnete Evakuierungen an. Moskau schickt Reserven nach Kursk.")
    m = _match("Kämpfe im Gebiet Kursk", de, "de")
    assert m is not None and m.tier == "alert"
    assert "title and lead" in rules.salience.Salience(m.salience, m.features).why


def test_one_passing_clause_in_a_long_liveblog_is_not_an_alert():
    text = "\n".join(FILLER * 3 for _ in range(60)) + "\nThe mayor, who once visited Kursk, spoke.\n" + FILLER * 40
    m = _match("Live: city news of the day", text)
    assert m is not None and m.tier in ("digest", "store")


def test_a_kursk_headline_in_a_list_of_other_news_is_not_an_alert():
    text = (FILLER * 8 + "\n\nMore news\n- Storm closes the harbour\n- Kursk: drone strike reported\n"
            "- New tram line opens\n- Football club sacks coach\n")
    m = _match("City budget passes", text)
    assert m is not None and m.tier != "alert"
    assert dict(m.features)["listed"] == 1


def test_a_quoted_mention_is_demoted():
    text = FILLER * 5 + '"We will not repeat the mistakes of Kursk," the general said. ' + FILLER * 5
    m = _match("Army reform announced", text)
    assert m is not None and m.tier == "digest" and dict(m.features)["quoted"] == 1


def test_find_is_match_without_salience():
    """``rules.find`` (what bench/matching.py times as matching) finds the same matches with
    the same evidence; only ``match`` weighs them."""
    text = "\n".join(FILLER * 3 for _ in range(60)) + "\nThe mayor, who once visited Kursk, spoke.\n"
    for title, body in (("Ukraine advances in Kursk", STORY_EN), ("Live: city news", text)):
        article = Article(title=title, text=body, language="en")
        ruleset = rules.parse(RULE)
        weighed, found = rules.match(ruleset, article), rules.find(ruleset, article)
        assert [(m.rule_id, m.terms, m.snippet, m.score) for m in weighed] == \
            [(m.rule_id, m.terms, m.snippet, m.score) for m in found]
        assert all(m.features == () and m.tier == "alert" for m in found)
        assert all(m.features != () for m in weighed)
    assert rules.match(rules.parse(RULE), Article(title="Live: city news", text=text, language="en"))[0].tier != "alert"


def test_sentences_lead_and_lists_of_a_layout():
    lay = _salience.Layout('He said: "Stop." Then he left! Why?\n\nNews\n- one\n- two\n- three\n(An aside.) End.')
    assert len(lay) == 9  # three sentences, the heading and three list lines (a run), the last line's two
    assert lay.lead[:2] == [True, True] and not any(lay.lead[2:])
    assert lay.listed == [False, False, False, True, True, True, True, False, False]
    assert lay.place(lay.starts[0] + 10)[1]  # inside the quote
    assert lay.place(len('He said: "Stop." Then he left! Why?\n\nNews\n- one\n- two\n- three\n(An'))[2]
