"""Cluster mode's work queue (issue 19, monitor/cluster.py) on a real PostgreSQL: due feeds
become Procrastinate poll jobs, a worker runs them through the node's dispatcher and hands back
what it holds, and the jobs of a node whose worker stopped beating are taken back within
seconds, not after the feeds' 15-minute lease. The whole daemon on this path: the PostgreSQL
end-to-end tests (test_end_to_end.py) and bench/cluster.py (kill -9 of nodes under load)."""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest
from conftest import Clock

from monitor import cluster
from monitor.models import Feed
from monitor.store import connect
from monitor.store.aio import AsyncStore

INTERVAL = 600.0


class Recorder:
    """The dispatcher's side of a poll job (``poll_these``): the feeds it was given, of which
    it starts those in ``start`` and records the polls of those in ``record`` (a real record:
    ``save_poll`` releases the lease); the others it never starts (the dispatcher stopping)."""

    def __init__(self, store, start: set[str], record: set[str]):
        self.store, self.start, self.record = store, start, record
        self.given: list[list[str]] = []

    async def poll_these(self, feeds: list[Feed], started: set[int]) -> set[int]:
        from monitor.models import FeedUpdate
        self.given.append(sorted(f.url for f in feeds))
        started.update(f.id for f in feeds if f.url in self.start)
        for f in feeds:
            if f.url in self.record:
                await self.store.save_poll(f, FeedUpdate(next_check_at=time.time() + INTERVAL), now=time.time())
        return started


def _rows(url: str, sql: str, params=()) -> list[tuple]:
    with psycopg.connect(url) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description is not None else []


def _feeds(url: str) -> dict[str, tuple]:
    return {u: (owner, until, due) for u, owner, until, due in _rows(
        url, "SELECT url, lease_owner, lease_until, next_check_at FROM feeds")}


@pytest.fixture
def store(pg_url):
    db = AsyncStore(connect(pg_url))
    db.store.sync_feeds([(f"https://h{i % 2}.example/f{i}", None, None) for i in range(5)], now=time.time() - 10)
    yield db
    db.close()


def _queue(pg_url, store, dispatcher=None, clock=None) -> cluster.WorkQueue:
    return cluster.WorkQueue(pg_url, store, concurrency=4, lease=900.0, poll_interval=INTERVAL,
                             default_interval=INTERVAL, dispatcher=dispatcher, clock=clock or time.time)


async def _worker(queue: cluster.WorkQueue):
    """A worker beating in the database, as a running node's is."""
    manager = queue.app.job_manager
    return await manager.register_worker()


def test_the_work_queue_tables_are_made_once_by_the_migration(pg_url, store):
    assert _rows(pg_url, "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() "
                         "AND table_name LIKE 'procrastinate%%'")[0][0] >= 4
    connect(pg_url).close()  # a second open (another node) leaves them as they are
    assert _rows(pg_url, "SELECT COUNT(*) FROM procrastinate_jobs")[0][0] == 0


