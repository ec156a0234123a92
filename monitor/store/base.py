"""What every group of queries shares: the connection, ``BEGIN IMMEDIATE`` transactions and
row dicts. ``Store`` (in ``__init__``) opens the connection and combines the groups."""

from __future__ import annotations

import functools
import inspect
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from ..errors import MonitorError


class StoreError(MonitorError):
    """The database cannot be opened, read or written, or is newer than this program.
    ``kind``: what an operator can do about it: locked (another process holds it), full (the
    disk), readonly (permissions, a read-only mount), corrupt, io, schema, or error."""

    def __init__(self, message: str, kind: str = "error"):
        super().__init__(message)
        self.kind = kind


class UnknownFeed(MonitorError, LookupError):
    """No feed has this id or address (``pause_feed``): the caller's input, not the database's
    failure, so the database thread does not count it as a problem."""

    def __init__(self, feed: str):
        super().__init__(f"{feed}: no such feed")
        self.feed = feed


def is_postgresql(database: str) -> bool:
    """Whether ``[monitor] database`` names a PostgreSQL database (cluster mode, issue 19)."""
    return database.startswith(("postgresql://", "postgres://"))


def pg_version(db: Any) -> int:
    """A PostgreSQL database's schema version: its ``schema_version`` row; 0 for a new database."""
    if db.execute("SELECT to_regclass('schema_version')").fetchone()[0] is None:
        return 0
    return int(db.execute("SELECT version FROM schema_version").fetchone()[0])


# The database errors the store turns into StoreError: SQLite's, and psycopg's once store/pg.py
# is loaded (it adds them here: nothing imports psycopg on a SQLite-only install).
ERRORS: tuple[type[BaseException], ...] = (sqlite3.Error,)


def classify(e: BaseException) -> str:
    """The kind of a SQLite failure, from its error code where Python gives one (3.11+), else
    from its message. Pure."""
    if not isinstance(e, sqlite3.Error):
        return _classify_pg(e)
    code = getattr(e, "sqlite_errorcode", None)
    text = str(e).lower()
    if code in (5, 6) or "locked" in text or "busy" in text:  # SQLITE_BUSY, SQLITE_LOCKED
        return "locked"
    if code == 13 or "full" in text:  # SQLITE_FULL
        return "full"
    if code == 8 or "readonly" in text or "read-only" in text:  # SQLITE_READONLY
        return "readonly"
    if code in (11, 26) or "malformed" in text or "not a database" in text:  # CORRUPT, NOTADB
        return "corrupt"
    if code == 10 or "disk i/o" in text:  # SQLITE_IOERR
        return "io"
    return "error"


def _classify_pg(e: BaseException) -> str:
    """The kind of a PostgreSQL failure, from its SQLSTATE: the connection (class 08, a server
    shutting down 57P, or no answer at all) is ``down``; lock and serialization conflicts are
    ``locked``; a full disk (53100) ``full``; a read-only server (25006) ``readonly``."""
    state = getattr(e, "sqlstate", None) or ""
    if state in ("40001", "40P01", "55P03"):
        return "locked"
    if state == "53100":
        return "full"
    if state == "25006":
        return "readonly"
    if state.startswith(("08", "57P")):
        return "down"
    if not state:  # no answer from the server: the connection (psycopg's Operational/InterfaceError)
        names = {c.__name__ for c in type(e).__mro__}
        return "down" if names & {"OperationalError", "InterfaceError"} else "error"
    if state.startswith(("53", "58")):
        return "io"
    return "error"


def wrapped(path: Path, e: BaseException, doing: str = "") -> StoreError:
    """The one translation of a SQLite exception: a StoreError naming the database and the kind."""
    kind = classify(e)
    why = {"locked": "database is locked", "full": "disk full",
           "readonly": "database is read-only", "corrupt": "database file is corrupt",
           "io": "disk I/O error", "down": "database unavailable"}.get(kind, str(e).strip())
    return StoreError(f"{path}: {doing}{why}" + (f" ({e})" if why != str(e) and kind != "locked" else ""), kind)


def environmental(e: BaseException) -> bool:
    """A failure of the database's environment (locked, full, read-only, corrupt, I/O), as
    opposed to a bug in our SQL (ProgrammingError, IntegrityError, InterfaceError), which must
    stay a bug: logged with its traceback. Pure."""
    if isinstance(e, sqlite3.Error):
        return isinstance(e, sqlite3.OperationalError) or type(e) is sqlite3.DatabaseError
    return _classify_pg(e) != "error"  # PostgreSQL: the server, the connection, locks, the disk


def guard(cls: type) -> type:
    """Every public method of ``cls`` raises StoreError for an environmental failure, never
    sqlite3.Error: database exceptions are wrapped once, here, at the store's boundary (nothing
    outside store/ catches sqlite3.Error). A generator's iteration is guarded too."""
    for name, fn in list(vars(cls).items()) + [(n, f) for b in cls.__mro__[1:] for n, f in vars(b).items()
                                                if n not in vars(cls)]:
        if name.startswith("_") or not inspect.isfunction(fn):
            continue
        setattr(cls, name, _guarded_gen(fn) if inspect.isgeneratorfunction(fn) else _guarded_fn(fn))
    return cls


def _guarded_fn(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def call(self: Any, *args: Any, **kw: Any) -> Any:
        try:
            return fn(self, *args, **kw)
        except ERRORS as e:
            if not environmental(e):
                raise
            raise wrapped(self.path, e) from e
    return call


def _guarded_gen(fn: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
    @functools.wraps(fn)
    def call(self: Any, *args: Any, **kw: Any) -> Iterator[Any]:
        try:
            yield from fn(self, *args, **kw)
        except ERRORS as e:
            if not environmental(e):
                raise
            raise wrapped(self.path, e) from e
    return call


class Queries:
    db: sqlite_utils.Database
    path: Path
    dialect: str  # sqlite | postgresql

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        try:  # SQLite: take the write lock now (a deferred BEGIN fails at once on a busy database)
            self.db.execute("BEGIN IMMEDIATE" if self.dialect == "sqlite" else "BEGIN")
        except ERRORS as e:  # "database is locked" after the busy timeout; PostgreSQL down
            if not environmental(e):
                raise
            raise wrapped(self.path, e, "cannot write: ") from e
        try:
            yield
        except BaseException:
            try:
                self.db.execute("ROLLBACK")
            except ERRORS:  # SQLite rolled back itself (a full disk, an I/O error); the connection is gone
                pass
            raise
        try:
            self.db.execute("COMMIT")
        except ERRORS:  # a full disk may fail the COMMIT itself: leave no transaction open
            try:
                self.db.execute("ROLLBACK")
            except ERRORS:
                pass
            raise

    def _serial(self, key: str) -> None:
        """Inside a transaction: the rest of it runs one at a time across every process on the
        database for this ``key``. SQLite's BEGIN IMMEDIATE already serialises every writer; on
        PostgreSQL it is a transaction-scoped advisory lock (released at COMMIT or ROLLBACK), for
        read-then-write steps that row locks cannot cover (is this story told yet? bundle a digest)."""
        if self.dialect == "postgresql":
            self.db.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", [key])

    def _column_names(self, table: str) -> list[str]:
        """The table's columns in its own order; [] for a table that does not exist."""
        if self.dialect == "postgresql":
            return [str(r[0]) for r in self.db.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND table_name = ? ORDER BY ordinal_position", [table]).fetchall()]
        return [str(r[1]) for r in self.db.execute(f"PRAGMA table_info({table})").fetchall()]

    def _rows(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict]:
        return list(self.db.query(sql, params))
