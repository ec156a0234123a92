"""The store's cost per poll on SQLite and on PostgreSQL, and PostgreSQL's with 1, 2 and 4 nodes
(issue 19's scale figures, the database's share of them).

Each node is a process running what the daemon's dispatcher asks of the store for a poll, as
fast as it can for ``--seconds``: claim due feeds (50 at a time, leased), then per feed either
an unchanged poll (``save_poll``: one UPDATE that also ends the lease; 90 %) or a changed one
(``record`` of two new entries, one of them matched by a rule, with the entries' stamps; 10 %).
Fetching and parsing are left out: they run on each node and add nodes as they add work; the
database is what the nodes share. Printed per configuration, side by side in one run:

  polls/s        all nodes together
  cpu ms/poll    CPU of the node processes and, on PostgreSQL, of every server process
  statements     SQL statements per poll, counted in each node's store
  commits        transactions per poll (PostgreSQL: pg_stat_database.xact_commit; SQLite:
                 COMMITs plus statements outside a transaction, counted in the store)

    .venv/bin/python bench/store_backends.py [--feeds 20000] [--seconds 10] [--nodes 1,2,4]
        [--database postgresql://...]   (default: a throwaway server, as the test suite makes)

From these and the daemon's own polls/s, the README's "Running a cluster" sizes a cluster.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from monitor.models import Article, Entry, FeedUpdate, Match  # noqa: E402
from monitor.store import Store  # noqa: E402

CLAIM = 50
CHANGED = 0.1


def _counting(store: Store) -> dict[str, int]:
    """Count the statements and transactions the store runs, at its connection: sqlite3's (which
    sqlite-utils' ``execute`` calls too), or store/pg.py's."""
    counts = {"statements": 0, "commits": 0}
    open_tx = [False]

    def seen(sql: str) -> None:
        head = sql.lstrip()[:6].upper()
        counts["statements"] += 1
        if head.startswith("BEGIN"):
            open_tx[0] = True
        elif head.startswith(("COMMIT", "ROLLBA")):
            open_tx[0] = False
            counts["commits"] += 1
        elif not open_tx[0]:
            counts["commits"] += 1  # a statement on its own is a transaction of its own

    db = store.db
    if store.dialect == "postgresql":
        execute, many = db.execute, db.executemany  # type: ignore[attr-defined]

        def pg_execute(sql, params=None):  # type: ignore[no-untyped-def]
            seen(sql)
            return execute(sql, params)

        def pg_many(sql, rows):  # type: ignore[no-untyped-def]
            seen(sql)
            return many(sql, rows)

        db.execute, db.executemany = pg_execute, pg_many  # type: ignore[method-assign,attr-defined]
        return counts
    conn = db.conn

    class Conn:
        def __getattr__(self, name):  # type: ignore[no-untyped-def]
            return getattr(conn, name)

        def execute(self, sql, params=()):  # type: ignore[no-untyped-def]
            seen(sql)
            return conn.execute(sql, params)

        def executemany(self, sql, rows):  # type: ignore[no-untyped-def]
            seen(sql)
            return conn.executemany(sql, rows)

    db.conn = Conn()  # type: ignore[misc]
    return counts


def node(database: str, seconds: float, index: int, out: mp.Queue) -> None:
    store = Store(database)
    counts = _counting(store)
    owner, polls, n = f"bench:{os.getpid()}:{index}", 0, 0
    cpu0, t0 = time.process_time(), time.monotonic()
    match = Match(rule_id="bench", rule_title="Bench", terms=("grain",), field="title", snippet="grain",
                  channels=("console",), salience=0.8, tier="alert")
    while time.monotonic() - t0 < seconds:
        now = time.time()
        feeds = store.claim_feeds(owner=owner, now=now, lease=60, limit=CLAIM)
        if not feeds:
            time.sleep(0.01)
            continue
        for feed in feeds:
            n += 1
            update = FeedUpdate(last_polled_at=now, last_status="ok", error_count=0, next_check_at=now)
            if (n * 7919 + index) % 100 < CHANGED * 100:
                new = []
                for k in range(2):
                    uid = f"{index}-{n}-{k}"
                    e = Entry(uid=uid, guid=uid, title=f"Grain shipments {uid}", link=f"https://x.example/{uid}",
                              summary="Ports and grain.", content="", published=None, content_hash=uid)
                    new.append((e, Article(title=e.title, text="Grain shipments through the port " * 20,
                                           url=e.link), [match] if k == 0 else []))
                store.record(feed, now=now, update=update, new=new, baseline=False, seen=[e.uid for e, _, _ in new])
            else:
                store.save_poll(feed, update, now=now)
            polls += 1
    out.put({"polls": polls, "cpu": time.process_time() - cpu0, "wall": time.monotonic() - t0, **counts})
    store.close()


def server_cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) of the given processes so far."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


def server_pids(postmaster: int | None) -> list[int]:
    """The server's processes: its postmaster and every child (backends, writers, autovacuum)."""
    if postmaster is None:
        return []
    pids = [postmaster]
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                    pids.append(int(d.name))
            except (OSError, IndexError, ValueError):
                continue
    return pids


