"""Rules that learn (issue 17, monitor/learn.py): the model is a pure function of the feedback:
the same verdicts give a byte-identical model and identical scores, in any order; too little
feedback keeps the plain salience; the explanation names the features that moved the score."""

from __future__ import annotations

import random

import pytest

from monitor import learn
from monitor.learn import Example, Model

ABOUT = ["Ukrainian troops withdraw from the Kursk salient after weeks of fighting",
         "Russian forces recapture villages in the Kursk region, officials say",
         "Kursk offensive: soldiers describe the fighting around Sudzha",
         "Drone strikes hit the Kursk region overnight as fighting continues"]
PASSING = ["Liveblog: weather, football results and a line on Kursk among other news",
           "Profile of a pianist born in Kursk who now lives in Vienna, liveblog of the festival",
           "Liveblog: markets, the football league and a short Kursk mention",
           "A cookbook review: recipes from Kursk to Lisbon, football and weather"]


def feedback(n_about: int, n_passing: int) -> list[Example]:
    """Hand-written judged matches: articles about the topic carry it in the title and in many
    sentences; passing mentions in one sentence of a long text."""
    out = []
    for i in range(n_about):
        out.append(Example({"title_lead": 1.0, "sentence_share": 0.3 + 0.05 * (i % 5), "one_sentence": True,
                            "sentences": 12 + i % 7, "kind": "news"}, f"{ABOUT[i % 4]} report {i % 3}", 1,
                           0.55 + 0.02 * (i % 4)))
    for i in range(n_passing):
        out.append(Example({"title_lead": 0.0, "sentence_share": 0.02 + 0.01 * (i % 3), "one_sentence": False,
                            "sentences": 40 + i % 11, "kind": "liveblog"}, f"{PASSING[i % 4]} item {i % 3}", 0,
                           0.5 + 0.02 * (i % 4)))
    return out


def test_same_feedback_same_model_to_the_byte_and_same_scores_in_any_order():
    examples = feedback(16, 9)
    first = learn.train(examples)
    shuffled = examples[:]
    random.Random(7).shuffle(shuffled)
    again = learn.train(shuffled)
    assert first.trained
    assert first.dumps() == again.dumps()
    loaded = Model.loads(first.dumps())  # stored and read back: no retraining
    assert loaded == first
    probe = ({"title_lead": 0.0, "sentence_share": 0.02, "one_sentence": False, "sentences": 45}, PASSING[0], 0.6)
    assert learn.score(first, *probe) == learn.score(again, *probe) == learn.score(loaded, *probe)


def test_the_model_separates_what_the_team_judged_and_explains_why():
    model = learn.train(feedback(16, 9))
    about, why_about = learn.score(model, {"title_lead": 1.0, "sentence_share": 0.4, "one_sentence": True,
                                           "sentences": 14}, ABOUT[0], 0.55)
    passing, why_passing = learn.score(model, {"title_lead": 0.0, "sentence_share": 0.02,
                                               "one_sentence": False, "sentences": 44}, PASSING[0], 0.55)
    assert about > 0.8 and passing < 0.2, (about, passing)
    assert why_about.startswith("learned ") and "from 25 verdicts" in why_about
    assert "+0." in why_about and "-0." in why_passing
    assert "'liveblog'" in why_passing or "title lead" in why_passing  # named, with the sign it pushed


def test_a_mention_in_the_digest_stays_in_the_digest():
    model = learn.train(feedback(16, 9))
    probe = {"title_lead": 0.0, "sentence_share": 0.02, "one_sentence": False, "sentences": 44}
    low, _ = learn.score(model, probe, PASSING[1], 0.45)
    kept, why = learn.score(model, probe, PASSING[1], 0.45, digest_at=0.3)
    assert low < 0.3 and kept == 0.3 and "kept in the digest" in why
    below, why = learn.score(model, probe, PASSING[1], 0.2, digest_at=0.3)  # was not in the digest
    assert below < 0.3 and "kept" not in why


