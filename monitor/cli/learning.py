"""``monitor rules learn [RULE]``, and what ``monitor rules test`` adds from the feedback
(issue 17): precision and recall of the rule against the team's verdicts, and how many matches
each threshold would have put at alert, digest and store, with the plain and the learned
salience.

A match stored before salience (migration 13) reads as salience 1.0, an alert, as it was.
"""

from __future__ import annotations

import time
from typing import Any

import click

from ..errors import MonitorError, RuleError
from . import config_option, fail, load_config
from .rule_tools import rules_group


@rules_group.command("learn")
@config_option
@click.argument("rule_id", required=False)
@click.option("--rules", "rules_dir", type=click.Path(file_okay=False),
              help="Folder of rule files (default: the config's).")
def learn_cmd(config_path: str, rule_id: str | None, rules_dir: str | None) -> None:
    """Train RULE_ID (default: every rule) on the team's feedback and store the model.

    Prints per rule how many judged matches it has, whether it learned or keeps its plain
    salience (fewer than 10 verdicts, or 3 of either kind), and the features that weigh most."""
    from .. import rules, training
    from ..store import connect

    cfg = load_config(config_path)
    try:
        ruleset = rules.load(rules_dir or cfg.rules_dir)
    except RuleError as e:
        fail(str(e))
    ids = [r.id for r in ruleset.rules]
    if rule_id is not None and rule_id not in ids:
        fail(f"no rule {rule_id!r} in {ruleset.source} (rules: {', '.join(ids)})")
    try:
        store = connect(cfg.database)
        try:
            outcomes = training.retrain(store, [rule_id] if rule_id else ids, time.time())
        finally:
            store.close()
    except MonitorError as e:
        fail(str(e))
    for outcome in outcomes:
        click.echo(training.summary(outcome))


class Tally:
    """What ``rules test`` counts as it backtests a rule: the tiers of its matches under the
    plain and the learned salience, and its alerts against the judged stories."""

    def __init__(self, store: Any, rule: Any):
        from .. import learn

        self.alert_at, self.digest_at = float(rule.alert_at), float(rule.digest_at)
        stored = store.rule_models().get(rule.id)
        self.model = learn.Model.loads(stored.model) if stored is not None else None
        self.labels = {j.entry_id: lab for j in store.judged(rule.id)
                       if (lab := learn.label(j.verdicts)) is not None}
        # stories the team said the rule missed (migration 21): relevant, whether it matches them now or not
        self.misses = {m.entry_id for m in store.misses(rule.id)}
        # feeds whose stories the team keeps judging not relevant for the rule (all time, not the window)
        self.noisy: list[dict[str, Any]] = store.noisy_sources(rule.id).get(rule.id, [])
        for entry_id in self.misses:
            self.labels.setdefault(entry_id, True)
        self.matched: set[int] = set()
        self.tiers: dict[str, dict[str, int]] = {"plain": {}, "learned": {}}
        self.alerted: dict[str, set[int]] = {"plain": set(), "learned": set()}
        self.seen: set[int] = set()

    def tier(self, salience: float | None, given: str | None = None) -> str:
        if salience is None:
            return given or "alert"
        return "alert" if salience >= self.alert_at else "digest" if salience >= self.digest_at else "store"

    def add(self, entry_id: int, hit: Any, title: str, text: str) -> None:
        from .. import learn, training

        self.matched.add(entry_id)
        plain = getattr(hit, "salience", None)
        kinds = {"plain": self.tier(plain, getattr(hit, "tier", None))}
        if self.model is not None and self.model.trained:
            measured = getattr(hit, "features", None)  # none: stored before salience (training.examples)
            features = measured or {"in_title": hit.field == "title", "terms": len(hit.terms)}
            learned, _ = learn.score(self.model, features, f"{title}\n{text}",
                                     training.NEUTRAL if plain is None or not measured else plain, self.digest_at)
            kinds["learned"] = self.tier(learned)
        for kind, t in kinds.items():
            self.tiers[kind][t] = self.tiers[kind].get(t, 0) + 1
            if t == "alert":
                self.alerted[kind].add(entry_id)

    def see(self, entry_id: int) -> None:
        self.seen.add(entry_id)

    def lines(self) -> list[str]:
        def counts(kind: str) -> str:
            c = self.tiers[kind]
            return f"alert {c.get('alert', 0)}, digest {c.get('digest', 0)}, store {c.get('store', 0)}"

        out = [f"thresholds alert_at {self.alert_at:g}, digest_at {self.digest_at:g}: plain salience: "
               f"{counts('plain')}" + (f"; learned: {counts('learned')}" if self.tiers["learned"] else "")]
        judged = {e: lab for e, lab in self.labels.items() if e in self.seen}
        missed = self.misses & self.seen
        if missed:
            caught = len(missed & self.matched)
            out.append(f"reported misses: {len(missed)} in this window (stories the team said the rule should have "
                       f"matched); {caught} of them matched now, {len(missed) - caught} still missed")
        if not judged:
            out.append("feedback: no judged stories in this window")
            return out + self.noisy_lines()
        pos = sum(judged.values())
        head = f"feedback: {len(judged)} judged stories in this window ({pos} relevant, {len(judged) - pos} not)"
        out.append(head + ("" if self.model is None else "; model: " + (
            f"learned from {self.model.examples}" if self.model.trained else "plain (too little feedback)")))
        for kind in ("plain", "learned") if self.tiers["learned"] else ("plain",):
            tp = sum(1 for e, lab in judged.items() if lab and e in self.alerted[kind])
            fp = sum(1 for e, lab in judged.items() if not lab and e in self.alerted[kind])
            fn = pos - tp
            p = f"{tp / (tp + fp):.2f}" if tp + fp else "n/a"
            r = f"{tp / pos:.2f}" if pos else "n/a"
            out.append(f"  {kind} alerts: precision {p}, recall {r} (TP {tp}, FP {fp}, FN {fn})")
        return out + self.noisy_lines()

    def noisy_lines(self) -> list[str]:
        """The feeds whose stories the team judged mostly not relevant for the rule, and how to
        leave one out."""
        if not self.noisy:
            return []
        return [f"sources mostly judged not relevant ({len(self.noisy)}; the rule's skip_feeds: [GLOB] leaves "
                "a feed out):", *(f"  {n['feed']}: {n['not']} not, {n['relevant']} relevant  {n['url']}"
                                  for n in self.noisy)]
