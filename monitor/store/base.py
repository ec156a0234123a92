"""What every group of queries shares: the connection, ``BEGIN IMMEDIATE`` transactions and
row dicts. ``Store`` (in ``__init__``) opens the connection and combines the groups."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from ..errors import MonitorError


class StoreError(MonitorError):
    """The database cannot be opened or written, or is newer than this program."""


class Queries:
    db: sqlite_utils.Database
    path: Path

    @contextmanager
    def transaction(self) -> Iterator[None]:
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:  # "database is locked" after the busy timeout
            raise StoreError(f"{self.path}: cannot write: {e}") from e
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _rows(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict]:
        return list(self.db.query(sql, params))