def xact_commit(database: str) -> int:
    import psycopg
    with psycopg.connect(database) as conn:
        return int(conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
                   .fetchone()[0])


def run(database: str, nodes: int, seconds: float, postmaster: int | None = None) -> dict:
    pg = database.startswith("postgresql://")
    before_cpu, before_commits = server_cpu(server_pids(postmaster)), xact_commit(database) if pg else 0
    out: mp.Queue = mp.Queue()
    procs = [mp.get_context("fork").Process(target=node, args=(database, seconds, i, out)) for i in range(nodes)]
    for p in procs:
        p.start()
    results = [out.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    polls = sum(r["polls"] for r in results)
    # the server's CPU, children that came and went included (a backend's CPU is lost when it
    # exits: the nodes keep theirs open until they stop, after this is read)
    cpu = sum(r["cpu"] for r in results) + server_cpu(server_pids(postmaster)) - before_cpu
    commits = (xact_commit(database) - before_commits) if pg else sum(r["commits"] for r in results)
    wall = max(r["wall"] for r in results)
    return {"backend": "postgresql" if pg else "sqlite", "nodes": nodes, "polls": polls,
            "polls_s": polls / wall, "cpu_ms_poll": 1000 * cpu / max(1, polls),
            "statements_poll": sum(r["statements"] for r in results) / max(1, polls),
            "commits_poll": commits / max(1, polls)}


def fresh(database: str | None, folder: Path, feeds: int, tag: str) -> str:
    """A new store with ``feeds`` feeds, all due: a SQLite file, or a schema on the server."""
    if database is None:
        db = str(folder / f"{tag}.db")
    else:
        import pg_server
        db, _ = pg_server.schema_url(database)
    store = Store(db)
    store.add_feeds([(f"https://h{i % 20}.example/{i}.xml", None, None) for i in range(feeds)], now=0.0)
    store.close()
    return db


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--feeds", type=int, default=20_000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--nodes", default="1,2,4")
    ap.add_argument("--database", help="a PostgreSQL server to use (default: start a throwaway one)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="store-bench-"))
    server, postmaster = None, None
    url = args.database
    if url is None:
        import pg_server
        server = pg_server.Server(Path(tempfile.mkdtemp(prefix="store-bench-pg-")), port=5499)
        url = server.url
        pg_server.prepare(url)
        postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
    rows = []
    try:
        rows.append(run(fresh(None, folder, args.feeds, "sqlite"), 1, args.seconds))
        for n in (int(x) for x in args.nodes.split(",")):
            rows.append(run(fresh(url, folder, args.feeds, f"pg{n}"), n, args.seconds, postmaster))
    finally:
        if server is not None:
            server.stop()
    print(f"store cost per poll: {args.feeds:,} feeds, {args.seconds:g} s per configuration, {os.cpu_count()} cores, "
          f"{int(CHANGED * 100)} % of polls record two new entries")
    if postmaster is None:
        print("(a server of your own: its CPU is not counted, only the nodes')")
    print(f"{'backend':10} {'nodes':>5} {'polls/s':>9} {'cpu ms/poll':>12} {'statements':>11} {'commits':>8}")
    for r in rows:
        print(f"{r['backend']:10} {r['nodes']:>5} {r['polls_s']:>9,.0f} {r['cpu_ms_poll']:>12.3f} "
              f"{r['statements_poll']:>11.2f} {r['commits_poll']:>8.2f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    print(f"reproduce: {sys.executable} bench/store_backends.py --feeds {args.feeds} --seconds {args.seconds:g} "
          f"--nodes {args.nodes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
