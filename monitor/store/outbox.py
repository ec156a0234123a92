"""The outbox: one row per alert and channel, and ops notices (one row per notice and channel).

An alert row moves through ``pending -> sending -> sent | failed | dead`` (delivery.py says
when). Each step is one UPDATE, atomic on its own; the claim ('sending', ``claimed_at``) is
committed before apprise is called, with a lease (owner and expiry, monitor/leases.py): a crash
leaves evidence, and another claim takes the row over once the lease has run out. Rows still
to deliver are read per channel in id order through a partial index that
holds only undelivered rows."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NamedTuple

from ..leases import OWNER
from ..models import SEVERITIES, Alert, AlertRule
from .base import Queries

QUEUED = "o.state IN ('pending', 'sending', 'failed')"  # the partial index's own condition
_SELECT = (
    "SELECT o.id, o.match_id, o.channel, o.state, o.attempts, o.last_error, o.last_status, o.next_attempt_at, "
    "o.last_attempt_at, o.created_at, o.revived_at, o.sent_at, o.dead_at, o.held, o.digest_id, o.lease_until, "
    "m.rule_id, "
    "m.rule_title, "
    "m.terms, m.context, m.snippet, m.severity, m.salience, m.tier, m.features, e.title, e.link, e.published, "
    "f.title AS feed_title, "
    "f.url AS feed_url, a.language, "
    # every rule that fired on the story: the primary match and those travelling with it
    "(SELECT json_group_array(json_array(c.id, c.rule_id, c.rule_title, c.terms, c.context, c.severity, "
    "c.salience, c.tier, c.features)) "
    "FROM matches c WHERE c.id = m.id OR c.primary_id = m.id) AS rules "
    "FROM outbox o JOIN matches m ON m.id = o.match_id "
    "JOIN entries e ON e.id = m.entry_id JOIN feeds f ON f.id = e.feed_id "
    "LEFT JOIN articles a ON a.entry_id = e.id "
)
_RANK = {s: i for i, s in enumerate(SEVERITIES)}
INTERRUPTED = "interrupted: the sender stopped during this attempt; sent again (the service may have it)"


class PendingNotice(NamedTuple):
    id: int
    channel: str
    title: str
    body: str
    attempts: int


def _rules(r: dict[str, Any]) -> tuple[AlertRule, ...]:
    """The story's rules, the most severe first, then in the order they were recorded (the
    primary match leads among equals)."""
    rows = sorted(json.loads(r["rules"] or "[]"), key=lambda c: (c[0] != r["match_id"], -_RANK.get(c[5], 1), c[0]))
    return tuple(AlertRule(rule_id, title or rule_id, tuple(json.loads(terms)), tuple(json.loads(context or "[]")),
                           severity or "normal", salience if salience is not None else 1.0, tier or "alert",
                           _features(features))
                 for _, rule_id, title, terms, context, severity, salience, tier, features in rows)


def _features(text: str | None) -> tuple[tuple[str, float | int | None], ...]:
    return tuple((str(k), v) for k, v in json.loads(text or "[]"))


def _alert(r: dict[str, Any]) -> Alert:
    rules = _rules(r)
    return Alert(
        id=r["id"], channel=r["channel"], rule_id=r["rule_id"], rule_title=r["rule_title"] or r["rule_id"],
        title=r["title"] or "", link=r["link"], feed_title=r["feed_title"] or r["feed_url"],
        published=r["published"], terms=tuple(json.loads(r["terms"])), snippet=r["snippet"] or "",
        attempts=r["attempts"], created_at=r["created_at"], revived_at=r["revived_at"], state=r["state"],
        last_error=r["last_error"], last_status=r["last_status"], next_attempt_at=r["next_attempt_at"],
        last_attempt_at=r["last_attempt_at"], sent_at=r["sent_at"], dead_at=r["dead_at"],
        severity=max((x.severity for x in rules), key=lambda v: _RANK.get(v, 1), default=r["severity"] or "normal"),
        language=r["language"], held=r["held"], digest_id=r["digest_id"], rules=rules, lease_until=r["lease_until"],
        context=tuple(json.loads(r["context"] or "[]")),
        salience=r["salience"] if r["salience"] is not None else 1.0, tier=r["tier"] or "alert",
        features=_features(r["features"]),
    )


class OutboxQueries(Queries):
    # -- the sender's queue -------------------------------------------------------------------
    def queued_channels(self) -> list[str]:
        """Channels with alerts still to deliver (pending, sending or failed)."""
        return [r["channel"] for r in self._rows(f"SELECT DISTINCT channel FROM outbox o WHERE {QUEUED}")]

    def queue(self, channel: str, limit: int = 100) -> list[Alert]:
        """The channel's undelivered alerts in delivery order (oldest first), due or not."""
        return [_alert(r) for r in self._rows(
            _SELECT + f"WHERE o.channel = ? AND {QUEUED} ORDER BY o.id LIMIT ?", [channel, limit])]

    def claim(self, alert_id: int, now: float, owner: str = OWNER, lease: float = 120.0) -> bool:
        """Mark the alert 'sending', leased to ``owner`` until ``now + lease``, before it is handed
        to apprise; False if it is not due any more (a `monitor alerts retry`, or another sender
        holds a live lease on it). A 'sending' row whose lease ran out (its sender died, or could
        not record the send) is taken over: that interrupted attempt counts, and is said."""
        cur = self.db.execute(
            "UPDATE outbox SET attempts = attempts + CASE WHEN state = 'sending' THEN 1 ELSE 0 END, "
            "last_error = CASE WHEN state = 'sending' THEN ? ELSE last_error END, "
            "last_attempt_at = CASE WHEN state = 'sending' THEN claimed_at ELSE last_attempt_at END, "
            "state = 'sending', claimed_at = ?, lease_owner = ?, lease_until = ? "
            "WHERE id = ? AND (state IN ('pending', 'failed') OR (state = 'sending' AND "
            "(lease_until IS NULL OR lease_until <= ?)))", (INTERRUPTED, now, owner, now + lease, alert_id, now))
        return cur.rowcount == 1

    def mark_sent(self, alert_id: int, now: float, status: int | None = None) -> None:
        """Sent; a digest's carrier takes the alerts it lists along (store/noise.py)."""
        with self._transaction():
            self.db.execute(
                "UPDATE outbox SET state = 'sent', sent_at = ?, last_attempt_at = ?, attempts = attempts + 1, "
                "last_error = NULL, last_status = ?, claimed_at = NULL, lease_owner = NULL, lease_until = NULL "
                "WHERE id = ?", (now, now, status, alert_id))
            self.db.execute("UPDATE outbox SET state = 'sent', sent_at = ? WHERE digest_id = ? AND state = 'digest'",
                            (now, alert_id))

    def mark_failed(self, alert_id: int, error: str, next_at: float, *, now: float,
                    status: int | None = None) -> None:
        self.db.execute(
            "UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = ?, last_status = ?, "
            "next_attempt_at = ?, last_attempt_at = ?, claimed_at = NULL, lease_owner = NULL, lease_until = NULL "
            "WHERE id = ?",
            (error[:500], status, next_at, now, alert_id))

    def mark_dead(self, alert_id: int, now: float, reason: str, notices: Sequence[tuple[str, str, str]],
                  *, attempted: bool = False, status: int | None = None) -> None:
        """Give up on an alert, in one transaction with the ops notices (channel, title, body)
        that say so. ``attempted``: this call ends a failed attempt (count it)."""
        with self._transaction():
            self.db.execute(
                "UPDATE outbox SET state = 'dead', dead_at = ?, last_error = ?, claimed_at = NULL, lease_owner = NULL, "
                "lease_until = NULL, "
                "attempts = attempts + ?, last_attempt_at = CASE WHEN ? = 1 THEN ? ELSE last_attempt_at END, "
                "last_status = COALESCE(?, last_status) WHERE id = ?",
                (now, reason[:500], int(attempted), int(attempted), now, status, alert_id))
            for channel, title, body in notices:
                self.db.execute("INSERT INTO notices (kind, channel, title, body, created_at, next_attempt_at) "
                                "VALUES ('alert-dead', ?, ?, ?, ?, ?)", (channel, title, body, now, now))

    def lease_owners(self) -> list[str]:
        """Owners of live-looking leases: alerts in flight ('sending') and feeds being polled."""
        return [r["lease_owner"] for r in self._rows(
            "SELECT lease_owner FROM outbox WHERE state = 'sending' AND lease_owner IS NOT NULL "
            "UNION SELECT lease_owner FROM feeds WHERE lease_owner IS NOT NULL")]

    def expire_leases(self, owners: Sequence[str], now: float, poll_interval: float = 0.0) -> list[int]:
        """The alerts and feeds of owners known to be gone (leases.dead) become claimable now; the
        next claim takes an alert over and counts the interrupted attempt. Rows 'sending' without
        an owner (left by a version before leases) count as expired already. The alerts' ids.
        A gone owner's feed may have been polled just before it died, unrecorded: it is due again
        one interval from now at the soonest (its pinned one, else ``poll_interval``: the daemon
        passes ``poll.min_interval``, the least any schedule waits; a learned cadence can be hours),
        so that no feed is polled twice within its interval (bench/cluster.py: 0.13 s without)."""
        if not owners:
            return []
        marks = ",".join("?" * len(owners))
        with self._transaction():
            ids = [r["id"] for r in self._rows(
                f"SELECT id FROM outbox WHERE state = 'sending' AND lease_owner IN ({marks}) ORDER BY id", owners)]
            self.db.execute(f"UPDATE outbox SET lease_until = ? WHERE state = 'sending' AND lease_owner IN ({marks})",
                            [now, *owners])
            self.db.execute(f"UPDATE feeds SET lease_owner = NULL, lease_until = NULL, next_check_at = MAX("
                            f"next_check_at, ? + COALESCE(interval_s, ?)) WHERE lease_owner IN ({marks})",
                            [now, poll_interval, *owners])
        return ids

    # -- what `monitor alerts` shows and revives ----------------------------------------------
    def alerts(self, state: str | None = None, limit: int = 100) -> list[Alert]:
        """The newest alerts first, optionally of one state."""
        where, args = ("WHERE o.state = ? ", [state]) if state else ("", [])
        return [_alert(r) for r in self._rows(_SELECT + where + "ORDER BY o.id DESC LIMIT ?", [*args, limit])]

    def alert(self, alert_id: int) -> Alert | None:
        rows = self._rows(_SELECT + "WHERE o.id = ?", [alert_id])
        return _alert(rows[0]) if rows else None

    def revive(self, now: float, alert_id: int | None = None) -> int:
        """Back to pending, due now, with a fresh count of attempts and a fresh max_age: one
        failed or dead alert (``alert_id``), else every dead one. Returns the rows changed."""
        where = "id = ? AND state IN ('pending', 'failed', 'dead')" if alert_id is not None else "state = 'dead'"
        cur = self.db.execute(
            f"UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ?, revived_at = ?, "
            f"dead_at = NULL WHERE {where}", (now, now, *([alert_id] if alert_id is not None else [])))
        return cur.rowcount

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
