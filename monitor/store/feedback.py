"""The team's feedback on alerts (issue 17): a verdict, relevant or not, on an alert's story and
every rule of it, or on one rule of it, from ``monitor feedback`` (``--rule``), the console or a
signed link (links.py, feedback.py).

A verdict belongs to the story, not to the outbox row it was given on: the same story sent to
two channels is one story to judge. A story that never alerted (its matches stored only, or held
for the digest) is judged through one of its matches (``judge_match``: "this should have
alerted", the misses a learner needs most; migration 18), with no alert. One person has one
current verdict per story; a later one replaces theirs, and the replaced row stays with
``replaced_at`` set (the history; counted by ``monitor_feedback_total``). Learners read current
verdicts per rule (``feedback_for_rule``).

A verdict on one rule of a story (a story about North Korean troops that names Kursk once is
relevant to one topic and not to the other) keeps that person's single current row: the new row
carries the new verdict for that rule and, in ``feedback_rules.verdict`` (migration 20), the
person's earlier verdicts on the story's other rules; a rule the person never judged is not in
it. A rule's verdict is ``COALESCE(feedback_rules.verdict, feedback.verdict)`` (``RULE_VERDICT``).
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from .base import Queries

RULE_VERDICT = "COALESCE(r.verdict, f.verdict)"  # a rule's verdict: feedback_rules r, feedback f
NOISY_AT = 2  # a rule's stories from one feed judged not relevant that make it a noisy source


def _pair(kept: str) -> tuple[str, str]:
    """"rule:verdict" as the feedback query gives a kept verdict (a rule ID may hold a colon)."""
    rule, verdict = kept.rsplit(":", 1)
    return rule, verdict


class Given(NamedTuple):
    """What ``give_feedback`` did. ``outcome``: recorded | replaced (an earlier verdict of the
    same person on the story, ``earlier``) | used (the link's token was used before, at ``at``:
    nothing recorded) | no-rule (the verdict named a rule that did not fire on the story:
    nothing recorded; ``rules`` are those that did). ``rules``: the rules the verdict applies to."""

    outcome: str
    alert_id: int | None  # None: given on a story that did not alert
    story: str
    rules: tuple[str, ...]
    at: float
    earlier: str | None = None


class Verdict(NamedTuple):
    """One verdict on a story, as ``monitor alerts show`` lists them."""

    verdict: str
    given_by: str
    via: str
    at: float
    note: str | None
    rules: tuple[str, ...]
    replaced_at: float | None
    kept: tuple[tuple[str, str], ...] = ()  # rules whose verdict in this row is not ``verdict``: an
                                            # earlier one kept when a later verdict named one rule


class Miss(NamedTuple):
    """A story a rule did not match and, someone said, should have (migration 21)."""

    entry_id: int
    rule_id: str
    title: str
    link: str | None
    given_by: str
    via: str
    note: str | None
    at: float


class RuleFeedback(NamedTuple):
    """One current verdict on a story a rule fired on: the rule's own match (None once pruned),
    the story's key, the verdict, when, and who."""

    match_id: int | None
    story: str
    verdict: str
    at: float
    given_by: str


_STORY = ("SELECT o.match_id, m.story FROM outbox o JOIN matches m ON m.id = o.match_id WHERE o.id = ?")


def judged_not(db: Any, lead: int) -> set[str]:
    """The rules that the team judged not relevant on the story whose primary match is ``lead``:
    every current verdict on the rule is "not" (one person's "relevant" keeps it). Its later
    sources are stored and not sent for those rules (store/entries.py, store/noise.py)."""
    every: dict[str, bool] = {}
    for rule, verdict in db.execute(
            f"SELECT r.rule_id, {RULE_VERDICT} FROM feedback_rules r JOIN feedback f ON f.id = r.feedback_id "
            "WHERE f.story = (SELECT story FROM matches WHERE id = ?) AND f.replaced_at IS NULL", (lead,)).fetchall():
        every[str(rule)] = every.get(str(rule), True) and verdict == "not"
    return {rule for rule, no in every.items() if no}


