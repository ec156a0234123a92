"""Rules that learn (issue 17): a rule's feedback recalibrates its salience. Pure deciders:
``train(examples) -> Model`` and ``score(model, features, text, plain) -> (salience, why)``;
data in, data out, no I/O. The store keeps a model as the JSON of ``Model.dumps()``.

An example is one match the team judged: its salience features (named numbers: title and lead,
share of sentences carrying the topic, ...), the article's text and the verdict (1 relevant, 0
not). The model starts at the plain salience and moves only as far as the feedback warrants: a
logistic regression whose offset is the plain salience's log-odds (so with no weights it gives
the plain salience back, and the tiers with it), over the standardised salience features and a
small bag of the article's words (the VOCABULARY most frequent words of the judged articles that
occur in at least MIN_DF of them, present or not), each weight held towards 0 by a Gaussian prior
(PENALTY for the features, WORD_PENALTY for the words). Fitted with SciPy's L-BFGS (scipy, the
only importer, imported lazily where a model is trained). Applying a model needs neither: its
coefficients, the features' means and scales and the vocabulary are the JSON.

What goes in, and why (``inputs``): a feature enters as log(1 + value): a flag or a share is
nearly unchanged, a count's long tail is compressed (the 136th sentence of a liveblog says less
than the second of a report, and a standardised raw count lets one outlier move the log-odds by
several units); and, standardised, it counts no further than CLIP standard deviations from the
judged matches' mean: the verdicts say nothing about values far outside the ones they judged, and
a linear model would extrapolate without limit (a digest-tier match, its features far from the
alerts the team judged, could be scored as surely relevant). The plain salience is the model's
starting point (the offset, its weight fixed at 1), not one more feature: a few verdicts were
free to give it a negative weight, inverting the rule's own measure (a lower salience scoring
higher); the features and words move the score from there (SALIENCE stays a feature only of a
model stored before these inputs). The article's words enter as a row of unit length (each
present vocabulary word 1/sqrt(how many are present), as text classifiers normalise tf-idf
rows): a long article has many of the vocabulary's words and each weighs less, so the words
together move any article's log-odds by at most the length of their weight vector, and the prior
on that move is the same N(0, 1/WORD_PENALTY) for an article of twenty words or of two thousand.
Counted one by one, a long liveblog that names the topic once collected a small positive weight
from each of a hundred common words the relevant (mostly longer) articles share and rose from
the store to an alert: length, not relevance. A model stored before these inputs (no "inputs" key) is applied as it
was trained (raw features, one per present word), and one stored before the prior (no "prior"
key) without the offset.

Deterministic: examples are sorted before training, the solver (lbfgs) has no randomness, the
coefficients are rounded to ROUND digits and the JSON has sorted keys, so the same feedback gives
a byte-identical model and the same scores, in any order and on any run.

Too little feedback: fewer than MIN_VERDICTS judged matches, or fewer than MIN_EACH of either
verdict, trains nothing and the rule keeps its plain salience. The prior is what makes a small
minimum safe: ten verdicts move the score a little, a hundred a lot; one or two verdicts of a kind
are a click or the same story twice, three are the fewest that can show a pattern. A rule's
feedback is pooled across languages (the features mean the same in every language; words of
another language simply do not occur).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

MIN_VERDICTS = 10  # judged matches before a rule learns (the prior keeps a small sample's model near plain)
MIN_EACH = 3  # of each verdict, relevant and not
VOCABULARY = 200  # words at most in a model
MIN_DF = 2  # a word must occur in this many judged articles: one article's words are its own noise
ROUND = 6  # digits kept of each coefficient: the same model to the byte on any platform
PENALTY = 1.0  # the features' weights ~ N(0, 1) per standard deviation: a feature may move the log-odds by ~1
WORD_PENALTY = 1.0  # words' weights ~ N(0, 1) on a unit-length row: the words together, like one feature
CLIP = 3.0  # standard deviations: a feature counts no further from the judged matches' mean than this
# how features and words enter (the module's docstring); a model without it was trained on raw ones
INPUTS = "log1p features within 3 sd, no salience feature, unit-length words"
EDGE = 0.02  # the plain salience is kept within [EDGE, 1 - EDGE] for its log-odds (0 and 1 are certain)
TOP = 3  # features named in an explanation
SALIENCE = "plain salience"  # the rule's own salience: a feature of models stored before INPUTS
PLAIN = "plain"  # the feature a recalibrated match keeps its plain salience in (pipeline._recalibrated)
LEARNED = "learned"  # and the model's explanation of its score (``score``), shown by models.why
_WORD = re.compile(r"[^\W\d_]{3,}")  # letters only, three or more: numbers and dates are not topics


class Example(NamedTuple):
    features: Mapping[str, Any]  # the match's salience features (non-numbers are ignored)
    text: str  # the article's title and text
    label: int  # 1 relevant, 0 not
    salience: float = 0.0  # the match's plain salience


@dataclass(frozen=True)
class Model:
    """A rule's learned recalibration, or (``trained`` False) the record that it keeps its plain
    salience and why. ``names``/``mean``/``scale``/``weights``: the numeric features; ``words``/
    ``word_weights``: the vocabulary."""

    examples: int
    positives: int
    trained: bool = False
    names: tuple[str, ...] = ()
    mean: tuple[float, ...] = ()
    scale: tuple[float, ...] = ()
    weights: tuple[float, ...] = ()
    words: tuple[str, ...] = ()
    word_weights: tuple[float, ...] = ()
    intercept: float = 0.0
    prior: bool = True  # the plain salience's log-odds is the offset (False: a model stored before it)
    scaled: bool = True  # inputs as INPUTS says (False: raw features, one per word: a model stored before)

    @property
    def negatives(self) -> int:
        return self.examples - self.positives

    def dumps(self) -> str:
        """The model as canonical JSON (sorted keys, no spaces): equal models, equal bytes."""
        body: dict[str, Any] = {"version": 1, "examples": self.examples, "positives": self.positives,
                                "trained": self.trained}
        if self.trained:
            body |= {"names": list(self.names), "mean": list(self.mean), "scale": list(self.scale),
                     "weights": list(self.weights), "words": list(self.words),
                     "word_weights": list(self.word_weights), "intercept": self.intercept}
            if self.prior:
                body["prior"] = "plain salience"
            if self.scaled:
                body["inputs"] = INPUTS
        return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def loads(cls, text: str | bytes) -> Model:
        """A model from ``dumps``; ValueError names what is wrong with a damaged one."""
        try:
            d = json.loads(text)
            if d.get("version") != 1:
                raise ValueError(f"model version {d.get('version')!r}, expected 1")
            if not d["trained"]:
                return cls(int(d["examples"]), int(d["positives"]))
            model = cls(int(d["examples"]), int(d["positives"]), True, tuple(d["names"]),
                        tuple(map(float, d["mean"])), tuple(map(float, d["scale"])),
                        tuple(map(float, d["weights"])), tuple(d["words"]),
                        tuple(map(float, d["word_weights"])), float(d["intercept"]),
                        d.get("prior") == "plain salience", d.get("inputs") == INPUTS)
        except (KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"damaged model: {e!r}") from None
        if not len(model.names) == len(model.mean) == len(model.scale) == len(model.weights) or \
                len(model.words) != len(model.word_weights):
            raise ValueError("damaged model: its lists differ in length")
        return model


def words(text: str) -> set[str]:
    """The distinct words of a text, case-folded: letters only, three or more."""
    return {w.casefold() for w in _WORD.findall(text)}


def numeric(features: Mapping[str, Any] | Iterable[tuple[str, Any]], salience: float) -> dict[str, float]:
    """The numbers among the features (a mapping, or the (name, value) pairs a Match carries;
    booleans as 0/1), with the plain salience."""
    pairs = features.items() if isinstance(features, Mapping) else features
    out = {str(k): float(v) for k, v in pairs
           if isinstance(v, (int, float)) and math.isfinite(float(v))}
    out[SALIENCE] = float(salience)
    return out


def _log(x: float) -> float:
    """log(1 + |x|) with x's sign: a flag or a share nearly as it is, a count's tail compressed."""
    return math.copysign(math.log1p(abs(x)), x)


def _clip(z: float) -> float:
    """A standardised feature within CLIP standard deviations: the verdicts say nothing beyond."""
    return max(-CLIP, min(CLIP, z))


def _row(vocab: Sequence[str], present: set[str], scaled: bool = True) -> list[float]:
    """The article's words over the vocabulary: present 1, absent 0, scaled to unit length."""
    row = [1.0 if w in present else 0.0 for w in vocab]
    n = sum(row)
    return [x / math.sqrt(n) for x in row] if scaled and n else row