def test_due_feeds_become_poll_jobs_only_for_live_workers_and_a_worker_hands_back_what_it_holds(pg_url, store):
    urls = sorted(_feeds(pg_url))
    recorder = Recorder(store, start=set(urls[:3]), record=set(urls[:2]))
    clock = Clock(time.time())

    async def go():
        queue = _queue(pg_url, store, recorder, clock)
        await queue.open()
        try:
            assert await queue.enqueue() == 0  # no worker beats: nothing is claimed
            assert all(owner is None for owner, _, _ in _feeds(pg_url).values())
            await _worker(queue)
            clock.advance(cluster.ENQUEUE_EVERY)  # the next period (one enqueue per second, cluster-wide)
            assert await queue.enqueue() == 3  # 5 feeds, 2 a job (half the concurrency)
            assert await queue.enqueue() == 0  # not its turn again within the second
            jobs = _rows(pg_url, "SELECT args FROM procrastinate_jobs WHERE status = 'todo' ORDER BY id")
            assert sorted(i for (args,) in jobs for i in args["feeds"]) == sorted(
                i for (i,) in _rows(pg_url, "SELECT id FROM feeds"))
            tokens = {args["token"] for (args,) in jobs}
            assert len(tokens) == 1 and {o for o, _, _ in _feeds(pg_url).values()} == tokens
            assert await store.work_queue_counts() == {"todo": 3, "workers": 1}  # what /metrics shows
            started = clock()
            await queue.app.run_worker_async(queues=[cluster.QUEUE], wait=False, install_signal_handlers=False,
                                             delete_jobs="successful")
            return started
        finally:
            await queue.close()

    started = asyncio.run(go())
    assert sorted(u for given in recorder.given for u in given) == urls
    assert _rows(pg_url, "SELECT COUNT(*) FROM procrastinate_jobs")[0][0] == 0  # all succeeded, deleted
    after = _feeds(pg_url)
    assert all(owner is None and until is None for owner, until, _ in after.values())  # nothing left held
    assert after[urls[2]][2] >= started + INTERVAL  # started, not recorded: may have been fetched
    for u in urls[3:]:
        assert after[u][2] <= started  # never started: due as before


def test_the_jobs_of_a_node_that_stopped_beating_are_taken_back(pg_url, store):
    clock = Clock(time.time())

    async def go():
        queue = _queue(pg_url, store, clock=clock)
        await queue.open()
        try:
            manager = queue.app.job_manager
            dead = await _worker(queue)
            assert await queue.enqueue() == 3
            job = await manager.fetch_job(queues=[cluster.QUEUE], worker_id=dead)  # the node takes a job ...
            assert job is not None
            assert await queue.recover() == 0  # ... and beats: nothing to take back
            _rows(pg_url, "UPDATE procrastinate_workers SET last_heartbeat = NOW() - INTERVAL '1 minute' "
                          "WHERE id = %s", [dead])  # ... then dies: its heartbeat stops
            clock.advance(1.0)
            before = clock()
            assert await queue.recover() == 0  # one look per RECOVER_EVERY, cluster-wide
            clock.advance(cluster.RECOVER_EVERY)  # its next period
            assert await queue.recover() == 1
            return job, before
        finally:
            await queue.close()

    job, before = asyncio.run(go())
    assert _rows(pg_url, "SELECT status FROM procrastinate_jobs WHERE id = %s", [job.id]) == [("failed",)]
    feeds = {i: (owner, due) for i, owner, due in _rows(pg_url, "SELECT id, lease_owner, next_check_at FROM feeds")}
    for i in job.task_kwargs["feeds"]:
        owner, due = feeds[i]
        assert owner is None and due >= before + INTERVAL  # free, and not polled again within its interval
    others = [f for i, f in feeds.items() if i not in job.task_kwargs["feeds"]]
    assert others and all(owner is not None for owner, _ in others)  # the live jobs keep theirs
    assert _rows(pg_url, "SELECT COUNT(*) FROM procrastinate_workers")[0][0] == 0  # the dead worker pruned


def test_a_database_that_is_away_when_a_job_ends_gets_its_feeds_back_once_it_returns(pg_url, store, monkeypatch):
    """The hand back is retried: a lease left behind would keep the feed from every node."""
    calls = []

    class Flaky:
        def __getattr__(self, name):
            return getattr(store, name)

        async def hand_back(self, *args):
            calls.append(args)
            if len(calls) < 3:
                from monitor.store import StoreError
                raise StoreError("database unavailable", "down")
            return await store.hand_back(*args)

    queue = _queue(pg_url, Flaky())
    token = "job:test"
    ids = [i for (i,) in _rows(pg_url, "SELECT id FROM feeds")]
    _rows(pg_url, "UPDATE feeds SET lease_owner = %s, lease_until = 1e12", [token])
    monkeypatch.setattr(cluster, "RESTART_WAIT", 0.05)  # the pause between tries
    asyncio.run(queue._hand_back(token, ids, ids))
    assert len(calls) == 3
    assert all(owner is None for owner, _, _ in _feeds(pg_url).values())


