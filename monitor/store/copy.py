"""``monitor store copy``: every row of one store into another, SQLite to PostgreSQL or back
(issue 19: a single node's database moves into a cluster, or out of it).

Both stores are opened (so migrated) to this program's schema version first: the tables and
columns are the same on both (tests/test_store_pg.py holds the baseline to the migrations). The
target must hold no rows. Rows keep their ids, so every reference (an alert's match, a follow-up's
lead, a verdict's story) stays true; PostgreSQL's identity sequences then continue after the
largest id. The source is read in one snapshot (a read transaction), the target written in ONE
transaction: an interrupted copy leaves the target empty. The search index is not copied: each
target makes its own from the rows (its triggers). Then every table is counted on both sides
and the copy fails unless the counts agree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import base
from .base import StoreError

# In the order that foreign keys allow, with each table's key (keyset paging)
TABLES = (("feeds", "id"), ("entries", "id"), ("articles", "entry_id"), ("matches", "id"), ("outbox", "id"),
          ("notices", "id"), ("daemon", "id"), ("feedback", "id"), ("feedback_rules", "feedback_id, rule_id"),
          ("feedback_links", "token"), ("rule_models", "rule_id"), ("users", "id"), ("periodic_runs", "name"),
          ("misses", "entry_id, rule_id, given_by"))
PAGE = 1000


def counts(store: Any) -> dict[str, int]:
    return {t: int(store.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t, _ in TABLES}


def copy(src: Any, dst: Any, progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Copy every row of ``src`` into the empty ``dst`` (two Stores); the rows per table, as
    counted on both sides afterwards. StoreError if ``dst`` holds rows or the counts differ."""
    held = {t: n for t, n in counts(dst).items() if n}
    if held:
        raise StoreError(f"{dst.path}: the target must be empty; it holds "
                         + ", ".join(f"{n} {t}" for t, n in held.items()), "schema")
    src.db.execute("BEGIN" if src.dialect == "sqlite" else "BEGIN ISOLATION LEVEL REPEATABLE READ")
    table = ""
    try:
        with dst._transaction():
            for table, key in TABLES:
                cols = src._column_names(table)
                missing = set(cols) - set(dst._column_names(table))
                if missing:
                    raise StoreError(f"{dst.path}: {table} lacks columns {', '.join(sorted(missing))}", "schema")
                _copy_table(src, dst, table, key, cols, progress)
            if dst.dialect == "postgresql":  # new rows continue after the largest copied id
                for table, key in TABLES:
                    if key == "id" and table != "daemon":
                        dst.db.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                       f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)")
    except Exception as e:  # a value the target refuses, a server gone: all rolled back
        if not isinstance(e, (StoreError, *base.ERRORS)):
            raise
        raise StoreError(f"{dst.path}: nothing was written (table {table}): {' '.join(str(e).split())}",
                         getattr(e, "kind", "error")) from e
    finally:
        src.db.execute("COMMIT")
    before, after = counts(src), counts(dst)
    if before != after:
        differ = ", ".join(f"{t} {before[t]} -> {after[t]}" for t in before if before[t] != after[t])
        raise StoreError(f"{dst.path}: the copy's counts differ from the source's: {differ}", "error")
    return after


def _copy_table(src: Any, dst: Any, table: str, key: str, cols: list[str],
                progress: Callable[[str, int], None] | None) -> None:
    """``table``'s rows in pages by ``key`` (keyset: no OFFSET scans), each page one executemany."""
    keys = [k.strip() for k in key.split(",")]
    at = [cols.index(k) for k in keys]
    insert = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    order = ", ".join(keys)
    after: tuple[Any, ...] | None = None
    done = 0
    while True:
        where = "" if after is None else f"WHERE ({order}) > ({', '.join('?' * len(keys))}) "
        rows = [tuple(r) for r in src.db.execute(
            f"SELECT {', '.join(cols)} FROM {table} {where}ORDER BY {order} LIMIT {PAGE}",
            list(after or ())).fetchall()]
        if not rows:
            return
        dst.db.conn.executemany(insert, rows)
        done += len(rows)
        if progress is not None:
            progress(table, done)
        after = tuple(rows[-1][i] for i in at)
