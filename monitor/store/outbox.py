"""The outbox: pending alerts (one row per match and channel) and ops notices (one row per
notice and channel), each sent at least once and marked when the channel took it."""

from __future__ import annotations

import json
from typing import NamedTuple

from ..models import Alert
from .base import Queries


class PendingNotice(NamedTuple):
    id: int
    channel: str
    title: str
    body: str
    attempts: int


class OutboxQueries(Queries):
    def pending_alerts(self, now: float, limit: int = 100) -> list[Alert]:
        """Pending alerts due for an attempt, oldest first, with all a message needs."""
        rows = self._rows(
            "SELECT o.id, o.channel, o.attempts, o.created_at, m.rule_id, m.rule_title, m.terms, "
            "m.snippet, "
            "e.title, e.link, e.published, f.title AS feed_title, f.url AS feed_url "
            "FROM outbox o JOIN matches m ON m.id = o.match_id "
            "JOIN entries e ON e.id = m.entry_id JOIN feeds f ON f.id = e.feed_id "
            "WHERE o.state = 'pending' AND o.next_attempt_at <= ? "
            "ORDER BY o.id LIMIT ?",
            [now, limit],
        )
        return [
            Alert(
                id=r["id"], channel=r["channel"], rule_id=r["rule_id"], rule_title=r["rule_title"] or r["rule_id"],
                title=r["title"] or "", link=r["link"], feed_title=r["feed_title"] or r["feed_url"],
                published=r["published"], terms=tuple(json.loads(r["terms"])),
                snippet=r["snippet"] or "", attempts=r["attempts"], created_at=r["created_at"],
            )
            for r in rows
        ]

    def mark_sent(self, alert_id: int, now: float) -> None:
        self.db.execute(
            "UPDATE outbox SET state = 'sent', sent_at = ?, attempts = attempts + 1, "
            "last_error = NULL WHERE id = ?",
            (now, alert_id),
        )

    def mark_failed(self, alert_id: int, error: str, next_at: float) -> None:
        self.db.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? "
            "WHERE id = ?",
            (error[:500], next_at, alert_id),
        )

    def outbox_counts(self) -> dict[str, int]:
        rows = self._rows("SELECT state, COUNT(*) AS n FROM outbox GROUP BY state")
        return {r["state"]: r["n"] for r in rows}

    # -- ops notices ----------------------------------------------------------------------
    def pending_notices(self, now: float, limit: int = 100) -> list[PendingNotice]:
        rows = self._rows("SELECT id, channel, title, body, attempts FROM notices "
                          "WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY id LIMIT ?", [now, limit])
        return [PendingNotice(**r) for r in rows]

    def mark_notice(self, notice_id: int, now: float, error: str | None = None, next_at: float = 0.0) -> None:
        """Sent when ``error`` is None, else attempted and due again at ``next_at``."""
        if error is None:
            self.db.execute("UPDATE notices SET state = 'sent', sent_at = ?, attempts = attempts + 1, "
                            "last_error = NULL WHERE id = ?", (now, notice_id))
        else:
            self.db.execute("UPDATE notices SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? "
                            "WHERE id = ?", (error[:500], next_at, notice_id))
