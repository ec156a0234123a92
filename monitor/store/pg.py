"""PostgreSQL under the store (issue 19): a connection that answers the few calls the query
groups make of sqlite-utils' ``Database`` (``execute``, ``query``, ``conn.execute``,
``conn.executemany``, ``db[table].count``), so every group runs on both backends unchanged.

The store's SQL is written for SQLite and kept to what both engines share (``ON CONFLICT``,
``RETURNING``, partial indexes, ``COUNT(*) FILTER``); ``translate`` turns the rest into
PostgreSQL, once per statement text (cached): ``?`` and ``:name`` placeholders, a literal ``%``,
SQLite's two-argument ``MIN``/``MAX``, ``json_group_array``/``json_array``, ``INSERT OR
IGNORE``, ``INDEXED BY`` and SQLite's integer ``random()``. An INSERT into a table whose key is
a generated ``id`` returns it, so ``cursor.lastrowid`` works as on SQLite.

psycopg 3 with client-side binding (``ClientCursor``): values are quoted into the statement, so
PostgreSQL never has to guess a parameter's type from an expression SQLite did not type. A
Python bool is stored as 0/1 (the schema's flags are integers, as on SQLite) and a ``numeric``
(what ``SUM`` of integers gives) is read as a float. Autocommit: the store issues BEGIN and
COMMIT itself, as it does on SQLite. A connection that broke (server restarted, network) is
opened again on the next call outside a transaction; the failed call raises, and the store
turns that into a StoreError of kind ``down``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import ClientCursor, sql
from psycopg.rows import dict_row
from psycopg.types.numeric import FloatLoader, IntDumper

from . import base

base.ERRORS = (*base.ERRORS, psycopg.Error)  # the store's boundary wraps psycopg's errors too

# Tables whose key is a generated ``id``: an INSERT into them hands the new id back.
ID_TABLES = frozenset({"feeds", "entries", "matches", "outbox", "notices", "feedback", "users"})
_INSERT = re.compile(r"^\s*INSERT\s+(?:OR\s+IGNORE\s+)?INTO\s+(\w+)", re.I)


class _BoolAsInt(IntDumper):
    def dump(self, obj: Any) -> bytes:
        return b"1" if obj else b"0"


class Named(str):
    """What a PostgreSQL store calls itself in messages (``Store.path``): its URL, no password."""


def reason(e: BaseException) -> str:
    """psycopg's message, on one line."""
    return " ".join(str(e).split()) or type(e).__name__


def redacted(url: str) -> str:
    """The URL without its password: what messages and logs name."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class Cursor:
    """A finished statement: its rows, ``rowcount`` and, for an INSERT that made an id, ``lastrowid``."""

    def __init__(self, cur: psycopg.Cursor[Any], returning: bool):
        self.rowcount = cur.rowcount
        self.lastrowid: int | None = None
        self._rows: list[Any] = cur.fetchall() if cur.description is not None else []
        if returning:
            self.lastrowid = self._rows[0][0] if self._rows else None
            self._rows = []

    def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    def fetchall(self) -> list[Any]:
        rows, self._rows = self._rows, []
        return rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


class _Count:
    def __init__(self, db: PgDatabase, table: str):
        self.db, self.table = db, table

    @property
    def count(self) -> int:
        cur = self.db.execute(sql.SQL("SELECT COUNT(*) FROM {}").format(sql.Identifier(self.table)).as_string(None))
        return int(cur.fetchone()[0])


class PgDatabase:
    """One PostgreSQL connection, shaped like the part of ``sqlite_utils.Database`` the store uses."""

    dialect = "postgresql"

    def __init__(self, url: str, *, connect_timeout: float = 10.0):
        self.url = url
        self.connect_timeout = connect_timeout
        self._conn: psycopg.Connection[Any] | None = None
        self.in_transaction = False
        self._connect()

    def _connect(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self.url, autocommit=True, cursor_factory=ClientCursor,
                               connect_timeout=max(1, int(self.connect_timeout)))
        conn.adapters.register_dumper(bool, _BoolAsInt)
        conn.adapters.register_loader("numeric", FloatLoader)
        self._conn = conn
        return conn

    def _live(self) -> psycopg.Connection[Any]:
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            if self.in_transaction:  # the transaction died with its connection
                raise psycopg.OperationalError("the connection to the database was lost during a transaction")
            conn = self._connect()
        return conn

    @property
    def conn(self) -> PgDatabase:
        return self

    def execute(self, statement: str, params: Sequence[Any] | dict[str, Any] | None = None) -> Cursor:
        text, returning = translate(statement)
        head = text.lstrip()[:8].upper()
        try:
            conn = self._live()  # raises inside a transaction whose connection died: it is gone
            if head.startswith("BEGIN"):
                self.in_transaction = True
            with conn.cursor() as cur:
                cur.execute(text, params if params is not None else ())
                return Cursor(cur, returning)
        finally:
            if head.startswith(("COMMIT", "ROLLBACK")):  # ended, or lost with its connection
                self.in_transaction = False

    def script(self, text: str) -> None:
        """Run a script of PostgreSQL's own (several statements, no parameters), untranslated."""
        with self._live().cursor() as cur:
            cur.execute(text.encode())  # bytes: no placeholder parsing, several statements at once

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        text, _ = translate(statement, returning=False)
        with self._live().cursor() as cur:
            cur.executemany(text, rows)

    def query(self, statement: str, params: Sequence[Any] | dict[str, Any] = ()) -> Iterator[dict[str, Any]]:
        text, _ = translate(statement, returning=False)
        with self._live().cursor(row_factory=dict_row) as cur:
            cur.execute(text, params)
            rows = cur.fetchall() if cur.description is not None else []
        yield from rows

    def __getitem__(self, table: str) -> _Count:
        return _Count(self, table)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


