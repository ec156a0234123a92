"""``monitor doctor``: one line per check, ``ok|warn|fail  check: detail``; exit 1 if any
check failed. It reads, never repairs, and never prints a secret: channel URLs in apprise's
privacy form with what that form leaves (webhook path tokens, header values) masked too, and
error texts through the same mask.

Checks: the config file and its permissions, each channel's URLs, the rules, the database's
integrity and permissions, that the state directory (the database's folder) is writable, and,
from the database, the feeds that are failing and the channels whose deliveries fail (issue 14).
A feed failing for less than ``poll.failing_alert_after`` is a warning (it may come back; the
daemon has not raised an ops alert yet), longer a failure; an alert given up on (dead) or a
channel whose last attempt failed is a failure: the team is not getting its alerts.
"""

from __future__ import annotations

import os
import re
import stat
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .. import dates, urlsecrets
from ..errors import MonitorError
from ..models import Alert
from . import cli, config_option, exposure

if TYPE_CHECKING:
    from ..config import Config

Result = tuple[str, str, str]  # (ok | warn | fail, check, detail)


def _config(path: str) -> tuple[list[Result], Config | None]:
    from .. import config as config_mod

    try:
        cfg = config_mod.load(path)
    except MonitorError as e:
        return [("fail", "config", str(e).replace("\n", "; "))], None
    why = exposure(path, cfg.inline_secrets)
    fine = "no secret written in it" if not cfg.inline_secrets else "readable by its owner only"
    return [("ok", "config", f"{path}: {len(cfg.feeds)} feeds, {len(cfg.channels)} channels"),
            ("warn", "config-permissions", why) if why else
            ("ok", "config-permissions", f"{path}: {fine}")], cfg


def masker(cfg: Config) -> re.Pattern[str] | None:
    """The mask for every secret of the config's channel URLs (and every ${NAME} value)."""
    urls = [u for ch in cfg.channels.values() for u in ch.urls]
    return urlsecrets.masker(urlsecrets.values(urls, cfg.marked_secrets))


def _channels(cfg: Config) -> Iterator[Result]:
    from .. import notify

    for name, ch in cfg.channels.items():
        try:
            n = notify.Notifier(notify.channels_from({name: ch}))
        except MonitorError as e:  # the message names the scheme, never the URL
            yield "fail", f"channel {name}", str(e)
            continue
        yield "ok", f"channel {name}", urlsecrets.mask(", ".join(n.describe(name)), masker(cfg))


def _rules(cfg: Config) -> Result:
    from .. import rules

    known = set(cfg.channels) | {ch.tag for ch in cfg.channels.values()}
    try:
        problems = rules.check(cfg.rules_dir, known, has_default=bool(cfg.notify.default_channels))
        if problems:
            return "fail", "rules", "; ".join(str(p) for p in problems)
        return "ok", "rules", f"{cfg.rules_dir}: {len(rules.load(cfg.rules_dir))} rules"
    except MonitorError as e:
        return "fail", "rules", str(e).replace("\n", "; ")


def _database(file: Path, full: bool, readable: list[bool]) -> Iterator[Result]:
    """The file's checks; ``readable`` gets True when the health checks may open it (sound, and
    of this program's schema version: opening an older one would migrate it)."""
    from ..store import StoreError
    from ..store.integrity import integrity

    if not file.exists():
        yield "warn", "database", f"{file}: does not exist yet (monitor run or once creates it)"
        return
    try:
        version, ours, problems = integrity(file, full=full)
    except StoreError as e:
        yield "fail", "database", f"{file}: cannot read: {e}"
        return
    check = "integrity_check" if full else "quick_check"
    if problems:
        yield "fail", "database", f"{file}: {check}: " + "; ".join(problems[:5])
    elif version > ours:
        yield "fail", "database", f"{file}: schema version {version} is newer than this program ({ours})"
    else:
        yield "ok", "database", f"{file}: {check} ok, schema version {version} of {ours}"
        readable.append(version == ours)
    mode = stat.S_IMODE(file.stat().st_mode)
    if mode & 0o022:  # anyone else who can write it can forge alerts or wreck it
        yield "warn", "database-permissions", f"{file}: writable by group or others (mode {mode:04o}): chmod 600"
    else:
        yield "ok", "database-permissions", f"{file}: mode {mode:04o}"


def _server(url: str, readable: list[bool]) -> Result:
    """A PostgreSQL database (cluster mode): reachable, and of which schema version."""
    from ..store import MIGRATIONS, StoreError, connect

    try:
        store = connect(url, busy_timeout=5)
    except StoreError as e:
        return "fail", "database", str(e)
    try:
        version = store.version
    finally:
        store.close()
    readable.append(True)
    return "ok", "database", f"{store.path}: PostgreSQL, schema version {version} of {len(MIGRATIONS)}"


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


