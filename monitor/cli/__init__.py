"""The ``monitor`` command. Bad input (config, rules, arguments) prints one line per problem
naming the file and the line or key, and exits 2; it never shows a traceback.

Commands start at once (issue 16): the command modules import click and light modules only;
each command imports what it uses in its body. tests/test_cli_startup.py holds that."""

from __future__ import annotations

import gc
import importlib
import os
import stat
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, NoReturn, TypeVar

import click

from .. import __version__
from ..errors import ConfigError, MonitorError, RuleError

if TYPE_CHECKING:
    from .. import rules
    from ..config import Config

DEFAULT_CONFIG = "config.toml"
T = TypeVar("T")
config_option = click.option(
    "--config", "config_path", default=DEFAULT_CONFIG, show_default=True,
    envvar="MONITOR_CONFIG", type=click.Path(dir_okay=False), help="TOML config file.",
)


def fail(message: str) -> NoReturn:
    for line in str(message).splitlines() or [""]:
        click.echo(f"error: {line}", err=True)
    sys.exit(2)


def setup_logging(level: str = "INFO", fmt: str = "text", channel_urls: Iterable[str] = (),
                  marked: Iterable[str] = ()) -> None:
    """stderr, key=value lines or JSON (``fmt``); the parts of ``channel_urls`` that may be
    credentials, and the ``marked`` values (what the config took from ${NAME}), are masked in
    every line (logs.py)."""
    import logging

    from . import logs

    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(logs.handler(sys.stderr, fmt, logs.secrets_of(channel_urls, marked)))
    root.setLevel(getattr(logging, level, logging.INFO))
    # apprise logs every failed attempt itself; our own line says it once, with the outcome,
    # and carries apprise's words (notify.py captures them from this logger).
    apprise_log = logging.getLogger("apprise")
    apprise_log.setLevel(logging.WARNING)
    apprise_log.propagate = False
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("trafilatura").setLevel(logging.ERROR)


# here, not in doctor.py: `check` and `run` call it, and doctor's imports cost `check` ~5 ms (issue 16)
def exposure(path: str | os.PathLike[str], inline: Sequence[str]) -> str | None:
    """Why the config file at ``path`` should change, or None: it holds a secret written out
    (``inline``: Config.inline_secrets) and group or others can read it. Pure but for one stat().

    The fix it names is the README's recipe, ${NAME} from the unit's EnvironmentFile= or a
    LoadCredential= file: it works whoever runs the daemon. "chmod 600" would not: under the
    unit's DynamicUser= the service's user is not the file's owner and could no longer read it."""
    if not inline:
        return None
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None
    who = " and ".join(w for w, bits in (("group", 0o040), ("others", 0o004)) if mode & bits)
    if not who:
        return None
    return (f"{path} holds a secret inline ({'; '.join(inline)}) and is readable by {who} "
            f"(mode {mode:04o}): write ${{NAME}} in its place and put NAME=... in the service's "
            f"EnvironmentFile (/etc/rss-monitor/env, mode 0600) or a LoadCredential= file "
            f"(README: Running under systemd)")


def load_config(config_path: str) -> Config:
    """The config, validated; exit 2 naming every problem (a missing file: how to start)."""
    from .. import config as config_mod

    try:
        return config_mod.load(config_path)
    except ConfigError as e:
        fail(str(e))


def load_all(config_path: str) -> tuple[Config, rules.RuleSet]:
    """Config + rules + channels, validated; exit 2 naming every problem found."""
    from .. import config as config_mod
    from ..loading import load_rules, notifier_for

    try:
        cfg = config_mod.load(config_path)
        if any(ch.digest for ch in cfg.channels.values()):  # APScheduler parses them: loaded only then
            from ..daemon.jobs import check_digests

            check_digests(cfg)
        return cfg, load_rules(cfg, notifier_for(cfg))
    except (ConfigError, RuleError) as e:
        fail(str(e))


