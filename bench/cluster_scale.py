"""Cluster scale (issue 19): whole daemons polling one loopback feed farm as fast as they can,
today's single SQLite node side by side with 1, 2 and 4 nodes on one PostgreSQL, each against a
fresh database, in one run. Per configuration, over a fixed window after a warm-up:

  polls/s        counted twice: at the farm (requests of this run's nodes, by User-Agent) and in
                 the database (a trigger counts each change of a feed's last_polled_at); the two
                 must agree, or the run fails
  node s/s       CPU seconds per second of the node processes and their children: how busy
  cpu ms/poll    the same per poll: the nodes', and PostgreSQL's (every server process) apart
  commits/poll   PostgreSQL: pg_stat_database.xact_commit; SQLite: counted at the node's
                 connections (bench/sqlite_counted.py: COMMITs, and statements outside a
                 transaction, as PostgreSQL counts them)
  queries/poll   PostgreSQL: pg_stat_statements' calls (every statement the nodes sent, BEGIN
                 and COMMIT, and Procrastinate's queue included; a function's inner statements
                 are its one call); SQLite: statements at the node's connections
  procr          of those queries, Procrastinate's own (its tables and functions)
  slots          of those queries, tries for a host's ``per_host`` slot (pg_try_advisory_lock):
                 one per poll when no other node holds the host's slots, more as nodes contend
  due            feeds due and not polled at the window's end: > 0 means the nodes were the
                 limit (saturated), 0 that the farm's demand was

The farm: ``--feeds`` small feeds (2-5 KB, 5 items) on ``--hosts`` hosts; 70 % send ETag and
Last-Modified and answer 304 when unchanged, the others answer 200 with the same body (unchanged
by its hash). Each second ``--changed`` of the last second's polls is given to feeds that get
1-3 new items, so that share of the polls finds news whatever the rate (some match the rule and
alert a webhook). Every feed's interval is ``--interval`` s, short enough that the nodes cannot
keep up, and ``--concurrency`` 200 (a node's jobs are 4 of concurrency/2 feeds at a time,
deferred again 0.1 s after while feeds wait: monitor/cluster.py; the footnote prints it). Pages are not fetched
(``[extract] pages = false``): a page is a fetch and an extraction per new entry, the same on
every backend, and would measure trafilatura. The nodes log at INFO, a line per poll, as deployed.
The bench's own queries carry a mark and are left out of the sums.

    .venv/bin/python bench/cluster_scale.py [--feeds 2000] [--hosts 20] [--nodes 1,2,4]
        [--seconds 30] [--warmup 10] [--interval 2] [--concurrency 200] [--workers 0] [--changed 0.1]

Exits 1 (FAIL) when a configuration did no work, a node died, or the farm's and the database's
counts of polls disagree: then its figures prove nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
import cluster_kit  # noqa: E402
import pg_server  # noqa: E402
import psutil  # noqa: E402
import psycopg  # noqa: E402
from servers import Webhook  # noqa: E402

from monitor import cluster  # noqa: E402
from monitor.store import Store  # noqa: E402

COUNTED = [str(ROOT / "bench" / "sqlite_counted.py")]
PG_COUNTER = """
CREATE UNLOGGED TABLE bench_polls (feed_id BIGINT, at DOUBLE PRECISION);
CREATE FUNCTION bench_poll() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN INSERT INTO bench_polls VALUES (NEW.id, NEW.last_polled_at); RETURN NULL; END $$;
CREATE TRIGGER bench_poll AFTER UPDATE OF last_polled_at ON feeds FOR EACH ROW
  WHEN (NEW.last_polled_at IS DISTINCT FROM OLD.last_polled_at) EXECUTE FUNCTION bench_poll();
"""
SQLITE_COUNTER = """
CREATE TABLE bench_polls (feed_id INTEGER, at REAL);
CREATE TRIGGER bench_poll AFTER UPDATE OF last_polled_at ON feeds
  WHEN NEW.last_polled_at IS NOT OLD.last_polled_at
  BEGIN INSERT INTO bench_polls VALUES (NEW.id, NEW.last_polled_at); END;
