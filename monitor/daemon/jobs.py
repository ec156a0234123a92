"""The daemon's APScheduler (issue 19 split it from the daemon's module): its executor, the way a stop
ends its jobs, what a job's failure or miss logs, and the channels' digest crons, parsed here
by the parser that runs them (``monitor check`` needs no more than this of the daemon)."""

from __future__ import annotations

import asyncio
import logging
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from ..config import Config
from ..errors import ConfigError

log = logging.getLogger("monitor.daemon")  # the daemon's own lines, as before the split


def digest_trigger(cron: str, timezone: str) -> CronTrigger:
    """A channel's ``digest`` schedule in its time zone. ValueError when the cron is bad."""
    return CronTrigger.from_crontab(cron, timezone=ZoneInfo(timezone))


def check_digests(config: Config) -> None:
    """Every channel's digest cron parsed by APScheduler's own parser, which will run it; a bad
    one is a ConfigError naming the channel (``monitor check``, start and reload)."""
    for name, ch in config.channels.items():
        try:
            if ch.digest:
                digest_trigger(ch.digest, ch.timezone)
        except ValueError as e:
            raise ConfigError(f"{config.path}: channels.{name}.digest: {e} (got {ch.digest!r})") from None


class Executor(AsyncIOExecutor):
    """APScheduler's asyncio executor, whose running jobs a stop lets finish (``settle``): its own
    ``shutdown`` cancels them, and a job cancelled mid-run is logged as a failure with a traceback
    (the scale bench saw it on every other SIGTERM: the enqueue, a delivery pass, a tick)."""

    async def settle(self, timeout: float) -> None:
        running = [f for f in getattr(self, "_pending_futures", ()) if not f.done()]
        if running:
            await asyncio.wait(running, timeout=timeout)


async def stop_scheduler(scheduler: AsyncIOScheduler, executor: Executor, grace: float) -> None:
    """Start no job more, give the running ones ``grace`` seconds (a stop ends prune between
    batches, the others take a moment), then shut the scheduler down."""
    scheduler.pause()
    await executor.settle(grace)
    scheduler.shutdown(wait=False)


def scheduler_for(loop: asyncio.AbstractEventLoop) -> tuple[AsyncIOScheduler, Executor]:
    """The daemon's scheduler on ``loop`` (in UTC; a digest's cron keeps its channel's zone), with
    the executor that runs its jobs, and failed, missed and overlapping runs logged (``job_event``)."""
    executor = Executor()
    scheduler = AsyncIOScheduler(event_loop=loop, timezone="UTC", executors={"default": executor})
    scheduler.add_listener(job_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
    return scheduler, executor


def job_event(event: JobExecutionEvent) -> None:
    if event.code == EVENT_JOB_ERROR:
        log.error("job failed job=%s error=%r", event.job_id, event.exception, exc_info=event.exception)
    elif event.code == EVENT_JOB_MISSED:
        log.warning("job missed job=%s scheduled=%s", event.job_id, event.scheduled_run_time)
    else:
        # Expected when an outbox drain outlasts its 5 s interval (apprise paces email at
        # 5.5 s a message): the running drain carries on with the backlog; not worth a warning.
        log.debug("job still running, run skipped job=%s", event.job_id)
