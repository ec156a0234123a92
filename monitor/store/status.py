"""What the service reports about itself: the daemon's heartbeat row, and the counts behind
systemd's STATUS line, ``/metrics`` and ``monitor status``. Read-only except the heartbeat."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, NamedTuple

from .base import Queries

# schedule.status, feed by feed, in SQL: the same order of tests, the same truth of a number (a
# NULL or 0 cadence is none). The counts the daemon reports every few seconds come from one
# GROUP BY instead of a row per feed (50,000 feeds: ~72 ms of the database thread every 5 s, and
# 17.6 MB of dicts held); tests/test_store.py holds them to schedule.status on both engines.
_HEALTH = (
    "SELECT CASE WHEN COALESCE(active, 0) = 0 THEN 'inactive' WHEN paused_at IS NOT NULL THEN 'paused' "
    "WHEN gone_at IS NOT NULL THEN 'gone' WHEN COALESCE(error_count, 0) <> 0 THEN 'failing' "
    "WHEN baselined_at IS NULL THEN 'new' "
    "WHEN cadence_s <> 0 AND last_new_at <> 0 AND ? - last_new_at > "
    "CASE WHEN ? * cadence_s > ? THEN ? * cadence_s ELSE ? END THEN 'silent' "
    "ELSE 'ok' END AS health, COUNT(*) FROM feeds GROUP BY health")
# The snapshot's one pass over the feeds: by health, and per health the active feeds and those of
# them failing or gone (``status_counts``), so the table is read once, not twice (50,000 feeds:
# 20-23 + 9.5-11 ms -> one ~28 ms pass).
_FEED_COUNTS = _HEALTH.replace(
    "COUNT(*) FROM feeds", "COUNT(*), SUM(CASE WHEN active = 1 THEN 1 ELSE 0 END), SUM(CASE WHEN active = 1 AND "
    "(error_count > 0 OR gone_at IS NOT NULL) THEN 1 ELSE 0 END) FROM feeds")
RECOUNT = 600.0  # seconds between full counts of the matches per rule (matches_by_rule)
MANY_FEEDS = 10_000  # from this many feeds on, the snapshot's feed counts are taken at most every ...
FEEDS_RECOUNT = 30.0  # ... seconds (the pass costs ~4 ms a 10,000 feeds, and a snapshot is taken every 5 s)
_monotonic = time.monotonic  # (tests move it)


class Snapshot(NamedTuple):
    """What the daemon's STATUS line, /healthz and /metrics show, read in one go on the
    database thread (the event loop never waits for it)."""

    counts: tuple[int, int, int]  # active feeds, failing or gone, pending alerts
    health: dict[str, int]  # feeds by schedule.status ("ok", "paused", ...), those with none left out
    outbox: list[tuple[str, str, int]]
    notices: dict[str, int]
    matches: dict[str, int]
    feedback: dict[str, int] = {}  # verdicts ever given, by verdict (issue 17)
    cluster: dict[str, int] = {}  # PostgreSQL: poll jobs by state, and "workers" beating now (issue 19)
    misses: dict[str, int] = {}  # stories reported as missed, by rule (issue 17, migration 21)


class StatusQueries(Queries):
    # matches_by_rule's running count: (the last match id counted, counts by rule, when the last
    # full count was taken, monotonic); None before the first
    _by_rule: tuple[int, dict[str, int], float] | None = None
    # _feed_counts' last pass: ((silent_after, silent_min), when (monotonic), (active, failing, health))
    _feeds_held: tuple[tuple[float, float], float, tuple[int, int, dict[str, int]]] | None = None

    if TYPE_CHECKING:
        def feedback_counts(self) -> dict[str, int]: ...  # store/feedback.py
        def misses_by_rule(self) -> dict[str, int]: ...  # store/feedback.py

    # -- the daemon's heartbeat ---------------------------------------------------------------
    def daemon_started(self, pid: int, now: float) -> None:
        self.db.execute("INSERT INTO daemon (id, pid, started_at) VALUES (1, ?, ?) ON CONFLICT (id) "
                        "DO UPDATE SET pid = excluded.pid, started_at = excluded.started_at, "
                        "last_tick_at = NULL, stopped_at = NULL", (pid, now))

    def daemon_ticked(self, now: float) -> None:
        # One UPDATE is atomic on its own: no BEGIN/COMMIT for the most frequent write.
        self.db.conn.execute("UPDATE daemon SET last_tick_at = ? WHERE id = 1", (now,))

    def daemon_stopped(self, now: float) -> None:
        self.db.conn.execute("UPDATE daemon SET stopped_at = ? WHERE id = 1", (now,))

    def daemon_state(self) -> dict[str, Any] | None:
        """pid, started_at, last_tick_at, stopped_at of the last daemon run; None if it never ran."""
        rows = self._rows("SELECT pid, started_at, last_tick_at, stopped_at FROM daemon WHERE id = 1")
        return rows[0] if rows else None

    def periodic_turn(self, name: str, now: float, every: float, node: str) -> bool:
        """Whether this daemon runs the periodic job ``name`` now: True for the one daemon that
        finds its last run (by any daemon on the database) ``every`` seconds old or more, and
        records this one in the same statement; False for every other. Slightly early calls of
        one period's daemons (clocks, tick jitter) count as on time: the margin is a tenth."""
        cur = self.db.execute(
            "INSERT INTO periodic_runs (name, last_at, node) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE "
            "SET last_at = excluded.last_at, node = excluded.node WHERE periodic_runs.last_at <= ?",
            (name, now, node, now - every * 0.9))
        return cur.rowcount == 1

    # -- counts ------------------------------------------------------------------------------
    def snapshot(self, now: float | None = None, silent_after: float = 10, silent_min: float = 43200) -> Snapshot:
        """The counts, feeds by health as of ``now`` (``[poll] silent_after``, ``silent_min``)."""
        active, failing, health = self._feed_counts(time.time() if now is None else now, silent_after, silent_min)
        pending = int(self.db.execute("SELECT COUNT(*) FROM outbox WHERE state = 'pending'").fetchone()[0])
        return Snapshot((active, failing, pending), health, self.outbox_by_channel(),
                        self.notices_by_state(), self.matches_by_rule(), self.feedback_counts(),
                        self.work_queue_counts(), self.misses_by_rule())

    def _feed_counts(self, now: float, silent_after: float, silent_min: float) -> tuple[int, int, dict[str, int]]:
        """``status_counts``' active and failing feeds and ``health_counts``, in one pass over the
        feeds; with MANY_FEEDS or more, the last pass's counts for up to FEEDS_RECOUNT seconds
        (the feeds' health moves by polls, which take minutes; /metrics and STATUS may lag)."""
        held, at = self._feeds_held, _monotonic()
        if held is not None and held[0] == (silent_after, silent_min) and at - held[1] < FEEDS_RECOUNT \
                and sum(held[2][2].values()) >= MANY_FEEDS:
            return held[2][0], held[2][1], dict(held[2][2])
        active = failing = 0
        health: dict[str, int] = {}
        for h, n, a, f in self.db.execute(_FEED_COUNTS, [now, silent_after, silent_min, silent_after,
                                                         silent_min]).fetchall():
            health[str(h)] = int(n)
            active, failing = active + int(a or 0), failing + int(f or 0)
        self._feeds_held = ((silent_after, silent_min), at, (active, failing, health))
        return active, failing, dict(health)

    def work_queue_counts(self) -> dict[str, int]:
        """Cluster mode's work queue (monitor/cluster.py): poll jobs by state (todo, doing,
        failed, ...) and the workers that beat within the last STALLED_AFTER seconds under
        ``workers``. Empty on SQLite, or before the queue's tables exist."""
        if self.dialect != "postgresql" or not self.db.execute(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() "
                "AND table_name = 'procrastinate_jobs'").fetchone()[0]:
            return {}
        from ..leases import POLL_QUEUE as QUEUE
        from ..leases import STALLED_AFTER
        out = {str(r["status"]): int(r["n"]) for r in self._rows(
            "SELECT status::text AS status, COUNT(*) AS n FROM procrastinate_jobs WHERE queue_name = ? "
            "GROUP BY status", [QUEUE])}
        out["workers"] = int(self.db.execute(
            "SELECT COUNT(*) FROM procrastinate_workers WHERE last_heartbeat > NOW() - make_interval(secs => ?)",
            [STALLED_AFTER]).fetchone()[0])
        return out

    def status_counts(self) -> tuple[int, int, int]:
        """(active feeds, failing or gone feeds, pending alerts): systemd's STATUS line."""
        feeds, failing = self.db.execute(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE error_count > 0 OR gone_at IS NOT NULL) "
            "FROM feeds WHERE active = 1").fetchone()
        pending = self.db.execute("SELECT COUNT(*) FROM outbox WHERE state = 'pending'").fetchone()[0]
        return int(feeds), int(failing), int(pending)

    def health_counts(self, now: float, silent_after: float, silent_min: float) -> dict[str, int]:
        """Feeds by ``schedule.status`` at ``now``: {"ok": 180, "failing": 3, ...}."""
        rows = self.db.execute(_HEALTH, [now, silent_after, silent_min, silent_after, silent_min]).fetchall()
        return {str(h): int(n) for h, n in rows}

    def outbox_by_channel(self) -> list[tuple[str, str, int]]:
        """(state, channel, alerts) for every pair present in the outbox."""
        rows = self.db.execute("SELECT state, channel, COUNT(*) FROM outbox GROUP BY state, channel")
        return [(str(s), str(c), int(n)) for s, c, n in rows.fetchall()]

    def notices_by_state(self) -> dict[str, int]:
        rows = self.db.execute("SELECT state, COUNT(*) FROM notices GROUP BY state").fetchall()
        return {str(s): int(n) for s, n in rows}

    def matches_by_rule(self) -> dict[str, int]:
        """Matches stored per rule: counted in full once, then, each time it is asked (the
        daemon's snapshot, every 5 s), by the rows added since, whose ids are above the last one
        counted (the primary key finds them at once). Matches are kept for good (a story's
        matches are its dedup, store/retention.py), and a full GROUP BY reads the whole UNIQUE
        (rule_id, story) index: ~110 ms of the database thread at 1,000,000 matches. In full
        again every RECOUNT seconds, so that rows retention's cascades deleted, and ids that
        committed out of order on PostgreSQL, are counted right by then."""
        held, now = self._by_rule, time.monotonic()
        if held is None or now - held[2] >= RECOUNT:
            top = int(self.db.execute("SELECT COALESCE(MAX(id), 0) FROM matches").fetchone()[0])
            rows = self.db.execute("SELECT rule_id, COUNT(*) FROM matches WHERE id <= ? GROUP BY rule_id",
                                   [top]).fetchall()
            counts, at = {str(r): int(n) for r, n in rows}, now
        else:
            top, counts, at = held
            # the new rows themselves, few: a GROUP BY here would have SQLite read the whole
            # (rule_id, story) index in its order and test each row's id (~50 ms at 1,000,000)
            for i, r in self.db.execute("SELECT id, rule_id FROM matches WHERE id > ?", [top]).fetchall():
                counts[str(r)] = counts.get(str(r), 0) + 1
                top = max(top, int(i))
        self._by_rule = (top, counts, at)
        return dict(counts)
