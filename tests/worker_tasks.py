"""Top-level functions for tests/test_workers.py to run in a worker process. They live in
their own module because a worker unpickles a task by importing its function by name."""

from __future__ import annotations

import os
import threading
import time


def add(a: int, b: int) -> int:
    return a + b


def sleep_then(seconds: float, value: object) -> object:
    time.sleep(seconds)
    return value


def boom(message: str = "boom") -> None:
    raise ValueError(message)


def die() -> None:
    os._exit(3)  # the worker process vanishes without an answer


def pid() -> int:
    return os.getpid()


def make_lock() -> object:
    return threading.Lock()  # cannot be pickled back to the caller


def where() -> str:
    return __file__


def spin(seconds: float) -> float:
    """Burn CPU (not sleep) for about ``seconds``."""
    end = time.process_time() + seconds
    n = 0
    while time.process_time() < end:
        n += 1
    return seconds


def modules() -> list[str]:
    """The modules this worker has loaded: what it holds in memory (issue 16)."""
    import sys

    return sorted(sys.modules)


def swallow_everything(seconds: float) -> str:
    """A task whose own ``except Exception`` would hide an interruption that were an Exception."""
    try:
        spin(seconds)
    except Exception:
        return "swallowed"
    return "finished"


def size(data: bytes) -> int:
    return len(data)


def blob(n: int) -> bytes:
    return b"x" * n


def slow_exit(seconds: float) -> int:
    """Make this worker's exit take ``seconds`` (a finaliser that sleeps, run as the process
    ends), as a big heap to free or a slow disk would."""
    from multiprocessing import util

    util.Finalize(None, time.sleep, (seconds,), exitpriority=100)
    return os.getpid()


def hang_up_then_linger(seconds: float) -> None:
    """Close this worker's end of the pipe, as a dying process does, and stay for ``seconds``."""
    for fd in map(int, os.listdir("/proc/self/fd")):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                os.close(fd)
        except OSError:
            pass
    time.sleep(seconds)
    os._exit(5)
