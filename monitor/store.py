"""The only SQL in the project: schema migrations, feed schedule state, entries, articles,
matches and the alert outbox, on SQLite through sqlite-utils.

One writer connection (the daemon's); readers such as ``monitor feeds`` open their own.
WAL lets them read while the daemon writes. Write transactions use ``BEGIN IMMEDIATE``:
with a deferred BEGIN a second connection fails at once with "database is locked" instead
of waiting for the busy timeout (see LIBRARY-NOTES).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from .errors import MonitorError
from .models import Alert, Article, Entry, Feed, Match

# Versioned migrations: index i+1 is schema version i+1 (PRAGMA user_version).
# Never edit a released migration; append a new one.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE feeds (
        id INTEGER PRIMARY KEY,
        url TEXT NOT NULL UNIQUE,
        title TEXT,
        origin TEXT NOT NULL DEFAULT 'config',     -- config | cli
        active INTEGER NOT NULL DEFAULT 1,
        interval_s REAL,                            -- NULL: the configured default
        etag TEXT,
        last_modified TEXT,
        body_hash TEXT,
        next_check_at REAL NOT NULL DEFAULT 0,
        last_polled_at REAL,
        last_ok_at REAL,
        last_status TEXT,                           -- ok | not-modified | error
        last_error_kind TEXT,
        last_error TEXT,
        error_count INTEGER NOT NULL DEFAULT 0,
        baselined_at REAL,                          -- first successful parse
        created_at REAL NOT NULL
    );
    CREATE INDEX feeds_due ON feeds(active, next_check_at);
    CREATE TABLE entries (
        id INTEGER PRIMARY KEY,
        feed_id INTEGER NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
        uid TEXT NOT NULL,
        guid TEXT,
        link TEXT,
        title TEXT,
        summary TEXT,
        published TEXT,
        content_hash TEXT,
        baseline INTEGER NOT NULL DEFAULT 0,        -- seen on the feed's first poll: no alert
        first_seen_at REAL NOT NULL,
        UNIQUE (feed_id, uid)
    );
    CREATE TABLE articles (
        entry_id INTEGER PRIMARY KEY REFERENCES entries(id) ON DELETE CASCADE,
        url TEXT,
        title TEXT,
        text TEXT,
        language TEXT,
        author TEXT,
        date TEXT,
        source TEXT NOT NULL,                       -- page | feed-content | feed-summary
        error TEXT,                                 -- why the page was not used
        extracted_at REAL NOT NULL
    );
    CREATE TABLE matches (
        id INTEGER PRIMARY KEY,
        entry_id INTEGER NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
        rule_id TEXT NOT NULL,
        rule_title TEXT,
        story TEXT NOT NULL,                        -- canonical link, else entry identity
        terms TEXT NOT NULL,                        -- JSON list
        field TEXT,
        snippet TEXT,
        created_at REAL NOT NULL,
        UNIQUE (rule_id, story)                     -- one alert per rule and story, ever
    );
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        match_id INTEGER NOT NULL REFERENCES matches(id) ON DELETE CASCADE,
        channel TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',      -- pending | sent
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        next_attempt_at REAL NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        sent_at REAL,
        UNIQUE (match_id, channel)
    );
    CREATE INDEX outbox_due ON outbox(state, next_attempt_at);
    """,
    # 2: find an already extracted page by its canonical URL (one extraction per story).
    """
    CREATE INDEX articles_url ON articles(url);
    """,
]


class StoreError(MonitorError):
    """The database cannot be opened or is newer than this program."""


