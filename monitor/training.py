"""Rules that learn, the edge (issue 17): a rule's judged matches out of the store, into
``learn.train``, and the model back into the store. ``monitor rules learn`` and the daemon's
``learn`` job call ``retrain``; the daemon runs the training itself on a thread of its own
(``fit``) and only the store calls on its database thread.

Before migration 13 a match has no salience features: a stand-in (the evidence in the title,
how many terms) stands for them and the plain salience is a neutral 0.5, so the words carry the
model; with migration 13 the match's own features and plain salience are used (for a match that an
earlier model recalibrated, the plain salience it keeps among its features).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from . import learn
from .errors import MonitorError
from .workers import in_thread

log = logging.getLogger(__name__)

NEUTRAL = 0.5  # the plain salience of a match stored before salience existed


class Outcome(NamedTuple):
    rule_id: str
    model: learn.Model


def examples(judged: Iterable[Any]) -> list[learn.Example]:
    """learn.Examples of a rule's judged matches (store.Judged rows). Pure."""
    out = []
    for j in judged:
        label = learn.label(j.verdicts)
        if label is None:
            continue
        # no features: a match stored before salience (its 1.0 is find's default, not a measure), so
        # the prior it starts from is neutral and the stand-ins carry the model
        features = dict(j.features) or {"in_title": j.field == "title", "terms": len(j.terms)}
        # a match recalibrated by an earlier model stores the learned salience and keeps the plain
        # one among its features (pipeline._recalibrated): the model starts from the plain salience,
        # as it does when it scores a new match, never from an earlier model's output (which would
        # compound each retraining on the last) nor with a feature new matches do not have
        plain = features.pop(learn.PLAIN, None)
        features.pop(learn.LEARNED, None)  # an earlier model's words, not a feature of the match
        salience = plain if isinstance(plain, (int, float)) else j.salience
        out.append(learn.Example(features, j.text, label, NEUTRAL if salience is None or not j.features
                                 else float(salience)))
    return out


def fit(judged: Sequence[Any]) -> learn.Model:
    """The model of a rule's judged matches: CPU only, no I/O (the daemon runs it on a thread)."""
    return learn.train(examples(judged))


def retrain(store: Any, rule_ids: Iterable[str], now: float) -> list[Outcome]:
    """Train each rule on its feedback and store the model (untrained: too little feedback, the
    rule keeps its plain salience). Blocking: the CLI's path."""
    out = []
    for rule_id in rule_ids:
        model = fit(store.judged(rule_id))
        store.save_rule_model(rule_id, now, model.examples, model.positives, model.trained, model.dumps())
        out.append(Outcome(rule_id, model))
    return out


async def relearn(db: Any, rule_ids: Iterable[str]) -> None:
    """The daemon's scheduled retraining: ``db`` is the store as the event loop sees it
    (store/aio.py: each call on the database thread) and the training runs on a thread of its
    own (workers.in_thread), so the loop never waits on either. A store failure ends the pass
    with one line; the next pass goes on."""
    for rule_id in rule_ids:
        try:
            judged = await db.judged(rule_id)
            model = await in_thread(fit, judged)
            await db.save_rule_model(rule_id, time.time(), model.examples, model.positives, model.trained,
                                     model.dumps())
        except MonitorError as e:
            log.warning("learning stopped rule=%s reason=%r: the next pass goes on", rule_id, str(e))
            return
        if model.examples:
            log.info("learned %s", summary(Outcome(rule_id, model)))


async def models(db: Any) -> dict[str, learn.Model]:
    """The trained models, by rule, for the pipeline (``Context.models``); a rule whose model is
    not trained (too little feedback) keeps its plain salience, so it is left out."""
    return {rule_id: learn.Model.loads(m.model) for rule_id, m in (await db.rule_models()).items() if m.trained}


def summary(outcome: Outcome) -> str:
    """One line per rule for ``monitor rules learn`` and the daemon's log."""
    m = outcome.model
    head = f"{outcome.rule_id}: {m.examples} examples ({m.positives} relevant, {m.negatives} not)"
    if not m.trained:
        return (f"{head}, kept plain: learning needs {learn.MIN_VERDICTS} with {learn.MIN_EACH} of each")
    top = ", ".join(f"{w:+.2f} {name}" for name, w in learn.top(m))
    return f"{head}, trained: {top}"