def enough(examples: Sequence[Example], min_verdicts: int = MIN_VERDICTS, min_each: int = MIN_EACH) -> bool:
    pos = sum(1 for e in examples if e.label)
    return len(examples) >= min_verdicts and min(pos, len(examples) - pos) >= min_each


def train(examples: Iterable[Example], *, min_verdicts: int = MIN_VERDICTS, min_each: int = MIN_EACH) -> Model:
    """The model of a rule's judged matches; an untrained Model (plain salience) when there are
    too few. Pure and deterministic: the order of ``examples`` does not matter."""
    rows = sorted(examples, key=lambda e: (e.label, e.text, json.dumps(numeric(e.features, e.salience),
                                                                     sort_keys=True)))
    pos = sum(1 for e in rows if e.label)
    if not enough(rows, min_verdicts, min_each):
        return Model(len(rows), pos)
    nums = [{k: _log(v) for k, v in numeric(e.features, e.salience).items() if k != SALIENCE} for e in rows]
    names = sorted({k for n in nums for k in n})
    cols = [[n.get(k, 0.0) for n in nums] for k in names]
    mean = [round(sum(c) / len(c), ROUND) for c in cols]  # as the model stores them: scored alike
    # a feature that does not vary has scale 1, not the rounding noise of its logarithms' mean
    scale = [round(math.sqrt(sum((x - m) ** 2 for x in c) / len(c)), ROUND) or 1.0
             for c, m in zip(cols, mean, strict=True)]
    bags = [words(e.text) for e in rows]
    df = Counter(w for b in bags for w in b)
    vocab = sorted((w for w, n in df.items() if n >= MIN_DF), key=lambda w: (-df[w], w))[:VOCABULARY]
    vocab.sort()
    matrix = [[_clip((n.get(k, 0.0) - m) / s) for k, m, s in zip(names, mean, scale, strict=True)]
              + _row(vocab, b) for n, b in zip(nums, bags, strict=True)]
    penalty = [PENALTY] * len(names) + [WORD_PENALTY] * len(vocab)
    weights, intercept = _fit(matrix, [e.label for e in rows], [_logit(e.salience) for e in rows], penalty)
    coef = [round(w, ROUND) for w in weights]
    return Model(len(rows), pos, True, tuple(names), tuple(mean), tuple(scale), tuple(coef[:len(names)]), tuple(vocab),
                 tuple(coef[len(names):]), round(intercept, ROUND))


