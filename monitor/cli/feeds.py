"""``monitor feeds``: list feeds with their health; add, remove, import and export them.

Feeds live in two places that both work: the config file (``[[feeds]]``, the truth for those)
and the database (added here or from OPML). The daemon reads the database at every tick, so
a feed added while it runs is polled without a restart.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .. import dates, schedule
from ..errors import MonitorError
from ..opml import FeedRef, read_opml_report, write_opml
from . import cli, config_option, fail

if TYPE_CHECKING:
    from ..config import Config
    from ..store import StoreAPI


def _open(config_path: str) -> tuple[Config, StoreAPI]:
    """The config and its database, with the config's feeds registered (as the daemon does)."""
    from .. import config as config_mod
    from ..store import connect

    try:
        cfg = config_mod.load(config_path)
        store = connect(cfg.database)
        store.sync_feeds(cfg.feed_specs, time.time())
    except MonitorError as e:
        fail(str(e))
    return cfg, store


@cli.group("feeds", invoke_without_command=True)
@config_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per feed.")
@click.pass_context
def feeds_cmd(ctx: click.Context, config_path: str, as_json: bool) -> None:
    """Show every feed's health (ok, new, failing, silent, gone), last error, last success,
    next poll and learned cadence. Subcommands add, remove, import and export feeds."""
    if ctx.invoked_subcommand is not None:
        return
    cfg, store = _open(config_path)
    rows = store.feed_table()
    store.close()
    now = time.time()
    p = cfg.poll
    table = [("ID", "STATUS", "LAST OK", "NEXT POLL", "CADENCE", "ERRORS", "ENTRIES", "URL / LAST ERROR")]
    for r in rows:
        shown = schedule.feed_row(r, p, now)  # the console's feed table shows the same
        if as_json:
            click.echo(json.dumps(shown, ensure_ascii=False))
            continue
        status, error = shown["status"], shown["last_error"] or ""
        note = r["url"] + (f"  ({error})" if error else "")
        table.append((str(r["id"]), status, dates.ago(r["last_ok_at"], now),
                      dates.ago(r["next_check_at"], now) if r["active"] else "-",
                      dates.span(r["cadence_s"]), str(r["error_count"]), str(r["entries"]), note))
    if not as_json:
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
        for row in table:
            click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[-1])


@feeds_cmd.command("add")
@config_option
@click.argument("url")
@click.option("--title", default="", help="Title (default: the feed's own).")
@click.option("--interval", type=click.FloatRange(min=1), default=None,
              help="Seconds between polls; pins it (no adaptive cadence).")
@click.option("--tag", "tags", multiple=True, help="A tag for rule filters; repeatable.")
@click.option("--no-check", is_flag=True, help="Add without fetching the URL first.")
def add_cmd(config_path: str, url: str, title: str, interval: float | None, tags: tuple[str, ...],
            no_check: bool) -> None:
    """Add a feed by its URL, or by a web page's URL: the page's <link rel=alternate> feed is
    found and added. The URL is fetched first, and refused if it gives no feed."""
    if not url.startswith(("http://", "https://")):
        fail(f"{url}: expected an http:// or https:// URL")
    cfg, store = _open(config_path)
    found = url
    if not no_check:
        try:
            import asyncio

            found, title = asyncio.run(_find_feed(cfg, url, title))
        except MonitorError as e:
            store.close()
            fail(f"{url}: {e} (use --no-check to add it anyway)")
    added, _ = store.add_feeds([(found, title or None, interval, tags)], time.time())
    store.close()
    click.echo(f"{'added' if added else 'already registered'}: {found}" + (f" ({title})" if title else ""))


async def _find_feed(cfg: Config, url: str, title: str) -> tuple[str, str]:
    """The feed at ``url``, or the one its HTML page points to; with its title if none given."""
    from ..finding import find_feed, limits_of

    found = await find_feed(limits_of(cfg.fetch), url, title)
    for other in found.offered:
        click.echo(f"also offered: {other}")
    if found.page is not None:
        click.echo(f"found feed {found.url} on the page {found.page}")
    return found.url, found.title


@feeds_cmd.command("remove")
@config_option
@click.argument("url")
def remove_cmd(config_path: str, url: str) -> None:
    """Stop polling a feed added by command or OPML. Its entries are kept, so adding it back
    alerts only on news. Feeds in the config file are removed by editing the file."""
    cfg, store = _open(config_path)
    outcome = store.remove_feed(url)
    store.close()
    if outcome == "config":
        fail(f"{url}: listed in {cfg.path}; remove it there (then restart or reload the daemon)")
    if outcome == "unknown":
        fail(f"{url}: no active feed with this URL (see 'monitor feeds')")
    click.echo(f"removed: {url}")


@feeds_cmd.command("poll")
@config_option
@click.argument("feed")
def poll_cmd(config_path: str, feed: str) -> None:
    """Make a feed (its id, as `monitor feeds` lists it, or its URL) due now: a running daemon
    polls it at its next tick (monitor.tick), whatever its interval or backoff."""
    _, store = _open(config_path)
    try:
        url = store.poll_now(feed, time.time())
    finally:
        store.close()
    if url is None:
        fail(f"{feed}: no active feed with this id or URL (see 'monitor feeds')")
    click.echo(f"due now: {url} (a running daemon polls it at its next tick)")


@feeds_cmd.command("import-opml")
@config_option
@click.argument("file", type=click.Path(dir_okay=False))
def import_cmd(config_path: str, file: str) -> None:
    """Add every feed of an OPML file (folders and categories become tags)."""
    try:
        refs, notes = read_opml_report(Path(file).read_bytes(), file)
    except OSError as e:
        fail(f"{file}: cannot read: {e.strerror}")
    except MonitorError as e:
        fail(str(e))
    _, store = _open(config_path)
    added, known = store.add_feeds([(r.url, r.title or None, r.interval, r.tags) for r in refs], time.time())
    store.close()
    for note in notes:
        click.echo(f"skipped: {note}")
    click.echo(f"{file}: {added} feeds added, {known} already registered, {len(notes)} skipped")


@feeds_cmd.command("export-opml")
@config_option
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True), default="-")
def export_cmd(config_path: str, file: str) -> None:
    """Write every active feed (config and added) as OPML 2.0, to FILE or standard output."""
    _, store = _open(config_path)
    rows = [r for r in store.feed_table() if r["active"]]
    store.close()
    data = write_opml([FeedRef(url=r["url"], title=r["title"] or "", tags=tuple(json.loads(r["tags"])),
                               interval=r["interval_s"]) for r in rows])
    if file == "-":
        click.echo(data.decode("utf-8"), nl=False)
    else:
        Path(file).write_bytes(data)
        click.echo(f"{file}: {len(rows)} feeds")