# command -> (its module in this package, the first sentence of its help): ``monitor --help`` lists
# them without importing the modules (each costs 5-25 ms of imports); a command's module is
# imported when the command runs. tests/test_cli_startup.py checks the sentences against the help.
LAZY = {
    "alerts": ("alerts", "List alerts, newest first, with their delivery state, attempts, next attempt and last "
               "error."),
    "feedback": ("alerts", "Mark an alert (its ID from 'monitor alerts') relevant or not."),
    "notify-test": ("alerts", "Send a test alert through a configured channel and print exactly what the service "
                    "answered (HTTP status and body, or the mail server's reply); exit 1 if it failed."),
    "doctor": ("doctor", "Check config, channels, rules, database, state directory, failing feeds and "
               "deliveries; exit 1 if any check fails."),
    "feeds": ("feeds", "Show every feed's health (ok, new, failing, silent, gone), last error, last success, next "
              "poll and learned cadence."),
    "parse": ("inspect", "Parse feeds from files or URLs and print their entries."),
    "extract": ("inspect", "Extract the main text of HTML pages (files or URLs) in the daemon's worker pool (one "
                "page: in this process, with the same time limit)."),
    "match": ("inspect", "Match JSON lines against rules; one line out per line in."),
    "rules": ("rule_tools", "Rule files: check them, print their JSON Schema, backtest a rule on stored articles."),
    "status": ("status", "Show whether the daemon ticks, feeds by health and the outbox by state."),
    "store": ("store_tools", "Move the database: copy a single node's SQLite store into PostgreSQL (or back), "
              "verified."),
    "users": ("users", "Who may sign in to the web console: add, remove, passwd, role, list."),
    "web": ("web", "Serve the team's console alone (no polling, no sending), for a node that only serves "
            "people; a daemon on the same database does the work."),
}


