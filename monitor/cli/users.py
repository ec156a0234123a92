"""``monitor users``: who may sign in to the web console (issue 18), as viewer (reads) or editor
(also gives feedback, pauses feeds, revives alerts). Passwords are read hidden (twice) or from
standard input, hashed with argon2 (monitor/passwords.py) and never stored or shown."""

from __future__ import annotations

import json
import re
import sys
import time
from typing import TYPE_CHECKING

import click

from ..errors import MonitorError
from . import cli, config_option, fail

if TYPE_CHECKING:
    from ..store import StoreAPI

ROLES = ("viewer", "editor")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MIN_PASSWORD = 8  # characters


def _store(config_path: str) -> StoreAPI:
    from .. import config as config_mod
    from ..store import connect

    try:
        return connect(config_mod.load(config_path).database)
    except MonitorError as e:
        fail(str(e))


def _name(name: str) -> str:
    if not NAME.fullmatch(name):
        fail(f"user name {name!r}: 1 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit")
    return name


def _role(role: str) -> str:
    if role not in ROLES:
        fail(f"role {role!r}: expected viewer or editor")
    return role


def _hash(from_stdin: bool) -> str:
    """The new password, hashed: the first line of standard input, or asked twice (hidden)."""
    from .. import passwords

    if from_stdin:
        pw = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    else:
        try:
            pw = click.prompt("Password", hide_input=True, confirmation_prompt=True, default="", show_default=False)
        except click.Abort:
            fail("no password given")
    if not pw:
        fail("empty password")
    if len(pw) < MIN_PASSWORD:
        fail(f"password too short: at least {MIN_PASSWORD} characters")
    return passwords.hash_password(pw)


def _run(config_path: str, what: str, *args: object) -> object:
    store = _store(config_path)
    try:
        return getattr(store, what)(*args)
    except MonitorError as e:
        fail(str(e))
    finally:
        store.close()


@cli.group("users")
def users_group() -> None:
    """Who may sign in to the web console: add, remove, passwd, role, list."""


@users_group.command("add")
@config_option
@click.argument("name")
@click.option("--role", default="viewer", show_default=True, help="viewer (reads) or editor (also acts).")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
def add_cmd(config_path: str, name: str, role: str, password_stdin: bool) -> None:
    """Add a console user NAME; the password is asked twice (hidden) or read from stdin."""
    _name(name)
    _role(role)
    hashed = _hash(password_stdin)
    if not _run(config_path, "add_user", name, role, hashed, time.time()):
        fail(f"user {name!r} exists (names are unique whatever their case); 'monitor users passwd' changes a password")
    click.echo(f"added: {name} ({role})")


@users_group.command("remove")
@config_option
@click.argument("name")
def remove_cmd(config_path: str, name: str) -> None:
    """Remove the console user NAME."""
    if not _run(config_path, "remove_user", _name(name)):
        fail(f"no user {name!r} (see 'monitor users list')")
    click.echo(f"removed: {name}")


@users_group.command("passwd")
@config_option
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
def passwd_cmd(config_path: str, name: str, password_stdin: bool) -> None:
    """Set a new password for the console user NAME."""
    _name(name)
    if not _run(config_path, "set_password", name, _hash(password_stdin), time.time()):
        fail(f"no user {name!r} (see 'monitor users list')")
    click.echo(f"password changed: {name}")


@users_group.command("role")
@config_option
@click.argument("name")
@click.argument("role")
def role_cmd(config_path: str, name: str, role: str) -> None:
    """Make the console user NAME a viewer or an editor."""
    _name(name)
    _role(role)
    if not _run(config_path, "set_role", name, role, time.time()):
        fail(f"no user {name!r} (see 'monitor users list')")
    click.echo(f"{name}: {role}")


@users_group.command("list")
@config_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per user.")
def list_cmd(config_path: str, as_json: bool) -> None:
    """List console users with their role and when they were added and last changed."""
    from .. import dates

    rows = _run(config_path, "users")
    assert isinstance(rows, list)
    for r in rows:
        if as_json:
            click.echo(json.dumps(r, ensure_ascii=False))
        else:
            click.echo(f"{r['name']}  {r['role']}  added {dates.local(r['created_at'])}  "
                       f"changed {dates.local(r['updated_at'])}")
    if not rows and not as_json:
        click.echo("no users: add one with 'monitor users add NAME --role editor'")
