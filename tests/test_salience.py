"""Salience and tiers (issue 17): a story about Kursk alerts, a passing clause in a long liveblog
and a Kursk headline in a list of other news do not. Texts written for these tests."""

from conftest import RULES

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


# --- about: the words an article about the topic uses besides its own (salience.passing) -------

ABOUT_RULE = RULE + 'about: ["@war"]\nconcepts: {war: {en: [war, army, front line, drone, missile, troops]}}\n'
MARKET = ("The Christmas markets opened on Friday in twelve towns of the region.\n"
          "Stalls sell mulled wine, gingerbread and wooden toys from local workshops.\n"
          "The largest market, on the cathedral square, has forty stalls this year.\n"
          "Organisers expect more visitors than last year, when rain kept many away.\n"
          "A choir from the music school sings every evening at six.\n"
          "The ice rink beside the town hall is open until midnight on weekends.\n"
          "One stallholder, who moved here from Kursk, sells honey cakes from her grandmother's recipe.\n"
          "Parking is free after five in the multi-storey car park near the station.\n"
          "Buses run every ten minutes from the outer districts.\n"
          "The town council has spent 200,000 euros on lights this year.\n"
          "A charity stall collects toys for children in hospital.\n"
          "Snow is forecast for the second weekend.\n")
BRIEFING = ("Drones struck energy sites in three regions overnight, officials said.\n"
            "The air force said it shot down 40 of 55 drones.\n"
            "In Kharkiv, a missile damaged a power station and cut electricity to thousands.\n"
            "The front line near Pokrovsk remains under heavy pressure from the Russian army.\n"
            "Russian troops have advanced about two kilometres in the past week, analysts said.\n"
            "Ukrainian troops withdrew from the Kursk region in March.\n"
            "The army says it needs more recruits to rotate exhausted units.\n"
            "Talks on ending the war have stalled since the summer.\n"
            "European leaders meet on Thursday to discuss further aid.\n"
            "The shelling of Kherson continued for a third day, with drones and artillery.\n")


def _weighed(rule: str, title: str, text: str, lang: str = "en"):
    [m] = rules.match(rules.parse(rule), Article(title=title, text=text, language=lang))
    return m, dict(m.features)


def test_a_lone_mention_in_an_article_about_something_else_is_passing_with_about():
    plain, f = _weighed(RULE, "Christmas markets open", MARKET)
    assert plain.tier == "alert" and "about" not in f  # without about: one prose sentence of 12 alerts
    m, f = _weighed(ABOUT_RULE, "Christmas markets open", MARKET)
    assert m.tier == "digest" and m.salience < plain.salience
    assert (f["about"], f["passing"], f["sentences"], f["of"]) == (0, 1, 1, 12)
    assert rules.salience.Salience(m.salience, m.features).why == \
        "1 of 12 sentences; in passing: 'about' words in 0 of 11 other sentences"


def test_a_lone_mention_in_a_report_on_the_war_stays_an_alert():
    m, f = _weighed(ABOUT_RULE, "War briefing: drones hit energy sites", BRIEFING)
    assert m.tier == "alert" and (f["passing"], f["sentences"]) == (0, 1)
    assert f["about"] == 8  # of the 9 others: all but the leaders' meeting
    assert "in passing" not in rules.salience.Salience(m.salience, m.features).why


def test_about_never_demotes_the_title_the_lead_or_a_short_text():
    m, f = _weighed(ABOUT_RULE, "Kursk honey cakes at the Christmas market", MARKET)
    assert m.tier == "alert" and f["passing"] == 0
    m, f = _weighed(ABOUT_RULE, "Christmas markets open", "A stallholder from Kursk sells cakes.\n" + MARKET)
    assert f["lead"] == 1 and f["passing"] == 0
    short = "".join(MARKET.splitlines(keepends=True)[4:10])  # Kursk and five other sentences
    m, f = _weighed(ABOUT_RULE, "Christmas markets open", short)
    assert f["passing"] == 0 and m.tier == "alert"


def test_shipped_rules_take_a_passing_mention_for_a_digest_and_a_war_briefing_for_an_alert():
    shipped = rules.load(RULES)
    for title, text, tier in (("Christmas markets open", MARKET, "digest"),
                              ("War briefing: drones hit energy sites", BRIEFING, "alert")):
        [m] = rules.match(shipped, Article(title=title, text=text, language="en"))
        assert (m.rule_id, m.tier) == ("kursk", tier), (title, m.salience, m.features)


def test_about_counts_the_sentences_of_a_rules_context_clause_too():
    """A rule with a context clause (``all:``): its context's sentences are not its evidence, and
    they are where an article about the war uses the war's words most."""
    rule = ("id: t\ntitle: T\nany: [troops]\nall: [Russia]\nabout: [war]\n")
    text = "North Korean troops are training in the far east.\n" + \
        "".join(f"Russia's war enters its {n} day, officials in Russia said.\n" for n in range(900, 907)) + \
        "Markets were calm.\n" * 3
    m, f = _weighed(rule, "Training", text)
    assert (f["sentences"], f["of"], f["about"], f["passing"]) == (1, 11, 7, 0)
    assert m.tier == "alert"


# --- a rule whose parts must meet: its evidence is where they meet (parts.py) ------------------

def test_a_sentence_is_evidence_where_parts_of_one_operator_meet_not_any_two_of_its_words():
    rule = ("id: n\ntitle: N\nany:\n  - {near: [Kursk, troops], within: 6}\n"
            "  - {near: [Sudzha, soldiers], within: 6}\n")
    text = ("Kursk and Sudzha are quiet today, residents said.\n"  # two of its words, no two parts met
            + FILLER * 4 + "\nTroops were seen near Kursk on Monday.\nSoldiers dug in near Sudzha.\n" + FILLER * 4)
    m, f = _weighed(rule, "Border report", text)
    assert (f["lead"], f["sentences"], f["together"]) == (0, 2, 1)
    assert "lead" not in rules.salience.Salience(m.salience, m.features).why


def test_russian_troops_fighting_in_the_lead_is_not_the_north_korean_troops_rules_lead():
    """The shipped rule's terms include troops and fighting (its parts beside North Korea): a lead
    on Russian troops fighting is the war's, and one line on North Korean troops lower down is
    the rule's only evidence."""
    text = ("Russian troops are fighting for every village in Ukraine's east, the army said.\n"
            "Ukrainian soldiers held their positions near Pokrovsk after days of fighting.\n"
            + "Drones struck energy sites overnight and the army reported heavy shelling.\n" * 3
            + "North Korean troops are fighting alongside Russian forces in Kursk, Kyiv said.\n"
            + "Talks on a ceasefire have stalled, and the war goes on.\n" * 2)
    [m] = [m for m in rules.match(rules.load(RULES), Article(title="War briefing", text=text, language="en"))
           if m.rule_id == "north-korean-troops"]
    f = dict(m.features)
    assert (f["title"], f["lead"], f["sentences"], f["together"]) == (0, 0, 1, 1), f