class LazyGroup(click.Group):
    """A group whose commands in ``LAZY`` are imported when they run, not to list them."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *LAZY})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in LAZY:
            importlib.import_module(f"{__name__}.{LAZY[cmd_name][0]}")  # its decorators register it here
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        stand_in = {name: click.Command(name, help=first) for name, (_, first) in LAZY.items()}
        commands = [(name, self.commands.get(name) or stand_in[name]) for name in self.list_commands(ctx)]
        commands = [(name, cmd) for name, cmd in commands if not cmd.hidden]
        if commands:  # as click.Group.format_commands does
            limit = formatter.width - 6 - max(len(name) for name, _ in commands)
            with formatter.section("Commands"):
                formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in commands])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="monitor")
def cli() -> None:
    """News monitoring: poll feeds, extract articles, match topic rules, send alerts."""


def logging_for(cfg: Config, json_lines: bool = False) -> None:
    setup_logging(cfg.monitor.log_level, "json" if json_lines else cfg.monitor.log_format,
                  [u for ch in cfg.channels.values() for u in ch.urls], cfg.marked_secrets)


@cli.command()
@config_option
@click.option("--log-json", is_flag=True, help="Log one JSON object a line (overrides monitor.log_format).")
@click.option("--role", "roles", multiple=True, type=click.Choice(["worker", "scheduler", "web"]),
              help="What this node does (repeat for several; default all): worker polls, extracts, matches and "
                   "delivers; scheduler runs the periodic jobs (digests, retention, relearning); web serves the "
                   "console. A cluster's nodes share the work of each role (README \"Running a cluster\").")
def run(config_path: str, log_json: bool, roles: tuple[str, ...]) -> None:
    """Run the daemon until SIGTERM or Ctrl-C; SIGHUP reloads the config and the rules."""
    import asyncio
    import logging

    from ..daemon import Daemon

    cfg, ruleset = load_all(config_path)
    logging_for(cfg, log_json)
    if why := exposure(config_path, cfg.inline_secrets):
        logging.getLogger("monitor").warning("config file holds a secret others can read: %s", why)
    chosen = tuple(r for r in ("worker", "scheduler", "web") if r in roles) or ("worker", "scheduler", "web")
    _guard(lambda: asyncio.run(Daemon(cfg, ruleset, chosen).run()))


@cli.command()
@config_option
@click.option("--log-json", is_flag=True, help="Log one JSON object a line (overrides monitor.log_format).")
def once(config_path: str, log_json: bool) -> None:
    """Poll every feed once, deliver pending alerts, exit."""
    import asyncio

    from ..daemon import once as run_once
    from .progress import Progress

    cfg, ruleset = load_all(config_path)
    logging_for(cfg, log_json)
    with Progress("polled", " feeds") as bar:  # on a terminal only: a log line per feed says the rest
        outcomes, sent, failed = _guard(lambda: asyncio.run(run_once(cfg, ruleset, lambda n: bar.start(n).step)))
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    fields = [f"feeds={len(outcomes)}", *(f"{k}={v}" for k, v in sorted(counts.items())),
              f"new={sum(o.new for o in outcomes)}", f"alerts={sum(o.alerts for o in outcomes)}",
              f"sent={sent}", f"failed={failed}"]
    click.echo(" ".join(fields))


@cli.command()
@config_option
@click.option("--dry-run", is_flag=True, help="Count what would be pruned; delete nothing.")
def prune(config_path: str, dry_run: bool) -> None:
    """Prune delivered alerts, articles and old entries past retention.days, now."""
    import time

    from .. import config as config_mod
    from ..store import Pruned, connect

    cfg = _guard(lambda: config_mod.load(config_path))
    if not cfg.retention.days:
        click.echo("retention.days = 0: nothing is pruned")
        return
    started = time.monotonic()

    def run_prune() -> Pruned:
        store = connect(cfg.database)
        try:
            return store.prune(time.time(), cfg.retention.days * 86400, dry_run=dry_run)
        finally:
            store.close()

    n = _guard(run_prune)
    ms = (time.monotonic() - started) * 1000
    click.echo(("would prune" if dry_run else "pruned") + f" entries={n.entries} articles={n.articles} "
               f"alerts={n.alerts} notices={n.notices} tombstones={n.tombstones} ms={ms:.0f}")


@cli.command()
@config_option
def check(config_path: str) -> None:
    """Validate the config and every rule file; exit 2 if anything is wrong."""
    # A one-off pass: the collector's runs while pydantic, apprise and the rules are imported and
    # compiled find next to nothing to free and cost ~15 ms (issue 16: check under 0.3 s). What was
    # built is then frozen (as main() does at exit), else the first collection after re-enabling
    # would scan all of it at once.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        cfg, ruleset = load_all(config_path)
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()
    if why := exposure(config_path, cfg.inline_secrets):
        click.echo(f"warning: {why}", err=True)
    from ..rules import warnings  # loaded with the rules already

    for w in warnings(ruleset):  # valid, but likely not what was meant (as `monitor rules check`)
        click.echo(f"warning: {w}", err=True)
    from ..rules.native import without_c

    if slow := without_c():
        click.echo(f"warning: {slow}", err=True)
    click.echo(f"ok: {config_path}: {len(cfg.feeds)} feeds, {len(cfg.channels)} channels; "
               f"{cfg.rules_dir}: {len(ruleset)} rules")


def _guard(fn: Callable[[], T]) -> T:
    """Run the daemon body; expected errors become one line and exit 2."""
    try:
        return fn()
    except MonitorError as e:
        fail(str(e))
    except KeyboardInterrupt:
        sys.exit(130)


def main() -> None:
    # pydantic looks for plugins of its own (an entry point group) in every installed package's
    # metadata when the config's first model is built: ~10 ms of every command's start (issue 16:
    # check under 0.3 s) for plugins that would only watch the config's validation. Set the
    # variable (even to "") to have them looked for again.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    try:
        cli(prog_name="monitor")
    finally:
        # The command is done and the process ends. The collector's passes over every object
        # at interpreter shutdown cost a one-off command 30-50 ms (issue 16: check under 0.3 s);
        # frozen objects are skipped. Exit handlers, flushing and refcount finalisation still run.
        gc.freeze()


if __name__ == "__main__":
    main()
