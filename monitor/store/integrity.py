"""``monitor doctor``'s look at the database file: read-only, never creates or migrates it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .base import wrapped
from .schema import MIGRATIONS


def integrity(path: str | Path, *, full: bool = False) -> tuple[int, int, list[str]]:
    """(schema version of the file, version this program writes, problems). ``full`` runs
    ``PRAGMA integrity_check`` (also checks indexes against tables; slower on a large file)
    instead of ``quick_check``. Raises StoreError when the file cannot be read at all."""
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=10)
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            rows = conn.execute("PRAGMA integrity_check" if full else "PRAGMA quick_check").fetchall()
        finally:
            conn.close()
    except sqlite3.Error as e:  # the boundary: nothing outside store/ sees sqlite3 errors
        raise wrapped(Path(path), e) from e
    problems = [str(r[0]) for r in rows if r[0] != "ok"]
    return version, len(MIGRATIONS), problems
