"""``monitor`` with the statements and commits of its SQLite connections counted (the scale bench,
bench/cluster_scale.py: PostgreSQL counts them at the server, SQLite has nobody to ask).

    python bench/sqlite_counted.py COUNTS.json run --config node.toml

Every ``sqlite3.connect`` of the process gets a trace callback (sqlite3_trace_v2: each
statement SQLite runs, as the store sent it). What SQLite runs for a statement is part of it and
not counted: FTS5's index writes, reported as ``-- ...``, and each trigger the statement fires,
which Python's sqlite3 reports as the statement again (its expanded SQL: the search index's
triggers, the bench's poll counter), so a report equal to the one before on its connection is
the same statement. Commits are counted as PostgreSQL's ``xact_commit`` counts them: each
COMMIT, each RELEASE that ends a transaction its SAVEPOINT began (sqlite-utils' writes), and each
statement run outside a transaction (SQLite and PostgreSQL alike run it as a transaction of its
own). The totals are written to COUNTS.json five times a second (replaced whole, never
half-written), for the bench to read at the start and the end of its window.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import threading
import time

counts = {"statements": 0, "commits": 0}
_connect = sqlite3.connect


def connect(*args, **kwargs):  # type: ignore[no-untyped-def]
    conn = _connect(*args, **kwargs)
    tx = {"open": False, "savepoints": 0}  # savepoints: the depth of a transaction a SAVEPOINT began
    last = [""]

    def seen(sql: str) -> None:
        text = sql.lstrip()
        if text.startswith("--") or sql == last[0]:
            return
        last[0] = sql
        head = text[:12].upper()
        counts["statements"] += 1
        if head.startswith("BEGIN"):
            tx["open"] = True
        elif head.startswith(("COMMIT", "END")):
            tx["open"], tx["savepoints"] = False, 0
            counts["commits"] += 1
        elif head.startswith("ROLLBACK") and not head.startswith("ROLLBACK TO"):
            tx["open"], tx["savepoints"] = False, 0
        elif head.startswith("SAVEPOINT"):  # outside a transaction it begins one (sqlite-utils' writes)
            if not tx["open"] or tx["savepoints"]:
                tx["open"], tx["savepoints"] = True, tx["savepoints"] + 1
        elif head.startswith("RELEASE"):  # the outermost one commits the transaction it began
            if tx["savepoints"]:
                tx["savepoints"] -= 1
                if not tx["savepoints"]:
                    tx["open"] = False
                    counts["commits"] += 1
        elif not tx["open"]:
            counts["commits"] += 1

    conn.set_trace_callback(seen)
    return conn


def _write(path: str) -> None:
    while True:
        tmp = f"{path}.tmp"
        with open(tmp, "w") as f:
            json.dump(counts, f)
        os.replace(tmp, path)
        time.sleep(0.2)


def main() -> None:
    path = sys.argv.pop(1)
    # this script's folder (bench/) holds modules named like libraries' (console, alerts): not first
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    sqlite3.connect = connect  # type: ignore[assignment]
    threading.Thread(target=_write, args=(path,), daemon=True, name="sqlite counts").start()
    sys.argv[0] = "monitor"
    from monitor.cli import main as monitor

    monitor()


if __name__ == "__main__":
    main()
