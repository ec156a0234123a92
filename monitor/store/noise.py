"""Noise control's SQL (the decisions are in monitor/noise.py): holding alerts, counting what a
rule sent within its rate window, bundling a channel's held alerts into one digest, the
follow-ups of a story.

A digest needs no table of its own: its *carrier* is the oldest held outbox row of the channel,
put back to 'pending' with ``digest_id`` = its own id; the other held rows get state 'digest'
and the same ``digest_id``. The sender sends the carrier as one message listing them all, with
the outbox's claim / sent / failed / dead states, and ``mark_sent`` marks the members sent in
the same transaction. A dead digest is revived like any alert (``monitor alerts retry ID``).
Held follow-ups of a story that the team has since judged not relevant are left out of it."""

from __future__ import annotations

import logging
from typing import Any

from ..models import Alert, Digest, DigestItem
from .base import Queries
from .feedback import judged_not
from .learning import _list
from .outbox import _SELECT, _alert

log = logging.getLogger(__name__)


class NoiseQueries(Queries):
    def hold(self, alert_id: int, reason: str) -> bool:
        """A pending alert waits for the channel's next digest (noise.hold says why)."""
        cur = self.db.execute("UPDATE outbox SET state = 'held', held = ? WHERE id = ? AND state = 'pending'",
                              (reason, alert_id))
        return cur.rowcount == 1

    def sent_recently(self, channel: str, rule_id: str, since: float) -> int:
        """Alerts of the rule this channel sent on their own (not in a digest) after ``since``."""
        return int(self.db.execute(
            "SELECT COUNT(*) FROM outbox o JOIN matches m ON m.id = o.match_id WHERE o.channel = ? "
            "AND o.state = 'sent' AND o.sent_at > ? AND o.digest_id IS NULL AND m.rule_id = ?",
            (channel, since, rule_id)).fetchone()[0])

    def held_channels(self) -> list[str]:
        """Channels with alerts held for a digest (the sender visits them to release it)."""
        return [r["channel"] for r in self._rows("SELECT DISTINCT channel FROM outbox WHERE state = 'held'")]

    def held(self, channel: str) -> dict[str, float]:
        """Why the channel's held alerts wait: reason -> the oldest one's creation time."""
        return {r["held"]: r["oldest"] for r in self._rows(
            "SELECT held, MIN(created_at) AS oldest FROM outbox WHERE channel = ? AND state = 'held' "
            "GROUP BY held", [channel])}

    def first_polls_pending(self) -> int:
        """Active feeds not yet polled successfully: their first-poll ('backlog') alerts are still
        to come, so the channel's "while you were away" digest waits for them (noise.release)."""
        return int(self.db.execute("SELECT COUNT(*) FROM feeds WHERE active = 1 AND baselined_at IS NULL "
                                   "AND gone_at IS NULL").fetchone()[0])

    def held_rules(self, channel: str, reason: str) -> list[str]:
        return [r["rule_id"] for r in self._rows(
            "SELECT DISTINCT m.rule_id FROM outbox o JOIN matches m ON m.id = o.match_id "
            "WHERE o.channel = ? AND o.state = 'held' AND o.held = ?", [channel, reason])]

    def bundle(self, channel: str, now: float) -> int | None:
        """Put the channel's held alerts into one digest, due now; its carrier's id, or None
        when nothing is held. One transaction."""
        with self._transaction():
            self._serial(f"bundle:{channel}")  # two nodes bundling one channel: one digest
            self._drop_judged(channel)
            row = self.db.execute("SELECT MIN(id) FROM outbox WHERE channel = ? AND state = 'held'",
                                  (channel,)).fetchone()
            if row[0] is None:
                return None
            carrier = int(row[0])
            self.db.execute("UPDATE outbox SET state = 'digest', digest_id = ? WHERE channel = ? AND state = 'held'",
                            (carrier, channel))
            self.db.execute("UPDATE outbox SET state = 'pending', digest_at = ?, next_attempt_at = ? WHERE id = ?",
                            (now, now, carrier))
        return carrier

    def _drop_judged(self, channel: str) -> None:
        """Take out of the channel's digest the held follow-ups of stories that the team judged
        not relevant since they were held (``feedback.judged_not``) for every rule that routed the
        follow-up to this channel (``outbox.rules``; on a row made before migration 24, every rule
        of the follow-up): their matches stay, listed as the story's sources, and nothing is sent."""
        judged: dict[int, set[str]] = {}
        dropped = []
        for alert_id, match_id, lead, routed in self.db.execute(
                "SELECT o.id, m.id, m.lead_id, o.rules FROM outbox o JOIN matches m ON m.id = o.match_id "
                "WHERE o.channel = ? AND o.state = 'held' AND o.held = 'followup' AND m.lead_id IS NOT NULL",
                (channel,)).fetchall():
            if lead not in judged:
                judged[lead] = judged_not(self.db, lead)
            if not judged[lead]:
                continue
            rules = {r for r in _list(routed) if isinstance(r, str)} or {r for (r,) in self.db.execute(
                "SELECT rule_id FROM matches WHERE id = ? OR primary_id = ?", (match_id, match_id)).fetchall()}
            if judged[lead].issuperset(rules):
                dropped.append((alert_id, lead))
        for alert_id, lead in dropped:
            self.db.execute("DELETE FROM outbox WHERE id = ?", (alert_id,))
            log.info("follow-up not sent channel=%s alert=%s lead=%s reason=%r", channel, alert_id, lead,
                     "the team judged the story not relevant")

    def digest(self, carrier: int, rate_limit: str = "") -> Digest:
        """The digest a carrier row stands for: its alerts grouped by rule and story; follow-ups
        under their story (the lead alert's title when the lead went out before)."""
        rows = self._rows(_SELECT.replace("SELECT ", "SELECT o.held, m.lead_id, ", 1)
                          + "WHERE o.digest_id = ? ORDER BY o.id", [carrier])
        leads: dict[int, tuple[Alert, str, list[tuple[str, str | None]]]] = {}
        for r in rows:
            a = _alert(r)
            lead = r["lead_id"]
            if lead is None:
                leads.setdefault(r["match_id"], (a, r["held"] or "digest", []))
                continue
            if lead not in leads:
                shown = self._lead_alert(lead, a.channel) or a
                leads[lead] = (shown, "followup", [])
            leads[lead][2].append((a.feed_title or "?", a.link))
        items = tuple(DigestItem(a, reason, tuple(src)) for a, reason, src in leads.values())
        channel = rows[0]["channel"] if rows else ""
        return Digest(carrier, channel, items, sum(1 for r in rows if r["held"] == "rate"), rate_limit)

    def _lead_alert(self, match_id: int, channel: str) -> Alert | None:
        rows = self._rows(_SELECT + "WHERE o.match_id = ? AND o.channel = ?", [match_id, channel])
        return _alert(rows[0]) if rows else None

    def followups(self, alert_id: int) -> list[dict[str, Any]]:
        """The other sources of an alert's story (``monitor alerts show``), oldest first: feed,
        title, link, when, whether by the same URL or near-identical text, and what became of
        it (``delivery``: "channel: state" of each outbox row it made; none: it was not sent)."""
        rows = self._rows(
            "SELECT m.id AS match_id, COALESCE(f.title, f.url) AS feed, e.title, e.link, m.created_at, "
            "CASE WHEN m.story = l.story OR m.story LIKE l.story || ' via feed %' THEN 'same link' "
            "ELSE 'same text' END AS how FROM outbox o JOIN matches l ON l.id = o.match_id "
            "JOIN matches m ON m.lead_id = o.match_id JOIN entries e ON e.id = m.entry_id "
            "JOIN feeds f ON f.id = e.feed_id WHERE o.id = ? AND m.primary_id IS NULL ORDER BY m.id", [alert_id])
        delivery: dict[int, list[str]] = {}
        if rows:
            for d in self._rows(
                    "SELECT d.match_id, d.channel, d.state FROM outbox d JOIN matches m ON m.id = d.match_id "
                    "WHERE m.lead_id = (SELECT match_id FROM outbox WHERE id = ?) ORDER BY d.id", [alert_id]):
                delivery.setdefault(d["match_id"], []).append(f"{d['channel']}: {d['state']}")
        for r in rows:
            r["delivery"] = delivery.get(r.pop("match_id"), [])
        return rows

    def members(self, carrier: int) -> list[Alert]:
        """The alerts a digest lists (``monitor alerts show`` of a digest)."""
        return [_alert(r) for r in self._rows(_SELECT + "WHERE o.digest_id = ? ORDER BY o.id", [carrier])]
