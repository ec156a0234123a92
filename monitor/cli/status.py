"""``monitor status``: the daemon's last tick, feeds by health and the outbox by state, read
from the database (a reader connection: it works while the daemon runs, or after it died) and
from the daemon's lock file, which tells a live daemon whose database fails ("running; database
unwritable: disk full") apart from one that stopped ticking."""

from __future__ import annotations

import json
import time
from collections import Counter

import click

from .. import dates, lockfile, schedule
from ..errors import MonitorError
from . import cli, config_option, fail

HEALTH = schedule.HEALTH


def _when(ts: float | None) -> str:
    return (dates.stamp(ts) or "?") if ts else "never"


def daemon_line(state: dict | None, tick: float, now: float, alive: bool = False,
                beat: dict | None = None) -> tuple[str, str]:
    """(running | stopped | not-ticking | never-ran, a sentence). ``alive``/``beat``: whether a
    daemon holds the database's lock now, and the heartbeat in its lock file (lockfile.py),
    which a full disk or a locked database cannot stop; ``state``: the heartbeat row in the
    database, for a daemon that is gone. Pure."""
    from ..service import stale_after

    if alive and beat:
        last = beat.get("last_tick_at") or beat.get("started_at") or now
        age, pid = now - last, beat.get("pid", "?")
        if age > stale_after(beat.get("tick") or tick):
            return "not-ticking", (f"daemon: NOT TICKING: running (pid {pid}) but its last tick was {age:.0f}s "
                                   f"ago at {_when(last)} (hung?)")
        if beat.get("database"):
            return "running", f"daemon: running (pid {pid}), last tick {age:.0f}s ago; database {beat['database']}"
        return "running", f"daemon: running (pid {pid}), last tick {age:.0f}s ago"
    if beat and beat.get("stopped_at") and not alive:  # said at its exit, even to a full disk
        return "stopped", f"daemon: stopped at {_when(beat['stopped_at'])} (pid {beat.get('pid', '?')})"
    if state is None:
        return "never-ran", "daemon: has never run on this database"
    if state["stopped_at"]:
        return "stopped", f"daemon: stopped at {_when(state['stopped_at'])} (pid {state['pid']})"
    last = state["last_tick_at"] or state["started_at"]
    age = now - last
    crashed = beat is not None and not alive  # it held the lock, and the kernel took it back
    if age > stale_after(tick) or crashed:
        return "not-ticking", (f"daemon: NOT TICKING: last tick {age:.0f}s ago at {_when(last)} "
                               f"(pid {state['pid']}; killed, hung or stopped without a trace)")
    return "running", f"daemon: running (pid {state['pid']}), last tick {age:.0f}s ago"


@cli.command("status")
@config_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def status_cmd(config_path: str, as_json: bool) -> None:
    """Show whether the daemon ticks, feeds by health and the outbox by state."""
    from .. import config as config_mod
    from ..store import connect

    try:
        cfg = config_mod.load(config_path)
        store = connect(cfg.database)
    except MonitorError as e:
        fail(str(e))
    alive, beat = lockfile.read(cfg.node_file)
    try:
        now, p = time.time(), cfg.poll
        health = store.health_counts(now, p.silent_after, p.silent_min)
        outbox = store.outbox_by_channel()
        notices = store.notices_by_state()
        state = store.daemon_state()
        cluster = store.work_queue_counts()  # PostgreSQL: the nodes' shared work queue
    except MonitorError as e:
        fail(str(e))
    finally:
        store.close()
    daemon, sentence = daemon_line(state, cfg.monitor.tick, now, alive, beat)
    by_state = Counter[str]()
    for s, _, n in outbox:
        by_state[s] += n
    if as_json:
        click.echo(json.dumps({
            "daemon": daemon, "pid": (beat or state or {}).get("pid"),
            "last_tick_at": (beat if alive and beat else state or {}).get("last_tick_at"),
            "database": beat.get("database") if alive and beat else None,
            "feeds": {h: health.get(h, 0) for h in HEALTH},
            "outbox": dict(by_state), "outbox_by_channel": [
                {"state": s, "channel": c, "alerts": n} for s, c, n in outbox],
            "notices": notices, **({"cluster": cluster} if cluster else {})}))
        return
    click.echo(sentence)
    click.echo("feeds: " + " ".join(f"{h}={health.get(h, 0)}" for h in HEALTH))
    click.echo("outbox: " + (" ".join(f"{s}={n}" for s, n in sorted(by_state.items())) or "empty"))
    for s, c, n in sorted(outbox):
        click.echo(f"  {s:8} {c:20} {n}")
    click.echo("notices: " + (" ".join(f"{s}={n}" for s, n in sorted(notices.items())) or "none"))
    if cluster:
        jobs = " ".join(f"{s}={cluster.get(s, 0)}" for s in ("todo", "doing", "failed"))
        from ..leases import STALLED_AFTER
        click.echo(f"cluster: workers={cluster.get('workers', 0)} (beating in the last {STALLED_AFTER:g} s); "
                   f"poll jobs {jobs}")
