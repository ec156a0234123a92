"""The local HTTP endpoint ([http]): ``/healthz``, ``/metrics``, with ``[web] public_url``
``/feedback/<token>`` (the one-click feedback links, monitor/feedback.py) and, with ``[web]
console``, the team's console (console.py) on the same port.

aiohttp's server on the daemon's own event loop: no thread, and a loop that hangs stops
answering ``/healthz`` too, which is what a health check should see. The answers come from
plain functions and objects handed in, so this module knows nothing about the daemon.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, NamedTuple

from aiohttp import web

from ..feedback import Page, html

if TYPE_CHECKING:
    from .console import Console

__all__ = ["Page", "html", "Feedback", "app", "serve", "LOOPBACK"]
log = logging.getLogger(__name__)

Health = Callable[[], tuple[bool, str]]  # (healthy, reason)
Exposition = Callable[[], tuple[bytes, str]]  # (body, content type)
LOOPBACK = ("127.0.0.1", "::1", "localhost")
# Every page is ours alone: no script, no style or frame from elsewhere, no referrer (the token is
# in the URL), nothing cached or indexed.
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'none'; form-action 'self'; frame-ancestors 'none'",
                "Referrer-Policy": "no-referrer", "Cache-Control": "no-store", "X-Robots-Tag": "noindex"}


class Feedback(NamedTuple):
    look: Callable[[str], Awaitable[Page]]  # GET: shows, records nothing
    record: Callable[[str], Awaitable[Page]]  # POST: records


def _respond(page: Page) -> web.Response:
    return web.Response(status=page.status, text=html(page), content_type="text/html", charset="utf-8",
                        headers=PAGE_HEADERS)


def app(health: Health | None, metrics: Exposition | None, feedback: Feedback | None = None,
        console: Console | None = None) -> web.Application:
    """The application: health and metrics when given (the daemon), feedback links, the console."""
    middlewares = console.middlewares() if console is not None else []
    application = web.Application(middlewares=middlewares, client_max_size=4 * 1024 * 1024)
    if health is not None:
        async def healthz(request: web.Request) -> web.Response:
            ok, reason = health()
            return web.Response(status=200 if ok else 503, text=reason + "\n")

        application.router.add_get("/healthz", healthz)
    if metrics is not None:
        async def exposition(request: web.Request) -> web.Response:
            body, ctype = metrics()
            return web.Response(body=body, headers={"Content-Type": ctype})

        application.router.add_get("/metrics", exposition)
    if feedback is not None:
        async def look(request: web.Request) -> web.Response:
            return _respond(await feedback.look(request.match_info["token"]))

        async def record(request: web.Request) -> web.Response:
            return _respond(await feedback.record(request.match_info["token"]))

        application.router.add_get("/feedback/{token}", look)
        application.router.add_post("/feedback/{token}", record)
    if console is not None:
        console.install(application)
    return application


async def serve(host: str, port: int, health: Health | None, metrics: Exposition | None,
                feedback: Feedback | None = None, console: Console | None = None) -> web.AppRunner:
    """Start listening; the caller stops it with ``await runner.cleanup()``. Raises OSError
    when the address is taken. Access is not logged: the feedback URLs carry their tokens."""
    runner = web.AppRunner(app(health, metrics, feedback, console), access_log=None, handle_signals=False,
                           shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    urls = " ".join(f"http://{a[0]}:{a[1]}" for a in runner.addresses if isinstance(a, tuple))
    log.info("http listening on=%s%s", urls or f"{host}:{port}", " console=on" if console is not None else "")
    if host not in LOOPBACK:
        log.warning("http endpoint is not on loopback host=%s: /metrics is readable from the network", host)
    return runner
