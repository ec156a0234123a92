"""``monitor store copy``: move a database between backends (issue 19), a single node's SQLite
file into the cluster's PostgreSQL or back, every row kept and the counts verified
(store/copy.py). Stop the daemons on both first: the copy reads one snapshot of the source, and
rows written to it afterwards would not be in the target."""

from __future__ import annotations

import sys

import click

from ..errors import MonitorError
from . import cli, fail


@cli.group("store")
def store_group() -> None:
    """Move the database: copy a single node's SQLite store into PostgreSQL (or back), verified."""


@store_group.command("copy")
@click.option("--from", "source", required=True, metavar="DATABASE",
              help="the store to read: a SQLite path, sqlite:///PATH or postgresql://...")
@click.option("--to", "target", required=True, metavar="DATABASE",
              help="the empty store to write (made and migrated when new)")
def copy_cmd(source: str, target: str) -> None:
    """Copy every row of one store into another, empty one, with its ids, in one transaction, then
    compare the rows per table on both sides. Exit 1 when they differ, 2 on bad input."""
    from ..store import connect
    from ..store.copy import copy

    if source == target:
        fail("--from and --to name the same database")
    try:
        src = connect(source)
    except MonitorError as e:
        fail(f"--from: {e}")
    try:
        dst = connect(target)
    except MonitorError as e:
        src.close()
        fail(f"--to: {e}")
    shown: dict[str, int] = {}

    def progress(table: str, done: int) -> None:
        if sys.stderr.isatty() and done - shown.get(table, 0) >= 10_000:
            shown[table] = done
            click.echo(f"\r{table}: {done:,} rows", err=True, nl=False)

    try:
        got = copy(src, dst, progress)
    except MonitorError as e:
        click.echo(f"error: copy failed: {e}", err=True)
        sys.exit(1)
    finally:
        src.close()
        dst.close()
    click.echo(f"copied {src.path} -> {dst.path}; rows verified on both sides: "
               + " ".join(f"{t}={n}" for t, n in got.items()))
