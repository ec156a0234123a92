"""The sd_notify protocol in a few lines of standard library, instead of a C dependency
(python-systemd needs libsystemd headers to build).

systemd passes ``$NOTIFY_SOCKET``, an AF_UNIX datagram socket: a path, or an abstract name
written with a leading ``@`` (sd_notify(3)). A message is newline-separated ``KEY=VALUE``
lines: READY=1, STATUS=..., WATCHDOG=1, RELOADING=1, STOPPING=1. Without ``$NOTIFY_SOCKET``
(not under systemd, or Type=simple) every call is a no-op, so the daemon never needs to ask.
Sending never raises: a lost status line must not stop the monitoring.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


def _address(env: Mapping[str, str]) -> str | None:
    addr = env.get("NOTIFY_SOCKET", "")
    if not addr or addr[0] not in "/@":  # sd_notify(3) also accepts vsock: not ours to support
        return None
    return "\0" + addr[1:] if addr[0] == "@" else addr


def send(*lines: str, env: Mapping[str, str] = os.environ) -> bool:
    """Send ``KEY=VALUE`` lines as one datagram; True if sent, False if there is no socket."""
    addr = _address(env)
    if addr is None or not lines:
        return False
    message = "\n".join(line.replace("\n", " ") for line in lines).encode("utf-8")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(addr)
            sock.sendall(message)
        return True
    except OSError as e:
        log.warning("sd_notify failed socket=%s error=%r", env.get("NOTIFY_SOCKET"), str(e))
        return False


def watchdog_period(env: Mapping[str, str] = os.environ) -> float | None:
    """Seconds between WATCHDOG=1 pings: half of ``$WATCHDOG_USEC`` (sd_watchdog_enabled(3)
    recommends pinging at half the timeout), or None when the watchdog is off or meant for
    another process (``$WATCHDOG_PID``)."""
    try:
        usec = int(env.get("WATCHDOG_USEC", "0"))
        pid = int(env.get("WATCHDOG_PID", "0") or 0)
    except ValueError:
        return None
    if usec <= 0 or (pid and pid != os.getpid()):
        return None
    return usec / 2_000_000
