"""What the web console reads (issue 18): the inbox (alerts, one row per story), a story in full,
each channel's delivery state and each rule's record. JSON-ready values only: dicts and lists of
str, int, float (epoch seconds for times), bool and None.

A *story* is its primary match: the first alerting match of a rule on an entry (``lead_id`` and
``primary_id`` NULL). Other rules that fired on the same entry hang off it (``primary_id``), as
do its outbox rows, one per channel; a later source of the same story (another feed, the same
text) is a follow-up match with ``lead_id`` = the story. An outbox id of any of them resolves to
the story. A story's ``id`` is its primary match's id: the keyset the inbox pages on. Its
``alert_id`` is its lowest outbox id, the one feedback and the story page use.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..models import SEVERITIES
from .base import Queries
from .feedback import RULE_VERDICT, judged_not

if TYPE_CHECKING:
    from .feedback import Verdict

_RANK = {s: i for i, s in enumerate(SEVERITIES)}
STATES = ("pending", "sending", "sent", "failed", "dead", "held", "digest")
FEEDBACK = ("relevant", "not", "none")
# a story: a primary match with at least one outbox row (a 'store'-tier match has none)
ROOT = "m.lead_id IS NULL AND m.primary_id IS NULL AND EXISTS (SELECT 1 FROM outbox o WHERE o.match_id = m.id)"
CURRENT = ("(SELECT f.verdict FROM feedback f WHERE f.story = m.story AND f.replaced_at IS NULL "
           "ORDER BY f.created_at DESC, f.id DESC LIMIT 1)")
# the same for one rule of the story (a verdict may name one rule: feedback.py): its parameter is the rule
RULE_CURRENT = (f"(SELECT {RULE_VERDICT} FROM feedback f JOIN feedback_rules r ON r.feedback_id = f.id "
                "WHERE f.story = m.story AND r.rule_id = ? AND f.replaced_at IS NULL "
                "ORDER BY f.created_at DESC, f.id DESC LIMIT 1)")


def _latest(verdict: dict | None, own: dict[int, list[str]], rules: int) -> dict | None:
    """A story's latest current verdict for the inbox, with ``only``: the rules it holds for
    when that is not every rule of the story (a verdict on one rule, feedback.py), else []."""
    if verdict is None:
        return None
    held = own.get(verdict["id"], [])
    return {**{k: v for k, v in verdict.items() if k != "id"}, "only": held if len(held) < rules else []}


def story_filter(*, rule: str | None = None, channel: str | None = None, state: str | None = None,
                 feedback: str | None = None, since: float | None = None, until: float | None = None
                 ) -> tuple[list[str], list[Any]]:
    """SQL conditions on a story's primary match ``m`` and their parameters. ``channel`` and
    ``state`` together ask for one delivery on that channel in that state. Pure; raises
    ValueError for a state or feedback value it does not know."""
    where: list[str] = [ROOT]
    args: list[Any] = []
    if rule is not None:  # any rule of the story: the primary's own or one travelling with it
        where.append("m.id IN (SELECT COALESCE(c.primary_id, c.id) FROM matches c WHERE c.rule_id = ? "
                     "AND c.lead_id IS NULL)")
        args.append(rule)
    if state is not None and state not in STATES:
        raise ValueError(f"state {state!r}: expected one of {', '.join(STATES)}")
    if state is not None and state != "sent":
        # a state few rows are in: found through outbox_state, then sorted (a scan of every
        # story newest first would visit thousands to find fifty)
        where.append("m.id IN (SELECT o.match_id FROM outbox o WHERE "
                     + ("o.held IS NOT NULL" if state == "held" else "o.state = ?")
                     + (" AND o.channel = ?)" if channel is not None else ")"))
        args += ([] if state == "held" else [state]) + ([channel] if channel is not None else [])
    elif channel is not None or state is not None:  # most stories have one: checked per story, newest first
        cond = ["o.match_id = m.id"]  # the (match_id, channel) index; +o.state keeps outbox_state out of it
        if channel is not None:
            cond.append("o.channel = ?")
            args.append(channel)
        if state is not None:
            cond.append("+o.state = 'sent'")
        where.append(f"EXISTS (SELECT 1 FROM outbox o WHERE {' AND '.join(cond)})")
    if feedback is not None:
        if feedback not in FEEDBACK:
            raise ValueError(f"feedback {feedback!r}: expected one of {', '.join(FEEDBACK)}")
        if rule is not None:  # with a rule: that rule's own verdict, which a verdict on one rule sets
            if feedback == "none":
                where.append(f"{RULE_CURRENT} IS NULL")
                args.append(rule)
            else:
                where.append(f"m.story IN (SELECT f.story FROM feedback f JOIN feedback_rules r ON r.feedback_id "
                             f"= f.id WHERE r.rule_id = ? AND {RULE_VERDICT} = ? AND f.replaced_at IS NULL) "
                             f"AND {RULE_CURRENT} = ?")
                args += [rule, feedback, rule, feedback]
        elif feedback == "none":
            where.append(f"{CURRENT} IS NULL")
        else:  # the few stories with a verdict of that kind first, then the current one checked
            where.append(f"m.story IN (SELECT f.story FROM feedback f WHERE f.verdict = ? AND f.replaced_at IS NULL) "
                         f"AND {CURRENT} = ?")
            args += [feedback, feedback]
    if since is not None:
        where.append("m.created_at >= ?")
        args.append(since)
    if until is not None:
        where.append("m.created_at < ?")
        args.append(until)
    return where, args


def _json(raw: str | None, default: Any) -> Any:
    try:
        return json.loads(raw) if raw else default
    except ValueError:
        return default


def _marks(ids: Sequence[Any]) -> str:
    return ",".join("?" * len(ids))


class ConsoleQueries(Queries):
    if TYPE_CHECKING:
        def feedback(self, alert_id: int) -> list[Verdict]: ...  # store/feedback.py

    def inbox(self, *, rule: str | None = None, channel: str | None = None, state: str | None = None,
              feedback: str | None = None, since: float | None = None, until: float | None = None,
              before: int | None = None, after: int | None = None, limit: int = 50) -> list[dict]:
        """Alerts newest first, one row per story (module docstring); filters combine with AND.
        ``since``/``until``: the story's creation time, ``since <= t < until``. ``before``: stories
        with a smaller id (the next page); ``after``: with a larger one (what is new since)."""
        where, args = story_filter(rule=rule, channel=channel, state=state, feedback=feedback, since=since,
                                   until=until)
        if before is not None:
            where.append("m.id < ?")
            args.append(before)
        if after is not None:
            where.append("m.id > ?")
            args.append(after)
        ids = [r[0] for r in self.db.execute(
            f"SELECT m.id FROM matches m WHERE {' AND '.join(where)} ORDER BY m.id DESC LIMIT ?",
            [*args, max(1, min(int(limit), 500))]).fetchall()]
        return self._stories(ids)

    def _stories(self, ids: Sequence[int]) -> list[dict]:
        """The inbox rows of these primary matches, in this order (one query per part, not per story)."""
        if not ids:
            return []
        marks = _marks(ids)
        base = {r["id"]: r for r in self._rows(
            "SELECT m.id, m.story, m.entry_id, m.rule_id, m.terms, m.context, m.snippet, m.severity, m.tier, "
            "m.salience, m.created_at, COALESCE(e.title, a.title, '') AS title, COALESCE(e.link, a.url) AS link, "
            "e.published, COALESCE(f.title, f.url) AS feed_title, a.language FROM matches m "
            "JOIN entries e ON e.id = m.entry_id JOIN feeds f ON f.id = e.feed_id "
            f"LEFT JOIN articles a ON a.entry_id = m.entry_id WHERE m.id IN ({marks})", ids)}
        rules: dict[int, list[dict]] = {i: [] for i in ids}
        for r in self._rows(
                "SELECT id, COALESCE(primary_id, id) AS root, rule_id, rule_title, terms, context, severity, "
                f"salience, tier FROM matches WHERE id IN ({marks}) UNION ALL "
                "SELECT id, primary_id AS root, rule_id, rule_title, terms, context, severity, salience, tier "
                f"FROM matches WHERE primary_id IN ({marks}) ORDER BY id", [*ids, *ids]):
            rules[r["root"]].append(r)
        deliveries: dict[int, list[dict]] = {i: [] for i in ids}
        for r in self._rows(
                "SELECT id AS alert_id, match_id, channel, state, held, attempts, sent_at, last_error, "
                f"next_attempt_at FROM outbox WHERE match_id IN ({marks}) ORDER BY id", ids):
            deliveries[r.pop("match_id")].append(r)
        # other sources of each story, and those of them that made no delivery (stored only, or
        # silenced by a "not relevant"): only a source's primary match has outbox rows
        followups: dict[int, int] = {}
        unsent: dict[int, int] = {}
        for lead, n, quiet in self.db.execute(
                "SELECT lead_id, COUNT(DISTINCT entry_id), COUNT(DISTINCT entry_id) FILTER (WHERE primary_id IS NULL "
                "AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.match_id = matches.id)) FROM matches "
                f"WHERE lead_id IN ({marks}) GROUP BY lead_id", ids).fetchall():
            followups[int(lead)], unsent[int(lead)] = int(n), int(quiet)
        stories = list({b["story"] for b in base.values()})
        verdicts: dict[str, dict] = {}
        for r in self._rows(f"SELECT story, verdict, given_by, created_at AS at, note, id FROM feedback WHERE story "
                            f"IN ({_marks(stories)}) AND replaced_at IS NULL ORDER BY created_at, id", stories):
            verdicts[r.pop("story")] = r  # the latest current verdict wins
        own: dict[int, list[str]] = {}  # the rules each of those verdicts holds for as given
        fids = [v["id"] for v in verdicts.values()]
        if fids:
            for fid, rule_id in self.db.execute(
                    f"SELECT feedback_id, rule_id FROM feedback_rules WHERE feedback_id IN ({_marks(fids)}) "
                    "AND verdict IS NULL ORDER BY rule_id", fids).fetchall():
                own.setdefault(int(fid), []).append(str(rule_id))
        out = []
        for i in ids:
            b = base.get(i)
            if b is None:
                continue
            story_rules = sorted(rules[i], key=lambda r: (r["id"] != i, -_RANK.get(r["severity"], 1), r["id"]))
            out.append({
                "id": i, "alert_id": deliveries[i][0]["alert_id"] if deliveries[i] else None,
                "title": b["title"], "link": b["link"], "feed_title": b["feed_title"], "published": b["published"],
                "created_at": b["created_at"],
                "severity": max((r["severity"] for r in story_rules), key=lambda s: _RANK.get(s, 1),
                                default=b["severity"]),
                "tier": b["tier"], "salience": b["salience"], "language": b["language"], "snippet": b["snippet"] or "",
                "terms": _json(b["terms"], []), "context": _json(b["context"], []),
                "rules": [{"rule_id": r["rule_id"], "title": r["rule_title"] or r["rule_id"],
                           "terms": _json(r["terms"], []), "context": _json(r["context"], []),
                           "severity": r["severity"], "salience": r["salience"], "tier": r["tier"]}
                          for r in story_rules],
                "deliveries": deliveries[i], "followups": followups.get(i, 0), "unsent": unsent.get(i, 0),
                "feedback": _latest(verdicts.get(b["story"]), own, len(story_rules)),
                "entry_id": b["entry_id"],
            })
        return out

    def story(self, alert_id: int) -> dict | None:
        """The inbox row of the story holding this outbox row (a follow-up's, a digest carrier's,
        any channel's), with its article, entry, every outbox row (``history``), every source,
        every verdict (replaced ones too) and every match; None for an unknown id."""
        row = self.db.execute("SELECT COALESCE(m.lead_id, m.primary_id, m.id) FROM outbox o JOIN matches m "
                              "ON m.id = o.match_id WHERE o.id = ?", (alert_id,)).fetchone()
        if row is None:
            return None
        root = int(row[0])
        found = self._stories([root])
        if not found:
            return None
        s = found[0]
        arts = self._rows("SELECT title, text, url, language, author, date, source, error FROM articles "
                          "WHERE entry_id = ?", [s["entry_id"]])
        s["article"] = arts[0] if arts else None
        s["entry"] = self._rows(
            "SELECT e.title, e.summary, e.link, e.published, f.url AS feed_url, COALESCE(f.title, f.url) AS "
            "feed_title, e.first_seen_at FROM entries e JOIN feeds f ON f.id = e.feed_id WHERE e.id = ?",
            [s["entry_id"]])[0]
        s["history"] = self._rows(
            "SELECT o.id AS alert_id, o.channel, o.state, o.held, o.attempts, o.created_at, o.last_attempt_at, "
            "o.sent_at, o.dead_at, o.last_error, o.last_status, o.digest_id, o.match_id, "
            "m.id != ? AS followup FROM matches m JOIN outbox o ON o.match_id = m.id "
            "WHERE m.id = ? OR m.lead_id = ? ORDER BY o.id", [root, root, root])
        for h in s["history"]:
            h["followup"] = bool(h["followup"])
        if s["alert_id"] is None and s["history"]:  # a story told only by follow-ups' rows
            s["alert_id"] = s["history"][0]["alert_id"]
        s["sources"] = self._rows(
            "SELECT COALESCE(f.title, f.url) AS feed_title, f.url AS feed_url, e.title, e.link, e.published, "
            "e.first_seen_at, e.id AS entry_id FROM entries e JOIN feeds f ON f.id = e.feed_id WHERE e.id IN "
            "(SELECT entry_id FROM matches WHERE id = ? OR lead_id = ?) ORDER BY e.first_seen_at, e.id",
            [root, root])
        given = self.feedback(s["alert_id"]) if s["alert_id"] is not None else []
        s["verdicts"] = [{"verdict": v.verdict, "given_by": v.given_by, "via": v.via, "at": v.at, "note": v.note,
                          "rules": list(v.rules), "kept": [list(k) for k in v.kept], "replaced_at": v.replaced_at}
                         for v in given]
        # each rule's current verdicts, person by person (a verdict may name one rule: feedback.py)
        s["rule_verdicts"] = {}
        for v in given:
            if v.replaced_at is None:
                kept = dict(v.kept)
                for rule_id in v.rules:
                    s["rule_verdicts"].setdefault(rule_id, []).append(
                        {"verdict": kept.get(rule_id, v.verdict), "given_by": v.given_by})
        s["matches"] = [
            {**r, "terms": _json(r["terms"], []), "context": _json(r["context"], []),
             "features": _json(r["features"], []), "followup": r["match_id"] != root and r["lead_id"] is not None}
            for r in self._rows(
                "SELECT id AS match_id, entry_id, lead_id, rule_id, COALESCE(rule_title, rule_id) AS rule_title, "
                "terms, context, field, snippet, severity, salience, tier, features, created_at FROM matches "
                "WHERE id = ? OR primary_id = ? OR lead_id = ? ORDER BY id", [root, root, root])]
        for m in s["matches"]:
            del m["lead_id"]
        # what became of each source: "channel: state" of the outbox rows its matches made; none:
        # not sent (stored only, or a later source of a story the team judged not relevant)
        made: dict[int, list[str]] = {}
        for h in s["history"]:
            made.setdefault(h["match_id"], []).append(f"{h['channel']}: {h['state']}")
        by_entry: dict[int, list[str]] = {}
        for m in s["matches"]:
            by_entry.setdefault(m["entry_id"], []).extend(made.get(m["match_id"], []))
        for src in s["sources"]:
            src["delivery"] = by_entry.get(src["entry_id"], [])
        # the rules whose later sources of the story are not sent: the team judged it not relevant
        s["silenced"] = sorted(judged_not(self.db, root))
        return s

    def channel_states(self) -> list[dict]:
        """One row per channel that has outbox rows: rows per delivery state (``held``: waiting
        for a digest now; ``digest``: listed in a digest not sent yet), when it last sent, and
        its latest error still on a row (a later success clears that row's error)."""
        rows = self._rows(
            "SELECT channel, " + ", ".join(f"COUNT(*) FILTER (WHERE state = '{k}') AS {k}" for k in (
                "pending", "sending", "sent", "failed", "dead", "held", "digest")) + ", MAX(sent_at) AS last_sent_at "
            "FROM outbox GROUP BY channel ORDER BY channel")
        errors = {r["channel"]: r for r in self._rows(  # each channel's latest error (a window: no bare columns)
            "SELECT channel, last_error, at AS last_error_at FROM (SELECT channel, last_error, "
            "COALESCE(last_attempt_at, created_at) AS at, ROW_NUMBER() OVER (PARTITION BY channel "
            "ORDER BY COALESCE(last_attempt_at, created_at) DESC, id DESC) AS n FROM outbox "
            "WHERE last_error IS NOT NULL) t WHERE n = 1")}
        for r in rows:
            e = errors.get(r["channel"], {})
            r["last_error"], r["last_error_at"] = e.get("last_error"), e.get("last_error_at")
        return rows

    def rule_stats(self, since: float) -> dict[str, dict]:
        """Per rule id: stories it alerted (as the lead or a rule travelling with it) since
        ``since`` and ever, the current verdicts on its stories (relevant, not) and its last alert."""
        out: dict[str, dict] = {}
        for rule_id, total, recent, last in self.db.execute(
                "SELECT c.rule_id, COUNT(*), COUNT(*) FILTER (WHERE m.created_at >= ?), MAX(m.created_at) "
                "FROM matches c JOIN matches m ON m.id = COALESCE(c.primary_id, c.id) "
                "WHERE c.lead_id IS NULL AND " + ROOT +
                " GROUP BY c.rule_id", (since,)).fetchall():
            out[str(rule_id)] = {"alerts": int(recent), "alerts_total": int(total), "relevant": 0, "not": 0,
                                 "last_alert_at": last}
        for rule_id, verdict, n in self.db.execute(
                f"SELECT r.rule_id, {RULE_VERDICT}, COUNT(*) FROM feedback_rules r "
                "JOIN feedback f ON f.id = r.feedback_id "
                f"WHERE f.replaced_at IS NULL GROUP BY r.rule_id, {RULE_VERDICT}").fetchall():
            stats = out.setdefault(str(rule_id), {"alerts": 0, "alerts_total": 0, "relevant": 0, "not": 0,
                                                  "last_alert_at": None})
            if verdict in ("relevant", "not"):
                stats[str(verdict)] = int(n)
        return out