def test_a_poll_job_cancelled_while_its_polls_run_hands_back_the_started_ones_as_started(pg_url, store):
    """A worker shutting down cancels its jobs: the feeds whose polls had begun may have been
    fetched, so they wait one interval, as after any poll; only those never started are free."""
    urls = sorted(_feeds(pg_url))
    polling = asyncio.Event()

    class Slow:
        async def poll_these(self, feeds: list[Feed], started: set[int]) -> set[int]:
            started.update(f.id for f in feeds if f.url in urls[:2])
            polling.set()
            await asyncio.sleep(3600)  # the polls run on when the job is cancelled
            return started

    queue = _queue(pg_url, store, Slow())
    token = "job:test"
    _rows(pg_url, "UPDATE feeds SET lease_owner = %s, lease_until = 1e12", [token])  # claimed for the job
    ids = [i for (i,) in _rows(pg_url, "SELECT id FROM feeds ORDER BY url")]

    async def go() -> float:
        job = asyncio.create_task(queue.poll(token, ids))
        await polling.wait()
        started = time.time()
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
        return started

    started = asyncio.run(go())
    after = _feeds(pg_url)
    assert all(owner is None for owner, _, _ in after.values()), after
    assert all(after[u][2] >= started + INTERVAL - 1 for u in urls[:2]), after  # begun: one interval on
    assert all(after[u][2] <= started for u in urls[2:]), after  # never started: due as before


def test_a_jobs_feeds_are_held_in_the_running_nodes_name_so_its_restart_frees_them():
    """A node killed and restarted on its machine frees its jobs' feeds at start (the daemon's
    ``recover``: leases.dead), without waiting for the heartbeat's STALLED_AFTER."""
    from monitor import leases
    held = f"{leases.HOST}:999999:ab12cd34:job:{leases.HOST}:123:ef56ab78:0123456789ab"
    assert leases.dead([held], is_alive=lambda pid: pid != 999999) == [held]
    assert leases.dead([held], is_alive=lambda pid: True) == []
    assert leases.dead([held.replace(leases.HOST, "elsewhere", 1)], is_alive=lambda pid: False) == []


def test_metrics_show_the_work_queue(pg_url, store):
    from monitor.metrics import Metrics
    assert connect(pg_url).work_queue_counts() == {"workers": 0}
    metrics = Metrics()
    metrics.snapshot, metrics.database_up = store.store.snapshot()._replace(
        cluster={"todo": 7, "doing": 2, "workers": 3}), True
    text = metrics.render()[0].decode()
    assert 'monitor_cluster_jobs{state="todo"} 7.0' in text and 'monitor_cluster_jobs{state="failed"} 0.0' in text
    assert "monitor_cluster_workers 3.0" in text
    sqlite = Metrics()
    sqlite.snapshot, sqlite.database_up = store.store.snapshot()._replace(cluster={}), True
    assert "monitor_cluster" not in sqlite.render()[0].decode()  # a single node has no work queue


def test_status_names_the_clusters_workers_and_jobs(pg_url, store, tmp_path):
    """``monitor status`` on a node of a cluster (the real CLI): the work queue's state."""
    import json

    from conftest import run_cli, write_config

    cfg = write_config(tmp_path, feeds=[], channels={}, database=pg_url)

    async def go():
        queue = _queue(pg_url, store)
        await queue.open()
        try:
            await _worker(queue)
            assert await queue.enqueue() == 3
        finally:
            await queue.close()

    asyncio.run(go())
    out = run_cli("status", "--config", str(cfg))
    assert out.returncode == 0, out.stderr
    assert "cluster: workers=1 (beating in the last 20 s); poll jobs todo=3 doing=0 failed=0" in out.stdout, out.stdout
    out = run_cli("status", "--config", str(cfg), "--json")
    assert json.loads(out.stdout)["cluster"] == {"todo": 3, "workers": 1}


