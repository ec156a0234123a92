"""Running the pipeline: the long-lived daemon (APScheduler ticks) and the one-shot pass.

APScheduler does not hold one job per feed: feed schedules are rows in the database
(``next_check_at``), and one ``tick`` job asks the store which feeds are due. A second job
drains the outbox. Both are rebuilt from the config at start, so a restart resumes exactly
where the database says (../shared/LIBRARY-NOTES.md: persisted job stores keep stale settings).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from .. import cluster, delivery, dispatch, leases, links, pipeline, rules, training
from .. import config as config_mod
from ..config import Config
from ..errors import ConfigError, MonitorError
from ..loading import load_rules, mask_channel_urls, notifier_for
from ..lockfile import DaemonLock
from ..notify import Notifier
from ..service import Service
from ..store import Pruned, StoreError
from ..web.console import Hooks
from ..workers import in_thread
from .context import WORKER_PRELOAD, refreeze, runtime, settle_heap  # noqa: F401 (WORKER_PRELOAD: its name here)

if TYPE_CHECKING:  # APScheduler is imported where the scheduler is made: `monitor once` needs none
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

log = logging.getLogger(__name__)
DELIVER_EVERY = 5.0  # seconds between outbox drains (retries, held alerts); a new alert starts one at once
LEARN_EVERY = 6 * 3600.0  # seconds between retrainings on the feedback (issue 17); `rules learn` for now


async def once(config: Config, ruleset: rules.RuleSet,
               progress: Callable[[int], Callable[[pipeline.Outcome], None]] | None = None,
               ) -> tuple[list[pipeline.Outcome], int, int]:
    """One pass over every active feed, due or not, then the outbox. ``progress``: given the
    number of feeds, what to call after each poll (``monitor once``'s bar on a terminal)."""
    async with runtime(config, ruleset) as ctx:
        ctx.models, ctx.behind = await training.models(ctx.db), None  # feeds not due too: no write-behind
        dispatcher = dispatch.Dispatcher(ctx, dispatch.every_feed(ctx))
        if progress is not None:
            dispatcher.on_outcome = progress(await ctx.db.active_feeds())
        outcomes = await dispatcher.run()
        sender = delivery.Sender(ctx.db, ctx.notifier, config.notify, poll_interval=config.poll.min_interval)
        try:
            await sender.recover()
            sent, failed = await sender.deliver()
        finally:
            sender.close()
        return outcomes, sent, failed


ROLES = ("worker", "scheduler", "web")  # worker: polls, delivers; scheduler: periodic jobs; web: the console


class Daemon:
    def __init__(self, config: Config, ruleset: rules.RuleSet, roles: tuple[str, ...] = ROLES):
        self.config = config
        self.ruleset = ruleset
        self.roles = roles
        self._rules_seen = rules.signature(config.rules_dir)
        self.rule_problems: str | None = None  # why the rule files last failed to load (the console shows it)
        self.loading: asyncio.Task[None] | None = None  # the reload running, one at a time
        self._queued: Callable[[], Awaitable[None]] | None = None  # the reload asked for meanwhile
        self._stop = asyncio.Event()
        self.dispatcher: dispatch.Dispatcher | None = None
        self.ctx: pipeline.Context | None = None
        self.sender: delivery.Sender | None = None
        self.lock = DaemonLock(config.node_file)
        self.links = links.of(config)  # [web] needs a restart: the key signs links already sent
        self.service = Service(config, self.lock, self.links)
        self.scheduler: AsyncIOScheduler | None = None
        self.queue: cluster.WorkQueue | None = None  # PostgreSQL: the polls go through Procrastinate
        self._kick: asyncio.Future[None] | None = None  # the drain a poll's new alerts started
        self._again = False  # more alerts came while it ran

    def stop(self, why: str = "stop requested") -> None:
        if not self._stop.is_set():
            log.info("stopping reason=%r", why)
            self.service.stopping()
            self._stop.set()

    def reload(self) -> None:
        """SIGHUP: read the config file and the rules again, in the background (the rules on a
        thread of their own). A broken file is reported and the last good config and rules keep
        running; feeds and channels added or removed take effect."""
        self._start(self._reload)

    def _start(self, job: Callable[[], Awaitable[None]]) -> None:
        """Run ``job`` unless a reload is running; then run it after that one (a full reload
        asked for meanwhile wins over a rules-only one)."""
        if self.loading is not None and not self.loading.done():
            if self._queued != self._reload:
                self._queued = job
            return
        self.loading = asyncio.get_running_loop().create_task(self._reloads(job))

    async def _reloads(self, job: Callable[[], Awaitable[None]] | None) -> None:
        while job is not None and not self._stop.is_set():
            self._queued = None
            try:
                await job()
            except Exception:
                log.exception("BUG while reloading; the last good config and rules keep running")
            job = self._queued

    async def _reload(self) -> None:
        self.service.reloading()
        ok = False
        try:
            ok = await self._reload_all()
        finally:
            self.service.reloaded(ok)

    async def _reload_all(self) -> bool:
        try:
            from .jobs import check_digests
            config = config_mod.load(self.config.path)
            check_digests(config)
        except ConfigError as e:
            log.error("config reload failed, keeping the last good config:\n%s", e)
            await self.reload_rules()  # the rules may still have changed, checked against the old config
            return False
        notifier = notifier_for(config)
        notifier.links = self.links.urls if self.links is not None else None
        ruleset = await self._load(config, notifier, " (and config)")
        if ruleset is None or self._stop.is_set():
            return False
        for key in config_mod.hold_restart_keys(self.config, config):
            log.warning("config change takes effect after a restart key=%s", key)
        self.config, self.ruleset = config, ruleset
        mask_channel_urls(config)
        self.service.configure(config)
        logging.getLogger().setLevel(config.monitor.log_level)
        if self.ctx:
            self.ctx.config, self.ctx.notifier, self.ctx.ruleset = config, notifier, ruleset
            self.ctx.db.post("sync_feeds", config.feed_specs, time.time())
        if self.sender:
            self.sender.notifier, self.sender.cfg = notifier, config.notify
        self.digest_jobs()
        refreeze()
        log.info("config reloaded feeds=%d channels=%s", len(config.feeds), ",".join(config.channels) or "none")
        return True

    async def reload_rules(self) -> None:
        """Load the rules again (the folder changed); a broken set is reported and the last good one kept."""
        ruleset = await self._load(self.config, self.ctx.notifier if self.ctx else notifier_for(self.config))
        if ruleset is not None and not self._stop.is_set():
            self.ruleset = ruleset
            if self.ctx:
                self.ctx.ruleset = ruleset
            refreeze()

    async def _load(self, config: Config, notifier: Notifier, kept: str = "") -> rules.RuleSet | None:
        """The folder's rules, loaded off the loop; None (logged) when they cannot be used."""
        self._rules_seen = rules.signature(config.rules_dir)  # a broken file is retried once it changes
        size = sum(s for _name, s, _mtime in self._rules_seen)
        log.info("rules loading dir=%s files=%d bytes=%d", config.rules_dir, len(self._rules_seen), size)
        started = time.monotonic()
        try:
            ruleset = await in_thread(load_rules, config, notifier)  # issue 15: 42 s with the loop stopped
        except rules.TooLarge as e:  # one line: the file, its size, the limit and the setting
            self.rule_problems = str(e)
            log.error("rules reload refused, keeping the last good set of %d rules%s: file=%s bytes=%d limit=%d "
                      "setting=%s", len(self.ruleset), kept, e.path, e.size, e.limit, e.setting)
            return None
        except rules.RuleError as e:
            self.rule_problems = str(e)
            log.error("rules reload failed, keeping the last good set of %d rules%s:\n%s",
                      len(self.ruleset), kept, e)
            return None
        self.rule_problems = None  # loaded: nothing for the console's rules page to show
        log.info("rules reloaded rules=%d ms=%.0f", len(ruleset), (time.monotonic() - started) * 1000)
        return ruleset

    def watch_rules(self) -> None:
        """Reload the rules when a rule file changes (checked every tick: a few stat calls)."""
        now = rules.signature(self.config.rules_dir)
        if now != self._rules_seen:
            self._rules_seen = now  # once per change, though the reload may wait for another
            log.info("rule files changed, reloading dir=%s", self.config.rules_dir)
            self._start(self.reload_rules)

    async def tick(self) -> None:
        """Hand the feeds that are due to the dispatcher, which starts them as slots free up
        (and asks the store for more whenever its queue runs low), and return: a slow feed
        never holds back the others, and the next tick is never skipped."""
        if self._stop.is_set():
            return
        self.service.ticked()  # the watchdog's heartbeat, whatever the node's roles
        self.watch_rules()
        if self.dispatcher is not None:  # a worker
            self.dispatcher.more()

    def _polled(self, outcome: pipeline.Outcome) -> None:
        """A poll ended: counted; when it queued alerts, they are sent now, not at the next drain
        (DELIVER_EVERY: a story reached its channel up to 5 s later)."""
        self.service.metrics.polled(outcome)
        if outcome.alerts:
            self._deliver_now()

    def _deliver_now(self) -> None:
        """A drain now; one at a time: alerts queued while one starts get another after it."""
        if self._kick is not None or self._stop.is_set():
            self._again = self._kick is not None
            return
        self._kick = asyncio.ensure_future(self.drain())
        self._kick.add_done_callback(self._kicked)

    def _kicked(self, task: asyncio.Future[None]) -> None:
        self._kick = None
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery pass failed to start error=%r", task.exception())
        if self._again:
            self._again = False
            self._deliver_now()

    async def drain(self) -> None:
        """Start a delivery pass for each channel with alerts to send and none running, without
        waiting for them (delivery.py): a slow or failing channel holds back only itself."""
        if self._stop.is_set() or self.ctx is None or self.sender is None:
            return
        await self.sender.start()

    def digest_jobs(self) -> None:
        """One cron job per channel with a ``digest`` schedule, in the channel's time zone
        (rebuilt on reload). The job bundles the channel's held alerts (noise.py)."""
        if self.scheduler is None or "scheduler" not in self.roles:
            return
        for job in self.scheduler.get_jobs():
            if job.id.startswith("digest:"):
                job.remove()
        from .jobs import digest_trigger
        for name, ch in self.config.channels.items():
            if ch.digest:
                trigger = digest_trigger(ch.digest, ch.timezone)
                self.scheduler.add_job(self.digest, trigger, args=[name], id=f"digest:{name}", max_instances=1,
                                       coalesce=True, misfire_grace_time=3600)

    async def digest(self, channel: str) -> None:
        if self.sender is not None and not self._stop.is_set():
            try:
                await self.sender.digest(channel)
            except StoreError as e:
                log.warning("digest not built channel=%s reason=%r: its alerts stay held for the next one",
                            channel, str(e))
            if "worker" in self.roles:  # else a worker node sends it
                await self.sender.start()

    async def prune(self) -> None:
        """Retention (store/retention.py): one batch of deletes per transaction, and the event
        loop runs polls and sends between batches. A stop ends it after the current batch."""
        days, every = self.config.retention.days, self.config.retention.every
        if self._stop.is_set() or self.ctx is None or not days or not await self._turn("prune", every):
            return
        started = time.monotonic()
        n = Pruned()
        steps = await self.ctx.db.steps(time.time(), days * 86400)  # a generator: each batch on the db thread
        try:
            while not self._stop.is_set():
                step = await self.ctx.db.call_next(steps)
                if step is None:
                    break
                n = step
        except StoreError as e:
            log.warning("retention pass stopped reason=%r: the next pass goes on", str(e))
        if self.queue is not None:
            await self.queue.step("job retention", lambda: self.queue.prune(days))  # type: ignore[union-attr]
        log.info("pruned entries=%d articles=%d alerts=%d notices=%d tombstones=%d ms=%.0f", n.entries,
                 n.articles, n.alerts, n.notices, n.tombstones, (time.monotonic() - started) * 1000)

    async def learn(self) -> None:
        """Rules that learn (issue 17): retrain each rule on its feedback, off the loop."""
        if not self._stop.is_set() and self.ctx is not None:
            if await self._turn("learn", LEARN_EVERY):
                await training.relearn(self.ctx.db, [r.id for r in self.ruleset.rules])
            await self._models()  # the models another daemon trained, when it took the turn

    async def _turn(self, job: str, every: float) -> bool:
        """Periodic work runs once per period among all the daemons on the database (issue 19)."""
        try:
            return bool(await self.ctx.db.periodic_turn(job, time.time(), every, leases.OWNER))  # type: ignore[union-attr]
        except StoreError as e:
            log.warning("%s skipped reason=%r: the next period tries again", job, str(e))
            return False

    async def _models(self) -> None:
        """The trained models the pipeline recalibrates matches with (at start, after each pass)."""
        if self.ctx is not None:
            try:
                self.ctx.models = await training.models(self.ctx.db)
            except MonitorError as e:
                log.warning("models not loaded reason=%r: matches keep the models they had", str(e))

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig, why in ((signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT")):
            loop.add_signal_handler(sig, self.stop, why)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        # One daemon per database: a second one stops here, naming the first (lockfile.py).
        self.lock.acquire(pid=os.getpid(), started_at=time.time())
        try:
            await self._run(loop)
        finally:
            self.lock.release(pid=os.getpid(), stopped_at=time.time())
        log.info("stopped")

    async def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        async with runtime(self.config, self.ruleset, self.service.metrics.fetched, self.links) as ctx:
            self.ctx = ctx
            self.sender = delivery.Sender(ctx.db, ctx.notifier, ctx.config.notify,
                                          poll_interval=ctx.config.poll.min_interval)
            await self.sender.recover()  # the leases of this host's dead senders, at once
            if getattr(ctx.db, "dialect", "sqlite") == "postgresql":
                self.queue = cluster.WorkQueue(
                    str(self.config.database), ctx.db, concurrency=self.config.poll.concurrency,
                    lease=dispatch.poll_lease(ctx), poll_interval=self.config.poll.min_interval,
                    default_interval=self.config.poll.interval)
                await self.queue.open()
            if "worker" in self.roles:
                # on PostgreSQL the feeds come as poll jobs (cluster.py), not from the dispatcher's own claims
                source = dispatch.from_list([]) if self.queue is not None else dispatch.due_feeds(ctx)
                self.dispatcher = dispatch.Dispatcher(ctx, source)
                self.dispatcher.on_outcome = self._polled
                if self.queue is not None:
                    self.queue.dispatcher = self.dispatcher
                    self.queue.start_worker()
            from .jobs import scheduler_for, stop_scheduler  # APScheduler: only a running daemon loads it
            scheduler, executor = scheduler_for(loop)
            now = datetime.now().astimezone()
            common = {"max_instances": 1, "coalesce": True}
            # misfire_grace_time defaults to 1 s and silently skips runs (../shared/LIBRARY-NOTES.md).
            scheduler.add_job(self.tick, "interval", seconds=self.config.monitor.tick, id="tick",
                              next_run_time=now, misfire_grace_time=max(1, int(self.config.monitor.tick)),
                              **common)
            if "worker" in self.roles:
                scheduler.add_job(self.drain, "interval", seconds=DELIVER_EVERY, id="deliver",
                                  next_run_time=now + timedelta(seconds=1), misfire_grace_time=30, **common)
            queue_loop = None
            if "scheduler" in self.roles and self.queue is not None:
                queue_loop = asyncio.create_task(self.queue.schedule(self._stop))
            if "scheduler" in self.roles:
                scheduler.add_job(self.prune, "interval", seconds=self.config.retention.every, id="prune",
                                  next_run_time=now + timedelta(seconds=60), misfire_grace_time=300, **common)
                scheduler.add_job(self.learn, "interval", seconds=LEARN_EVERY, id="learn",
                                  next_run_time=now + timedelta(seconds=120), misfire_grace_time=3600, **common)
            self.scheduler = scheduler
            self.digest_jobs()
            scheduler.start()
            try:
                hooks = Hooks(lambda: self.ruleset, lambda: self.rule_problems, lambda: self._start(self.reload_rules),
                              lambda: ctx.notifier)
                await self.service.start(ctx.db, hooks if "web" in self.roles else None)  # no console without web
                await self._models()
                settle_heap()  # what the scheduler, sender and console built too
                log.info("started feeds=%d rules=%d channels=%s database=%s roles=%s", await ctx.db.active_feeds(),
                         len(self.ruleset), ",".join(self.config.channels) or "none", self.config.database,
                         ",".join(self.roles))
                beat = asyncio.create_task(self.service.beat())
                await self._stop.wait()
                beat.cancel()
            finally:
                await stop_scheduler(scheduler, executor, self.config.monitor.stop_grace)
                if queue_loop is not None:
                    await asyncio.wait([queue_loop], timeout=self.config.monitor.stop_grace)
                if self.loading is not None:
                    self.loading.cancel()  # its thread finishes alone; nobody will use the rules
                if self.dispatcher is not None:
                    self.dispatcher.stop()
                await self._finish()
                if self.queue is not None:
                    await self.queue.close()  # its jobs end with the polls just finished
                self.sender.close()
                await self.service.close()

    async def _finish(self) -> None:
        """Give in-flight polls and sends ``monitor.stop_grace`` seconds, then cancel them.
        Every database write is one transaction, so a cancelled poll leaves nothing half-done."""
        if self._kick is not None:  # a drain a poll started may still be starting its passes
            await asyncio.wait([self._kick], timeout=self.config.monitor.stop_grace)
        busy: list[asyncio.Task[Any]] = list(self.dispatcher.tasks.values()) if self.dispatcher else []
        busy += list(self.sender.tasks.values()) if self.sender else []
        if not busy:
            return
        grace = self.config.monitor.stop_grace
        done, pending = await asyncio.wait(busy, timeout=grace)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("abandoned in-flight work tasks=%d after %gs", len(pending), grace)
            await asyncio.wait(pending, timeout=5)
