from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from servers import SMTP, FeedServer, Webhook  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"
# The language model's memory-mapped cache (monitor/language.py) of every process the tests
# start goes under the checkout, not into the home folder of whoever runs them.
os.environ.setdefault("MONITOR_CACHE_DIR", str(ROOT / "test-output" / "cache"))
# The test servers listen on loopback, which the SSRF guard refuses unless allow-listed.
LOOPBACK_NETS = ["127.0.0.1/32", "::1/128"]
LOOPBACK = tuple(arg for net in LOOPBACK_NETS for arg in ("--allow-private", net))  # for run_cli


def monitor_cmd() -> list[str]:
    """The real console script of the installed package, else ``python -m monitor.cli``."""
    script = Path(sys.executable).with_name("monitor")
    return [str(script)] if script.exists() else [sys.executable, "-m", "monitor.cli"]


def run_cli(*args: str, input: str | None = None, timeout: float = 120,
            env: dict | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([*monitor_cmd(), *args], input=input, capture_output=True, text=True,
                          timeout=timeout, env=full_env)


def rss(items: list[dict], title: str = "Test feed", channel: str = "") -> str:
    """An RSS 2.0 document; each item has title, link, guid?, description?, content?, date?
    (a datetime; default 2026-11-01 08:0i UTC). ``channel``: extra XML such as <ttl>."""
    out = []
    for i, it in enumerate(items):
        date = format_datetime(it.get("date") or datetime(2026, 11, 1, 8, i, tzinfo=UTC))
        parts = [f"<title>{escape(it['title'])}</title>", f"<link>{escape(it['link'])}</link>",
                 f"<pubDate>{date}</pubDate>"]
        if it.get("guid"):
            parts.append(f"<guid isPermaLink=\"false\">{escape(it['guid'])}</guid>")
        if it.get("description"):
            parts.append(f"<description>{escape(it['description'])}</description>")
        if it.get("content"):
            parts.append(f"<content:encoded><![CDATA[{it['content']}]]></content:encoded>")
        out.append("<item>" + "".join(parts) + "</item>")
    return ('<?xml version="1.0" encoding="utf-8"?>\n'
            '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">'
            f"<channel><title>{escape(title)}</title><link>http://example.org/</link>"
            f"<description>test</description>{channel}{''.join(out)}</channel></rss>")


def page(title: str, paragraphs: list[str], lang: str = "de") -> str:
    body = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    return (f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>{escape(title)}'
            f'</title><meta name="author" content="Test Autorin"></head><body><nav><a href="/">Start'
            f'</a> | <a href="/politik">Politik</a></nav><main><article><h1>{escape(title)}</h1>'
            f"{body}</article></main><footer>Impressum · Datenschutz</footer></body></html>")


def write_config(tmp: Path, *, feeds: list[str], channels: dict[str, list[str]],
                 defaults: list[str] | None = None, extra: str = "",
                 rules: Path = RULES, database: str | None = None) -> Path:
    """A config in ``tmp``; its database ``tmp/monitor.db`` unless ``database`` names one (the
    ``database`` fixture's: a SQLite file or a PostgreSQL URL)."""
    lines = [
        "[monitor]", f'database = "{database or tmp / "monitor.db"}"', f'rules = "{rules}"', "tick = 0.5",
        "[poll]", "interval = 1", "min_interval = 0.5", "max_interval = 1", "[extract]", "workers = 1", "timeout = 20",
        "[notify]", f"default_channels = {list(defaults if defaults is not None else channels)!r}",
        "retry = 0.05", "max_retry = 0.1", "timeout = 10",
    ]
    allow = f"allow_private = {LOOPBACK_NETS!r}"
    if "[fetch]" in extra:
        extra = extra.replace("[fetch]", f"[fetch]\n{allow}", 1)
    else:  # before [notify]: ``extra`` may go on with [notify] keys
        at = lines.index("[notify]")
        lines[at:at] = ["[fetch]", allow]
    if "[http]" not in extra:  # the console's port (8080 by default) stays closed unless a test opens it
        at = lines.index("[notify]")  # before [notify]: ``extra`` may go on with [notify] keys
        lines[at:at] = ["[http]", "enabled = false"]
    lines.append(extra)
    for name, urls in channels.items():
        lines += [f"[channels.{name}]", f"urls = {urls!r}"]
    for url in feeds:
        lines += ["[[feeds]]", f'url = "{url}"']
    path = tmp / "config.toml"
    path.write_text("\n".join(lines).replace("'", '"') + "\n", encoding="utf-8")
    return path


class Clock:
    """An injected clock (``clock=`` of pipeline.Context, Sender, ...): time moves when a test says."""

    def __init__(self, now: float = 1_790_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def database_at(path: Path, version: int) -> sqlite3.Connection:
    """A database built by the first ``version`` migrations, as an older release left it (to
    test the migrations after it), with one feed; autocommit."""
    from monitor.store import MIGRATIONS
    from monitor.store.steps import statements

    con = sqlite3.connect(str(path), isolation_level=None)
    for number, step in enumerate(MIGRATIONS[:version], start=1):
        if isinstance(step, str):
            for stmt in statements(step):
                con.execute(stmt)
        else:
            step(con)
        con.execute(f"PRAGMA user_version = {number}")
    con.execute("INSERT INTO feeds (id, url, source_url, created_at) VALUES (1, 'https://a/f', 'https://a/f', 0)")
    return con


def db_rows(path: Path | str, sql: str) -> list[tuple]:
    """``sql`` (SQLite's dialect) read on its own connection: a SQLite file or a PostgreSQL URL."""
    return sql_rows(str(path), sql)


@pytest.fixture
def feed_server():
    srv = FeedServer()
    yield srv
    srv.close()


@pytest.fixture
def webhook():
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture
def smtp():
    server = SMTP()
    yield server
    server.stop()


@pytest.fixture
def rules_copy(tmp_path: Path) -> Path:
    dest = tmp_path / "rules"
    shutil.copytree(RULES, dest)
    return dest


def wait_for(pred, what: str, timeout: float = 45.0) -> None:
    """Poll ``pred`` until it is true; an exception counts as not yet (the database may not
    exist yet, or be mid-migration)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for: {what}")


# --- the store's two backends (issue 19) ---------------------------------------------------------
# ``database``: where a test's store lives, once per backend: a SQLite file, and a schema of its
# own on the run's PostgreSQL server (tests/pg_server.py: started for the run, or the one
# MONITOR_TEST_DATABASE_URL names). Tests that hold the store to its contract take it; tests of
# what only SQLite has (a file, WAL, its locks, the old migrations) keep ``tmp_path``.

@pytest.fixture(scope="session")
def pg_server():
    """The run's own PostgreSQL server (tests/pg_server.py), None when MONITOR_TEST_DATABASE_URL
    names another one."""
    import tempfile

    import pg_server as servers
    if os.environ.get("MONITOR_TEST_DATABASE_URL"):
        yield None
        return
    server = servers.Server(Path(tempfile.mkdtemp(prefix="monitor-pg-")))  # pytest's folders are closed to its user
    yield server
    server.stop()
    shutil.rmtree(server.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server_url(pg_server):
    import pg_server as servers
    url = os.environ.get("MONITOR_TEST_DATABASE_URL") or pg_server.url
    servers.prepare(url)
    return url


@pytest.fixture
def pg_url(pg_server_url: str):
    """A PostgreSQL database URL whose connections see an empty schema of this test's own."""
    import pg_server
    url, name = pg_server.schema_url(pg_server_url)
    yield url
    pg_server.drop_schema(pg_server_url, name)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The ``[monitor] database`` of a test's store, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "state" / "monitor.db")
    return request.getfixturevalue("pg_url")


def present(database: str | Path) -> bool:
    """Whether the daemon made its database yet: the SQLite file, or the schema on PostgreSQL."""
    text = str(database)
    if not text.startswith("postgresql://"):
        return Path(text).exists()
    return sql_rows(text, "SELECT to_regclass('schema_version') IS NOT NULL")[0][0]


def sql_rows(database: str, sql: str, params: tuple | list = ()) -> list[tuple]:
    """Rows read through a connection of our own (what is committed, not what the writer sees),
    on either backend; ``sql`` in SQLite's dialect with ``?`` placeholders."""
    if database.startswith("postgresql://"):
        import psycopg

        from monitor.store.pg import translate
        with psycopg.connect(database, autocommit=True, cursor_factory=psycopg.ClientCursor) as conn:
            return [tuple(r) for r in conn.execute(translate(sql, returning=False)[0], params).fetchall()]
    con = sqlite3.connect(database)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()
