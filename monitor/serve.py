"""The worker processes' side of workers.Pool: receive a task, run it, send the answer back.

Apart from workers.py so that a worker imports neither asyncio nor the pool (issue 16): the
forkserver imports this module once (workers.Pool's preload), and every worker forked from it
shares it, where unpickling ``workers._serve`` used to import both into each worker.
"""

from __future__ import annotations

import signal
import time
from multiprocessing.connection import Connection
from typing import Any

from .errors import MonitorError


class WorkerError(MonitorError):
    """A task ran over its time limit, or its worker died."""


def serve(conn: Connection, max_tasks: int) -> None:
    """Worker main loop: receive (fn, args), send (ok, value, cpu seconds so far); exit after
    max_tasks."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    for _ in range(max_tasks):
        try:
            fn, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply: tuple[bool, Any, float] = (True, fn(*args), 0.0)
        except Exception as e:  # sent back to the caller, which re-raises it
            reply = (False, e, 0.0)
        try:
            conn.send((*reply[:2], time.process_time()))
        except (BrokenPipeError, ConnectionResetError):  # the daemon is gone (kill -9): nobody to answer
            return
        except Exception as e:  # e.g. an unpicklable result or exception
            conn.send((False, WorkerError(f"cannot return the result: {type(e).__name__}: {e}"),
                       time.process_time()))
    conn.close()
