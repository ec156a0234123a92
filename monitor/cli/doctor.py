"""``monitor doctor``: one line per check, ``ok|warn|fail  check: detail``; exit 1 if any
check failed. It reads, never repairs, and prints channel URLs only in apprise's privacy form.

Checks: the config file and its permissions, each channel's URLs, the rules, the database's
integrity and permissions, and that the state directory (the database's folder) is writable.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import click

from .. import config as config_mod
from .. import rules
from ..errors import MonitorError
from . import cli, config_option

Result = tuple[str, str, str]  # (ok | warn | fail, check, detail)


def exposure(path: str | os.PathLike[str]) -> str | None:
    """Why the config file at ``path`` is too open (it may hold tokens), or None. Pure but
    for one stat()."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None
    if not mode & 0o077:
        return None
    who = " and ".join(w for w, bits in (("group", 0o070), ("others", 0o007)) if mode & bits)
    return (f"{path} is accessible by {who} (mode {mode:04o}) and may hold tokens: "
            f"chmod 600 {path}")


def _config(path: str) -> tuple[list[Result], config_mod.Config | None]:
    try:
        cfg = config_mod.load(path)
    except MonitorError as e:
        return [("fail", "config", str(e).replace("\n", "; "))], None
    why = exposure(path)
    return [("ok", "config", f"{path}: {len(cfg.feeds)} feeds, {len(cfg.channels)} channels"),
            ("warn", "config-permissions", why) if why else
            ("ok", "config-permissions", f"{path}: readable by its owner only")], cfg


def _channels(cfg: config_mod.Config) -> Iterator[Result]:
    from .. import notify

    for name, ch in cfg.channels.items():
        try:
            n = notify.Notifier(notify.channels_from({name: ch}))
        except MonitorError as e:  # the message names the scheme, never the URL
            yield "fail", f"channel {name}", str(e)
            continue
        yield "ok", f"channel {name}", ", ".join(n.describe(name))


def _rules(cfg: config_mod.Config) -> Result:
    known = set(cfg.channels) | {ch.tag for ch in cfg.channels.values()}
    try:
        problems = rules.check(cfg.rules_dir, known, has_default=bool(cfg.notify.default_channels))
        if problems:
            return "fail", "rules", "; ".join(str(p) for p in problems)
        return "ok", "rules", f"{cfg.rules_dir}: {len(rules.load(cfg.rules_dir))} rules"
    except MonitorError as e:
        return "fail", "rules", str(e).replace("\n", "; ")


def _database(db: Path, full: bool) -> Iterator[Result]:
    from ..store.integrity import integrity

    if not db.exists():
        yield "warn", "database", f"{db}: does not exist yet (monitor run or once creates it)"
        return
    try:
        version, ours, problems = integrity(db, full=full)
    except sqlite3.Error as e:
        yield "fail", "database", f"{db}: cannot read: {e}"
        return
    check = "integrity_check" if full else "quick_check"
    if problems:
        yield "fail", "database", f"{db}: {check}: " + "; ".join(problems[:5])
    elif version > ours:
        yield "fail", "database", f"{db}: schema version {version} is newer than this program ({ours})"
    else:
        yield "ok", "database", f"{db}: {check} ok, schema version {version} of {ours}"
    mode = stat.S_IMODE(db.stat().st_mode)
    if mode & 0o022:  # anyone else who can write it can forge alerts or wreck it
        yield "warn", "database-permissions", f"{db}: writable by group or others (mode {mode:04o}): chmod 600"
    else:
        yield "ok", "database-permissions", f"{db}: mode {mode:04o}"


def _state_dir(folder: Path) -> Result:
    if folder.exists() and not folder.is_dir():
        return "fail", "state-dir", f"{folder}: is not a folder"
    if not folder.exists():
        parent = next((p for p in folder.parents if p.exists()), Path(folder.anchor))
        if not parent.is_dir():
            return "fail", "state-dir", f"{folder}: cannot be created: {parent} is not a folder"
        if os.access(parent, os.W_OK | os.X_OK):
            return "warn", "state-dir", f"{folder}: does not exist yet; it will be created in {parent}"
        return "fail", "state-dir", f"{folder}: does not exist and {parent} is not writable"
    try:  # os.access() can be wrong (read-only mounts, ACLs): really write a file
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".doctor-"):
            pass
    except OSError as e:
        return "fail", "state-dir", f"{folder}: not writable ({e.strerror})"
    return "ok", "state-dir", f"{folder}: writable"


def diagnose(config_path: str, full: bool = False) -> list[Result]:
    results, cfg = _config(config_path)
    if cfg is None:
        return results
    results += list(_channels(cfg))
    results.append(_rules(cfg))
    results += list(_database(cfg.database, full))
    results.append(_state_dir(cfg.database.parent))
    return results


@cli.command()
@config_option
@click.option("--full", is_flag=True, help="PRAGMA integrity_check instead of the faster quick_check.")
def doctor(config_path: str, full: bool) -> None:
    """Check config, channels, rules, database and state directory; exit 1 if any check fails."""
    results = diagnose(config_path, full)
    for level, check, detail in results:
        click.echo(f"{level:<4}  {check}: {detail}")
    sys.exit(1 if any(level == "fail" for level, _, _ in results) else 0)
