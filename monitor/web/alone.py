"""``monitor web``: the console served alone against the config's database, for a node that
only serves people (no polling, no sending). The daemon elsewhere sees what the console changes
through the database (a feed due now, a paused one, a verdict) and the rule files it saves (it
watches the folder every tick); this process reloads its own view of the rules when a file changes."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import TYPE_CHECKING

from .. import rules
from ..errors import MonitorError
from ..loading import load_rules, notifier_for
from . import LOOPBACK, Feedback, serve
from .console import Hooks, build

if TYPE_CHECKING:
    from ..config import Config

log = logging.getLogger(__name__)


class Rules:
    """The rules as the files now say, reloaded when a file changed (looked at most every 2 s)."""

    def __init__(self, config: Config, ruleset: rules.RuleSet):
        self.config, self.ruleset = config, ruleset
        self.problems: str | None = None
        self.seen = rules.signature(config.rules_dir)
        self.looked = time.monotonic()
        self.notifier = notifier_for(config)

    def current(self) -> rules.RuleSet:
        if time.monotonic() - self.looked > 2:
            self.looked = time.monotonic()
            if rules.signature(self.config.rules_dir) != self.seen:
                self.reload()
        return self.ruleset

    def reload(self) -> None:
        self.seen = rules.signature(self.config.rules_dir)
        try:
            self.ruleset, self.problems = load_rules(self.config, self.notifier), None
            log.info("rules reloaded rules=%d", len(self.ruleset))
        except rules.RuleError as e:
            self.problems = str(e)
            log.error("rules reload failed, keeping the last good set of %d rules:\n%s", len(self.ruleset), e)


async def alone(config: Config, ruleset: rules.RuleSet, host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT. MonitorError when it cannot (the port, the database, an
    open console off loopback)."""
    from .. import links
    from ..feedback import Desk

    state = Rules(config, ruleset)
    console = await asyncio.to_thread(build, lambda: config, *Hooks(state.current, lambda: state.problems,
                                                                     state.reload, lambda: state.notifier))
    try:
        await console.exposed(host, host in LOOPBACK)
        link_maker = links.of(config)
        desk = Desk(console.env.db, link_maker) if link_maker is not None else None
        try:
            runner = await serve(host, port, None, None, Feedback(desk.look, desk.record) if desk else None, console)
        except OSError as e:
            raise MonitorError(f"web: cannot listen on {host}:{port}: {e.strerror or e}") from None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            log.info("console stopping")
            await runner.cleanup()
    finally:
        await console.close()