def _fit(matrix: list[list[float]], labels: list[int], offsets: list[float],
         penalty: list[float]) -> tuple[list[float], float]:
    """Maximum a posteriori logistic regression: log-odds = offset + intercept + weights · row,
    each weight (and the intercept, at PENALTY) under a Gaussian prior centred on 0. The
    objective is convex and L-BFGS starts at 0 with no randomness: the same data, the same fit."""
    import numpy as np  # lazily: only training needs them
    from scipy.optimize import minimize

    x = np.hstack([np.ones((len(matrix), 1)), np.asarray(matrix, dtype=float).reshape(len(matrix), -1)])
    y, off = np.asarray(labels, dtype=float), np.asarray(offsets, dtype=float)
    lam = np.asarray([PENALTY, *penalty], dtype=float)

    def loss(beta: Any) -> tuple[float, Any]:
        z = off + x @ beta
        # log(1 + e^z) - y z, summed, stably; its gradient is (sigmoid(z) - y) x
        value = float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * np.sum(lam * beta * beta))
        return value, x.T @ (1.0 / (1.0 + np.exp(-z)) - y) + lam * beta

    fit = minimize(loss, np.zeros(x.shape[1]), jac=True, method="L-BFGS-B", options={"maxiter": 1000, "gtol": 1e-9})
    return [float(b) for b in fit.x[1:]], float(fit.x[0])


def _logit(p: float) -> float:
    p = min(1 - EDGE, max(EDGE, p))
    return math.log(p / (1 - p))


def _sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))