class Store:
    def __init__(self, path: str | Path, *, busy_timeout: float = 10.0):
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
        except (sqlite3.Error, OSError) as e:
            raise StoreError(f"{self.path}: cannot open database: {e}") from None
        self.migrate()

    def close(self) -> None:
        self.db.close()

    # -- schema ---------------------------------------------------------------------------
    @property
    def version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> None:
        current = self.version
        if current > len(MIGRATIONS):
            raise StoreError(
                f"{self.path}: schema version {current} is newer than this program "
                f"({len(MIGRATIONS)}); upgrade rss-monitor"
            )
        for version in range(current + 1, len(MIGRATIONS) + 1):
            with self.transaction():
                for stmt in _statements(MIGRATIONS[version - 1]):
                    self.db.execute(stmt)
                self.db.execute(f"PRAGMA user_version = {version}")

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

    # -- feeds ----------------------------------------------------------------------------
    def sync_feeds(self, feeds: Sequence[tuple[str, str, float | None]], now: float) -> None:
        """Make the config's feeds (url, title, interval) active; deactivate config feeds
        that left the config. Schedule state of kept feeds is untouched."""
        urls = [f[0] for f in feeds]
        with self.transaction():
            for url, title, interval in feeds:
                self.db.execute(
                    "INSERT INTO feeds (url, title, interval_s, origin, created_at) "
                    "VALUES (?, ?, ?, 'config', ?) ON CONFLICT(url) DO UPDATE SET "
                    "active = 1, interval_s = excluded.interval_s, "
                    "title = COALESCE(NULLIF(excluded.title, ''), feeds.title)",
                    (url, title or None, interval, now),
                )
            marks = ",".join("?" * len(urls))
            self.db.execute(
                f"UPDATE feeds SET active = 0 WHERE origin = 'config' AND url NOT IN ({marks})",
                urls,
            )

    def feeds(self, *, due_at: float | None = None, default_interval: float = 900) -> list[Feed]:
        """Active feeds, soonest due first; only those due at ``due_at`` when given."""
        sql = "SELECT * FROM feeds WHERE active = 1"
        params: list[Any] = []
        if due_at is not None:
            sql += " AND next_check_at <= ?"
            params.append(due_at)
        rows = self._rows(sql + " ORDER BY next_check_at, id", params)
        return [_feed(r, default_interval) for r in rows]

    def feed_table(self) -> list[dict]:
        """Rows for ``monitor feeds``: every feed with its health and schedule."""
        return self._rows(
            "SELECT f.*, (SELECT COUNT(*) FROM entries e WHERE e.feed_id = f.id) AS entries "
            "FROM feeds f ORDER BY f.active DESC, f.id"
        )

    def poll_failed(self, feed: Feed, kind: str, message: str, now: float, next_at: float) -> None:
        self.db.execute(
            "UPDATE feeds SET last_polled_at = ?, last_status = 'error', last_error_kind = ?, "
            "last_error = ?, error_count = error_count + 1, next_check_at = ? WHERE id = ?",
            (now, kind, message[:500], next_at, feed.id),
        )

    def poll_unchanged(self, feed: Feed, now: float, next_at: float) -> None:
        self.db.execute(
            "UPDATE feeds SET last_polled_at = ?, last_ok_at = ?, last_status = 'not-modified', "
            "last_error_kind = NULL, last_error = NULL, error_count = 0, next_check_at = ? "
            "WHERE id = ?",
            (now, now, next_at, feed.id),
        )

    # -- entries --------------------------------------------------------------------------
    def unseen(self, feed: Feed, entries: Sequence[Entry]) -> list[Entry]:
        """The entries this feed has not stored yet, in feed order, without duplicates. Only
        this batch's uids are looked up (the UNIQUE index serves it), not the feed's history."""
        uids = list(dict.fromkeys(e.uid for e in entries))
        known: set[str] = set()
        for i in range(0, len(uids), 500):  # well under SQLite's bound-parameter limit
            chunk = uids[i:i + 500]
            marks = ",".join("?" * len(chunk))
            known.update(r["uid"] for r in self._rows(
                f"SELECT uid FROM entries WHERE feed_id = ? AND uid IN ({marks})", [feed.id, *chunk]))
        out, seen = [], set()
        for e in entries:
            if e.uid not in known and e.uid not in seen:
                seen.add(e.uid)
                out.append(e)
        return out

    def page_article(self, url: str) -> Article | None:
        """The article already extracted from this (canonical) URL's page, if any: the same
        story reached through another feed is fetched and extracted once."""
        rows = self._rows(
            "SELECT url, title, text, language, author, date FROM articles "
            "WHERE url = ? AND source = 'page' ORDER BY extracted_at DESC LIMIT 1", [url])
        if not rows:
            return None
        r = rows[0]
        return Article(title=r["title"] or "", text=r["text"] or "", url=r["url"],
                       language=r["language"], author=r["author"], date=r["date"], source="page")

    def record(
        self,
        feed: Feed,
        *,
        now: float,
        next_at: float,
        validators: dict[str, str | None],
        feed_title: str | None,
        new: Sequence[tuple[Entry, Article | None, Sequence[Match]]],
        baseline: bool,
    ) -> int:
        """Store one successful poll in ONE transaction: feed state, new entries, their
        articles and matches, and a pending outbox row per match and channel. A crash
        anywhere before COMMIT leaves nothing; a re-run finds the same entries unseen.
        Returns the number of alerts queued."""
        alerts = 0
        with self.transaction():
            self.db.execute(
                "UPDATE feeds SET last_polled_at = ?, last_ok_at = ?, last_status = 'ok', "
                "last_error_kind = NULL, last_error = NULL, error_count = 0, next_check_at = ?, "
                "etag = ?, last_modified = ?, body_hash = ?, "
                "title = COALESCE(title, ?), baselined_at = COALESCE(baselined_at, ?) "
                "WHERE id = ?",
                (now, now, next_at, validators.get("etag"), validators.get("last_modified"),
                 validators.get("body_hash"), feed_title, now, feed.id),
            )
            for entry, article, matches in new:
                cur = self.db.execute(
                    "INSERT INTO entries (feed_id, uid, guid, link, title, summary, published, "
                    "content_hash, baseline, first_seen_at) VALUES (?,?,?,?,?,?,?,?,?,?) "
                    "ON CONFLICT(feed_id, uid) DO NOTHING",
                    (feed.id, entry.uid, entry.guid, entry.link, entry.title, entry.summary,
                     entry.published, entry.content_hash, int(baseline), now),
                )
                if cur.rowcount != 1:
                    continue
                entry_id = cur.lastrowid
                if article is not None:
                    self.db.execute(
                        "INSERT INTO articles (entry_id, url, title, text, language, author, "
                        "date, source, error, extracted_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                        (entry_id, article.url, article.title, article.text, article.language,
                         article.author, article.date, article.source, article.error, now),
                    )
                story = entry.link or entry.uid
                for m in matches:
                    cur = self.db.execute(
                        "INSERT INTO matches (entry_id, rule_id, rule_title, story, terms, field, "
                        "snippet, created_at) VALUES (?,?,?,?,?,?,?,?) "
                        "ON CONFLICT(rule_id, story) DO NOTHING",
                        (entry_id, m.rule_id, m.rule_title, story, json.dumps(list(m.terms), ensure_ascii=False),
                         m.field, m.snippet, now),
                    )
                    if cur.rowcount != 1:
                        continue  # this story already alerted for this rule
                    match_id = cur.lastrowid
                    for channel in m.channels:
                        self.db.execute(
                            "INSERT INTO outbox (match_id, channel, created_at, next_attempt_at) "
                            "VALUES (?,?,?,?) ON CONFLICT(match_id, channel) DO NOTHING",
                            (match_id, channel, now, now),
                        )
                        alerts += 1
        return alerts

    # -- outbox ---------------------------------------------------------------------------
    def pending_alerts(self, now: float, limit: int = 100) -> list[Alert]:
        """Pending alerts due for an attempt, oldest first, with all a message needs."""
        rows = self._rows(
            "SELECT o.id, o.channel, o.attempts, o.created_at, m.rule_id, m.rule_title, m.terms, "
            "m.snippet, "
            "e.title, e.link, e.published, f.title AS feed_title, f.url AS feed_url "
            "FROM outbox o JOIN matches m ON m.id = o.match_id "
            "JOIN entries e ON e.id = m.entry_id JOIN feeds f ON f.id = e.feed_id "
            "WHERE o.state = 'pending' AND o.next_attempt_at <= ? "
            "ORDER BY o.id LIMIT ?",
            [now, limit],
        )
        return [
            Alert(
                id=r["id"], channel=r["channel"], rule_id=r["rule_id"], rule_title=r["rule_title"] or r["rule_id"],
                title=r["title"] or "", link=r["link"], feed_title=r["feed_title"] or r["feed_url"],
                published=r["published"], terms=tuple(json.loads(r["terms"])),
                snippet=r["snippet"] or "", attempts=r["attempts"], created_at=r["created_at"],
            )
            for r in rows
        ]

    def mark_sent(self, alert_id: int, now: float) -> None:
        self.db.execute(
            "UPDATE outbox SET state = 'sent', sent_at = ?, attempts = attempts + 1, "
            "last_error = NULL WHERE id = ?",
            (now, alert_id),
        )

    def mark_failed(self, alert_id: int, error: str, next_at: float) -> None:
        self.db.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? "
            "WHERE id = ?",
            (error[:500], next_at, alert_id),
        )

    def outbox_counts(self) -> dict[str, int]:
        rows = self._rows("SELECT state, COUNT(*) AS n FROM outbox GROUP BY state")
        return {r["state"]: r["n"] for r in rows}

    def count(self, table: str) -> int:
        return self.db[table].count


def _feed(r: dict, default_interval: float) -> Feed:
    return Feed(
        id=r["id"], url=r["url"], title=r["title"], etag=r["etag"],
        last_modified=r["last_modified"], body_hash=r["body_hash"],
        interval=float(r["interval_s"] or default_interval), error_count=r["error_count"],
        baselined=r["baselined_at"] is not None,
    )


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]