def test_feeds_claimed_for_a_job_never_queued_are_freed_after_a_minute(pg_url, store):
    """A scheduler that dies between its claim and its defer leaves feeds leased to a token no
    job carries: the next recovery frees them once the claim is ORPHAN_AFTER old, not before
    (an enqueue in progress), and leaves alone the feeds of jobs waiting or running."""
    now = time.time()
    ids = sorted(i for (i,) in _rows(pg_url, "SELECT id FROM feeds"))
    lease = 900.0
    _rows(pg_url, "UPDATE feeds SET lease_owner = 'job:gone:1:ab:cd', lease_until = %s WHERE id = ANY(%s)",
          [now - cluster.ORPHAN_AFTER - 1 + lease, ids[:2]])  # claimed 61 s ago, never deferred
    _rows(pg_url, "UPDATE feeds SET lease_owner = 'job:busy:1:ab:cd', lease_until = %s WHERE id = %s",
          [now - 5 + lease, ids[2]])  # claimed 5 s ago: its enqueue may still be deferring
    _rows(pg_url, "UPDATE feeds SET lease_owner = 'job:queued:1:ab:cd', lease_until = %s WHERE id = %s",
          [now - 300 + lease, ids[3]])  # an old claim whose job waits for a worker
    due = dict(_rows(pg_url, "SELECT id, next_check_at FROM feeds"))

    async def go():
        queue = _queue(pg_url, store)
        await queue.open()
        try:
            await queue.app.tasks["poll"].defer_async(token="job:queued:1:ab:cd", feeds=[ids[3]])
            return await queue.recover()
        finally:
            await queue.close()

    assert asyncio.run(go()) == 0  # no stalled job
    owners = dict(_rows(pg_url, "SELECT id, lease_owner FROM feeds"))
    assert owners[ids[0]] is None and owners[ids[1]] is None
    assert owners[ids[2]] == "job:busy:1:ab:cd" and owners[ids[3]] == "job:queued:1:ab:cd"
    assert dict(_rows(pg_url, "SELECT id, next_check_at FROM feeds")) == due  # never started: due as before


def test_a_backlog_brings_the_next_enqueue_sooner(pg_url, store):
    """While more feeds are due than the workers have room for, the next pass may come after
    ENQUEUE_BUSY rather than a whole ENQUEUE_EVERY (jobs of 304s end in milliseconds: a node
    would otherwise poll at most 2 x concurrency feeds a second); once the due feeds fit, the
    pace is back to once a second."""
    clock = Clock(time.time())

    async def go():
        queue = _queue(pg_url, store, clock=clock)
        await queue.open()
        try:
            await _worker(queue)
            for _ in range(3):  # the worker's room (SLOTS = 4 jobs) is taken but for one job
                await queue.app.tasks["poll"].defer_async(token="job:other", feeds=[])
            assert await queue.enqueue() == 1 and queue.backlog  # 2 of the 5 feeds: more are due
            clock.advance(cluster.ENQUEUE_BUSY)
            _rows(pg_url, "DELETE FROM procrastinate_jobs WHERE args->>'token' = 'job:other'")  # taken and done
            assert await queue.enqueue() == 2 and not queue.backlog  # the other 3 fit: no backlog
            await store.add_feeds([("https://h3.example/late", None, None)], clock() - 1)  # due now
            clock.advance(cluster.ENQUEUE_BUSY)
            assert await queue.enqueue() == 0  # not its turn yet: a second between passes again
            clock.advance(cluster.ENQUEUE_EVERY)
            assert await queue.enqueue() == 1
        finally:
            await queue.close()

    asyncio.run(go())


