"""Feeds: registration (config, command line, OPML), schedule state and health.

A feed has two addresses: ``source_url``, as configured or added, by which the config finds
its row again; and ``url``, which follows permanent redirects (301/308). Removing a feed
deactivates it: its entries stay as tombstones, so adding it back alerts only on news.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Collection, Sequence
from typing import Any, NamedTuple

from ..models import KEEP, Feed, FeedUpdate
from .base import Queries, UnknownFeed
from .feed_rows import FEED_COLUMNS, feed_of, feeds_of, not_among
from .steps import host_of

log = logging.getLogger(__name__)

# The columns a poll may set: ``FeedUpdate``'s fields but the three that are not columns. Fixed
# names, so the generated UPDATE is safe.
POLL_COLUMNS = tuple(f.name for f in dataclasses.fields(FeedUpdate) if f.name not in ("moved", "notices", "warning"))


class FeedSpec(NamedTuple):
    url: str
    title: str | None = None
    interval: float | None = None
    tags: tuple[str, ...] = ()


RELEASE = "lease_owner = NULL, lease_until = NULL"  # a poll's record ends its feed's lease
# next_check_at of a batched poll (params: polled at, batch written at, the poll's next time)
NEWER = "CASE WHEN next_check_at > ? AND next_check_at <= ? THEN next_check_at ELSE ? END"

# The update of a successful unchanged poll (health.decide of a 304 or the same body: ``_ok``),
# the most common write by far, as one statement whose constant columns are literals: 6
# parameters a row instead of 13, and no columns grouped per row (issue 16, G3). In
# ``save_polls`` a row takes it only when its columns and constants are exactly these.
UNCHANGED_SET = (("last_status", "not-modified"), ("last_error_kind", None), ("last_error", None), ("error_count", 0),
                 ("failing_since", None), ("gone_at", None), ("alerted_failing", False))
UNCHANGED = ("UPDATE feeds SET last_polled_at = ?, last_ok_at = ?, last_status = 'not-modified', "
             "last_error_kind = NULL, last_error = NULL, error_count = 0, failing_since = NULL, gone_at = NULL, "
             f"alerted_failing = 0, next_check_at = {NEWER}, {RELEASE} WHERE id = ?")


class FeedQueries(Queries):
    def sync_feeds(self, feeds: Sequence[Sequence[Any]], now: float) -> None:
        """Make the config's feeds (url, title, interval[, tags]) active; deactivate config
        feeds that left the config. Schedule state of kept feeds is untouched."""
        specs = [FeedSpec(*f) for f in feeds]
        with self._transaction():
            self._serial("feeds")  # nodes starting together: one registers, the others find the rows
            for spec in specs:
                self._upsert(spec, "config", now)
            self.db.execute("CREATE TEMP TABLE IF NOT EXISTS config_urls (url TEXT PRIMARY KEY)")
            self.db.execute("DELETE FROM config_urls")
            self.db.conn.executemany("INSERT OR IGNORE INTO config_urls VALUES (?)",
                                     [(s.url,) for s in specs])
            self.db.execute(
                "UPDATE feeds SET active = 0 WHERE origin = 'config' AND active = 1 "
                "AND source_url NOT IN (SELECT url FROM config_urls)")

    def add_feeds(self, feeds: Sequence[Sequence[Any]], now: float) -> tuple[int, int]:
        """Register feeds from the command line or an OPML file, in one transaction. A feed
        already known (by its address or the one it moved to) is left as it is, except that a
        removed one comes back. Returns (added, already known)."""
        added = known = 0
        with self._transaction():
            self._serial("feeds")
            for f in feeds:
                if self._upsert(FeedSpec(*f), "cli", now):
                    added += 1
                else:
                    known += 1
        return added, known

    def _upsert(self, spec: FeedSpec, origin: str, now: float) -> bool:
        """Insert a feed or refresh the known one; True if it was new (or had been removed)."""
        rows = self._rows("SELECT id, origin, active, tags, interval_s, title FROM feeds WHERE source_url = ? "
                          "OR url = ? ORDER BY source_url = ? DESC LIMIT 1", [spec.url, spec.url, spec.url])
        tags = json.dumps(list(spec.tags), ensure_ascii=False)
        if not rows:
            self.db.execute(
                "INSERT INTO feeds (url, source_url, host, title, interval_s, tags, origin, created_at) "
                "VALUES (?,?,?,?,?,?,?,?)",
                (spec.url, spec.url, host_of(spec.url), spec.title or None, spec.interval, tags, origin, now))
            return True
        row = rows[0]
        revived = row["origin"] == "removed" or not row["active"]
        now_as = (row["origin"], row["active"], row["interval_s"], row["tags"])
        unchanged = now_as == ("config", 1, spec.interval, tags) and (not spec.title or row["title"] == spec.title)
        if origin == "config" and not unchanged:  # the config is the truth for its own feeds
            # (a row already as the config says is not written: a node starting with the cluster's
            # config must not lock every feed row while the other nodes' poll jobs take theirs)
            self.db.execute(
                "UPDATE feeds SET active = 1, origin = 'config', interval_s = ?, tags = ?, "
                "title = COALESCE(?, title) WHERE id = ?",
                (spec.interval, tags, spec.title or None, row["id"]))
        elif revived:
            self.db.execute(
                "UPDATE feeds SET active = 1, origin = 'cli', interval_s = COALESCE(?, interval_s), "
                "tags = ?, title = COALESCE(?, title), next_check_at = 0 WHERE id = ?",
                (spec.interval, tags, spec.title or None, row["id"]))
        return revived and origin == "cli"

    def remove_feed(self, url: str) -> str:
        """Deactivate a feed added from the command line: 'removed', 'config' (refused: it is
        in the config file) or 'unknown'."""
        rows = self._rows("SELECT id, origin FROM feeds WHERE (source_url = ? OR url = ?) AND active = 1",
                          [url, url])
        if not rows:
            return "unknown"
        if rows[0]["origin"] == "config":
            return "config"
        self.db.execute("UPDATE feeds SET active = 0, origin = 'removed' WHERE id = ?", [rows[0]["id"]])
        return "removed"

    def poll_now(self, feed: str, now: float) -> str | None:
        """Make an active feed due at ``now`` (``monitor feeds poll``), found by its id or either
        of its addresses; its URL, or None if no active feed is so named. Only next_check_at
        changes: a running daemon polls it at its next tick, with its validators and cadence."""
        rows = self._rows("SELECT id, url FROM feeds WHERE active = 1 AND (id = ? OR source_url = ? OR url = ?) "
                          "ORDER BY id = ? DESC, source_url = ? DESC LIMIT 1",
                          [int(feed) if feed.isdigit() else None, feed, feed,
                           int(feed) if feed.isdigit() else None, feed])
        if not rows:
            return None
        self.db.execute("UPDATE feeds SET next_check_at = ? WHERE id = ?", [now, rows[0]["id"]])
        return str(rows[0]["url"])

    def pause_feed(self, url: str, paused: bool, now: float) -> str:
        """Pause (never due, never claimed) or resume a feed, found by its id or either of its
        addresses; its URL. A resumed feed is due at once. UnknownFeed if no feed is so named."""
        key = int(url) if url.isdigit() else None
        rows = self._rows("SELECT id, url FROM feeds WHERE id = ? OR source_url = ? OR url = ? "
                          "ORDER BY active DESC, id = ? DESC, source_url = ? DESC LIMIT 1", [key, url, url, key, url])
        if not rows:
            raise UnknownFeed(url)
        if paused:
            self.db.execute("UPDATE feeds SET paused_at = COALESCE(paused_at, ?) WHERE id = ?", [now, rows[0]["id"]])
        else:
            self.db.execute("UPDATE feeds SET paused_at = NULL, next_check_at = MIN(next_check_at, ?) "
                            "WHERE id = ? AND paused_at IS NOT NULL", [now, rows[0]["id"]])
        return str(rows[0]["url"])

    def feeds(self, *, due_at: float | None = None, default_interval: float = 900,
              limit: int | None = None, after_id: int | None = None) -> list[Feed]:
        """Active feeds: soonest due first (only those due at ``due_at`` when given), or in id
        order after ``after_id`` (paging through all of them)."""
        return self._feeds(due_at, default_interval, limit, after_id)

    def claim_feeds(self, *, owner: str, now: float, lease: float, due: bool = True, default_interval: float = 900,
                    limit: int | None = None, after_id: int | None = None, skip: Collection[int] = ()) -> list[Feed]:
        """Like ``feeds`` (due at ``now`` when ``due``), but only feeds nobody else holds a live
        lease on, and each one leased to ``owner`` until ``now + lease`` in the same transaction
        (monitor/leases.py): a feed is polled by one process at a time. The poll's record
        releases it (``save_poll``, ``record``); a poll that dies leaves it to the expiry.
        ``skip``: ids the caller holds already (queued, polling, its record waiting): neither
        returned nor leased again (the daemon's claims rewrote up to a thousand such rows each)."""
        with self._transaction():
            feeds = self._feeds(now if due else None, default_interval, limit, after_id, (owner, now), skip)
            for i in range(0, len(feeds), 500):
                chunk = [f.id for f in feeds[i:i + 500]]
                self.db.execute(f"UPDATE feeds SET lease_owner = ?, lease_until = ? WHERE id IN "
                                f"({','.join('?' * len(chunk))})", [owner, now + lease, *chunk])
        return feeds

    def job_feeds(self, token: str, ids: Sequence[int], holder: str, default_interval: float = 900) -> list[Feed]:
        """Of a poll job's feeds (cluster mode, monitor/cluster.py), those still leased to its
        ``token``, now held by the node that runs it as ``holder:token`` (so that the node's
        death is seen on its host at once, ``leases.dead``): a feed recorded or handed back
        meanwhile is no longer the job's; one removed or paused since the claim is let go."""
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        with self._transaction():
            # removed from the config or paused since the claim: not polled, and free at once
            self.db.execute(f"UPDATE feeds SET {RELEASE} WHERE lease_owner = ? AND id IN ({marks}) "
                            "AND (active = 0 OR paused_at IS NOT NULL)", [token, *ids])
            self.db.execute(f"UPDATE feeds SET lease_owner = ? WHERE lease_owner = ? AND id IN ({marks})",
                            [f"{holder}:{token}", token, *ids])
            return [feed_of(r, default_interval) for r in self._rows(
                f"SELECT * FROM feeds WHERE lease_owner = ? AND id IN ({marks}) ORDER BY id",
                [f"{holder}:{token}", *ids])]

    def hand_back(self, token: str, ids: Sequence[int], now: float, poll_interval: float,
                  untouched: Sequence[int] = ()) -> int:
        """End a poll job's leases on the feeds it still holds (as its token, or as the node
        that ran it: ``job_feeds``). A feed the job never started is free at once; one it
        started and did not record (the database failed under it, or its node died) may have
        been fetched: it is due one interval from now at the soonest, as ``expire_leases`` does
        for a dead owner. The number of feeds handed back."""
        if not ids:
            return 0
        fresh = set(untouched)
        started = [i for i in ids if i not in fresh]
        mine = "(lease_owner = ? OR lease_owner LIKE ? ESCAPE '\\')"
        held = [token, "%:" + token.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")]
        n = 0
        with self._transaction():
            if fresh:
                marks = ",".join("?" * len(fresh))
                n += self.db.execute(f"UPDATE feeds SET {RELEASE} WHERE {mine} AND id IN ({marks})",
                                     [*held, *sorted(fresh)]).rowcount
            if started:
                marks = ",".join("?" * len(started))
                n += self.db.execute(
                    f"UPDATE feeds SET {RELEASE}, next_check_at = MAX(next_check_at, ? + COALESCE(interval_s, ?)) "
                    f"WHERE {mine} AND id IN ({marks})", [now, poll_interval, *held, *started]).rowcount
        return n

    def free_orphans(self, now: float, lease: float, grace: float) -> int:
        """Cluster mode (PostgreSQL): free the feeds leased to a poll job's token that no job
        waiting or running carries, claimed more than ``grace`` seconds ago (a scheduler that
        died between its claim and its defer). Never started: due as they were."""
        return int(self.db.execute(
            f"UPDATE feeds SET {RELEASE} WHERE lease_owner LIKE 'job:%' AND lease_until < ? AND NOT EXISTS ("
            "SELECT 1 FROM procrastinate_jobs j WHERE j.status IN ('todo', 'doing') "
            "AND j.args->>'token' = feeds.lease_owner)", [now + lease - grace]).rowcount)

    def _feeds(self, due_at: float | None, default_interval: float, limit: int | None, after_id: int | None,
               free_for: tuple[str, float] | None = None, skip: Collection[int] = ()) -> list[Feed]:
        # Only the columns a Feed holds, as plain tuples (not sqlite-utils' dict per row): every
        # poll starts here, and an unchanged pass paid ~10 us a feed for ``SELECT *`` as dicts
        # (issue 16, G3).
        sql = f"SELECT {FEED_COLUMNS} FROM feeds WHERE active = 1"
        params: list[Any] = []
        if free_for is not None:
            sql += " AND (lease_until IS NULL OR lease_until <= ? OR lease_owner = ?)"
            params += [free_for[1], free_for[0]]
        if due_at is not None or free_for is not None:  # a paused feed is never due nor claimed
            sql += " AND paused_at IS NULL"
        if due_at is not None:
            sql += " AND next_check_at <= ?"
            params.append(due_at)
        if skip:
            clause, values = not_among(skip, self.dialect)
            sql, params = sql + clause, params + values
        if after_id is not None:
            sql += " AND id > ? ORDER BY id"
            params.append(after_id)
        else:
            sql += " ORDER BY next_check_at, id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        if free_for is not None and self.dialect == "postgresql":
            # many nodes claim at once: each takes rows no other transaction holds (SQLite's
            # BEGIN IMMEDIATE serialises the claims instead); the lease is set before COMMIT
            sql += " FOR UPDATE SKIP LOCKED"
        return feeds_of(self.db.execute(sql, params).fetchall(), default_interval)

    def active_feeds(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM feeds WHERE active = 1").fetchone()[0])

    def feed_table(self) -> list[dict]:
        """Rows for ``monitor feeds`` and the console: every feed's columns (schedule, validators,
        health: last_status, last_error_kind, last_error, error_count, failing_since, gone_at; tags
        as JSON text; paused_at) and its stored ``entries``; schedule.status(...) of those columns
        is its health word."""
        return self._rows(
            "SELECT f.*, (SELECT COUNT(*) FROM entries e WHERE e.feed_id = f.id) AS entries "
            "FROM feeds f ORDER BY f.active DESC, f.id"
        )

    def save_poll(self, feed: Feed, update: FeedUpdate, *, now: float) -> None:
        """Store a poll's effect on its feed (and the ops notices it raised) in one transaction."""
        changes = _columns(update)
        if not update.notices and not (update.moved and update.moved != feed.url):
            if changes:
                # The common case, an unchanged feed: one UPDATE is atomic on its own; skipping
                # BEGIN/COMMIT (and sqlite-utils' wrapper) halves the database cost of a poll.
                cols = ", ".join(f"{k} = ?" for k in changes)
                self.db.conn.execute(f"UPDATE feeds SET {cols}, {RELEASE} WHERE id = ?", [*changes.values(), feed.id])
            return
        with self._transaction():
            self._save_poll(feed, update, now)

    def save_polls(self, polls: Sequence[tuple[Feed, FeedUpdate]], *, now: float) -> None:
        """Store many polls' effects on their feeds in ONE transaction: all or none (the
        write-behind of unchanged polls, store/behind.py). Each ends its feed's lease, as
        ``save_poll`` does; rows setting the same columns go in one ``executemany``. A feed
        made due after its poll and before ``now`` (``poll_now``: ``monitor feeds poll`` while
        the update waited) keeps that time: the newer request wins over the poll's schedule."""
        if not polls:
            return
        plain: dict[tuple[tuple[str, ...], bool], list[list[Any]]] = {}
        other = []
        unchanged: list[tuple[Any, ...]] = []
        for feed, update in polls:
            if update.notices or (update.moved and update.moved != feed.url):
                other.append((feed, update))
                continue
            if _unchanged(update):
                at = update.last_polled_at
                unchanged.append((at, at, at, now, update.next_check_at, feed.id))
                continue
            changes = _columns(update)
            newer = "next_check_at" in changes and "last_polled_at" in changes
            if newer:  # next_check_at last, with its three parameters (NEWER)
                next_at = changes.pop("next_check_at")
                values = [*changes.values(), changes["last_polled_at"], now, next_at]
                changes["next_check_at"] = next_at
            else:
                values = list(changes.values())
            plain.setdefault((tuple(changes), newer), []).append([*values, feed.id])
        with self._transaction():
            if unchanged:
                self.db.conn.executemany(UNCHANGED, unchanged)
            for (cols, newer), rows in plain.items():
                sets = "".join(f"{k} = {NEWER if newer and k == 'next_check_at' else '?'}, " for k in cols)
                self.db.conn.executemany(f"UPDATE feeds SET {sets}{RELEASE} WHERE id = ?", rows)
            for feed, update in other:
                self._save_poll(feed, update, now)

    def _save_poll(self, feed: Feed, update: FeedUpdate, now: float) -> None:
        changes = _columns(update)
        if changes:
            cols = ", ".join(f"{k} = ?" for k in changes)
            self.db.execute(f"UPDATE feeds SET {cols}, {RELEASE} WHERE id = ?", [*changes.values(), feed.id])
        if update.moved and update.moved != feed.url:
            self._move(feed, update.moved)
        for n in update.notices:
            self.db.execute(
                "INSERT INTO notices (kind, feed_id, channel, title, body, created_at, next_attempt_at) "
                "VALUES (?,?,?,?,?,?,?)", (n.kind, feed.id, n.channel, n.title, n.body, now, now))

    def _move(self, feed: Feed, new_url: str) -> None:
        taken = self._rows("SELECT id FROM feeds WHERE url = ? AND id != ?", [new_url, feed.id])
        if taken:
            log.warning("feed moved permanently to a feed already registered; keeping its address "
                        "feed=%s to=%s", feed.url, new_url)
            return
        self.db.execute("UPDATE feeds SET url = ?, host = ?, moved_from = ? WHERE id = ?",
                        (new_url, host_of(new_url), feed.url, feed.id))
        log.warning("feed moved permanently (301/308); address updated feed=%s to=%s", feed.url, new_url)

    def take_host_slot(self, host: str, slots: Sequence[int], owner: str = "", now: float = 0.0,
                       cool: float = 0.0) -> int | None:
        """One of ``slots`` (numbers below ``poll.per_host`` that this process does not hold) of
        ``host`` that no other process holds, now held by this one; None when the others hold
        them all. ``per_host`` is then the cluster's: on PostgreSQL a slot is a session advisory
        lock, which the server frees the moment a node's connection ends, and a row of
        ``cluster_host_slots`` (an unlogged table: no WAL flush) that keeps a slot whose holder
        died from being taken for ``cool`` seconds after it was taken (the fetch timeout): its
        request may still be at the host (the chaos bench saw 3 requests at once at a host with
        per_host 2, each time with one from a node killed meanwhile). SQLite has one daemon: the
        first slot is its own."""
        if self.dialect != "postgresql":
            return slots[0] if slots else None
        for slot in slots:
            if not self.db.execute("SELECT pg_try_advisory_lock(hashtext(?), ?)", [f"host:{host}", slot]).fetchone()[0]:
                continue
            if self.db.execute(
                    "INSERT INTO cluster_host_slots (host, slot, owner, until) VALUES (?, ?, ?, ?) ON CONFLICT "
                    "(host, slot) DO UPDATE SET owner = excluded.owner, until = excluded.until "
                    "WHERE cluster_host_slots.until <= ? OR cluster_host_slots.owner = excluded.owner",
                    [host, slot, owner, now + cool, now]).rowcount:
                return slot
            self.db.execute("SELECT pg_advisory_unlock(hashtext(?), ?)", [f"host:{host}", slot])  # cooling down
        return None

    def free_host_slot(self, host: str, slot: int, owner: str = "") -> None:
        if self.dialect == "postgresql":
            self.db.execute("DELETE FROM cluster_host_slots WHERE host = ? AND slot = ? AND owner = ?",
                            [host, slot, owner])
            self.db.execute("SELECT pg_advisory_unlock(hashtext(?), ?)", [f"host:{host}", slot])

    def throttle_host(self, host: str, until: float, spread: float) -> int:
        """Push every active feed of ``host`` to ``until`` or later, spread over ``spread``
        seconds so they do not all return at once. Returns the number of feeds delayed."""
        cur = self.db.execute(
            "UPDATE feeds SET next_check_at = ? + (abs(random()) % 1000) * ? / 1000.0 "
            "WHERE host = ? AND active = 1 AND next_check_at < ?",
            (until, max(0.0, spread), host, until))
        return cur.rowcount


_UNCHANGED_VALUES = tuple(v for _, v in UNCHANGED_SET)
_KEPT = (KEEP,) * 7


def _unchanged(u: FeedUpdate) -> bool:
    """Does ``u`` set exactly UNCHANGED's columns, to its constants, with last_ok_at = last_polled_at?
    The fields read directly: building ``_columns`` first cost the database thread ~1 us a row."""
    return ((u.last_status, u.last_error_kind, u.last_error, u.error_count, u.failing_since, u.gone_at,
             u.alerted_failing) == _UNCHANGED_VALUES
            and (u.etag, u.last_modified, u.body_hash, u.cadence_s, u.last_new_at, u.baselined_at, u.ttl_s) == _KEPT
            and u.last_polled_at is not KEEP and u.last_ok_at == u.last_polled_at and u.next_check_at is not KEEP)


def _columns(update: FeedUpdate) -> dict[str, Any]:
    """The columns ``update`` sets, with their values (KEEP: left out)."""
    return {k: v for k in POLL_COLUMNS if (v := getattr(update, k)) is not KEEP}
