"""The only SQL in the project: schema migrations, feed schedule state, entries, articles,
matches and the alert outbox, on SQLite through sqlite-utils.

One writer connection (the daemon's); readers such as ``monitor feeds`` open their own.
WAL lets them read while the daemon writes. Write transactions use ``BEGIN IMMEDIATE``:
with a deferred BEGIN a second connection fails at once with "database is locked" instead
of waiting for the busy timeout (see ../shared/LIBRARY-NOTES.md).

The queries are grouped by what they serve: ``feeds.py`` (registration, schedule, health),
``entries.py`` (what is new, one-transaction ``record``), ``outbox.py`` (alerts, notices), ``noise.py``
(held alerts, digests, follow-ups), ``feedback.py`` (the team's verdicts on alerts), ``status.py``
(heartbeat and counts for systemd, /metrics and ``monitor status``), ``retention.py``
(pruning delivered material past the configured age), ``learning.py`` (judged matches, rule models),
and for the web console (issue 18) ``console.py`` (inbox, story, channel and rule states),
``search.py`` (full text, FTS5) and ``users.py`` (who may sign in).
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

# sqlite-utils imports numpy when it is installed (py3langid brings it) only to store numpy
# scalars, which we never pass: 15 MB in the daemon for nothing (issue 16). Hidden while it loads
# (a None in sys.modules makes that import fail, as on a machine without numpy), then put back.
_numpy = sys.modules.get("numpy", _ABSENT := object())
sys.modules["numpy"] = None  # type: ignore[assignment]
try:
    import sqlite_utils  # noqa: I001  (before .base, which imports it too)
finally:
    if _numpy is _ABSENT:
        del sys.modules["numpy"]
    else:
        sys.modules["numpy"] = _numpy  # type: ignore[assignment]


from . import baseline  # noqa: E402
from .api import StoreAPI  # noqa: E402
from .base import StoreError, UnknownFeed, guard, is_postgresql, pg_version  # noqa: E402
from .console import ConsoleQueries  # noqa: E402
from .entries import EntryQueries  # noqa: E402
from .feedback import FeedbackQueries, Given, Miss, RuleFeedback, Verdict  # noqa: E402
from .feeds import FeedSpec  # noqa: E402
from .learning import Judged, LearnQueries, StoredModel  # noqa: E402
from .noise import NoiseQueries  # noqa: E402
from .outbox import OutboxQueries  # noqa: E402
from .retention import Pruned, RetentionQueries  # noqa: E402
from .schema import MIGRATIONS  # noqa: E402
from .search import SearchQueries  # noqa: E402
from .status import Snapshot, StatusQueries  # noqa: E402
from .steps import statements  # noqa: E402
from .users import UserQueries  # noqa: E402

__all__ = ["MIGRATIONS", "FeedSpec", "Given", "Judged", "Miss", "Pruned", "RuleFeedback", "Snapshot", "Store",
           "StoreAPI", "StoreError", "StoredModel", "UnknownFeed", "Verdict", "connect"]


CACHE_KIB = 8192  # the writer's and each reader's SQLite page cache


@guard
class Store(EntryQueries, OutboxQueries, NoiseQueries, RetentionQueries, StatusQueries,  # Entry: on FeedQueries
            FeedbackQueries, LearnQueries, ConsoleQueries, SearchQueries, UserQueries):
    dialect = "sqlite"

    def __init__(self, path: str | Path, *, busy_timeout: float = 10.0):
        if is_postgresql(str(path)):  # cluster mode (issue 19): the same queries on PostgreSQL
            self._open_postgresql(str(path), busy_timeout)
            return
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN IMMEDIATE / COMMIT ourselves.
            conn = sqlite3.connect(
                str(self.path), timeout=busy_timeout, isolation_level=None,
                check_same_thread=False,
            )
            self.db = sqlite_utils.Database(conn)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            # 8 MiB of page cache, not SQLite's 2: the feeds table and its indexes at 10,000 feeds
            # (~750 pages) stay in it, so a pass's claims and schedule UPDATEs stop asking the OS
            # for pages (database thread ~14.5 -> ~12.5 us an unchanged poll; issue 16, G3).
            # Pages are taken as they are used: a small database costs what it did.
            self.db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        except (sqlite3.Error, OSError) as e:
            raise StoreError(f"{self.path}: cannot open database: {e}") from None
        self.migrate()

    def _open_postgresql(self, url: str, timeout: float) -> None:
        try:
            from . import pg
        except ImportError as e:  # psycopg is an extra: rss-monitor[cluster]
            raise StoreError(f"postgresql:// needs psycopg ({e}): pip install 'rss-monitor[cluster]'", "schema") \
                from None
        self.dialect = "postgresql"
        self.path = pg.Named(pg.redacted(url))  # type: ignore[assignment]  # named in messages only
        try:
            self.db = pg.PgDatabase(url, connect_timeout=timeout)  # type: ignore[assignment]
        except Exception as e:  # psycopg.Error: the server is down, refuses us, or the URL is wrong
            raise StoreError(f"{self.path}: cannot open database: {pg.reason(e)}", "down") from None
        self.migrate()

    def close(self) -> None:
        self.db.close()

    # -- schema ---------------------------------------------------------------------------
    @property
    def version(self) -> int:
        if self.dialect == "postgresql":
            return pg_version(self.db)
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> None:
        """Bring the schema to this program's version: SQLite through every migration in turn;
        a new PostgreSQL database from the baseline, then the migrations after it, under a lock
        so that nodes starting together migrate once."""
        if self.dialect == "postgresql":
            with self._transaction():
                self.db.execute("SELECT pg_advisory_xact_lock(19190019)")  # held to COMMIT: one node migrates
                current = self._newest()
                if current == 0:
                    for stmt in [*statements(baseline.SCHEMA), *baseline.ROUTINES]:
                        self.db.execute(stmt)
                    self.db.execute("CREATE TABLE schema_version (version BIGINT NOT NULL)")
                    self.db.execute("INSERT INTO schema_version VALUES (?)", [baseline.VERSION])
                    current = baseline.VERSION
        else:
            current = self._newest()
        for version in range(current + 1, len(MIGRATIONS) + 1):
            step = MIGRATIONS[version - 1]
            with self._transaction():
                if self.dialect == "postgresql":
                    self.db.execute("SELECT pg_advisory_xact_lock(19190019)")
                    if self.version >= version:  # another node took this step meanwhile
                        continue
                if isinstance(step, str):
                    for stmt in statements(step):
                        self.db.execute(stmt)
                else:
                    step(self.db.conn)
                if self.dialect == "postgresql":
                    self.db.execute("UPDATE schema_version SET version = ?", [version])
                else:
                    self.db.execute(f"PRAGMA user_version = {version}")
        if self.dialect == "postgresql":
            self._work_queue()

    def _work_queue(self) -> None:
        """Cluster mode's machinery (monitor/cluster.py), PostgreSQL only, made once beside the
        store's tables under the same lock: Procrastinate's own schema (without the ``cluster``
        extra installed, made by the first version that has it) and ``cluster_host_slots``
        (``take_host_slot``), unlogged: slots are gone with a server crash anyway."""
        # the catalog read as a table (each statement sees what committed before it), not through
        # to_regclass, whose cache may keep the answer it gave before the lock was taken
        def made(table: str) -> bool:
            return bool(self.db.execute(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() "
                "AND table_name = ?", [table]).fetchone()[0])

        if made("procrastinate_jobs") and made("cluster_host_slots"):
            return
        schema: str | None = None
        try:
            from procrastinate.schema import SchemaManager
            schema = SchemaManager.get_schema()
        except ImportError:
            pass
        with self._transaction():
            self.db.execute("SELECT pg_advisory_xact_lock(19190019)")
            if not made("cluster_host_slots"):
                self.db.execute("CREATE UNLOGGED TABLE cluster_host_slots (host TEXT NOT NULL, slot BIGINT NOT NULL, "
                                "owner TEXT NOT NULL, until DOUBLE PRECISION NOT NULL, PRIMARY KEY (host, slot))")
            if schema is not None and not made("procrastinate_jobs"):
                self.db.script(schema)  # type: ignore[attr-defined]

    def _newest(self) -> int:
        """The database's schema version; StoreError if this program is older than it."""
        current = self.version
        if current > len(MIGRATIONS):
            raise StoreError(
                f"{self.path}: schema version {current} is newer than this program "
                f"({len(MIGRATIONS)}); upgrade rss-monitor"
            )
        return current

    def count(self, table: str) -> int:
        return self.db[table].count


def connect(database: str | Path, *, busy_timeout: float = 10.0) -> StoreAPI:
    """The store behind ``[monitor] database``: a path, or ``sqlite:///PATH``, is SQLite (the
    embedded default). The one place a backend is chosen: the daemon and the CLI call this, and
    a second backend (PostgreSQL, cluster mode) plugs in here."""
    text = str(database)
    if text.startswith("sqlite:///"):
        text = text.removeprefix("sqlite://")
    elif "://" in text and not is_postgresql(text):
        raise StoreError(f"{text.split('://')[0]}:// databases are not supported (a path or sqlite:///PATH for "
                         "SQLite, postgresql://... for PostgreSQL)", "schema")
    return Store(text, busy_timeout=busy_timeout)
