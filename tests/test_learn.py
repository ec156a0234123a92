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


def test_a_verdict_says_how_far_the_rule_is_from_learning_by_the_same_minimum_and_labels():
    class Judged:  # store.Judged as progress reads it: the current verdicts on one match
        def __init__(self, *verdicts: str):
            self.verdicts = tuple((v, float(at)) for at, v in enumerate(verdicts))

    def said(n_yes: int, n_not: int, *more: Judged) -> str:
        return learn.progress("kursk", [*(Judged("relevant") for _ in range(n_yes)),
                                        *(Judged("not") for _ in range(n_not)), *more])

    assert said(6, 2) == "kursk has 8 judged matches (6 relevant, 2 not); it learns from them once it has 10 " \
                         "with 3 of each"
    assert said(7, 2, Judged("relevant", "not")).startswith("kursk has 10 judged matches (7 relevant, 3 not): " \
                                                             "enough to learn from")  # a tie: the latest verdict
    assert said(7, 3) == said(7, 2, Judged("not", "relevant", "not"))  # two of three said not
    assert said(8, 2).endswith("once it has 10 with 3 of each") and said(0, 1).startswith("kursk has 1 judged match ")
    assert all(learn.enough(feedback(y, n)) == ("enough" in said(y, n)) for y in range(12) for n in range(5))
    assert learn.effect("not", ["kursk"]) == ("Other sources of this story are no longer sent for kursk, unless "
                                              "someone judges it relevant.")
    assert learn.effect("relevant", ["kursk"]) == ""


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
    learned = dict(got_kursk.features)["learned"]  # what moved it, kept with the match and shown with its why
    assert isinstance(learned, str) and learned.startswith("learned 0.") and " from 24 verdicts: " in learned
    assert "'liveblog'" in learned and "kept in the digest (plain 0.60)" in learned, learned
    from monitor.models import why
    assert why(got_kursk.features).endswith(f"plain 0.60, {learned}")
    assert learn.numeric(got_kursk.features, 0.6) == {"title": 0.0, "plain": 0.6, learn.SALIENCE: 0.6}
    assert pipeline._recalibrated(SimpleNamespace(models={}, ruleset=ruleset), liveblog, [kursk]) == [kursk]  # type: ignore[arg-type]


COMMON = ("government officials said monday tuesday week country president minister military forces border "
          "region city people according statement report reported told agency state security attack defence "
          "ministry troops soldiers killed war fighting peace talks support foreign international european "
          "leaders meeting capital local residents houses damage energy power prices market economy months "
          "years since earlier later during while").split()


def test_length_is_not_relevance_a_long_liveblog_is_not_lifted_by_its_many_words():
    """The relevant stories the team judged are longer than the mentions it called "not": they
    share more of the vocabulary's common words. A long liveblog that names the topic once, low in
    plain salience, has all of those words; counted one by one, each word's small weight added up
    and lifted it from the store to an alert (0.97). The words enter as a row of unit length: they
    move any article's log-odds by at most the length of their weight vector."""
    about = [Example({"sentences": 2}, "Kursk report " + " ".join(COMMON[i % 3::3] + COMMON[(i + 1) % 3::3]), 1,
                     0.6 + 0.01 * (i % 3)) for i in range(10)]
    passing = [Example({"sentences": 2}, "Kursk liveblog item: " + " ".join(COMMON[i::6]), 0, 0.6 + 0.01 * (i % 3))
               for i in range(3)]
    model = learn.train(about + passing)
    assert model.trained
    long_blog, why = learn.score(model, {"sentences": 2}, "Kursk liveblog of the day: " + " ".join(COMMON), 0.2)
    assert long_blog < 0.5, (long_blog, why)
    norm = sum(w * w for w in model.word_weights) ** 0.5
    everything = " ".join(model.words)  # every vocabulary word: the words' part is at most their norm
    base, _ = learn.score(model, {"sentences": 2}, "", 0.2)
    full, _ = learn.score(model, {"sentences": 2}, everything, 0.2)
    assert abs(learn._logit(full) - learn._logit(base)) <= norm + 1e-3


def test_the_plain_salience_is_where_the_model_starts_and_more_of_it_never_scores_lower():
    """The plain salience is the offset, not a feature a few verdicts could weigh negatively: with
    the same features and words, a higher plain salience never gives a lower learned one."""
    model = learn.train(feedback(16, 9))
    assert learn.SALIENCE not in model.names
    probe = {"title_lead": 0.0, "sentence_share": 0.05, "one_sentence": False, "sentences": 30}
    scores = [learn.score(model, probe, PASSING[0], p / 20)[0] for p in range(1, 20)]
    assert scores == sorted(scores)


def test_a_feature_far_outside_the_judged_matches_counts_no_further_than_three_deviations():
    """A count far beyond what the team judged (a 900-sentence page, when the judged ones had
    10 to 20) moves the score as far as three standard deviations do, not a hundred: the verdicts
    say nothing about it, and the log of a count compresses its tail first."""
    model = learn.train(feedback(16, 9))
    probe = {"title_lead": 0.0, "sentence_share": 0.05, "one_sentence": False}
    far = learn.score(model, probe | {"sentences": 900}, PASSING[0], 0.5)[0]
    edge = learn.score(model, probe | {"sentences": 10 ** 6}, PASSING[0], 0.5)[0]
    assert far == edge > 0.001  # both beyond three deviations of log(1 + sentences): clipped alike, not to 0


def test_a_feature_that_never_varied_in_the_feedback_does_not_break_scoring():
    """A constant feature (every judged match a title hit of salience 0.6, whose mean in floating
    point is not exactly 0.6) has scale 1, not the rounding noise of its spread: scoring works."""
    examples = [Example({"share": 0.1 * 3, "sentences": 4}, f"{ABOUT[i % 4]} {i % 3}", 1, 0.6) for i in range(8)]
    examples += [Example({"share": 0.1 * 3, "sentences": 4}, f"{PASSING[i % 4]} {i % 3}", 0, 0.6) for i in range(4)]
    model = learn.train(examples)
    assert model.trained and 0.0 not in model.scale
    assert 0 <= learn.score(model, {"share": 0.3, "sentences": 4}, ABOUT[0], 0.6)[0] <= 1


def test_a_model_stored_before_the_scaled_inputs_is_applied_as_it_was_trained():
    """No "inputs" key: raw features, one unit per present word, the salience among the features."""
    stored = ('{"version":1,"examples":12,"positives":8,"trained":true,"prior":"plain salience",'
              '"names":["plain salience","sentences"],"mean":[0.5,10.0],"scale":[0.1,5.0],"weights":[0.5,0.2],'
              '"words":["kursk","liveblog"],"word_weights":[0.3,-0.4],"intercept":0.1}')
    model = Model.loads(stored)
    assert not model.scaled and model.prior
    got, _ = learn.score(model, {"sentences": 20}, "Kursk liveblog", 0.6)
    z = 0.1 + 0.5 * (0.6 - 0.5) / 0.1 + 0.2 * (20 - 10) / 5 + 0.3 - 0.4 + learn._logit(0.6)
    assert got == round(learn._sigmoid(z), 4)
    assert Model.loads(model.dumps()) == model
