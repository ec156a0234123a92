"""Who is working on what: leases (issue 15).

Whatever a process works on (an alert being sent, a feed being polled) carries an *owner* and
an *expiry* in the database. A claim succeeds only on work nobody holds or whose lease has run
out, so a crashed process's work is taken over when its lease expires, without a restart, and
nobody ever resets a live owner's claims. At start-up a daemon also frees, at once, the leases
of owners on its own host whose process is gone (a kill -9 need not wait for the expiry).

An owner is ``host:pid:token``: the token tells a process from an earlier one with the same pid.
Pure, but for ``OWNER`` (made once per process) and ``alive`` (asks the kernel).
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable, Iterable

HOST = socket.gethostname()
OWNER = f"{HOST}:{os.getpid()}:{secrets.token_hex(4)}"


def alive(pid: int) -> bool:
    """Is a process with this pid running on this host? (signal 0 checks without signalling)"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def dead(owners: Iterable[str], host: str = HOST, me: str = OWNER,
         is_alive: Callable[[int], bool] = alive) -> list[str]:
    """The owners among ``owners`` known to be gone: on this host, not ``me``, and whose pid no
    longer runs. An owner on another host, or one that cannot be read, waits for its lease."""
    gone = []
    for owner in owners:
        h, _, rest = owner.partition(":")
        pid = rest.partition(":")[0]
        if owner == me or h != host or not pid.isdigit():
            continue
        # our own pid under another token: an earlier process that had it (a restarted container)
        if pid == me.split(":")[1] or not is_alive(int(pid)):
            gone.append(owner)
    return gone


# Cluster mode (monitor/cluster.py): the work queue's queue of poll jobs, and how long a node's
# worker may go without a heartbeat before the node counts as gone (here: the store's status reads them).
POLL_QUEUE = "polls"
STALLED_AFTER = 20.0  # seconds: four missed heartbeats
