"""Retention (issue 6): delivered material older than ``older_than`` goes, in small
transactions, so the database stays bounded in a long run; what dedup and delivery need stays.

Kept, whatever its age:
- every alert not yet delivered (pending, sending, failed, dead), with its match, entry and
  article: ``monitor alerts retry`` can still send it and ``monitor alerts`` show it;
- an entry's identity (``feed_id, uid``): it is what stops a story from alerting twice when the
  feed serves it again. An old entry becomes a *tombstone* (title, summary, link, guid,
  published set to NULL; its matches, the per-rule story dedup, stay; its ``content_hash``
  stays too, so a feed that moves to a new domain years later does not re-alert it), and
  ``sort_entries`` still knows its uid: no new alert, and no "edited" either.
- A tombstone itself goes only when its feed stopped serving it ``older_than`` ago: it was
  absent from the feed's last parsed poll and last seen (``last_seen_at``) before the cutoff.
  Only a feed that re-serves an item it dropped that long ago would alert on it again.
  Entries not stamped since the upgrade (NULL) go only once their feed has had a stamped poll.

Pruned, in this order: sent alerts and sent ops notices (``sent_at``); articles (the bulky page
text) of entries first seen before the cutoff; those entries to tombstones; old tombstones.

Each batch is one ``BEGIN IMMEDIATE`` transaction of at most ``batch`` rows, and ``steps``
yields between batches so the daemon's event loop (polls, sends) runs in between. SQLite reuses
freed pages, so the file stops growing rather than shrinks; it shrinks only if created with
``auto_vacuum=INCREMENTAL`` (settable only before the first table; existing databases keep
their layout), in which case ``incremental_vacuum`` returns the pages. The WAL is truncated.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from .base import Queries

BATCH = 5000
_UNDELIVERED = ("EXISTS (SELECT 1 FROM matches m JOIN outbox o ON o.match_id = m.id "
                "WHERE m.entry_id = e.id AND o.state != 'sent')")
# an outbox row that survives this run (undelivered, or sent after the cutoff) shows its entry
_KEPT_ALERT = ("EXISTS (SELECT 1 FROM matches m JOIN outbox o ON o.match_id = m.id "
               "WHERE m.entry_id = e.id AND (o.state != 'sent' OR o.sent_at >= :cutoff))")
_FEED_LAST = "(SELECT MAX(x.last_seen_at) FROM entries x WHERE x.feed_id = e.feed_id)"
WHERE = {
    "alerts": "FROM outbox WHERE state = 'sent' AND sent_at < :cutoff",
    "notices": "FROM notices WHERE state = 'sent' AND sent_at < :cutoff",
    "articles": f"FROM entries e JOIN articles a ON a.entry_id = e.id "
                f"WHERE e.first_seen_at < :cutoff AND NOT {_UNDELIVERED}",
    "entries": f"FROM entries e INDEXED BY entries_live WHERE e.title IS NOT NULL AND e.first_seen_at < :cutoff "
               f"AND NOT {_KEPT_ALERT}",
    "tombstones": f"FROM entries e WHERE e.title IS NULL AND e.first_seen_at < :cutoff "
                  f"AND COALESCE(e.last_seen_at, 0) < :cutoff AND COALESCE(e.last_seen_at, 0) < {_FEED_LAST} "
                  f"AND NOT {_KEPT_ALERT}",
}
_DELETE = {"alerts": "DELETE FROM outbox WHERE id IN (SELECT id {} LIMIT :batch)",
           "notices": "DELETE FROM notices WHERE id IN (SELECT id {} LIMIT :batch)",
           "articles": "DELETE FROM articles WHERE entry_id IN (SELECT a.entry_id {} LIMIT :batch)",
           "entries": "UPDATE entries SET title = NULL, summary = NULL, link = NULL, guid = NULL, "
                      "published = NULL WHERE id IN (SELECT e.id {} LIMIT :batch)",
           "tombstones": "DELETE FROM entries WHERE id IN (SELECT e.id {} LIMIT :batch)"}


class Pruned(NamedTuple):
    """Rows per kind: ``entries`` made tombstones, ``tombstones`` deleted for good."""

    entries: int = 0
    articles: int = 0
    alerts: int = 0
    notices: int = 0
    tombstones: int = 0


class RetentionQueries(Queries):
    def prune(self, now: float, older_than: float, *, dry_run: bool = False, batch: int = BATCH) -> Pruned:
        """Prune what retention allows (module docstring); rows per kind. ``dry_run``: count
        what this run would touch first (tombstones: those that exist already), change nothing."""
        if dry_run:
            args = {"cutoff": now - older_than}
            return Pruned(**{k: self._rows(f"SELECT COUNT(*) AS n {WHERE[k]}", args)[0]["n"]
                             for k in Pruned._fields})
        counts = Pruned()
        for step in self.steps(now, older_than, batch=batch):
            counts = step
        return counts

    def steps(self, now: float, older_than: float, *, batch: int = BATCH) -> Iterator[Pruned]:
        """``prune`` one transaction at a time, yielding the running counts after each batch.
        Sent alerts go first, so the entries they held back follow in the same run."""
        args = {"cutoff": now - older_than, "batch": batch}
        done = dict.fromkeys(Pruned._fields, 0)
        for kind in ("alerts", "notices", "articles", "entries", "tombstones"):
            while True:
                with self._transaction():
                    n = self.db.execute(_DELETE[kind].format(WHERE[kind]), args).rowcount
                done[kind] += n
                yield Pruned(**done)
                if n < batch:
                    break
        if any(done.values()) and self.dialect == "sqlite":  # PostgreSQL: its autovacuum reclaims the space
            if self.db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2:  # INCREMENTAL
                self.db.execute("PRAGMA incremental_vacuum").fetchall()
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
