"""One daemon per database, and a heartbeat that survives a full disk (issue 15).

``monitor run`` holds an exclusive ``flock`` on ``DATABASE.daemon`` for as long as it runs. A
second daemon on the same database cannot take it and refuses to start, naming the first one's
pid (exit 2). The kernel drops the lock when the process dies, however it dies (kill -9
included), so a stale file never blocks a restart.

The same file carries the daemon's heartbeat: pid, start, last tick and what is wrong with the
database, as one JSON object rewritten in place each tick. The file is allocated once at a fixed
size, so rewriting it needs no new disk block: it still works when the disk is full or the
database is locked, which is exactly when ``monitor status`` must tell "running, database
unwritable: disk full" apart from "not ticking". A reader knows the daemon is alive when it
cannot take the lock itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

from .errors import MonitorError

SIZE = 4096  # bytes: the heartbeat, padded with spaces


def path_for(database: str | Path) -> Path:
    return Path(f"{database}.daemon")


class DaemonLock:
    def __init__(self, database: str | Path):
        self.database = Path(database)
        self.path = path_for(database)
        self.fd: int | None = None

    def acquire(self, **state: Any) -> None:
        """Take the lock, or raise MonitorError naming the daemon that holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o640)
        for attempt in range(5):  # a reader (``read``) holds a shared lock for a few microseconds
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt < 4:
                    time.sleep(0.02)
                    continue
                other = _parse(os.pread(fd, SIZE, 0))
                os.close(fd)
                pid = other.get("pid", "?") if other else "?"
                raise MonitorError(f"another daemon (pid {pid}) is running on {self.database}; stop it first, "
                                   f"or give this one another [monitor] database") from None
        try:
            os.posix_fallocate(fd, 0, SIZE)
        except OSError:  # a full disk at start-up: the heartbeat is written as far as it fits
            pass
        self.fd = fd
        self.write(**state)

    def write(self, **state: Any) -> bool:
        """Replace the heartbeat in place; False if even that failed."""
        if self.fd is None:
            return False
        data = json.dumps(state, default=str).encode()[:SIZE - 1]
        try:
            os.pwrite(self.fd, data + b" " * (SIZE - len(data)), 0)
        except OSError:
            return False
        return True

    def release(self, **state: Any) -> None:
        if self.fd is None:
            return
        self.write(**state)
        with contextlib.suppress(OSError):
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None


def read(database: str | Path) -> tuple[bool, dict[str, Any] | None]:
    """(a daemon holds the lock now, its last heartbeat or None). Never blocks."""
    path = path_for(database)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False, None
    try:
        state = _parse(os.pread(fd, SIZE, 0))
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True, state
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False, state
    finally:
        os.close(fd)


def _parse(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw.decode("utf-8", "replace").strip() or "null")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