class FeedbackQueries(Queries):
    def give_feedback(self, alert_id: int, verdict: str, given_by: str, now: float, note: str | None = None, *,
                      via: str = "cli", token: str | None = None, token_expires: float = 0.0,
                      rule: str | None = None) -> Given | None:
        """Record a verdict on the alert's story and every rule of it (``rule``: that rule of it
        only), in one transaction; None when there is no such alert. ``token``: the hash of the
        link that gave it, recorded as used in the same transaction, so a link records once
        (outcome ``used`` otherwise)."""
        with self._transaction():
            row = self.db.execute(_STORY, (alert_id,)).fetchone()
            if row is None:
                return None
            return self._judge(int(row[0]), str(row[1]), alert_id, verdict, given_by, now, note, via, token,
                               token_expires, rule)

    def judge_match(self, match_id: int, verdict: str, given_by: str, now: float, note: str | None = None, *,
                    via: str = "cli", rule: str | None = None) -> Given | None:
        """A verdict on the story of match ``match_id`` and every rule of it (``rule``: that rule
        only), whether or not the story alerted (its alert's, when it did); None when there is
        no such match."""
        with self._transaction():
            row = self.db.execute("SELECT COALESCE(p.id, m.id), COALESCE(p.story, m.story) FROM matches m "
                                  "LEFT JOIN matches p ON p.id = m.primary_id WHERE m.id = ?", (match_id,)).fetchone()
            if row is None:
                return None
            primary, story = int(row[0]), str(row[1])
            alert = self.db.execute("SELECT MIN(id) FROM outbox WHERE match_id = ?", (primary,)).fetchone()[0]
            return self._judge(primary, story, None if alert is None else int(alert), verdict, given_by, now,
                               note, via, None, 0.0, rule)

    def _judge(self, primary: int, story: str, alert_id: int | None, verdict: str, given_by: str, now: float,
               note: str | None, via: str, token: str | None, token_expires: float, rule: str | None) -> Given:
        """give_feedback and judge_match, inside their transaction."""
        rules = self.db.execute("SELECT rule_id, id FROM matches WHERE id = ? OR primary_id = ? ORDER BY id",
                                (primary, primary)).fetchall()
        rule_ids = tuple(str(r) for r, _ in rules)
        if rule is not None and rule not in rule_ids:
            return Given("no-rule", alert_id, story, rule_ids, now)
        if token is not None:
            cur = self.db.execute(
                "INSERT INTO feedback_links (token, alert_id, verdict, used_at, expires_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (token) DO NOTHING", (token, alert_id, verdict, now, token_expires))
            if cur.rowcount == 0:
                used = self.db.execute("SELECT used_at FROM feedback_links WHERE token = ?", (token,)).fetchone()
                return Given("used", alert_id, story, rule_ids, float(used[0]))
        earlier = self.db.execute("SELECT id, verdict FROM feedback WHERE story = ? AND given_by = ? "
                                  "AND replaced_at IS NULL", (story, given_by)).fetchone()
        kept: dict[str, str] = {}  # a one-rule verdict keeps the person's verdicts on the other rules
        if earlier is not None:
            self.db.execute("UPDATE feedback SET replaced_at = ? WHERE id = ?", (now, earlier[0]))
            if rule is not None:
                kept = {str(r): str(v) for r, v in self.db.execute(
                    f"SELECT r.rule_id, {RULE_VERDICT} FROM feedback_rules r JOIN feedback f ON f.id = r.feedback_id "
                    "WHERE r.feedback_id = ?", (earlier[0],)).fetchall()}
        cur = self.db.execute(
            "INSERT INTO feedback (story, match_id, alert_id, verdict, given_by, via, note, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (story, primary, alert_id, verdict, given_by, via, note, now))
        rows: list[tuple[int | None, str, int, str | None]]
        if rule is None:
            rows = [(cur.lastrowid, r, m, None) for r, m in rules]
        else:
            rows = [(cur.lastrowid, r, m, None if r == rule or kept[r] == verdict else kept[r])
                    for r, m in rules if r == rule or r in kept]
        self.db.conn.executemany("INSERT INTO feedback_rules (feedback_id, rule_id, match_id, verdict) "
                                 "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING", rows)
        return Given("replaced" if earlier else "recorded", alert_id, story, rule_ids if rule is None else (rule,),
                     now, str(earlier[1]) if earlier else None)

    def feedback(self, alert_id: int) -> list[Verdict]:
        """Every verdict on the alert's story, oldest first, replaced ones included."""
        rows = self._rows(
            "SELECT f.verdict, f.given_by, f.via, f.created_at, f.note, f.replaced_at, "
            "(SELECT json_group_array(rule_id) FROM feedback_rules r WHERE r.feedback_id = f.id) AS rules, "
            "(SELECT json_group_array(rule_id || ':' || verdict) FROM feedback_rules r WHERE r.feedback_id = f.id "
            "AND verdict IS NOT NULL) AS kept "
            "FROM feedback f WHERE f.story = (SELECT m.story FROM outbox o JOIN matches m ON m.id = o.match_id "
            "WHERE o.id = ?) ORDER BY f.id", [alert_id])
        return [Verdict(r["verdict"], r["given_by"], r["via"], r["created_at"], r["note"],
                        tuple(sorted(json.loads(r["rules"] or "[]"))), r["replaced_at"],
                        tuple(sorted(_pair(k) for k in json.loads(r["kept"] or "[]"))))
                for r in rows]

    def feedback_for_rule(self, rule_id: str) -> list[RuleFeedback]:
        """The current verdicts (not replaced) on every story the rule fired on, oldest first:
        what a learner trains that rule on."""
        rows = self.db.execute(
            f"SELECT r.match_id, f.story, {RULE_VERDICT}, f.created_at, f.given_by FROM feedback_rules r "
            "JOIN feedback f ON f.id = r.feedback_id WHERE r.rule_id = ? AND f.replaced_at IS NULL ORDER BY f.id",
            (rule_id,)).fetchall()
        return [RuleFeedback(m, str(s), str(v), float(at), str(by)) for m, s, v, at, by in rows]

    def noisy_sources(self, rule_id: str | None = None) -> dict[str, list[dict[str, Any]]]:
        """Per rule, the feeds whose stories the team keeps judging not relevant for it: at least
        NOISY_AT of the rule's stories from that feed with a current "not" verdict, more than
        with a "relevant" one (a story judged both ways counts in both); each {feed_id, feed, url,
        not, relevant} (stories), the noisiest first."""
        rows = self.db.execute(
            f"SELECT r.rule_id, e.feed_id, fd.title, fd.url, {RULE_VERDICT}, COUNT(DISTINCT f.story) "
            "FROM feedback_rules r JOIN feedback f ON f.id = r.feedback_id JOIN matches m ON m.id = r.match_id "
            "JOIN entries e ON e.id = m.entry_id JOIN feeds fd ON fd.id = e.feed_id WHERE f.replaced_at IS NULL"
            + (" AND r.rule_id = ?" if rule_id is not None else "")
            + f" GROUP BY r.rule_id, e.feed_id, fd.title, fd.url, {RULE_VERDICT}",
            (rule_id,) if rule_id is not None else ()).fetchall()
        tally: dict[tuple[str, int], dict[str, Any]] = {}
        for rid, feed_id, title, url, verdict, n in rows:
            t = tally.setdefault((str(rid), int(feed_id)), {"feed_id": int(feed_id), "feed": title or url, "url": url,
                                                             "not": 0, "relevant": 0})
            if verdict in ("not", "relevant"):
                t[str(verdict)] += int(n)
        out: dict[str, list[dict[str, Any]]] = {}
        for (rid, _f), t in sorted(tally.items(), key=lambda kv: (-kv[1]["not"], kv[1]["relevant"], kv[1]["url"])):
            if t["not"] >= NOISY_AT and t["not"] > t["relevant"]:
                out.setdefault(rid, []).append(t)
        return out

    def report_miss(self, entry_id: int, rule_id: str, given_by: str, now: float, note: str | None = None, *,
                    via: str = "cli") -> str | None:
        """Say that ``rule_id`` should have matched stored entry ``entry_id``: "recorded", "again"
        (this person had reported it: note and time updated), or "matched" when the rule did
        match it (nothing recorded: judge that match instead, ``judge_match``); None when there is
        no such entry. Whether ``rule_id`` is a rule is the caller's to check (the rule files)."""
        with self._transaction():
            if self.db.execute("SELECT 1 FROM entries WHERE id = ?", (entry_id,)).fetchone() is None:
                return None
            if self.db.execute("SELECT 1 FROM matches WHERE entry_id = ? AND rule_id = ?",
                               (entry_id, rule_id)).fetchone() is not None:
                return "matched"
            cur = self.db.execute("UPDATE misses SET note = ?, created_at = ?, via = ? WHERE entry_id = ? "
                                  "AND rule_id = ? AND given_by = ?", (note, now, via, entry_id, rule_id, given_by))
            if cur.rowcount:
                return "again"
            self.db.execute("INSERT INTO misses (entry_id, rule_id, given_by, via, note, created_at) "
                            "VALUES (?, ?, ?, ?, ?, ?)", (entry_id, rule_id, given_by, via, note, now))
            return "recorded"

    def withdraw_miss(self, entry_id: int, rule_id: str, given_by: str) -> bool:
        """Take back this person's report that ``rule_id`` missed ``entry_id``; False if there was none."""
        with self._transaction():
            cur = self.db.execute("DELETE FROM misses WHERE entry_id = ? AND rule_id = ? AND given_by = ?",
                                  (entry_id, rule_id, given_by))
            return bool(cur.rowcount)

    def misses(self, rule_id: str | None = None) -> list[Miss]:
        """Reported misses (of one rule, or of all), newest first; [] before migration 21."""
        if not self._column_names("misses"):
            return []
        where, args = ("WHERE m.rule_id = ?", [rule_id]) if rule_id is not None else ("", [])
        rows = self.db.execute(
            "SELECT m.entry_id, m.rule_id, COALESCE(e.title, ''), e.link, m.given_by, m.via, m.note, m.created_at "
            f"FROM misses m JOIN entries e ON e.id = m.entry_id {where} ORDER BY m.created_at DESC, m.entry_id",
            args).fetchall()
        return [Miss(int(e), str(r), str(t), link, str(by), str(via), note, float(at))
                for e, r, t, link, by, via, note, at in rows]

    def misses_by_rule(self) -> dict[str, int]:
        """Stories reported as missed, by rule (``monitor_misses_reported``); {} before migration 21."""
        if not self._column_names("misses"):
            return {}
        return {str(r): int(n) for r, n in self.db.execute("SELECT rule_id, COUNT(DISTINCT entry_id) FROM misses "
                                                           "GROUP BY rule_id").fetchall()}

    def link_used(self, token: str) -> float | None:
        """When the link token with this hash recorded its verdict; None if it never did."""
        row = self.db.execute("SELECT used_at FROM feedback_links WHERE token = ?", (token,)).fetchone()
        return float(row[0]) if row else None

    def feedback_counts(self) -> dict[str, int]:
        """Verdicts ever given, replaced ones included, by verdict (monitor_feedback_total)."""
        rows = self.db.execute("SELECT verdict, COUNT(*) FROM feedback GROUP BY verdict").fetchall()
        return {str(v): int(n) for v, n in rows}
