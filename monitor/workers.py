"""A pool of worker processes for CPU-heavy, crash-prone work (feedparser, trafilatura), with a
time limit per task, awaitable from the event loop.

Why not ``multiprocessing.Pool`` or ``ProcessPoolExecutor``: their workers share one task
queue guarded by a lock, and a worker killed while idle (the OOM killer, a stray signal)
dies holding it; the next ``terminate()`` then blocks for ever, on the event loop's thread.
On 3.11 ``max_tasks_per_child`` also deadlocks (CPython gh-115634), and neither can kill one
hung task. Here each worker has its own pipe: a task over its limit kills only its own
worker, a dead worker fails only its own task, and nothing is shared to be left locked.
Workers ignore SIGINT and SIGHUP (they share the daemon's process group: Ctrl-C and
``kill -HUP`` are for the daemon) and are recycled every ``max_tasks`` tasks, so a leak in a
library cannot grow memory for ever.

Workers hold only what their tasks need (issue 16): the forkserver imports the ``preload``
modules once and every worker is forked from it, sharing those pages; multiprocessing would
also re-import the parent's ``__main__`` script in every worker (the ``monitor`` script, i.e.
the whole CLI: 70 MB a worker), which ``_Worker`` keeps it from doing, since tasks are functions
of ``monitor`` modules, never of ``__main__``.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing import reduction
from typing import Any, TypeVar

from .serve import WorkerError, serve

log = logging.getLogger(__name__)
T = TypeVar("T")
_ForkingPickler = reduction.ForkingPickler


def _framed(obj: Any) -> bytes:
    """``obj`` pickled as ``Connection.send`` writes it: its length, then the pickle."""
    data = _ForkingPickler.dumps(obj)
    n = len(data)
    return b"".join((struct.pack("!i", n) if n <= 0x7FFFFFFF else struct.pack("!iQ", -1, n), data))


async def _receive(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> bytearray:
    """One message as ``Connection.recv`` reads it (``_framed``), awaited piece by piece."""
    (size,) = struct.unpack("!i", await _exactly(loop, sock, 4))
    if size == -1:
        (size,) = struct.unpack("!Q", await _exactly(loop, sock, 8))
    return await _exactly(loop, sock, size)


async def _exactly(loop: asyncio.AbstractEventLoop, sock: socket.socket, n: int) -> bytearray:
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = await loop.sock_recv_into(sock, view[got:])
        if not k:
            raise EOFError("the worker closed its end")
        got += k
    return buf


@contextmanager
def _main_not_inherited() -> Iterator[None]:
    """While a worker starts, the parent's ``__main__`` names no file, so multiprocessing's
    preparation data (spawn.get_preparation_data) carries no ``init_main_from_path`` and the
    child does not run the script again. A ``__main__`` imported by name (``python -m``) is left
    alone: the child re-imports it only unless it is a package's ``__main__``, and our entry
    point is the file-based ``monitor`` script."""
    main = sys.modules.get("__main__")
    if main is None or getattr(main, "__spec__", None) is not None or "__file__" not in vars(main):
        yield
        return
    path = vars(main).pop("__file__")
    try:
        yield
    finally:
        main.__file__ = path


class _Worker:
    def __init__(self, ctx: Any, max_tasks: int):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=serve, args=(child, max_tasks), daemon=True,
                                name="monitor-worker")
        with _main_not_inherited():
            self.proc.start()
        child.close()
        self.tasks = 0
        self.cpu = 0.0  # the worker's CPU seconds as of its last reply
        self.expiry: asyncio.TimerHandle | None = None  # when it exits if it stays idle
        self._socket: socket.socket | None = None

    def sock(self) -> socket.socket:
        """The parent's end of the pipe as a non-blocking socket, for the event loop's
        ``sock_*`` calls (a duplex Pipe is a socketpair on POSIX), made at the first task."""
        if self._socket is None:
            self._socket = socket.socket(fileno=os.dup(self.conn.fileno()))
            self._socket.setblocking(False)
        return self._socket

    def kill(self, wait: float = 0.0) -> None:
        """Close the pipe and SIGKILL the worker if it still runs. With ``wait`` (at close),
        wait that long for it to go; else not at all: the event loop calls this for a worker
        that timed out, died or was recycled, and a process can take seconds to go (its exit
        finalisers, a big heap to free, a disk that does not answer). It is the forkserver's
        child, so the forkserver reaps it, and multiprocessing forgets it at the next
        ``Process.start`` (issue 16: an event loop that never waits)."""
        if self._socket is not None:
            self._socket.close()
        self.conn.close()
        if self.proc.is_alive():
            self.proc.kill()
        if wait:
            self.proc.join(wait)


async def _exit_code(loop: asyncio.AbstractEventLoop, proc: Any, within: float) -> int | None:
    """``proc``'s exit code once it has exited, waited for on the loop (its sentinel becomes
    readable when it goes) for at most ``within`` seconds; None if it is still there."""
    if proc.exitcode is None:  # a poll, it does not wait
        gone: asyncio.Future[None] = loop.create_future()
        fd = proc.sentinel

        def went() -> None:
            if not gone.done():
                gone.set_result(None)

        loop.add_reader(fd, went)
        try:
            await asyncio.wait_for(gone, within)
        except TimeoutError:
            pass
        finally:
            loop.remove_reader(fd)
    return proc.exitcode


IDLE_EXIT = 60.0  # seconds a worker waits for its next task before it exits (0: never)


class Pool:
    def __init__(self, size: int = 0, *, max_tasks: int = 200, preload: tuple[str, ...] = (),
                 idle_exit: float = IDLE_EXIT):
        self.size = size or os.cpu_count() or 1
        self.max_tasks = max_tasks
        self.idle_exit = idle_exit
        # forkserver: never fork the daemon itself, which has threads (aiohttp, apscheduler).
        self._ctx = multiprocessing.get_context("forkserver")
        # One BLAS thread: numpy (py3langid's, preloaded) otherwise starts a pool of OpenBLAS threads
        # in the forkserver, one a core, for a language model's small products, beside workers that
        # take a core each already. The forkserver inherits this process's environment when it
        # starts, before it imports numpy: it is ready ~45 ms sooner (0.265 -> 0.22 s importing
        # the preload, ~0.04 s less CPU), and that start is inside a first pass (issue 16, G1).
        # An operator's own setting is kept.
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        # the workers' loop (asyncio-free: a worker never runs an event loop), then the freeze
        # (forkfreeze.py) after everything else the forkserver imports
        self._ctx.set_forkserver_preload([*preload, "monitor.serve", "monitor.forkfreeze"])
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._starting = threading.Lock()
        self.restarts = 0  # workers killed for a timeout or found dead
        self._retired_cpu = 0.0  # CPU seconds of workers gone (recycled or killed)

    async def run(self, fn: Callable[..., T], *args: Any, timeout: float) -> T:
        """Run ``fn(*args)`` in a worker; raise WorkerError after ``timeout`` seconds or if
        the worker dies. Exceptions raised by ``fn`` are re-raised here."""
        loop = asyncio.get_running_loop()
        if self._slots is None or self._loop is not loop:
            self._slots, self._loop = asyncio.Semaphore(self.size), loop
        async with self._slots:
            worker = self._take() or await self._spawn()
            keep = False
            try:
                ok, value = await self._call(loop, worker, fn, args, timeout)
                keep = True
            finally:
                self._release(worker, keep)
        if ok:
            return value
        raise value

    async def _call(self, loop: asyncio.AbstractEventLoop, worker: _Worker, fn: Callable[..., Any],
                    args: tuple, timeout: float) -> tuple[bool, Any]:
        """Send the task and read the answer without blocking the loop (issue 16): a body of
        200 KB does not fit the socket's buffer, and ``Connection.send`` then waited for the
        worker to read it, ``recv`` for it to write the whole answer, with every other poll held
        up meanwhile, and held for good if the worker stalled. Same framing as a
        ``multiprocessing.Connection`` (a 4-byte length, -1 and 8 bytes past 2 GiB, then the
        pickle), which the worker reads and writes with its own (``serve``)."""
        name = getattr(fn, "__name__", repr(fn))
        message = _framed((fn, args))
        sock = worker.sock()
        try:
            async with asyncio.timeout(timeout):
                await loop.sock_sendall(sock, message)
                ok, value, worker.cpu = _ForkingPickler.loads(await _receive(loop, sock))
            return ok, value
        except TimeoutError:
            raise WorkerError(f"{name} ran over the time limit of {timeout:g}s") from None
        except (EOFError, OSError):
            code = await _exit_code(loop, worker.proc, 1.0)
            raise WorkerError(f"{name}: worker died (exit code {code})") from None

    def _take(self) -> _Worker | None:
        """An idle worker that is still alive (one may have been killed while idle), or None."""
        while self._idle:
            worker = self._idle.pop()
            if worker.expiry is not None:
                worker.expiry.cancel()
            if worker.proc.is_alive():
                return worker
            log.warning("idle worker found dead pid=%s exit=%s", worker.proc.pid, worker.proc.exitcode)
            self.restarts += 1
            self._retire(worker)
            worker.kill()
        return None

    async def _spawn(self) -> _Worker:
        """A new worker, started on a thread of its own: ``Process.start`` waits for the
        forkserver's answer, and the first one waits for the forkserver to import its preload
        (~0.2 s: the event loop stood still at a daemon's first poll, issue 16), a later one for
        a fork (a few ms at each recycle). A worker whose caller stopped waiting is killed."""
        started = asyncio.ensure_future(in_thread(self._start))
        try:
            worker = await asyncio.shield(started)
        except asyncio.CancelledError:
            started.add_done_callback(_kill_started)
            raise
        self._all.add(worker)
        return worker

    def _start(self) -> _Worker:
        with self._starting:  # one at a time: _main_not_inherited edits the process's __main__
            return _Worker(self._ctx, self.max_tasks)

    def _release(self, worker: _Worker, healthy: bool) -> None:
        worker.tasks += 1
        if healthy and worker.tasks < self.max_tasks:
            self._idle.append(worker)
            if self.idle_exit and self._loop is not None:
                worker.expiry = self._loop.call_later(self.idle_exit, self._expire, worker)
            return
        if not healthy:
            self.restarts += 1
            log.warning("worker replaced pid=%s tasks=%d", worker.proc.pid, worker.tasks)
        self._retire(worker)
        worker.kill()  # a recycled worker is on its way out: not waited for

    def _expire(self, worker: _Worker) -> None:
        """A worker idle for ``idle_exit`` seconds exits: an idle daemon then holds only the
        forkserver, whose pages the workers shared (13 MB less PSS with 200 feeds answering 304:
        issue 16), and the next task forks a worker from it again in a few milliseconds."""
        if worker in self._idle:
            self._idle.remove(worker)
            self._retire(worker)
            worker.kill()

    def _retire(self, worker: _Worker) -> None:
        if worker in self._all:
            self._all.discard(worker)
            self._retired_cpu += worker.cpu

    def cpu_time(self) -> float:
        """CPU seconds used by this pool's workers, living and gone, as of their last reply
        (the work of a task killed for its time limit is not counted)."""
        return self._retired_cpu + sum(w.cpu for w in self._all)

    def close(self) -> None:
        for worker in self._idle:
            if worker.expiry is not None:
                worker.expiry.cancel()
        for worker in list(self._all):
            self._retire(worker)
            worker.kill(wait=5)
        self._all.clear()
        self._idle.clear()


def _kill_started(started: asyncio.Future[_Worker]) -> None:
    if not started.cancelled() and started.exception() is None:
        started.result().kill()


class _Overrun(BaseException):
    """Raised by the alarm in InProcess: a BaseException, so the task's own ``except Exception``
    (trafilatura has many) cannot swallow it."""


class InProcess:
    """The Pool's ``run`` for a one-off command on a single input: the task runs here, in this
    process, and no forkserver or worker is started (1-1.5 s and ~100 MB saved: issue 16).

    The time limit is the same number, enforced with SIGALRM (``setitimer``): when it rings, the
    task is interrupted at its next Python line and WorkerError says it ran over, as the pool's
    would. Differences, which one input makes harmless: a long call inside C (lxml parsing a
    huge page) finishes before the alarm is seen, and a crash of the library ends the command
    instead of failing only its task. The event loop waits while a task runs: there is nothing
    else for it to do. Main thread only (signals); elsewhere the task runs without a limit.
    """

    restarts = 0

    async def run(self, fn: Callable[..., T], *args: Any, timeout: float) -> T:
        if threading.current_thread() is not threading.main_thread() or timeout <= 0:
            return fn(*args)

        def ring(signum: int, frame: object) -> None:
            raise _Overrun

        # someone else's alarm (pytest-timeout's, say) is put back afterwards, less the time spent
        previous, (left, _) = signal.signal(signal.SIGALRM, ring), signal.getitimer(signal.ITIMER_REAL)
        started = time.monotonic()
        try:
            signal.setitimer(signal.ITIMER_REAL, timeout)
            try:
                return fn(*args)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except _Overrun:
            name = getattr(fn, "__name__", repr(fn))
            raise WorkerError(f"{name} ran over the time limit of {timeout:g}s") from None
        finally:
            signal.signal(signal.SIGALRM, previous)
            if left:
                signal.setitimer(signal.ITIMER_REAL, max(0.001, left - (time.monotonic() - started)))

    def cpu_time(self) -> float:
        return 0.0

    def close(self) -> None:
        pass


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` on a thread of its own, awaited: for work the event loop must not wait on
    but a process cannot take, as its result is too big to pickle back (a compiled rule set).
    A daemon thread, unlike ``asyncio.to_thread``'s: a stop does not wait for a result nobody
    will use."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if done.cancelled():
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)

    def work() -> None:
        try:
            result, error = fn(*args), None
        except BaseException as e:  # handed to the awaiting task, which decides
            result, error = None, e
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:  # the loop has closed: the daemon stopped meanwhile
            pass

    threading.Thread(target=work, name=getattr(fn, "__name__", "work"), daemon=True).start()
    return await done
