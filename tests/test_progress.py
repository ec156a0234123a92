"""Progress of `monitor once` and `monitor rules test` through the real CLI: a tqdm bar under a
pseudo-terminal (os.openpty, as a person's shell gives it), plain lines through pipes (as CI and
`| tee` see them), with no bar and no terminal control characters."""

from __future__ import annotations

import fcntl
import os
import select
import struct
import subprocess
import termios
import time

from conftest import monitor_cmd, rss, run_cli, write_config
from test_cli import _stored

CONTROL = ("\r", "\x1b", "%|", "it/s")
FEEDS = 12


def in_terminal(*args: str, timeout: float = 120) -> tuple[int, str]:
    """Run the real CLI with stdin, stdout and stderr on a 100x30 pseudo-terminal; its exit
    status and everything it wrote (read as it comes: a pty's buffer is small)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    proc = subprocess.Popen([*monitor_cmd(), *args], stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    out, deadline = bytearray(), time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every writer closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        return proc.wait(timeout=30), out.decode("utf-8", "replace")
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()


def _feeds(tmp_path, feed_server):
    urls = [feed_server.add(f"/f{i}.xml", rss([{"title": f"Wetter {i}", "link": f"http://example.org/{i}",
                                                "guid": str(i)}])) for i in range(FEEDS)]
    return write_config(tmp_path, feeds=urls, channels={"console": ["log://"]})


def test_once_shows_a_bar_on_a_terminal(tmp_path, feed_server):
    status, out = in_terminal("once", "--config", str(_feeds(tmp_path, feed_server)))
    assert status == 0, out
    assert "polled: 100%|" in out and f"| {FEEDS}/{FEEDS} " in out and "\r" in out, out
    assert out.count(" polled feed=") == FEEDS  # the log lines go above the bar, all of them
    assert f"feeds={FEEDS} baseline={FEEDS}" in out


def test_once_stays_plain_through_a_pipe(tmp_path, feed_server):
    res = run_cli("once", "--config", str(_feeds(tmp_path, feed_server)))
    assert res.returncode == 0, res.stderr
    assert res.stderr.count(" polled feed=") == FEEDS and res.stdout.startswith(f"feeds={FEEDS} ")
    for c in CONTROL:
        assert c not in res.stdout + res.stderr, repr(c)


def test_rules_test_shows_progress_on_a_terminal_and_plain_lines_through_a_pipe(tmp_path):
    cfg = write_config(tmp_path, feeds=[], channels={"console": ["log://"]})
    _stored(tmp_path)
    status, out = in_terminal("rules", "test", "kursk", "--config", str(cfg))
    assert status == 0, out
    assert "checked: 3 articles [" in out and "\r" in out, out
    assert "#1 Gefechte im Gebiet Kursk" in out and "rule kursk: would have fired on 2 of 3" in out
    res = run_cli("rules", "test", "kursk", "--config", str(cfg))
    assert res.returncode == 0 and res.stdout.startswith("#1 Gefechte im Gebiet Kursk\n"), res.stdout + res.stderr
    for c in CONTROL:
        assert c not in res.stdout + res.stderr, repr(c)
