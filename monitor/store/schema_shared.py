"""The migrations from 19 on (issue 19, cluster mode): each written once for both engines,
SQLite and PostgreSQL (``DOUBLE PRECISION``, ``BIGINT``, no engine's own syntax), and appended
to ``schema.MIGRATIONS`` after the SQLite-only ones that ``baseline.py`` stands in for on
PostgreSQL. A step that only one engine has a use for is a function of the connection that does
nothing on the other (``fts_automerge``). Never edit a released migration; append a new one."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any


def fts_automerge(conn: Any) -> None:
    """Migration 22 (issue 16, G1): FTS5's ``automerge`` from 4 to 16, its documented maximum, on
    SQLite; nothing on PostgreSQL, whose ``search_docs`` is a GIN index with no such setting.
    Every committed poll writes the index's new terms as a new segment, and FTS5 merges a level's
    segments into one of the next level once ``automerge`` of them wait: at 4, a first pass of
    1,000 feeds (1,000 commits, 59,000 entries) rewrote each segment about log4(1000) = 5 times;
    at 16, about 2.5. Measured side by side on that pass (bench/polling/baseline_ab.py): the
    daemon's main process 2.82 -> 2.46 s of CPU. The index holds the same rows and answers every
    query the same (rowids, totals, bm25, snippets); a query reads up to 15 segments a level
    instead of 3: 4.4 -> 4.6 ms for a word in 4,900 of 59,000 entries. FTS5 keeps the setting in
    the index's own config table, so this is a migration, not a pragma."""
    if isinstance(conn, sqlite3.Connection):
        conn.execute("INSERT INTO search_fts (search_fts, rank) VALUES ('automerge', 16)")


SHARED: list[str | Callable[[Any], None]] = [
    # 19: periodic work once per period however many daemons run it (issue 19, cluster mode): a
    # job's last run, taken by the one daemon whose conditional upsert moves it (store/status.py
    # ``periodic_turn``). The first migration written once for both engines: DOUBLE PRECISION is
    # SQLite's REAL and PostgreSQL's 64-bit float (PostgreSQL's REAL has 24 bits).
    """
    CREATE TABLE periodic_runs (
        name TEXT PRIMARY KEY,
        last_at DOUBLE PRECISION NOT NULL,
        node TEXT                                   -- the daemon (leases.OWNER) that took the last turn
    );
    """,
    # 20: a verdict on one rule of a story (issue 17: a story about North Korean troops that
    # mentions Kursk in passing is relevant to one rule and not to the other). A person still
    # has one current feedback row per story; a verdict given on one rule replaces it with a row
    # that carries the earlier verdicts of the story's other rules here. NULL: the row's verdict.
    """
    ALTER TABLE feedback_rules ADD COLUMN verdict TEXT;  -- relevant | not | NULL
    """,
    # 21: a story a rule did not match at all and should have (issue 17: "find what it missed"):
    # reported from the console's search or `monitor feedback ENTRY relevant --entry --rule RULE`.
    # No salience to recalibrate (the rule's words never met it), so no learner reads it; `rules
    # test` counts it as a miss and the playground says which reported misses a draft catches.
    # One row per person, entry and rule; withdrawn by deleting it. Written once for both engines.
    """
    CREATE TABLE misses (
        entry_id BIGINT NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
        rule_id TEXT NOT NULL,
        given_by TEXT NOT NULL,
        via TEXT NOT NULL,                          -- cli | console
        note TEXT,
        created_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (entry_id, rule_id, given_by)
    );
    CREATE INDEX misses_rule ON misses(rule_id);
    """,
    # 22: full-text index segments merged 16 at a time, not 4 (SQLite only; fts_automerge above)
    fts_automerge,
    # 23: the feed's own <ttl> (RSS; in seconds) as its last parsed body gave it, NULL for none.
    # A 304 has no body: without the column, the polls after the first 304 forgot the feed's ttl
    # and came back at the plain interval, sooner than the feed asked (health.decide).
    """
    ALTER TABLE feeds ADD COLUMN ttl_s DOUBLE PRECISION;
    """,
    # 24: the rules that routed an outbox row to its channel (a JSON list of rule ids; NULL on
    # rows made before). A digest leaves out a held follow-up once the team judged its story not
    # relevant for every rule that routed it there, not for every rule of the story (issue 17).
    """
    ALTER TABLE outbox ADD COLUMN rules TEXT;
    """,
]