"""
MARK = "/* bench */"  # the bench's own statements, left out of pg_stat_statements' sums
NOISE = re.compile(r"^\S+ \S+ |https?://\S+|\b\d+(\.\d+)?\b|job:\S+|'[0-9a-f-]{8,}'")


def cpu(pids: list[int]) -> float:
    """CPU seconds so far of these processes and every descendant, those that ended included
    (a process's reaped children are in its ``children_*`` times)."""
    total = 0.0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for p in procs:
            try:
                t = p.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
            except psutil.NoSuchProcess:
                pass
    return total


class Publisher(threading.Thread):
    """Each second, feeds get new items for ``share`` of the farm's requests of the last second."""

    def __init__(self, port: int, feeds: int, share: float):
        super().__init__(daemon=True, name="publisher")
        self.port, self.feeds, self.share = port, feeds, share
        self.stop, self.seed = threading.Event(), 0

    def run(self) -> None:
        last = cluster_kit.farm_stats(self.port)["requests"]
        while not self.stop.wait(1.0):
            now = cluster_kit.farm_stats(self.port)["requests"]
            self.seed += 1
            cluster_kit.publish(self.port, self.seed, self.share * (now - last) / self.feeds)
            last = now


class Postgres:
    """The server, and what it says about one database: commits, queries, its processes' CPU."""

    def __init__(self, folder: Path):
        self.server = pg_server.Server(folder, port=5497, settings={
            "shared_preload_libraries": "pg_stat_statements", "pg_stat_statements.max": "10000"})
        self.admin = psycopg.connect(self.server.url.replace("/monitor?", "/postgres?"), autocommit=True)
        self.admin.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        self.postmaster = int((self.server.data / "postmaster.pid").read_text().split()[0])

    def database(self, name: str) -> str:
        self.admin.execute(f"CREATE DATABASE {name}")
        return self.server.url.replace("/monitor?", f"/{name}?")

    def sample(self, name: str) -> dict:
        one = self.admin.execute
        commits = one("SELECT xact_commit FROM pg_stat_database WHERE datname = %s", [name]).fetchone()[0]
        rows = one("SELECT query, calls FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
                   "WHERE d.datname = %s AND query NOT LIKE %s", [name, f"%{MARK}%"]).fetchall()
        dealloc = one("SELECT dealloc FROM pg_stat_statements_info").fetchone()[0]
        return {"commits": int(commits), "statements": dict(rows), "dealloc": int(dealloc),
                "cpu": cpu([self.postmaster])}

    def stop(self) -> None:
        self.admin.close()
        self.server.stop()


def counter(url: str) -> None:
    """The store's schema made as the nodes would, and the trigger that counts polls in it."""
    Store(url).close()
    if url.startswith("postgresql://"):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(PG_COUNTER)
    else:
        conn = sqlite3.connect(url)
        conn.executescript(SQLITE_COUNTER)
        conn.close()


def one(url: str, sql: str) -> int:
    """One number from the run's database, asked with the bench's mark (not counted as the nodes')."""
    sql = f"{MARK} {sql}"
    if url.startswith("postgresql://"):
        with psycopg.connect(url, autocommit=True) as conn:
            return int(conn.execute(sql).fetchone()[0])
    conn = sqlite3.connect(url, timeout=30)
    try:
        return int(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()


def sample(url: str, nodes: list[subprocess.Popen], agents: list[str], port: int, counts: list[Path],
           pg: Postgres | None, name: str, farm_pid: int) -> dict:
    farm = cluster_kit.farm_stats(port)
    out = {"at": time.monotonic(), "db_polls": one(url, "SELECT COUNT(*) FROM bench_polls"),
           "farm": {a: farm["agents"].get(a, {}).get("requests", 0) for a in agents},
           "new": one(url, "SELECT COUNT(*) FROM entries WHERE baseline = 0"),
           "alerts": one(url, "SELECT COUNT(*) FROM outbox"),
           "node_cpu": cpu([p.pid for p in nodes]), "farm_cpu": cpu([farm_pid])}
    if pg is not None:
        out["pg"] = pg.sample(name)
    else:
        seen = [json.loads(c.read_text()) for c in counts]
        out["sqlite"] = {k: sum(s[k] for s in seen) for k in ("statements", "commits")}
    return out


def run(kind: str, n: int, args: argparse.Namespace, pg: Postgres | None, work: Path, port: int,
        feeds: list[str], hook: Webhook, farm_pid: int) -> dict:
    tag = f"{kind[:2]}{n}"
    name = f"scale_{tag}"
    folder = work / tag
    folder.mkdir()
    url = pg.database(name) if pg is not None else str(folder / "monitor.db")
    counter(url)
    agents = [f"{tag}n{i}" for i in range(n)]
    counts = [folder / f"node{i}.counts.json" for i in range(n)]
    logs = [folder / f"node{i}.log" for i in range(n)]
    nodes = []
    publisher = Publisher(port, len(feeds), args.changed)
    row: dict = {"backend": "postgresql" if pg else "sqlite", "nodes": n, "logs": [str(p) for p in logs]}
    try:
        for i in range(n):
            cfg = cluster_kit.config(folder / f"node{i}", url, feeds, hook.apprise_url, f"{agents[i]}/1",
                                     interval=args.interval, per_host=args.per_host, concurrency=args.concurrency,
                                     workers=args.workers)
            nodes.append(cluster_kit.start(cfg, logs[i], [*COUNTED, str(counts[i])]))
        began, deadline = time.monotonic(), time.monotonic() + 240
        while one(url, "SELECT COUNT(*) FROM feeds WHERE baselined_at IS NOT NULL") < len(feeds):
            if time.monotonic() > deadline or any(p.poll() is not None for p in nodes):
                raise SystemExit(f"FAIL: {tag}: the nodes did not take every feed's baseline in 240 s "
                                 f"(or one died): see {folder}")
            time.sleep(0.5)
        row["baseline_s"] = time.monotonic() - began
        publisher.start()
        time.sleep(args.warmup)
        before = sample(url, nodes, agents, port, counts, pg, name, farm_pid)
        time.sleep(args.seconds)
        after = sample(url, nodes, agents, port, counts, pg, name, farm_pid)
        row["due"] = one(url, f"SELECT COUNT(*) FROM feeds WHERE next_check_at <= {time.time()}")
        if pg is not None:
            with psycopg.connect(url, autocommit=True) as conn:
                row["jobs"] = dict(conn.execute(f"{MARK} SELECT status::text, COUNT(*) FROM procrastinate_jobs "
                                                "GROUP BY status").fetchall())
                row["connections"] = int(conn.execute(  # the nodes' (this one left out)
                    f"{MARK} SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid != pg_backend_pid()").fetchone()[0])
        row["died"] = [i for i, p in enumerate(nodes) if p.poll() is not None]
    finally:
        publisher.stop.set()
        cluster_kit.stop(nodes)
    wall = after["at"] - before["at"]
    per_node = [after["farm"][a] - before["farm"][a] for a in agents]
    farm_polls, db_polls = sum(per_node), after["db_polls"] - before["db_polls"]
    polls = max(1, db_polls)
    row.update(wall=wall, farm_polls=farm_polls, db_polls=db_polls, per_node=per_node,
               polls_s=db_polls / wall, farm_polls_s=farm_polls / wall,
               node_busy=(after["node_cpu"] - before["node_cpu"]) / wall,
               node_ms=1000 * (after["node_cpu"] - before["node_cpu"]) / polls,
               farm_busy=(after["farm_cpu"] - before["farm_cpu"]) / wall,
               new_per_poll=(after["new"] - before["new"]) / polls, alerts=after["alerts"] - before["alerts"])
    if pg is not None:
        b, a = before["pg"], after["pg"]
        calls = {q: c - b["statements"].get(q, 0) for q, c in a["statements"].items()}
        row.update(db_ms=1000 * (a["cpu"] - b["cpu"]) / polls, db_busy=(a["cpu"] - b["cpu"]) / wall,
                   commits_poll=(a["commits"] - b["commits"]) / polls,
                   queries_poll=sum(calls.values()) / polls,
                   procr_poll=sum(c for q, c in calls.items() if "procrastinate" in q) / polls,
                   tries_poll=sum(c for q, c in calls.items() if "pg_try_advisory_lock" in q) / polls,
                   top=sorted(((c / polls, q) for q, c in calls.items() if c), reverse=True)[:args.top],
                   evicted=a["dealloc"] - b["dealloc"])
    else:
        b, a = before["sqlite"], after["sqlite"]
        row.update(commits_poll=(a["commits"] - b["commits"]) / polls,
                   queries_poll=(a["statements"] - b["statements"]) / polls)
    row["log"] = scan(logs)
    return row


def scan(logs: list[Path]) -> dict:
    """WARNING, ERROR and Traceback lines of the node logs (``time LEVEL logger: message``, or the
    CLI's ``error: ...``), those while running and those after the node was told to stop apart:
    how many, and each kind once (its first line, verbatim) with its count."""
    out: dict[str, dict] = {}
    for when in ("running", "stopping"):
        out[when] = {"levels": Counter(), "kinds": Counter(), "first": {}}
    for log in logs:
        when = "running"
        for line in log.read_text(errors="replace").splitlines():
            if "monitor.daemon: stopping reason=" in line:
                when = "stopping"
            words = line.split(" ", 3)
            level = (words[2] if len(words) > 2 and words[2] in ("WARNING", "ERROR", "CRITICAL") else
                     "Traceback" if line.startswith("Traceback") else "error" if line.startswith("error:") else None)
            if level is None:
                continue
            seen = out[when]
            seen["levels"][level] += 1
            key = NOISE.sub("#", line)[:160]
            seen["kinds"][key] += 1
            seen["first"].setdefault(key, line)
    return {when: {"levels": dict(o["levels"]), "kinds": [(n, o["first"][k]) for k, n in o["kinds"].most_common()]}
            for when, o in out.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--feeds", type=int, default=2000)
    ap.add_argument("--hosts", type=int, default=20)
    ap.add_argument("--nodes", default="1,2,4", help="PostgreSQL configurations (after the one SQLite node)")
    ap.add_argument("--seconds", type=float, default=30.0, help="measured window per configuration")
    ap.add_argument("--warmup", type=float, default=10.0, help="seconds after every feed's baseline, not measured")
    ap.add_argument("--interval", type=float, default=2.0, help="every feed's poll interval, seconds")
    ap.add_argument("--concurrency", type=int, default=200, help="[poll] concurrency of each node")
    ap.add_argument("--per-host", type=int, default=4, help="[poll] per_host")
    ap.add_argument("--workers", type=int, default=0, help="[extract] workers: parse and match processes per node "
                    "(0, the default: one per core)")
    ap.add_argument("--latency-ms", default="5,30", help="the farm's hosts answer after LO..HI ms")
    ap.add_argument("--changed", type=float, default=0.1, help="share of polls that find 1-3 new items")
    ap.add_argument("--no-sqlite", action="store_true")
    ap.add_argument("--top", type=int, default=8, help="PostgreSQL's most frequent statements shown per run")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cluster-scale-"))
    farm, port, feeds = cluster_kit.farm(args.feeds, args.hosts, args.latency_ms)
    hook = Webhook()
    pg = None
    rows = []
    started = time.monotonic()
    try:
        pg = Postgres(Path(tempfile.mkdtemp(prefix="cluster-scale-pg-")))  # the server's user must reach it
        if not args.no_sqlite:
            rows.append(run("sqlite", 1, args, None, work, port, feeds, hook, farm.pid))
            report(rows[-1])
        for n in (int(x) for x in args.nodes.split(",") if x):
            rows.append(run("postgresql", n, args, pg, work, port, feeds, hook, farm.pid))
            report(rows[-1])
    finally:
        if pg is not None:
            pg.stop()
        farm.terminate()
        hook.close()
    return table(rows, args, time.monotonic() - started, work)


def report(r: dict) -> None:
    """One line as each configuration ends (the table comes at the end)."""
    print(f"{r['backend']} x{r['nodes']}: {r['db_polls']} polls in the database, {r['farm_polls']} at the farm "
          f"in {r['wall']:.1f} s (baseline took {r['baseline_s']:.0f} s)", flush=True)


def table(rows: list[dict], args: argparse.Namespace, took: float, work: Path) -> int:
    load = os.getloadavg()
    print(f"\ncluster scale: {args.feeds:,} feeds on {args.hosts} hosts, every {args.interval:g} s, concurrency "
          f"{args.concurrency}, per_host {args.per_host}, workers {args.workers or os.cpu_count()}, "
          f"{args.changed:.0%} of polls find news, "
          f"{args.seconds:g} s measured after {args.warmup:g} s; {os.cpu_count()} cores, load "
          f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; {took:.0f} s in all")
    head = (f"{'backend':10} {'nodes':>5} {'polls/s':>8} {'(farm)':>7} {'node s/s':>8} {'node ms':>8} {'db ms':>6} "
            f"{'db s/s':>6} {'commits':>8} {'queries':>8} {'procr':>6} {'slots':>6} {'due':>5} {'farm s/s':>8}")
    print(head + "\n" + "-" * len(head))
    for r in rows:
        pg = r["backend"] == "postgresql"
        print(f"{r['backend']:10} {r['nodes']:>5} {r['polls_s']:>8.1f} {r['farm_polls_s']:>7.1f} "
              f"{r['node_busy']:>8.2f} {r['node_ms']:>8.2f} "
              f"{(format(r['db_ms'], '.2f') if pg else '-'):>6} {(format(r['db_busy'], '.2f') if pg else '-'):>6} "
              f"{r['commits_poll']:>8.2f} {r['queries_poll']:>8.2f} "
              f"{(format(r['procr_poll'], '.2f') if pg else '-'):>6} "
              f"{(format(r['tries_poll'], '.2f') if pg else '-'):>6} {r['due']:>5} {r['farm_busy']:>8.2f}")
    size = cluster.job_size(args.concurrency)
    print("(per poll: node ms = CPU of the nodes, db ms = CPU of PostgreSQL's processes, procr = Procrastinate's"
          "\n queries, slots = tries for a host slot; s/s = CPU seconds a second; SQLite's commits and queries are"
          "\n counted at the node's connections, PostgreSQL's at the server. A PostgreSQL node runs"
          f"\n {cluster.SLOTS} poll jobs of {size} feeds at a time, and more are deferred every"
          f" {cluster.ENQUEUE_BUSY:g} s while feeds wait, monitor/cluster.py)")
    failed = []
    for r in rows:
        where = f"{r['backend']} x{r['nodes']}"
        print(f"\n{where}: polls per node at the farm {r['per_node']}; new entries per poll "
              f"{r['new_per_poll']:.2f}; alerts {r['alerts']}"
              + (f"; jobs {r['jobs']}; connections {r['connections']}" if "jobs" in r else "")
              + (f"; pg_stat_statements evicted {r['evicted']}" if r.get("evicted") else ""))
        for per, q in r.get("top", []):
            print(f"  {per:6.2f}/poll  {' '.join(q.split())[:110]}")
        for when in ("running", "stopping"):
            log = r["log"][when]
            print(f"  node logs, {when}: {log['levels'] or 'no WARNING, ERROR or Traceback'}")
            for n, line in log["kinds"][:6]:
                print(f"  {n:5}x {line[:220]}")
        polls, farm = r["db_polls"], r["farm_polls"]
        slack = r["nodes"] * args.concurrency + 0.02 * max(polls, farm)  # polls in flight at either end
        if polls <= 0 or farm <= 0:
            failed.append(f"{where}: no polls (database {polls}, farm {farm})")
        elif abs(polls - farm) > slack:
            failed.append(f"{where}: the database counted {polls} polls, the farm {farm}")
        if r["died"]:
            failed.append(f"{where}: node(s) {r['died']} died during the run")
        if min(r["per_node"]) <= 0:
            failed.append(f"{where}: a node did no poll ({r['per_node']})")
    print(f"\nlogs and databases: {work}")
    print(f"reproduce: {sys.executable} bench/cluster_scale.py --feeds {args.feeds} --hosts {args.hosts} "
          f"--nodes {args.nodes} --seconds {args.seconds:g} --warmup {args.warmup:g} --interval {args.interval:g} "
          f"--concurrency {args.concurrency} --per-host {args.per_host} --workers {args.workers} "
          f"--latency-ms {args.latency_ms} "
          f"--changed {args.changed:g}" + (" --no-sqlite" if args.no_sqlite else ""))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=str))
    if failed:
        print("FAIL: " + "; ".join(failed) + ": those figures prove nothing")
        return 1
    print("OK: every configuration polled, and the farm and the database agree on how much")
    return 0


if __name__ == "__main__":
    sys.exit(main())
