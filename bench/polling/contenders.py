"""The polling benchmark's contenders, each run in its own process by ``run.py``.

    contenders.py daemon --workdir DIR --urls FILE     our pipeline: runtime() + dispatch.poll_all()
    contenders.py floor  --workdir DIR --urls FILE     aiohttp GETs + feedparser, nothing else
    contenders.py register --workdir DIR --urls FILE   add the feeds to a fresh daemon database
    contenders.py once --workdir DIR --urls FILE       daemon.once() per pass (memory at scale)

Each prints ``{"ready": ...}`` and then answers each ``pass NAME`` line read on stdin with one
JSON line (wall seconds, CPU seconds, outcome counts, and the entries it recorded: for the
daemon the rows of its database's ``entries`` table, read with sqlite3 beside the daemon, for
the floor the entries feedparser returned); ``quit`` answers with the process's peak RSS and
exits. CPU is ``time.process_time()`` of this process, plus for the daemon the CPU its worker
processes report (``ctx.pool.cpu_time()``), where parsing runs. The daemon's package is
byte-compiled before it starts, as an installed package is (``installed``).

The daemon's config allows exactly the farm's ``host:port`` pairs through the SSRF guard
(``[fetch] allow_private``); without them every poll fails before a request is sent.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import json
import logging
import resource
import shutil
import sqlite3
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent.parent
# The daemon's defaults, used by the floor too ("the same client settings").
from monitor.config import PollSection  # noqa: E402

CONCURRENCY, PER_HOST = PollSection().concurrency, PollSection().per_host
FEED_ACCEPT = (  # the daemon's (monitor.fetch.FEED_ACCEPT)
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)


def reply(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def peak_rss_mb() -> float:
    """This process's peak RSS in MiB: VmHWM, the high-water mark of its own memory since it
    started (ru_maxrss would carry over the parent's RSS at fork across exec), else ru_maxrss."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return ru_maxrss_mb()


def ru_maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class Counter(logging.Handler):
    """Counts the daemon's log records by level and keeps the first few warnings and errors."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: collections.Counter[str] = collections.Counter()
        self.samples: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[record.levelname] += 1
        if len(self.samples) < 5:
            self.samples.append(f"{record.levelname} {record.name}: {record.getMessage()[:300]}")

    def take(self) -> dict:
        out = {"log": dict(self.counts), "log_samples": self.samples}
        self.counts, self.samples = collections.Counter(), []
        return out


async def commands():
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line or line.strip() == "quit":
            return
        yield line.split()


# -- the daemon ------------------------------------------------------------------------------
BENCH_RULE = """\
# Matches a few percent of the farm's stories, so the benchmark exercises matching and alerts.
id: bench-ports
title: Ports and grain (benchmark)
fields: [title, summary, body]
any:
  - grain shipments
  - port expansion
"""


def farm_endpoints(urls: list[str]) -> list[str]:
    """The farm's ``host:port`` pairs, exactly: what the SSRF guard must let through."""
    return sorted({urlsplit(u).netloc for u in urls})


# --no-allow-farm (run.py --sabotage): the config without the farm in allow_private, the bug of
# issue 16; every daemon poll is then refused by the SSRF guard and the bench must say FAIL.
ALLOW_FARM = True


def write_config(workdir: Path, urls: list[str]) -> Path:
    """The daemon's config for a run: polling only (no article pages), the project's own
    rules plus one that matches some of the farm's stories, alerts to the log, and the farm's
    loopback endpoints (and nothing else private) allowed through the SSRF guard."""
    rules = workdir / "rules"
    rules.mkdir(parents=True, exist_ok=True)
    for rule in (ROOT / "rules").glob("*.yaml"):
        shutil.copy(rule, rules / rule.name)
    (rules / "bench-ports.yaml").write_text(BENCH_RULE)
    path = workdir / "config.toml"
    path.write_text(
        "[monitor]\n"
        f'database = "{workdir / "bench.db"}"\n'
        f'rules = "{workdir / "rules"}"\n'
        "[poll]\n"
        f"concurrency = {CONCURRENCY}\n"
        f"per_host = {PER_HOST}\n"
        "[fetch]\n"
        f"allow_private = {json.dumps(farm_endpoints(urls) if ALLOW_FARM else [])}\n"
        "[extract]\n"
        "pages = false\n"
        "[http]\n"  # on, as by default (the console too), at a port of its own
        "port = 0\n"
        "[notify]\n"
        'default_channels = ["console"]\n'
        "[channels.console]\n"
        'urls = ["log://"]\n'
    )
    return path


def _load(workdir: Path, urls: list[str], log: Counter):
    """The config and the rules, and the log set up as ``monitor run`` sets it up (the default
    level, INFO, to stderr: the contender's stderr.log), ``log`` counting its warnings."""
    from monitor import config as configmod
    from monitor import daemon
    from monitor.cli import logging_for

    cfg = configmod.load(write_config(workdir, urls))
    logging_for(cfg)
    logging.getLogger().addHandler(log)
    return cfg, daemon.load_rules(cfg, daemon.notifier_for(cfg))


def stored_entries(workdir: Path) -> int:
    """Rows in the daemon's ``entries`` table, read by a connection of our own (not the
    daemon's code): what it recorded, whatever its outcomes say."""
    con = sqlite3.connect(f"file:{workdir / 'bench.db'}?mode=ro", uri=True)
    try:
        return con.execute("SELECT count(*) FROM entries").fetchone()[0]
    finally:
        con.close()


async def _register(ctx, urls: list[str]) -> None:
    await ctx.db.add_feeds([(url, f"Farm feed {i}", None, ()) for i, url in enumerate(urls)], time.time())


def _statuses(outcomes) -> tuple[dict, list[str]]:
    counts = collections.Counter(o.status for o in outcomes)
    errors = [f"{o.feed}: {o.error}" for o in outcomes if o.status == "error"][:5]
    return dict(counts), errors


async def run_daemon(workdir: Path, urls: list[str], log: Counter) -> None:
    from monitor import daemon
    from monitor.dispatch import poll_all

    cfg, ruleset = _load(workdir, urls, log)
    async with daemon.runtime(cfg, ruleset) as ctx:
        await _register(ctx, urls)
        reply({"ready": True, "feeds": len(await ctx.db.feeds(default_interval=cfg.poll.interval)),
               "workers": ctx.pool.size, "concurrency": cfg.poll.concurrency, "per_host": cfg.poll.per_host,
               "allow_private": cfg.fetch.allow_private})
        async for cmd in commands():
            c0, w0, t0 = time.process_time(), ctx.pool.cpu_time(), time.perf_counter()
            feeds = await ctx.db.feeds(default_interval=cfg.poll.interval)
            outcomes = await poll_all(ctx, feeds)
            wall = time.perf_counter() - t0
            own, workers = time.process_time() - c0, ctx.pool.cpu_time() - w0
            counts, errors = _statuses(outcomes)
            reply({"pass": cmd[-1], "polls": len(outcomes), "wall": wall, "cpu": own + workers,
                   "cpu_main": own, "cpu_workers": workers, "status": counts, "errors": errors,
                   "new": sum(o.new for o in outcomes), "entries": stored_entries(workdir),
                   "restarts": ctx.pool.restarts, **log.take()})
    reply({"peak_rss_mb": peak_rss_mb(), "ru_maxrss_mb": ru_maxrss_mb()})


def register(workdir: Path, urls: list[str], log: Counter) -> None:
    from monitor import daemon

    async def go() -> int:
        cfg, ruleset = _load(workdir, urls, log)
        async with daemon.runtime(cfg, ruleset) as ctx:
            await _register(ctx, urls)
            return len(await ctx.db.feeds(default_interval=cfg.poll.interval))

    reply({"registered": asyncio.run(go())})


def once(workdir: Path, urls: list[str], log: Counter) -> None:
    """``daemon.once`` for each ``pass NAME`` line, in this one process (feeds registered
    beforehand by ``register`` in another), so that its memory and its children's are those of
    the daemon's polling at scale."""
    from monitor import daemon

    cfg, ruleset = _load(workdir, urls, log)
    reply({"ready": True, "feeds": len(urls), "allow_private": cfg.fetch.allow_private})

    async def go() -> None:
        async for cmd in commands():
            c0, t0 = time.process_time(), time.perf_counter()
            # Each once() opens its own worker pool; its workers' CPU is not reported after it
            # closes, so only this process's CPU is counted here (see README).
            outcomes, sent, failed = await daemon.once(cfg, ruleset)
            counts, errors = _statuses(outcomes)
            reply({"pass": cmd[-1], "polls": len(outcomes), "wall": time.perf_counter() - t0, "cpu": None,
                   "cpu_main": time.process_time() - c0, "status": counts, "errors": errors,
                   "new": sum(o.new for o in outcomes), "entries": stored_entries(workdir),
                   "sent": sent, "failed": failed, "peak_rss_mb_so_far": peak_rss_mb(), **log.take()})

    asyncio.run(go())
    reply({"peak_rss_mb": peak_rss_mb(), "ru_maxrss_mb": ru_maxrss_mb()})


# -- the floor -------------------------------------------------------------------------------
async def run_floor(urls: list[str]) -> None:
    import aiohttp
    import feedparser

    state: dict[str, tuple[str | None, str | None, bytes]] = {}  # url -> etag, last-modified, sha256
    slots = asyncio.Semaphore(CONCURRENCY)

    parsed_entries = 0

    async def poll(session: aiohttp.ClientSession, url: str, parse: bool) -> str:
        nonlocal parsed_entries
        async with slots:
            known = state.get(url)
            headers = {"Accept": FEED_ACCEPT}
            if known and known[0]:
                headers["If-None-Match"] = known[0]
            if known and known[1]:
                headers["If-Modified-Since"] = known[1]
            try:
                async with session.get(url, headers=headers) as resp:
                    if resp.status == 304:
                        return "not-modified"
                    if resp.status >= 400:
                        return "error"
                    body = await resp.read()
                    ctype = resp.headers.get("Content-Type", "")
                    validators = resp.headers.get("ETag"), resp.headers.get("Last-Modified")
            except (aiohttp.ClientError, TimeoutError):
                return "error"
            digest = hashlib.sha256(body).digest()
            if known and known[2] == digest:
                return "not-modified"
            state[url] = (*validators, digest)
            if not parse:
                return "primed"
            # The call monitor.parse makes when no fast path answers: no sanitiser, no URI
            # rewriting (feed HTML only becomes text), the response's type and final URL.
            parsed = feedparser.parse(body, response_headers={"content-type": ctype, "content-location": url},
                                      sanitize_html=False, resolve_relative_uris=False)
            if not parsed.entries and not parsed.get("version"):
                return "error"
            parsed_entries += len(parsed.entries)
            return "ok" if known else "baseline"

    connector = aiohttp.TCPConnector(limit=CONCURRENCY, limit_per_host=PER_HOST, ttl_dns_cache=300)
    timeout = aiohttp.ClientTimeout(total=30, sock_connect=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=True,
                                     headers={"User-Agent": "bench-floor/1"}) as session:
        reply({"ready": True, "feeds": len(urls)})
        async for cmd in commands():
            # "pass NAME" parses what changed; "prime NAME" only fetches and remembers validators.
            parse = cmd[0] != "prime"
            parsed_entries = 0
            c0, t0 = time.process_time(), time.perf_counter()
            statuses = await asyncio.gather(*(poll(session, u, parse) for u in urls))
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            reply({"pass": cmd[-1], "polls": len(statuses), "wall": wall, "cpu": cpu,
                   "status": dict(collections.Counter(statuses)), "parsed_entries": parsed_entries})
    reply({"peak_rss_mb": peak_rss_mb(), "ru_maxrss_mb": ru_maxrss_mb()})


def installed() -> None:
    """The daemon's package byte-compiled, as it runs once installed: pip compiles the packages
    it installs (rss2email, the floor's aiohttp and feedparser), and an editable install is
    compiled at its first import, but this machine sets PYTHONDONTWRITEBYTECODE=1, so without this
    every daemon of a run would compile our ~19,000 lines again, the forkserver's preload inside
    the first pass's timed window (~0.08 s of its wall, baseline_ab.py). Up-to-date files are
    only looked at."""
    import compileall

    import monitor

    compileall.compile_dir(Path(monitor.__file__).parent, quiet=1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=("daemon", "floor", "register", "once"))
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--urls", type=Path)
    ap.add_argument("--no-allow-farm", action="store_true", help="leave the farm out of allow_private (self-test)")
    args = ap.parse_args()
    global ALLOW_FARM
    ALLOW_FARM = not args.no_allow_farm
    urls = args.urls.read_text().split() if args.urls else []
    log = Counter()
    logging.basicConfig(level=logging.WARNING, handlers=[log])
    if args.mode != "floor":
        installed()
    if args.mode == "daemon":
        asyncio.run(run_daemon(args.workdir, urls, log))
    elif args.mode == "floor":
        asyncio.run(run_floor(urls))
    elif args.mode == "register":
        register(args.workdir, urls, log)
    else:
        once(args.workdir, urls, log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
