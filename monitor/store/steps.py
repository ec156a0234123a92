"""The migrations' Python steps (schema.py lists them) and the helpers the schema shares: a
feed's host, and a migration script cut into statements."""

from __future__ import annotations

import sqlite3
from urllib.parse import urlsplit


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def fill_hosts(conn: sqlite3.Connection) -> None:
    rows = conn.execute("SELECT id, url FROM feeds").fetchall()
    conn.executemany("UPDATE feeds SET host = ? WHERE id = ?", [(host_of(u), i) for i, u in rows])


def group_stories(conn: sqlite3.Connection) -> None:
    """Migration 11: matches of one entry made before migration 10 (one alert per rule) join the
    entry's first alerting match. Delivered rows stay as the history they are; an undelivered
    row of a joined match is dropped where the primary has a row on that channel (its message
    now names the rule) and moved to the primary where it has none (that rule's routing still
    applies). A row being sent is left alone: the sender finishes it."""
    groups = conn.execute(
        "SELECT entry_id, MIN(id) FROM matches WHERE lead_id IS NULL AND primary_id IS NULL "
        "GROUP BY entry_id HAVING COUNT(*) > 1").fetchall()
    for entry_id, primary in groups:
        others = [r[0] for r in conn.execute(
            "SELECT id FROM matches WHERE entry_id = ? AND lead_id IS NULL AND id != ?", (entry_id, primary))]
        for match_id in others:
            conn.execute("UPDATE matches SET primary_id = ? WHERE id = ?", (primary, match_id))
            for row_id, channel in conn.execute(
                    "SELECT id, channel FROM outbox WHERE match_id = ? AND state IN ('pending', 'failed', 'held') "
                    "AND (digest_id IS NULL OR digest_id != id)",  # a digest's carrier keeps its row
                    (match_id,)).fetchall():
                if conn.execute("SELECT 1 FROM outbox WHERE match_id = ? AND channel = ?",
                                (primary, channel)).fetchone():
                    conn.execute("DELETE FROM outbox WHERE id = ?", (row_id,))
                else:
                    conn.execute("UPDATE outbox SET match_id = ? WHERE id = ?", (primary, row_id))


def statements(script: str) -> list[str]:
    """The statements of a migration script; a trigger's body (BEGIN ...; END) stays whole."""
    out, buf = [], ""
    for part in script.split(";"):
        buf += part + ";"
        if sqlite3.complete_statement(buf):
            if stmt := buf.strip().removesuffix(";").strip():
                out.append(stmt)
            buf = ""
    if buf.strip(" \n;"):
        out.append(buf.strip().removesuffix(";").strip())
    return out
