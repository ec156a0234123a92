"""A local "feed farm": N synthetic news feeds over H loopback hosts, for the polling benchmark.

    .venv/bin/python bench/polling/farm.py --feeds 10000 [--hosts 20] [--port 0] [--small]

Feed ``i`` lives at ``http://127.0.0.{2 + i % H}:PORT/feeds/{i}.xml``; every host address gets
its own site on the same port, so a client's per-host connection limit applies as it would on
the internet. Bodies are RSS 2.0 (a share Atom), 10-200 KB with 20-100 items (``--small``:
2-5 KB, 5 items), built from per-feed parameters and a pool of sentences made at start from
the word list below, an unchanged feed answering byte-identical bodies. Each body is built
before the farm says it listens, and again when ``advance`` changes its feed, then served from
memory (up to CACHE_BYTES), as a web server serves a file: the farm shares the contenders'
machine, and building bodies in Python during their passes took ~1 s of CPU per 1,000 feeds
from the cores the daemon's first pass is bound by. A share of feeds (``--etag-share``) sends ETag and
Last-Modified and answers 304 to a matching conditional request; the others always answer 200.
Each host answers after a fixed delay drawn from ``--latency-ms LO,HI``.

Control (any host):
    POST /_control/advance?share=0.1&seed=N   a deterministic share of feeds gets 1-3 new
                                              items on top (oldest dropped), new validators;
                                              answers what changed (feeds, of them with
                                              ETag, new items, items in the changed feeds)
    GET  /_control/stats                      requests, 200s, 304s, 404s, bytes served so far,
                                              also per client (User-Agent's first word), and
                                              what a client must find: feeds, feeds with
                                              ETag, items in the feeds now, items ever served
    POST /_control/reset-stats                zero the counters
    POST /_control/watch?limit=N              record each moment a host has more than N requests
                                              at once, with their User-Agents (stats: "crowded")

The per-client counters let the benchmark check that each contender really polled every feed:
a contender whose requests never arrive cannot pass.

When listening, prints one JSON line ``{"port": P, "hosts": [...]}`` on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import sys
import time
import zlib
from array import array
from collections.abc import Iterable
from email.utils import formatdate
from time import gmtime, strftime

from aiohttp import web

# A news vocabulary of our own; headlines and paragraphs are drawn from it with a seed.
SUBJECTS = (
    "The minister", "The prime minister", "The central bank", "City council", "The health agency",
    "Regional officials", "The opposition leader", "Rescue teams", "The court", "Union leaders",
    "Investors", "Police", "The foreign ministry", "Scientists", "Local residents", "The airline",
    "The energy regulator", "Farmers", "The defence ministry", "Election observers", "Doctors",
    "The mayor", "Lawmakers", "The navy", "Aid agencies", "The football club", "Teachers",
    "The statistics office", "Prosecutors", "The company", "Firefighters", "The coalition",
    "Coastal towns", "The railway operator", "Border guards", "The university", "Climate researchers",
)
VERBS = (
    "announced", "rejected", "approved", "warned about", "postponed", "criticised", "welcomed",
    "investigated", "confirmed", "denied", "proposed", "suspended", "expanded", "defended",
    "questioned", "backed", "launched", "delayed", "reviewed", "signed", "cancelled", "extended",
    "called for", "reported", "challenged", "promised", "blocked", "restored", "cut", "raised",
)
OBJECTS = (
    "a new budget plan", "the fuel subsidy", "emergency funding", "the trade agreement",
    "a ceasefire proposal", "the pension reform", "new border controls", "the housing programme",
    "a rise in interest rates", "the flood defences", "a vaccination campaign", "the rail strike",
    "the merger", "tax relief for families", "the grain shipments", "a power line project",
    "the water tariff", "an inquiry into the crash", "the school closures", "military aid",
    "the wind farm licence", "a ban on night flights", "the hospital upgrade", "fishing quotas",
    "the election timetable", "a sanctions package", "drought relief", "the port expansion",
    "the bridge repairs", "wage negotiations", "the data protection bill", "the cyber attack",
)
PLACES = (
    "in the capital", "in the north", "along the coast", "near the border", "in the southern region",
    "across the country", "in rural districts", "at the port", "in the eastern provinces",
    "in the mountains", "in the old town", "on the island", "in the industrial belt", "overseas",
    "in Kharkiv", "in Lyon", "in Gdansk", "in Porto", "in Tampere", "in Bratislava", "in Kaunas",
    "in Seville", "in Leipzig", "in Bergen", "in Split", "in Varna", "in Cork", "in Graz",
)
TAILS = (
    "after weeks of talks", "despite strong protests", "ahead of the winter", "on Monday",
    "late on Tuesday", "following a heated debate", "amid rising costs", "for the second time",
    "with immediate effect", "citing safety concerns", "in a surprise move", "as expected",
    "under pressure from partners", "after a court ruling", "before the summit", "this week",
)
FILLERS = (
    "Officials said the details would be published later.",
    "Critics say the measure comes too late.",
    "The decision affects thousands of households.",
    "Talks are expected to resume next week.",
    "A spokesperson declined to comment further.",
    "Analysts expect the figures to be revised.",
    "The plan still needs parliamentary approval.",
    "Residents were advised to follow official updates.",
    "Similar measures were tried two years ago.",
    "Opposition parties demanded a full debate.",
    "Markets reacted calmly to the announcement.",
    "The costs are to be shared with the regions.",
)
CATEGORIES = ("Politics", "Economy", "World", "Europe", "Local", "Science", "Health", "Sport",
              "Energy", "Transport", "Culture", "Defence")

CACHE_BYTES = 2 << 30  # bodies kept in memory at most (10,000 feeds: ~650 MB; 50,000 small ones: ~180 MB)
BASE_TIME = 1_704_067_200  # 2024-01-01T00:00:00Z: item dates are BASE_TIME + seq * STEP
STEP = 1_800
MASK = (1 << 64) - 1


def _mix(x: int) -> int:
    """splitmix64: a cheap deterministic hash for per-item choices."""
    x = (x + 0x9E3779B97F4A7C15) & MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Pools:
    """Headlines, sentences and HTML paragraphs made once from the word lists and a seed."""

    def __init__(self, seed: int):
        rng = random.Random(seed)

        def sentence() -> str:
            return (f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} "
                    f"{rng.choice(PLACES)} {rng.choice(TAILS)}.")

        self.titles = [sentence()[:-1] for _ in range(4096)]
        self.sentences = [sentence() for _ in range(4096)]
        paragraphs = []
        for _ in range(2048):
            parts = [sentence() if rng.random() < 0.7 else rng.choice(FILLERS) for _ in range(rng.randint(2, 6))]
            text = " ".join(parts)
            if rng.random() < 0.3:  # some markup, as real full-text feeds have
                word = rng.choice(OBJECTS)
                topic = zlib.crc32(word.encode()) % 997
                text = text.replace(word, f'<a href="https://news.example/topics/{topic}">{word}</a>', 1)
            if rng.random() < 0.15:
                text = f"<strong>{rng.choice(PLACES).capitalize()}:</strong> {text}"
            paragraphs.append(f"<p>{text}</p>")
        self.paragraphs = paragraphs
        self.paragraph_len = sum(map(len, paragraphs)) / len(paragraphs)


class Farm:
    def __init__(self, feeds: int, hosts: int = 20, etag_share: float = 0.7, latency_ms: tuple[float, float] = (5, 30),
                 seed: int = 1, small: bool = False, atom_share: float = 0.2, port: int = 0):
        self.n, self.hosts, self.seed, self.small, self.port = feeds, hosts, seed, small, port
        self.pools = Pools(seed)
        rng = random.Random(seed * 7919 + 17)
        self.items = array("H")  # items per feed
        self.item_paras = array("H")  # paragraphs per item: 0 means one short sentence
        self.flags = array("B")  # bit 0: ETag/304, bit 1: Atom, bit 2: full text in content
        for _ in range(feeds):
            if small:
                n_items, size = 5, rng.uniform(2_000, 5_000)
            else:
                n_items, size = rng.randint(20, 100), 10_000 * 20 ** rng.random()  # log-uniform 10-200 KB
            per_item = size / n_items - 420  # title, link, guid, date, category
            paras = 0 if per_item < 260 else max(1, round(per_item / (self.pools.paragraph_len + 20)))
            flags = (rng.random() < etag_share) | (rng.random() < atom_share) << 1 | (paras >= 4) << 2
            self.items.append(n_items)
            self.item_paras.append(min(paras, 65535))
            self.flags.append(flags)
        self.top = array("q", (1000 + rng.randint(0, 500) for _ in range(feeds)))  # newest item's seq
        self.version = array("I", bytes(4 * feeds))
        lo, hi = latency_ms
        self.delays = [(lo + (hi - lo) * ((h * 7) % hosts) / max(1, hosts - 1)) / 1000 for h in range(hosts)]
        self.stats = {"requests": 0, "200": 0, "304": 0, "404": 0, "bytes": 0}
        self.agents: dict[str, dict[str, int]] = {}  # the same counters per client
        # what a cluster's politeness is judged by (bench/cluster.py): requests at once per host
        # (the most seen), and per feed the shortest time between two of its requests
        self.inflight = [0] * hosts
        self.peak = [0] * hosts
        self.at_host: list[list[tuple[str, float]]] = [[] for _ in range(hosts)]  # (User-Agent, since) in flight
        self.watch = 0  # when set (/_control/watch?limit=N): moments a host had more than N at once
        self.crowded: list[dict] = []
        self.last_seen: dict[int, float] = {}
        self.min_gap: dict[int, float] = {}
        self.published = sum(self.items)  # items ever in a feed: what a poller that keeps all has seen
        self._bodies: dict[int, bytes] = {}  # feed -> its body at its current version (``body``)
        self._cached = 0

    # -- content ------------------------------------------------------------------------------
    def host_of(self, i: int) -> str:
        return f"127.0.0.{2 + i % self.hosts}"

    def etag(self, i: int) -> str:
        return f'"f{i:x}-v{self.version[i]}"'

    def last_modified(self, i: int) -> str:
        return formatdate(BASE_TIME + self.top[i] * STEP + i % 600, usegmt=True)

    def body(self, i: int) -> bytes:
        """Feed ``i``'s body as it stands, built once per version and then served from memory as
        a web server serves a file (up to CACHE_BYTES in all): building it in Python costs the
        farm ~1 s of CPU per 1,000 feeds, which it took from the contenders' 2 cores at each pass."""
        got = self._bodies.get(i)
        if got is None:
            got = self._build(i)
            if self._cached + len(got) <= CACHE_BYTES:
                self._bodies[i] = got
                self._cached += len(got)
        return got

    def warm(self, feeds: Iterable[int] | None = None) -> None:
        """Build the bodies before a pass asks for them, so that no contender's pass pays for it."""
        for i in range(self.n) if feeds is None else feeds:
            self.body(i)

    def _build(self, i: int) -> bytes:
        atom = bool(self.flags[i] & 2)
        full = bool(self.flags[i] & 4)
        host = self.host_of(i)
        site = f"https://site{i}.news.example"
        top, n = self.top[i], self.items[i]
        p = self.pools
        parts: list[str] = []
        name = f"{p.titles[_mix(i * 31 + self.seed) % 4096].split(' ', 2)[-1].capitalize()} Daily"
        updated = BASE_TIME + top * STEP + i % 600
        if atom:
            parts.append(
                '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en">\n'
                f"<title>{_esc(name)}</title>\n<id>tag:site{i}.news.example,2024:feed</id>\n"
                f'<link rel="alternate" href="{site}/"/>\n'
                f'<link rel="self" href="http://{host}:{self.port}/feeds/{i}.xml"/>\n'
                f"<updated>{strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(updated))}</updated>\n"
                "<generator>farm</generator>\n"
            )
        else:
            parts.append(
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
                'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom">\n'
                f"<channel>\n<title>{_esc(name)}</title>\n<link>{site}/</link>\n"
                f"<description>Latest news from {_esc(name)}</description>\n<language>en</language>\n"
                f'<atom:link href="http://{host}:{self.port}/feeds/{i}.xml" rel="self" type="application/rss+xml"/>\n'
                f"<lastBuildDate>{formatdate(updated, usegmt=True)}</lastBuildDate>\n<ttl>15</ttl>\n"
            )
        paras = self.item_paras[i]
        for seq in range(top, top - n, -1):
            h = _mix((i << 24) ^ seq ^ (self.seed << 48))
            title = _esc(p.titles[h % 4096])
            lead = _esc(p.sentences[(h >> 12) % 4096])
            link = f"{site}/{2024 + seq // 20000}/story-{seq}-{h % 100000}"
            when = BASE_TIME + seq * STEP + i % 600
            cat = CATEGORIES[(h >> 24) % len(CATEGORIES)]
            if paras:
                body = "".join(p.paragraphs[(h >> (k % 40)) % 2048 ^ k] for k in range(paras))
            else:
                body = ""
            if atom:
                content = f'<content type="html">{_esc(body)}</content>' if body else ""
                parts.append(
                    f"<entry><title>{title}</title><id>{link}</id>"
                    f'<link rel="alternate" type="text/html" href="{link}"/>'
                    f"<published>{strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(when))}</published>"
                    f"<updated>{strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(when))}</updated>"
                    f"<author><name>Desk {h % 40}</name></author><category term=\"{cat}\"/>"
                    f"<summary>{lead}</summary>{content}</entry>\n"
                )
            else:
                if full:
                    desc = f"<description>{lead}</description><content:encoded><![CDATA[{body}]]></content:encoded>"
                else:
                    desc = f"<description>{_esc(body) if body else lead}</description>"
                parts.append(
                    f"<item><title>{title}</title><link>{link}</link>"
                    f'<guid isPermaLink="false">site{i}-{seq}</guid>'
                    f"<pubDate>{formatdate(when, usegmt=True)}</pubDate>"
                    f"<dc:creator>Desk {h % 40}</dc:creator><category>{cat}</category>{desc}</item>\n"
                )
        parts.append("</feed>\n" if atom else "</channel>\n</rss>\n")
        return "".join(parts).encode()

    def content_type(self, i: int) -> str:
        return "application/atom+xml; charset=utf-8" if self.flags[i] & 2 else "application/rss+xml; charset=utf-8"

    def advance(self, share: float, seed: int) -> dict[str, int]:
        """Give a deterministic ``share`` of the feeds 1-3 new items (oldest dropped); what changed."""
        rng = random.Random(seed * 1_000_003 + self.seed)
        k = min(self.n, round(share * self.n))
        out = {"changed": k, "changed_etag": 0, "new_items": 0, "changed_items": 0}
        changed: list[int] = []
        for i in rng.sample(range(self.n), k):
            new = rng.randint(1, 3)
            self.top[i] += new
            self.version[i] += 1
            out["changed_etag"] += self.flags[i] & 1
            out["new_items"] += new
            out["changed_items"] += self.items[i]
            dropped = self._bodies.pop(i, None)
            self._cached -= len(dropped) if dropped is not None else 0
            changed.append(i)
        self.warm(changed)
        self.published += out["new_items"]
        return out

    def expect(self) -> dict[str, int]:
        return {"feeds": self.n, "etag_feeds": sum(f & 1 for f in self.flags), "items": sum(self.items),
                "published": self.published}

    def count(self, request: web.Request, key: str, n: int = 1) -> None:
        agent = request.headers.get("User-Agent", "").split("/", 1)[0].split(" ", 1)[0] or "-"
        per = self.agents.setdefault(agent, {"requests": 0, "200": 0, "304": 0, "404": 0, "bytes": 0})
        self.stats[key] += n
        per[key] += n

    # -- HTTP ---------------------------------------------------------------------------------
    async def feed(self, request: web.Request) -> web.StreamResponse:
        self.count(request, "requests")
        try:
            i = int(request.match_info["id"])
        except ValueError:
            i = -1
        if not 0 <= i < self.n or request.host.rsplit(":", 1)[0] != self.host_of(i):
            self.count(request, "404")
            raise web.HTTPNotFound()
        h, now = i % self.hosts, time.monotonic()
        if i in self.last_seen:
            self.min_gap[i] = min(self.min_gap.get(i, 1e9), now - self.last_seen[i])
        self.last_seen[i] = now
        self.inflight[h] += 1
        self.peak[h] = max(self.peak[h], self.inflight[h])
        agent = (request.headers.get("User-Agent", ""), time.time())
        self.at_host[h].append(agent)
        if self.watch and self.inflight[h] > self.watch:
            self.crowded.append({"at": agent[1], "host": self.host_of(i), "clients": list(self.at_host[h])})
        try:
            await asyncio.sleep(self.delays[h])
        finally:
            self.inflight[h] -= 1
            self.at_host[h].remove(agent)
        if self.flags[i] & 1:
            etag, modified = self.etag(i), self.last_modified(i)
            inm, ims = request.headers.get("If-None-Match"), request.headers.get("If-Modified-Since")
            if (inm is not None and etag in (t.strip() for t in inm.split(","))) or (inm is None and ims == modified):
                self.count(request, "304")
                return web.Response(status=304, headers={"ETag": etag, "Last-Modified": modified})
            headers = {"ETag": etag, "Last-Modified": modified}
        else:
            headers = {}
        body = self.body(i)
        self.count(request, "200")
        self.count(request, "bytes", len(body))
        headers["Content-Type"] = self.content_type(i)
        return web.Response(body=body, headers=headers)

    async def advance_handler(self, request: web.Request) -> web.Response:
        share = float(request.query.get("share", "0.1"))
        seed = int(request.query.get("seed", "0"))
        return web.json_response(self.advance(share, seed))

    async def stats_handler(self, request: web.Request) -> web.Response:
        gaps = sorted(self.min_gap.values())
        return web.json_response({**self.stats, "agents": self.agents, "hosts": self.hosts, **self.expect(),
                                  "peak_per_host": max(self.peak), "min_gaps": gaps[:20], "crowded": self.crowded})

    async def watch_handler(self, request: web.Request) -> web.Response:
        self.watch = int(request.query.get("limit", "0"))
        return web.json_response({"watch": self.watch})

    async def reset_stats(self, request: web.Request) -> web.Response:
        for k in self.stats:
            self.stats[k] = 0
        self.agents.clear()
        return web.json_response(self.stats)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/feeds/{id}.xml", self.feed)
        app.router.add_post("/_control/advance", self.advance_handler)
        app.router.add_get("/_control/stats", self.stats_handler)
        app.router.add_post("/_control/reset-stats", self.reset_stats)
        app.router.add_post("/_control/watch", self.watch_handler)
        return app