def test_a_feed_removed_or_paused_after_its_claim_is_let_go_not_polled(pg_url, store):
    urls = sorted(_feeds(pg_url))
    ids = dict(_rows(pg_url, "SELECT url, id FROM feeds"))
    token = "job:test:1:ab:cd"
    _rows(pg_url, "UPDATE feeds SET lease_owner = %s, lease_until = 1e12", [token])
    store.store.sync_feeds([(u, None, None) for u in urls[1:]], now=time.time())  # the first left the config
    store.store.pause_feed(urls[1], True, time.time())
    got = store.store.job_feeds(token, [ids[u] for u in urls], "host:1:ef")
    assert sorted(f.url for f in got) == urls[2:]
    owners = {u: o for u, (o, _, _) in _feeds(pg_url).items()}
    assert owners[urls[0]] is None and owners[urls[1]] is None
    assert all(owners[u] == f"host:1:ef:{token}" for u in urls[2:])


def _gone(store, pid: int, within: float = 10.0) -> None:
    """Wait until the server process ``pid`` has ended (with it, its session's advisory locks):
    the server ends a closed connection's process after the client has gone, not before."""
    deadline = time.monotonic() + within
    while store.db.execute("SELECT COUNT(*) FROM pg_stat_activity WHERE pid = ?", [pid]).fetchone()[0]:
        assert time.monotonic() < deadline, f"server process {pid} still there {within:g} s after its connection closed"
        time.sleep(0.01)


def test_a_host_slot_whose_holder_died_waits_out_the_fetch_timeout(pg_url, store):
    """per_host across nodes: a slot is an advisory lock (freed the moment its node's connection
    ends) and a row that keeps the slot of a node that died from being taken for the fetch
    timeout after it took it, since that node's request may still be at the host; a slot freed
    by its holder is free at once."""
    a, b, c, d = connect(pg_url), connect(pg_url), connect(pg_url), connect(pg_url)
    try:
        now = time.time()
        assert a.take_host_slot("h.example", [0, 1], "A", now, 30.0) == 0
        assert b.take_host_slot("h.example", [0, 1], "B", now, 30.0) == 1  # the other one
        assert c.take_host_slot("h.example", [0, 1], "C", now, 30.0) is None  # both held
        pid = a.db.execute("SELECT pg_backend_pid()").fetchone()[0]
        a.close()  # node A dies with its request in flight: its lock goes with its connection
        _gone(d, pid)  # ... once its server process has ended: a moment after the close (it failed once here)
        assert c.take_host_slot("h.example", [0], "C", now + 1, 30.0) is None  # its request may still be there
        assert c.take_host_slot("h.example", [0], "C", now + 31, 30.0) == 0  # not after the fetch timeout
        b.free_host_slot("h.example", 1, "B")
        assert d.take_host_slot("h.example", [1], "D", now + 2, 30.0) == 1  # at once
    finally:
        for s in (b, c, d):
            s.close()


def test_a_node_starting_with_the_clusters_config_locks_no_feed_row(pg_url, store):
    """A node's start registers the config's feeds (``sync_feeds``); a row already as the config
    says is not written, so a starting node does not wait for (or deadlock with) the rows the
    other nodes' poll jobs hold: the scale bench saw that deadlock when a fourth node started."""
    import threading

    specs = [(u, None, None) for u in sorted(_feeds(pg_url))]
    with psycopg.connect(pg_url) as other:  # another node's job holds every feed row
        other.execute("UPDATE feeds SET lease_owner = 'job:x'")
        done = threading.Event()
        starting = connect(pg_url)
        worker = threading.Thread(target=lambda: (starting.sync_feeds(specs, time.time()), done.set()), daemon=True)
        worker.start()
        finished = done.wait(5)
        other.rollback()
    worker.join(10)
    starting.close()
    assert finished  # it did not wait for the rows another transaction holds
