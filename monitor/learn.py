"""Rules that learn (issue 17): a rule's feedback recalibrates its salience. Pure deciders:
``train(examples) -> Model`` and ``score(model, features, text, plain) -> (salience, why)``;
data in, data out, no I/O. The store keeps a model as the JSON of ``Model.dumps()``.

An example is one match the team judged: its salience features (named numbers: title and lead,
share of sentences carrying the topic, ...), the article's text and the verdict (1 relevant, 0
not). The model starts at the plain salience and moves only as far as the feedback warrants: a
logistic regression whose offset is the plain salience's log-odds (so with no weights it gives
the plain salience back, and the tiers with it), over the standardised salience features and a
small bag of the article's words (the VOCABULARY most frequent words of the judged articles that
occur in at least MIN_DF of them, present or not), each weight held towards 0 by a Gaussian prior:
PENALTY for the features, WORD_PENALTY (stronger) for the words, which are many and mostly one
story's own. Fitted with SciPy's L-BFGS (scipy, the only importer, imported lazily where a model
is trained). Applying a model needs neither: its coefficients, the features' means and scales and
the vocabulary are the JSON. A model stored before the prior (no "prior" key) is applied as it was
trained, without the offset.

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
WORD_PENALTY = 10.0  # words' weights ~ N(0, 0.1): many words, most of them one story's own
EDGE = 0.02  # the plain salience is kept within [EDGE, 1 - EDGE] for its log-odds (0 and 1 are certain)
TOP = 3  # features named in an explanation
SALIENCE = "plain salience"  # the rule's own salience, one feature among the others
PLAIN = "plain"  # the feature a recalibrated match keeps its plain salience in (pipeline._recalibrated)
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
                        d.get("prior") == "plain salience")
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
    nums = [numeric(e.features, e.salience) for e in rows]
    names = sorted({k for n in nums for k in n})
    cols = [[n.get(k, 0.0) for n in nums] for k in names]
    mean = [sum(c) / len(c) for c in cols]
    scale = [math.sqrt(sum((x - m) ** 2 for x in c) / len(c)) or 1.0 for c, m in zip(cols, mean, strict=True)]
    bags = [words(e.text) for e in rows]
    df = Counter(w for b in bags for w in b)
    vocab = sorted((w for w, n in df.items() if n >= MIN_DF), key=lambda w: (-df[w], w))[:VOCABULARY]
    vocab.sort()
    matrix = [[(n.get(k, 0.0) - m) / s for k, m, s in zip(names, mean, scale, strict=True)]
              + [1.0 if w in b else 0.0 for w in vocab] for n, b in zip(nums, bags, strict=True)]
    penalty = [PENALTY] * len(names) + [WORD_PENALTY] * len(vocab)
    weights, intercept = _fit(matrix, [e.label for e in rows], [_logit(e.salience) for e in rows], penalty)
    coef = [round(w, ROUND) for w in weights]
    return Model(len(rows), pos, True, tuple(names), tuple(round(m, ROUND) for m in mean),
                 tuple(round(s, ROUND) for s in scale), tuple(coef[:len(names)]), tuple(vocab),
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
    and the TOP features that moved it most, as the change each made ("+0.21 title and lead;
    -0.15 'liveblog'"). ``digest_at``: a match whose plain salience reaches the digest stays in
    it at least: feedback, given on alerts, decides what alerts, and a mention the team called
    "not relevant" as an alert is still worth its line in the digest."""
    if model is None or not model.trained:
        if model is None:
            return plain, "plain salience: no feedback yet"
        return plain, (f"plain salience: {model.examples} verdicts ({model.positives} relevant, "
                       f"{model.negatives} not); learning needs {MIN_VERDICTS} with {MIN_EACH} of each")
    nums = numeric(features, plain)
    parts = [(name.replace("_", " "), w * (nums.get(name, 0.0) - m) / s)
             for name, m, s, w in zip(model.names, model.mean, model.scale, model.weights, strict=True)]
    present = words(text)
    parts += [(f"'{w}'", ww) for w, ww in zip(model.words, model.word_weights, strict=True) if w in present]
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
