"""The local HTTP endpoint ([http], off by default): ``/healthz``, ``/metrics`` and, with
``[web] public_url``, ``/feedback/<token>`` (the one-click feedback links, monitor/feedback.py).

aiohttp's server on the daemon's own event loop: no thread, and a loop that hangs stops
answering ``/healthz`` too, which is what a health check should see. The answers come from
two plain functions, so this module knows nothing about the daemon.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from html import escape
from typing import NamedTuple

from aiohttp import web

log = logging.getLogger(__name__)

Health = Callable[[], tuple[bool, str]]  # (healthy, reason)
Exposition = Callable[[], tuple[bytes, str]]  # (body, content type)
# Every page is ours alone: no script, no style or frame from elsewhere, no referrer (the token is
# in the URL), nothing cached or indexed.
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'none'; form-action 'self'; frame-ancestors 'none'",
                "Referrer-Policy": "no-referrer", "Cache-Control": "no-store", "X-Robots-Tag": "noindex"}


class Page(NamedTuple):
    """A minimal HTML answer: a heading, one paragraph and, when ``button`` is set, a form that
    POSTs to the same URL."""

    status: int
    title: str
    text: str
    button: str | None = None


class Feedback(NamedTuple):
    look: Callable[[str], Awaitable[Page]]  # GET: shows, records nothing
    record: Callable[[str], Awaitable[Page]]  # POST: records


def html(page: Page) -> str:
    """The page as HTML, every text escaped. Pure."""
    form = (f'<form method="post"><button type="submit">{escape(page.button)}</button></form>'
            if page.button else "")
    return (f'<!doctype html><html><head><meta charset="utf-8"><meta name="robots" content="noindex">'
            f"<title>{escape(page.title)}</title></head><body><h1>{escape(page.title)}</h1>"
            f"<p>{escape(page.text)}</p>{form}</body></html>\n")


def _respond(page: Page) -> web.Response:
    return web.Response(status=page.status, text=html(page), content_type="text/html", charset="utf-8",
                        headers=PAGE_HEADERS)


def app(health: Health, metrics: Exposition, feedback: Feedback | None = None) -> web.Application:
    async def healthz(request: web.Request) -> web.Response:
        ok, reason = health()
        return web.Response(status=200 if ok else 503, text=reason + "\n")

    async def exposition(request: web.Request) -> web.Response:
        body, ctype = metrics()
        return web.Response(body=body, headers={"Content-Type": ctype})

    application = web.Application()
    application.router.add_get("/healthz", healthz)
    application.router.add_get("/metrics", exposition)
    if feedback is not None:
        async def look(request: web.Request) -> web.Response:
            return _respond(await feedback.look(request.match_info["token"]))

        async def record(request: web.Request) -> web.Response:
            return _respond(await feedback.record(request.match_info["token"]))

        application.router.add_get("/feedback/{token}", look)
        application.router.add_post("/feedback/{token}", record)
    return application


async def serve(host: str, port: int, health: Health, metrics: Exposition,
                feedback: Feedback | None = None) -> web.AppRunner:
    """Start listening; the caller stops it with ``await runner.cleanup()``. Raises OSError
    when the address is taken. Access is not logged: the feedback URLs carry their tokens."""
    runner = web.AppRunner(app(health, metrics, feedback), access_log=None, handle_signals=False)
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