def feed_health(rows: list[dict], now: float, failing_alert_after: float) -> list[Result]:
    """One line per active feed that is failing or gone, with its reason, from ``feed_table``
    rows; one ok line if none is. Pure."""
    out: list[Result] = []
    active = [r for r in rows if r["active"]]
    for r in active:
        if r["gone_at"] is not None:
            out.append(("warn", f"feed {r['id']}", f"{r['url']}: gone (HTTP 410) {dates.ago(r['gone_at'], now)}; "
                        f"remove it from the config or with monitor feeds remove"))
        elif r["error_count"]:
            since = r["failing_since"] or r["last_polled_at"] or now
            level = "fail" if now - since >= failing_alert_after else "warn"
            why = f"{r['last_error_kind']}: {r['last_error']}" if r["last_error_kind"] else r["last_error"] or "?"
            out.append((level, f"feed {r['id']}", f"{r['url']}: failing since {dates.ago(since, now)} "
                        f"({r['error_count']} failed polls): {why}"))
    if not out:
        out.append(("ok", "feeds", f"{len(active)} active, none failing"))
    return out


def delivery_health(by_channel: list[tuple[str, str, int]], failed: list[Alert], dead: list[Alert],
                    sent: list[Alert], notices: list[tuple[str, int]], now: float) -> list[Result]:
    """One line per channel whose deliveries fail: alerts given up on (dead), a last attempt
    that failed (newer than its last success), ops notices that failed. ``by_channel``:
    (state, channel, count); the alert lists newest first; ``notices``: (channel, attempts)
    of undelivered ones. Pure; the caller masks the text."""
    count = {(s, c): n for s, c, n in by_channel}
    last_ok: dict[str, float] = {}
    for a in sent:
        last_ok[a.channel] = max(last_ok.get(a.channel, 0.0), a.sent_at or 0.0)
    channels = sorted({a.channel for a in failed + dead} | {c for c, n in notices if n})
    out: list[Result] = []
    for ch in channels:
        parts = []
        newest = max((a for a in failed + dead if a.channel == ch), default=None,
                     key=lambda a: a.last_attempt_at or 0.0)
        when = (newest.last_attempt_at or 0.0) if newest else 0.0
        if newest and (count.get(("dead", ch)) or when >= last_ok.get(ch, 0.0)):
            status = f" (HTTP {newest.last_status})" if newest.last_status else ""
            parts.append(f"last attempt failed {dates.ago(when, now)}{status}: {newest.last_error or '?'}")
        if n := count.get(("failed", ch)):
            parts.append(f"{n} alerts waiting for a retry")
        if n := count.get(("dead", ch)):
            parts.append(f"{n} alerts dead (given up; monitor alerts retry --dead sends them again)")
        failing = [a for c, a in notices if c == ch and a]
        if failing:
            parts.append(f"{len(failing)} ops notices failing ({max(failing)} attempts)")
        if parts:
            out.append(("fail", f"delivery {ch}", "; ".join(parts)))
    return out or [("ok", "deliveries", "no failed or dead alerts, no failing ops notices")]


def _health(cfg: Config, now: float) -> list[Result]:
    from ..store import connect

    store = connect(cfg.database)
    try:
        results = feed_health(store.feed_table(), now, cfg.poll.failing_alert_after)
        notices = [(n.channel, n.attempts) for n in store.pending_notices(now=float("inf"), limit=1000)]
        results += delivery_health(store.outbox_by_channel(), store.alerts("failed"), store.alerts("dead"),
                                   store.alerts("sent", limit=500), notices, now)
    finally:
        store.close()
    mask = masker(cfg)
    return [(level, check, urlsecrets.mask(detail, mask)) for level, check, detail in results]


def diagnose(config_path: str, full: bool = False, now: float | None = None) -> list[Result]:
    results, cfg = _config(config_path)
    if cfg is None:
        return results
    results += list(_channels(cfg))
    results.append(_rules(cfg))
    readable: list[bool] = []
    if cfg.database_file is not None:
        results += list(_database(cfg.database_file, full, readable))
        results.append(_state_dir(cfg.database_file.parent))
    else:
        results.append(_server(str(cfg.database), readable))
    if readable == [True]:
        try:
            results += _health(cfg, time.time() if now is None else now)
        except MonitorError as e:
            results.append(("fail", "health", f"{cfg.database}: cannot read feeds and deliveries: {e}"))
    return results


@cli.command()
@config_option
@click.option("--full", is_flag=True, help="PRAGMA integrity_check instead of the faster quick_check.")
def doctor(config_path: str, full: bool) -> None:
    """Check config, channels, rules, database, state directory, failing feeds and deliveries;
    exit 1 if any check fails."""
    results = diagnose(config_path, full)
    for level, check, detail in results:
        click.echo(f"{level:<4}  {check}: {detail}")
    sys.exit(1 if any(level == "fail" for level, _, _ in results) else 0)
