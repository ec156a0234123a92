"""The local HTTP endpoint ([http], off by default): ``/healthz`` and ``/metrics``.

aiohttp's server on the daemon's own event loop: no thread, and a loop that hangs stops
answering ``/healthz`` too, which is what a health check should see. The answers come from
two plain functions, so this module knows nothing about the daemon.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web

log = logging.getLogger(__name__)

Health = Callable[[], tuple[bool, str]]  # (healthy, reason)
Exposition = Callable[[], tuple[bytes, str]]  # (body, content type)


def app(health: Health, metrics: Exposition) -> web.Application:
    async def healthz(request: web.Request) -> web.Response:
        ok, reason = health()
        return web.Response(status=200 if ok else 503, text=reason + "\n")

    async def exposition(request: web.Request) -> web.Response:
        body, ctype = metrics()
        return web.Response(body=body, headers={"Content-Type": ctype})

    application = web.Application()
    application.router.add_get("/healthz", healthz)
    application.router.add_get("/metrics", exposition)
    return application


async def serve(host: str, port: int, health: Health, metrics: Exposition) -> web.AppRunner:
    """Start listening; the caller stops it with ``await runner.cleanup()``. Raises OSError
    when the address is taken."""
    runner = web.AppRunner(app(health, metrics), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    urls = " ".join(f"http://{a[0]}:{a[1]}" for a in runner.addresses if isinstance(a, tuple))
    log.info("http listening on=%s", urls or f"{host}:{port}")
    if host not in ("127.0.0.1", "::1", "localhost"):
        log.warning("http endpoint is not on loopback host=%s: /metrics is readable from the network", host)
    return runner