def urls(feeds: int, hosts: int, port: int) -> list[str]:
    return [f"http://127.0.0.{2 + i % hosts}:{port}/feeds/{i}.xml" for i in range(feeds)]


async def serve(farm: Farm, port: int) -> None:
    runner = web.AppRunner(farm.app(), access_log=None, handle_signals=False)
    await runner.setup()
    for attempt in range(20):
        sites = []
        try:
            first = web.TCPSite(runner, farm.host_of(0), port, backlog=1024)
            await first.start()
            sites.append(first)
            bound = port or first._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            for h in range(1, farm.hosts):
                site = web.TCPSite(runner, f"127.0.0.{2 + h}", bound, backlog=1024)
                await site.start()
                sites.append(site)
            break
        except OSError:
            for s in sites:
                await s.stop()
            if port or attempt == 19:
                raise
    farm.port = bound  # the bodies name it
    farm.warm()
    print(json.dumps({"port": bound, "hosts": [farm.host_of(h) for h in range(farm.hosts)]}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--feeds", type=int, default=1000)
    ap.add_argument("--hosts", type=int, default=20)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--etag-share", type=float, default=0.7)
    ap.add_argument("--latency-ms", default="5,30", help="LO,HI: each host's fixed delay lies in this range")
    ap.add_argument("--atom-share", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--small", action="store_true", help="2-5 KB feeds of 5 items")
    args = ap.parse_args()
    if not 1 <= args.hosts <= 250:
        ap.error("--hosts must be 1..250")
    lo, _, hi = args.latency_ms.partition(",")
    farm = Farm(args.feeds, args.hosts, args.etag_share, (float(lo), float(hi or lo)), args.seed, args.small,
                args.atom_share)
    asyncio.run(serve(farm, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
