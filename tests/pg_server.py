"""A throwaway PostgreSQL server for the test suite (issue 19), or the one named by
``MONITOR_TEST_DATABASE_URL``.

``Server(folder)`` runs ``initdb`` and ``pg_ctl`` (PostgreSQL 15 on these machines: on PATH, or
Debian's /usr/lib/postgresql/N/bin) into ``folder``, listening only on a Unix socket there,
without fsync (a test server lost with its machine is made again) but with synchronous commits,
so that a committed row survives the server's own crash (``down``), as the tests of one need.
initdb refuses to run as root: as root, the server runs as the ``postgres`` user (Debian's
package makes it), else ``nobody``. Each test gets a schema of its own in one database
(``schema_url``), dropped afterwards: a schema is made in a millisecond, a database in a second.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import uuid
from pathlib import Path
from urllib.parse import quote

import psycopg


def binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return versions[-1] if versions else None


def _account() -> str | None:
    """The user the server runs as: None for ourselves, unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise RuntimeError("running as root and no 'postgres' or 'nobody' user to run PostgreSQL as")


class Server:
    """A PostgreSQL server made for the run; ``url`` reaches its database ``monitor``."""

    def __init__(self, folder: Path, port: int = 5432, settings: dict[str, str] | None = None):
        """``settings``: more server settings (``-c name=value``), e.g. the scale bench's
        ``shared_preload_libraries=pg_stat_statements``."""
        initdb, pg_ctl = binary("initdb"), binary("pg_ctl")
        if not initdb or not pg_ctl:
            raise RuntimeError("PostgreSQL's initdb and pg_ctl are not installed: .ci/run installs Debian's "
                               "postgresql package, or set MONITOR_TEST_DATABASE_URL")
        self.folder, self.port, self.pg_ctl = folder, port, pg_ctl
        self.data = folder / "data"
        self.user = _account()
        folder.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(folder, entry.pw_uid, entry.pw_gid)
        self._run([initdb, "-D", str(self.data), "-A", "trust", "-U", "monitor", "-E", "UTF8", "--locale=C.UTF-8",
                   "--no-sync"])
        # fsync off: the OS keeps what was written (a test server outlives no machine crash); commits
        # stay synchronous, so a committed row survives the server's own crash (``down``)
        self.options = (f"-k {folder} -p {port} -c listen_addresses='' -c fsync=off "
                        "-c full_page_writes=off -c max_connections=200"
                        + "".join(f" -c {k}={v}" for k, v in (settings or {}).items()))
        self.up()
        self.url = f"postgresql://monitor@/postgres?host={quote(str(folder))}&port={port}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE monitor")
        self.url = self.url.replace("/postgres?", "/monitor?")

    def _run(self, cmd: list[str]) -> None:
        res = subprocess.run(cmd, capture_output=True, text=True, user=self.user, timeout=120)
        if res.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:1])} failed ({res.returncode}): {res.stderr.strip() or res.stdout}")

    def stop(self) -> None:
        subprocess.run([self.pg_ctl, "-D", str(self.data), "-m", "immediate", "stop"], capture_output=True,
                       user=self.user, timeout=60)

    def down(self) -> None:
        """Stop the server at once, as a crash would (clients lose their connections)."""
        self._run([self.pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop"])

    def up(self) -> None:
        self._run([self.pg_ctl, "-D", str(self.data), "-o", self.options, "-l", str(self.folder / "server.log"),
                   "-w", "start"])


def prepare(url: str) -> None:
    """What every test schema uses from ``public``: the extensions the schema needs."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS citext SCHEMA public")
        conn.execute("CREATE EXTENSION IF NOT EXISTS unaccent SCHEMA public")


def schema_url(url: str) -> tuple[str, str]:
    """A new, empty schema in ``url``'s database and a URL whose connections use it first."""
    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={name},public')}", name


def drop_schema(url: str, name: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