@pytest.mark.parametrize("n_about,n_passing", [(9, 0), (8, 2), (2, 8), (5, 4)])
def test_too_little_feedback_keeps_the_plain_salience(n_about, n_passing):
    model = learn.train(feedback(n_about, n_passing))
    assert not model.trained and model.examples == n_about + n_passing and model.positives == n_about
    assert Model.loads(model.dumps()) == model
    salience, why = learn.score(model, {"title_lead": 1.0}, ABOUT[0], 0.37)
    assert salience == 0.37
    assert why == (f"plain salience: {n_about + n_passing} verdicts ({n_about} relevant, {n_passing} not); "
                   f"learning needs {learn.MIN_VERDICTS} with {learn.MIN_EACH} of each")
    assert learn.score(None, {}, "", 0.61) == (0.61, "plain salience: no feedback yet")


def test_the_minimum_is_exactly_ten_with_three_of_each():
    assert learn.train(feedback(7, 3)).trained
    assert not learn.train(feedback(8, 2)).trained
    assert not learn.train(feedback(3, 6)).trained


def test_the_vocabulary_is_bounded_and_words_seen_once_are_left_out():
    examples = feedback(16, 9) + [Example({}, " ".join(f"w{chr(97 + i)}{chr(97 + j)}x" for j in range(26)), 1, 0.5)
                                  for i in range(26)]
    model = learn.train(examples)
    assert len(model.words) <= learn.VOCABULARY
    assert "waax" not in model.words and "liveblog" in model.words


def test_label_is_the_majority_and_a_tie_goes_to_the_latest():
    assert learn.label([]) is None
    assert learn.label([("relevant", 1), ("not", 2), ("relevant", 3)]) == 1
    assert learn.label([("relevant", 5), ("not", 2)]) == 1
    assert learn.label([("relevant", 1), ("not", 2)]) == 0


@pytest.mark.parametrize("text,needle", [('{"version": 2}', "version 2"), ('{"version": 1}', "damaged"),
                                         ('{"version":1,"examples":3,"positives":1,"trained":true,"names":["a"],'
                                          '"mean":[],"scale":[],"weights":[],"words":[],"word_weights":[],'
                                          '"intercept":0}', "differ in length")])
def test_a_damaged_model_is_refused_by_name(text, needle):
    with pytest.raises(ValueError, match=needle):
        Model.loads(text)


def test_the_pipeline_recalibrates_a_match_of_a_rule_with_a_trained_model():
    """pipeline._recalibrated, the wiring: a match of a rule with a trained model takes the
    model's salience and the tier that gives under the rule's own thresholds; the plain salience
    stays among its features; a rule without a model keeps its match as it was."""
    from types import SimpleNamespace

    from monitor import pipeline, rules
    from monitor.models import Article, Match

    ruleset = rules.parse("rules:\n- id: kursk\n  title: Kursk\n  any: [Kursk]\n  alert_at: 0.5\n"
                          "  digest_at: 0.15\n- id: other\n  title: Other\n  any: [Lisbon]\n")
    about = [learn.Example({"title": 1}, f"Kursk offensive fighting report {i}", 1, 0.9) for i in range(12)]
    passing = [learn.Example({"title": 0}, f"liveblog football markets weather item {i}", 0, 0.6) for i in range(12)]
    model = learn.train(about + passing)
    assert model.trained
    ctx = SimpleNamespace(models={"kursk": model}, ruleset=ruleset)
    liveblog = Article(title="Liveblog", text="liveblog football markets weather and a Kursk mention")
    kursk = Match("kursk", "Kursk", ("Kursk",), "body", "…", salience=0.6, tier="alert", features=(("title", 0),))
    other = Match("other", "Other", ("Lisbon",), "body", "…", salience=0.6, tier="alert")

    got_kursk, got_other = pipeline._recalibrated(ctx, liveblog, [kursk, other])  # type: ignore[arg-type]
    assert got_other == other
    assert got_kursk.salience < 0.5 and got_kursk.tier == "digest"  # learned: the team calls these "not"
    assert ("plain", 0.6) in got_kursk.features
    assert pipeline._recalibrated(SimpleNamespace(models={}, ruleset=ruleset), liveblog, [kursk]) == [kursk]  # type: ignore[arg-type]