def score(model: Model | None, features: Mapping[str, Any], text: str, plain: float,
          digest_at: float | None = None) -> tuple[float, str]:
    """(calibrated salience, explanation) of one match. With no trained model: the plain
    salience, and why. Trained: the model's probability that the team finds the match relevant,
    and the TOP features that moved it most, as the change each made, the article's words
    together as one ("+0.21 title; -0.15 words 'liveblog', 'football'"). ``digest_at``: a
    match whose plain salience reaches the digest stays in it at least: feedback, given on
    alerts, decides what alerts, and a mention the team called "not relevant" as an alert is
    still worth its line in the digest."""
    if model is None or not model.trained:
        if model is None:
            return plain, "plain salience: no feedback yet"
        return plain, (f"plain salience: {model.examples} verdicts ({model.positives} relevant, "
                       f"{model.negatives} not); learning needs {MIN_VERDICTS} with {MIN_EACH} of each")
    nums = numeric(features, plain)
    if model.scaled:
        nums = {k: _log(v) for k, v in nums.items()}
    parts = [(name.replace("_", " "), w * (_clip((nums.get(name, 0.0) - m) / s) if model.scaled else
                                           (nums.get(name, 0.0) - m) / s))
             for name, m, s, w in zip(model.names, model.mean, model.scale, model.weights, strict=True)]
    # the words as one part, named by those that pushed most its way: a hundred words that each
    # move the score by less than a point can together move it far, and the explanation says so
    said = [(w, ww * x) for w, ww, x in zip(model.words, model.word_weights, _row(model.words, words(text),
                                                                                 model.scaled), strict=True) if x]
    total = sum(c for _, c in said)
    if said:
        heavy = sorted((s for s in said if s[1] * total > 0), key=lambda x: (-abs(x[1]), x[0]))[:TOP]
        parts.append(("words " + ", ".join(f"'{w}'" for w, _ in heavy) if heavy else "words", total))
    z = model.intercept + sum(c for _, c in parts) + (_logit(plain) if model.prior else 0.0)
    p = _sigmoid(z)
    moved = sorted(((p - _sigmoid(z - c), name) for name, c in parts), key=lambda x: (-abs(x[0]), x[1]))
    why = "; ".join(f"{d:+.2f} {name}" for d, name in moved[:TOP] if abs(d) >= 0.005)
    salience = round(p, 4)
    if digest_at is not None and plain >= digest_at and salience < digest_at:
        salience = digest_at
        why += f"; kept in the digest (plain {plain:.2f})"
    return salience, f"learned {p:.2f} from {model.examples} verdicts: {why or 'no feature moved it'}"


def label(verdicts: Sequence[tuple[str, float]]) -> int | None:
    """One match's label from the current verdicts on it, (verdict, at) each: the majority, a
    tie going to the latest; None without a verdict. ``relevant`` is 1, anything else 0."""
    if not verdicts:
        return None
    yes = sum(1 for v, _ in verdicts if v == "relevant")
    if yes * 2 != len(verdicts):
        return int(yes * 2 > len(verdicts))
    return int(max(verdicts, key=lambda x: x[1])[0] == "relevant")


def top(model: Model, n: int = 5) -> list[tuple[str, float]]:
    """The model's n heaviest features (numbers per standard deviation, words when present), as
    (name, weight in log-odds), heaviest first: what ``monitor rules learn`` prints."""
    named = [(name.replace("_", " "), w) for name, w in zip(model.names, model.weights, strict=True)]
    named += [(f"'{w}'", ww) for w, ww in zip(model.words, model.word_weights, strict=True)]
    return sorted(named, key=lambda x: (-abs(x[1]), x[0]))[:n]


def progress(rule_id: str, judged: Iterable[Any]) -> str:
    """What a rule's feedback so far does for its learning, said after each verdict (the CLI,
    the console, a feedback link's page): ``judged`` are its judged matches (store.Judged rows),
    each labelled as ``train`` labels it."""
    labels = [lab for lab in (label(j.verdicts) for j in judged) if lab is not None]
    yes = sum(labels)
    head = f"{rule_id} has {len(labels)} judged {'match' if len(labels) == 1 else 'matches'} ({yes} relevant, " \
           f"{len(labels) - yes} not)"
    if len(labels) >= MIN_VERDICTS and min(yes, len(labels) - yes) >= MIN_EACH:
        return f"{head}: enough to learn from at its next training (`monitor rules learn {rule_id}` trains it now)"
    return f"{head}; it learns from them once it has {MIN_VERDICTS} with {MIN_EACH} of each"


def effect(verdict: str, rule_ids: Sequence[str]) -> str:
    """What a verdict does at once, beside the learning (store/feedback.py ``judged_not``)."""
    if verdict != "not":
        return ""
    return (f"Other sources of this story are no longer sent for {', '.join(rule_ids)}, unless someone judges "
            "it relevant.")
