"""What every poll needs, opened once (``runtime``), and the collector kept off what lasts."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from .. import links, pipeline, rules
from .. import store as store_mod
from ..config import Config
from ..fetch import Client, Limits
from ..loading import notifier_for
from ..rules.native import without_c
from ..store.aio import AsyncStore
from ..workers import Pool

# What the workers run (parse, extract, language detection, their libraries, the language model), imported once in
# the forkserver, shared by the workers it forks (issue 16); libraries named: the daemon's process never loads them.
# trafilatura only where pages are extracted ([extract] pages, as the daemon starts): it is ~0.2 s of the
# forkserver's start, which a first parse waits for, and memory no worker of a feeds-only daemon uses. A reload
# that turns pages on needs no restart: each worker then imports it at its first page (extract.page).
log = logging.getLogger("monitor.daemon")  # as the daemon's own lines

PAGE_PRELOAD = ("trafilatura", "trafilatura.metadata")
WORKER_PRELOAD = ("monitor.extract", *PAGE_PRELOAD, "monitor.parse", "feedparser", "monitor.fastparse",
                  "monitor.language")


def worker_preload(config: Config) -> tuple[str, ...]:
    """WORKER_PRELOAD, less trafilatura when ``config`` extracts no pages."""
    return WORKER_PRELOAD if config.extract.pages else tuple(m for m in WORKER_PRELOAD if m not in PAGE_PRELOAD)

# Allocations (net of frees) between two collections of the youngest generation: CPython's 700
# made a collection every ~10 polls, each scanning the objects of the ~40 polls in flight (at
# 10,000 feeds answering 304: ~3.5 us a poll in the collector; ~1 us at 10,000, issue 16, G3).
YOUNG = 10_000


def settle_heap() -> None:
    """Move what start-up built (libraries, config, rules, clients: ~80,000 objects) into the
    collector's permanent generation (``gc.freeze``), after one collection so that no garbage is
    kept. The polls' own objects are collected as before; a full collection then scans the
    ~20,000 that polling keeps instead of ~100,000 (at 10,000 feeds the unchanged pass spent
    ~5.5 us a poll in the collector, ~2.8 after; issue 16, G3). Frozen objects are still freed
    by their reference counts; only cycles among them wait for ``gc.unfreeze`` (``refreeze``).
    And the youngest generation is collected every YOUNG allocations instead of 700."""
    gc.collect()
    gc.freeze()
    gen0, *older = gc.get_threshold()
    gc.set_threshold(max(gen0, YOUNG), *older)


def refreeze() -> None:
    """After a reload: what the old config and rules held in cycles can go, then freeze again."""
    gc.unfreeze()
    settle_heap()


@asynccontextmanager
async def runtime(config: Config, ruleset: rules.RuleSet, observe: Callable[[str, float], None] | None = None,
                  link_maker: links.Links | None = None) -> AsyncIterator[pipeline.Context]:
    """Everything a poll needs, opened in order and closed in reverse (alerts carry ``link_maker``'s links)."""
    notifier = notifier_for(config)
    db = AsyncStore(store_mod.connect(config.database, busy_timeout=config.monitor.busy_timeout))
    written = pipeline.WriteBehind(db)  # unchanged polls' updates, batched; drained before the db closes
    if (link_maker := link_maker or links.of(config)) is not None:
        notifier.links = link_maker.urls
    pool = Pool(config.extract.workers, preload=worker_preload(config))
    f, p = config.fetch, config.poll
    limits = Limits(connect_timeout=f.connect_timeout, timeout=f.timeout, max_bytes=f.max_bytes,
                    concurrency=p.concurrency, per_host=p.per_host,
                    user_agent=f.user_agent or Limits.user_agent, allow_private=tuple(f.allow_private))
    threshold = gc.get_threshold()
    try:
        await db.sync_feeds(config.feed_specs, time.time())
        async with Client(limits, observe) as http:
            ctx = pipeline.Context(config, db, http, pool, notifier, ruleset, behind=written)
            if slow := without_c():
                log.warning("%s", slow)
            settle_heap()
            yield ctx
    finally:
        gc.unfreeze()  # a process that goes on (a test, a command) collects all again, as often as before
        gc.set_threshold(*threshold)
        await written.drain()
        pool.close()
        db.close()

