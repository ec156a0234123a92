"""Rules that learn (issue 17): what a learner reads (a rule's judged matches with their evidence)
and what it writes (the rule's model, one row per rule in ``rule_models``).

The verdicts are the feedback tables' (``feedback``, ``feedback_rules``, migration 14); the
salience and its features are the match row's (migration 13). Both are read only where they
exist, so this module works on a database that has neither yet: no feedback, no examples.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from .base import Queries
from .feedback import RULE_VERDICT


class Judged(NamedTuple):
    """One match of a rule that the team judged: its current verdicts ((verdict, at) each), its
    plain salience and features (None and {} before migration 13), the article's title and text,
    and the match's field and terms."""

    match_id: int
    entry_id: int
    verdicts: tuple[tuple[str, float], ...]
    salience: float | None
    features: dict[str, Any]
    text: str
    field: str | None
    terms: tuple[str, ...]


class StoredModel(NamedTuple):
    rule_id: str
    trained_at: float
    examples: int
    positives: int
    trained: bool
    model: str  # learn.Model.dumps()


class LearnQueries(Queries):
    def _columns(self, table: str) -> set[str]:
        return set(self._column_names(table))

    def judged(self, rule_id: str) -> list[Judged]:
        """The rule's matches that carry current (not replaced) verdicts, by match id, each with
        the evidence a learner trains on; [] where the feedback tables do not exist yet."""
        if not self._columns("feedback_rules"):
            return []
        cols = self._columns("matches")
        salience = "m.salience" if "salience" in cols else "NULL"
        features = "m.features" if "features" in cols else "NULL"
        rows = self.db.execute(
            f"SELECT m.id, m.entry_id, {RULE_VERDICT}, f.created_at, {salience}, {features}, "
            "COALESCE(a.title, e.title, ''), COALESCE(a.text, e.summary, ''), m.field, m.terms "
            "FROM feedback_rules r JOIN feedback f ON f.id = r.feedback_id JOIN matches m ON m.id = r.match_id "
            "JOIN entries e ON e.id = m.entry_id LEFT JOIN articles a ON a.entry_id = m.entry_id "
            "WHERE r.rule_id = ? AND f.replaced_at IS NULL ORDER BY m.id, f.id", (rule_id,)).fetchall()
        out: dict[int, Judged] = {}
        for mid, eid, verdict, at, sal, feats, title, text, fld, terms in rows:
            if mid in out:
                j = out[mid]
                out[mid] = j._replace(verdicts=(*j.verdicts, (str(verdict), float(at))))
                continue
            out[mid] = Judged(int(mid), int(eid), ((str(verdict), float(at)),),
                              None if sal is None else float(sal), _object(feats), f"{title}\n{text}",
                              fld, tuple(str(t) for t in _list(terms)))
        return list(out.values())

    def save_rule_model(self, rule_id: str, trained_at: float, examples: int, positives: int, trained: bool,
                        model: str) -> None:
        """The rule's current model, replacing the one before."""
        with self._transaction():
            self.db.execute(
                "INSERT INTO rule_models (rule_id, trained_at, examples, positives, trained, model) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (rule_id) DO UPDATE SET trained_at = excluded.trained_at, "
                "examples = excluded.examples, positives = excluded.positives, trained = excluded.trained, "
                "model = excluded.model", (rule_id, trained_at, examples, positives, int(trained), model))

    def rule_models(self) -> dict[str, StoredModel]:
        """Every rule's current model, by rule id."""
        rows = self.db.execute("SELECT rule_id, trained_at, examples, positives, trained, model FROM rule_models "
                               "ORDER BY rule_id").fetchall()
        return {str(r[0]): StoredModel(str(r[0]), float(r[1]), int(r[2]), int(r[3]), bool(r[4]), str(r[5]))
                for r in rows}

    def judged_rules(self) -> list[str]:
        """The rules that have current verdicts, sorted; [] before the feedback tables exist."""
        if not self._columns("feedback_rules"):
            return []
        rows = self.db.execute("SELECT DISTINCT r.rule_id FROM feedback_rules r JOIN feedback f "
                               "ON f.id = r.feedback_id WHERE f.replaced_at IS NULL ORDER BY r.rule_id").fetchall()
        return [str(r[0]) for r in rows]


def _object(raw: Any) -> dict[str, Any]:
    """A match's stored features: (name, value) pairs as migration 13 stores them, or an object."""
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    if isinstance(value, list):
        return {str(p[0]): p[1] for p in value if isinstance(p, list) and len(p) == 2}
    return value if isinstance(value, dict) else {}


def _list(raw: Any) -> list[Any]:
    try:
        value = json.loads(raw) if raw else []
    except ValueError:
        return []
    return value if isinstance(value, list) else []
