"""The store on PostgreSQL (issue 19), what SQLite has no counterpart for: one schema for both
(the PostgreSQL baseline against SQLite's migrations, column by column), migrations taken once
when nodes start together, a server that is down or restarts, and the SQL translation."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import psycopg
import pytest

from monitor.store import MIGRATIONS, Store, StoreError, baseline, connect
from monitor.store.pg import redacted, translate

# SQLite's declared types and what the baseline makes of them (store/baseline.py says why)
TYPES = {"INTEGER": "bigint", "BIGINT": "bigint", "REAL": "double precision", "TEXT": "text",
         "DOUBLE PRECISION": "double precision"}


def _sqlite_schema(path: Path) -> tuple[dict[str, dict[str, tuple]], set[str]]:
    Store(path).close()
    con = sqlite3.connect(str(path))
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
                                            "'search%' AND name NOT LIKE 'sqlite%'")]
        cols = {t: {r[1]: (TYPES[r[2]], bool(r[3] or r[5]), _default(r[4])) for r in
                    con.execute(f"PRAGMA table_info({t})")} for t in tables}
        indexes = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")}
        return cols, indexes
    finally:
        con.close()


def _default(value: str | None) -> str | None:
    return None if value is None else value.strip("'")


def _pg_schema(url: str) -> tuple[dict[str, dict[str, tuple]], set[str]]:
    Store(url).close()
    with psycopg.connect(url) as conn:
        schema = conn.execute("SELECT current_schema()").fetchone()[0]
        cols: dict[str, dict[str, tuple]] = {}
        for table, col, kind, nullable, default in conn.execute(
                "SELECT table_name, column_name, data_type, is_nullable, column_default "
                "FROM information_schema.columns WHERE table_schema = %s AND table_name != 'schema_version' "
                "AND table_name NOT LIKE 'search%%' "  # search: FTS5 there, a tsvector here (own tests)
                "AND table_name NOT LIKE 'procrastinate%%' "  # the work queue's own (tests/test_cluster.py)
                "AND table_name NOT LIKE 'cluster%%'",  # the cluster's host slots (PostgreSQL only)
                [schema]):
            kind = "text" if kind == "USER-DEFINED" else kind  # CITEXT: text whatever its case
            text = None if default is None else default.split("::")[0].strip("'")
            cols.setdefault(table, {})[col] = (kind, nullable == "NO", text)
        indexes = {r[0] for r in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND indexname NOT LIKE '%%_pkey' "
            "AND indexname NOT LIKE '%%_key' AND indexname NOT LIKE 'search%%' "
            "AND indexname NOT LIKE '%%procrastinate%%'", [schema])}
        return cols, indexes


def test_postgresql_starts_from_a_baseline_with_sqlites_tables_columns_and_indexes(tmp_path, pg_url):
    sqlite_cols, sqlite_indexes = _sqlite_schema(tmp_path / "m.db")
    pg_cols, pg_indexes = _pg_schema(pg_url)
    assert baseline.VERSION <= len(MIGRATIONS)
    assert set(pg_cols) == set(sqlite_cols)
    for table, cols in sqlite_cols.items():
        assert pg_cols[table] == cols, table
    assert pg_indexes == sqlite_indexes


def test_a_new_database_is_at_the_latest_version_and_reopens_as_it_is(pg_url):
    store = Store(pg_url)
    try:
        assert store.dialect == "postgresql" and store.version == len(MIGRATIONS)
        store.sync_feeds([("https://a.example/feed", "A", None)], now=1.0)
    finally:
        store.close()
    again = connect(pg_url)
    try:
        assert again.version == len(MIGRATIONS)
        assert [f.url for f in again.feeds()] == ["https://a.example/feed"]
    finally:
        again.close()


def test_nodes_starting_together_migrate_once(pg_url):
    stores: list[Store] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            stores.append(Store(pg_url))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    try:
        assert errors == [] and len(stores) == 4
        assert {s.version for s in stores} == {len(MIGRATIONS)}
    finally:
        for s in stores:
            s.close()


def test_a_database_that_is_not_there_is_a_store_error_naming_it_without_the_password(tmp_path):
    url = f"postgresql://monitor:secret@/monitor?host={tmp_path}&port=1"
    with pytest.raises(StoreError) as e:
        Store(url, busy_timeout=1)
    assert e.value.kind == "down"
    assert "cannot open database" in str(e.value) and "secret" not in str(e.value) and "***" in str(e.value)


def test_a_lost_connection_fails_the_call_and_the_next_call_reconnects(pg_url):
    store = Store(pg_url)
    try:
        store.sync_feeds([("https://a.example/feed", "A", None)], now=1.0)
        with psycopg.connect(pg_url, autocommit=True) as admin:  # what a server restart does to a client
            pid = store.db._live().info.backend_pid  # type: ignore[attr-defined]
            admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        with pytest.raises(StoreError) as e:
            store.feeds()
        assert e.value.kind == "down"
        assert [f.url for f in store.feeds()] == ["https://a.example/feed"]
    finally:
        store.close()


def test_sqlite_sql_becomes_postgresql():
    assert translate("SELECT a FROM t WHERE b = ? AND c LIKE x || ' via feed %'") == (
        "SELECT a FROM t WHERE b = %s AND c LIKE x || ' via feed %%'", False)
    assert translate("UPDATE feeds SET next_check_at = MIN(next_check_at, ?), x = MAX(y, 2) WHERE id = ?")[0] == (
        "UPDATE feeds SET next_check_at = LEAST(next_check_at, %s), x = GREATEST(y, 2) WHERE id = %s")
    assert translate("SELECT MIN(id), MAX(created_at) FROM outbox")[0] == "SELECT MIN(id), MAX(created_at) FROM outbox"
    assert translate("SELECT (SELECT json_group_array(json_array(c.id, c.rule_id)) FROM matches c) AS rules")[0] == (
        "SELECT (SELECT json_agg(json_build_array(c.id, c.rule_id))::text FROM matches c) AS rules")
    assert translate("INSERT OR IGNORE INTO config_urls VALUES (?)") == (
        "INSERT INTO config_urls VALUES (%s) ON CONFLICT DO NOTHING", False)
    assert translate("INSERT INTO matches (story) VALUES (?) ON CONFLICT(story) DO NOTHING") == (
        "INSERT INTO matches (story) VALUES (%s) ON CONFLICT(story) DO NOTHING RETURNING id", True)
    assert translate("DELETE FROM entries WHERE id IN (SELECT e.id FROM entries e INDEXED BY entries_live "
                     "WHERE e.first_seen_at < :cutoff LIMIT :batch)")[0] == (
        "DELETE FROM entries WHERE id IN (SELECT e.id FROM entries e WHERE e.first_seen_at < %(cutoff)s "
        "LIMIT %(batch)s)")
    assert translate("SELECT 'it''s ? here', x::text FROM t WHERE y = ?")[0] == (
        "SELECT 'it''s ? here', x::text FROM t WHERE y = %s")


def test_a_url_is_named_without_its_password():
    assert redacted("postgresql://monitor:s3cret@db.example:5433/monitor") == "postgresql://monitor:***@db.example:5433/monitor"
    assert redacted("postgresql://db.example/monitor") == "postgresql://db.example/monitor"


def test_the_database_password_may_come_from_the_environment_and_an_inline_one_is_flagged(tmp_path, monkeypatch,
                                                                                           pg_url):
    from conftest import write_config

    from monitor import config

    monkeypatch.setenv("MONITOR_TEST_PW", "s3cret-from-env")
    with_env = pg_url.replace("postgresql://monitor@", "postgresql://monitor:${MONITOR_TEST_PW}@")
    cfg = config.load(write_config(tmp_path, feeds=[], channels={"c": ["log://"]}, database=with_env))
    assert cfg.database == pg_url.replace("monitor@", "monitor:s3cret-from-env@")
    assert "s3cret-from-env" in cfg.marked_secrets and cfg.inline_secrets == []
    store = connect(cfg.database)  # the server trusts local connections: the password is not checked
    try:
        assert "s3cret" not in str(store.path)
    finally:
        store.close()
    inline = config.load(write_config(tmp_path, feeds=[], channels={"c": ["log://"]},
                                      database=pg_url.replace("monitor@", "monitor:written-here@")))
    assert inline.inline_secrets == ["monitor.database: password"]