# --- SQLite's SQL as PostgreSQL --------------------------------------------------------------

_UNARY_PLUS = re.compile(r"(?<=[\s(])\+(?=[A-Za-z_])")
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_FUNCS = re.compile(r"\b(json_group_array|json_array|MIN|MAX)\s*\(", re.I)


@lru_cache(maxsize=2048)
def translate(statement: str, returning: bool = True) -> tuple[str, bool]:
    """``statement`` (SQLite's SQL, ``?`` or ``:name`` placeholders) as PostgreSQL with
    psycopg's ``%s``/``%(name)s``, and whether ``RETURNING id`` was added to it. Pure."""
    out, k, n = [], 0, len(statement)
    while k < n:  # placeholders and ``%`` outside quoted text; quoted text as it is (``%`` doubled)
        c = statement[k]
        if c in "'\"":
            end = statement.find(c, k + 1)
            while end != -1 and statement[end + 1:end + 2] == c:  # '' inside a literal
                end = statement.find(c, end + 2)
            end = n - 1 if end == -1 else end
            out.append(statement[k:end + 1].replace("%", "%%"))
            k = end + 1
            continue
        j = k
        while j < n and statement[j] not in "'\"":
            j += 1
        piece = statement[k:j].replace("%", "%%").replace("?", "%s")
        out.append(_NAMED.sub(r"%(\1)s", piece))
        k = j
    text = _functions("".join(out))
    text = re.sub(r"\s+INDEXED\s+BY\s+\w+", "", text, flags=re.I)
    text = _UNARY_PLUS.sub("", text)  # SQLite's "+col" keeps an index out of a plan; PostgreSQL has no + text
    text = text.replace("abs(random()) %% 1000", "floor(random() * 1000)")
    m = _INSERT.match(text)
    added = False
    if m:
        if re.match(r"^\s*INSERT\s+OR\s+IGNORE", text, re.I):
            text = re.sub(r"^\s*INSERT\s+OR\s+IGNORE", "INSERT", text, flags=re.I) + " ON CONFLICT DO NOTHING"
        if returning and m.group(1).lower() in ID_TABLES and not re.search(r"\bRETURNING\b", text, re.I):
            text += " RETURNING id"
            added = True
    return text, added


def _functions(text: str) -> str:
    """SQLite's functions PostgreSQL names otherwise: the two-argument MIN/MAX are LEAST/GREATEST
    (one argument: the aggregate, left alone), json_group_array(x) is json_agg(x)::text (text,
    as SQLite gives it) and json_array is json_build_array."""
    pos = 0
    while (m := _FUNCS.search(text, pos)) is not None:
        name, open_at = m.group(1).lower(), m.end() - 1
        close_at, commas = _closing(text, open_at)
        if name in ("min", "max"):
            if commas:
                text = text[:m.start()] + ("LEAST(" if name == "min" else "GREATEST(") + text[open_at + 1:]
        elif name == "json_array":
            text = text[:m.start()] + "json_build_array(" + text[open_at + 1:]
        else:
            inner = text[open_at + 1:close_at]
            text = text[:m.start()] + f"json_agg({inner})::text" + text[close_at + 1:]
        pos = m.start() + 1
    return text


def _closing(text: str, open_at: int) -> tuple[int, int]:
    """The parenthesis that closes the one at ``open_at`` and the commas directly inside it."""
    depth, commas = 0, 0
    for i in range(open_at, len(text)):
        ch = text[i]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i, commas
        elif ch == "," and depth == 1:
            commas += 1
    return len(text) - 1, commas
