"""All HTTP, with aiohttp: conditional GET, gzip, timeouts, a body cap, our User-Agent.

Errors are classified once here (``FetchError.kind``: dns, connect, timeout, tls,
http-NNN, too-large, ...) so that the feed's health says what went wrong.
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from . import USER_AGENT, schedule
from .errors import FetchError, NotModified
from .models import Feed, FetchResult

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"


@dataclass(frozen=True)
class Limits:
    connect_timeout: float = 10
    timeout: float = 30
    max_bytes: int = 10 * 1024 * 1024
    concurrency: int = 10
    per_host: int = 2
    user_agent: str = USER_AGENT


class Client:
    """One aiohttp session for the daemon's life; ``async with Client(limits) as http``."""

    def __init__(self, limits: Limits = Limits(), observe: Callable[[str, float], None] | None = None):
        self.limits = limits
        self.observe = observe  # (kind: feed | page | get, seconds) after every request, for metrics
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Client:
        connector = aiohttp.TCPConnector(
            limit=self.limits.concurrency, limit_per_host=self.limits.per_host,
            ttl_dns_cache=300,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=self.limits.timeout, sock_connect=self.limits.connect_timeout
            ),
            headers={"User-Agent": self.limits.user_agent or USER_AGENT},
            auto_decompress=True,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session:
            await self._session.close()

    async def feed(self, feed: Feed) -> FetchResult:
        """GET a feed with its stored validators. Raises NotModified on 304 or when the
        body hashes the same as last time (servers that ignore conditional GET)."""
        headers = {"Accept": FEED_ACCEPT}
        if feed.etag:
            headers["If-None-Match"] = feed.etag
        if feed.last_modified:
            headers["If-Modified-Since"] = feed.last_modified
        result = await self.get(feed.url, headers, kind="feed")
        if feed.body_hash and body_hash(result.body) == feed.body_hash:
            raise NotModified(feed.url, "same body", moved=result.moved, headers=result.headers)
        return result

    async def page(self, url: str) -> FetchResult:
        return await self.get(url, {"Accept": PAGE_ACCEPT}, kind="page")

    async def get(self, url: str, headers: dict[str, str] | None = None, kind: str = "get") -> FetchResult:
        started = time.monotonic()
        try:
            return await self._get(url, headers, started)
        finally:
            if self.observe is not None:
                self.observe(kind, time.monotonic() - started)

    async def _get(self, url: str, headers: dict[str, str] | None, started: float) -> FetchResult:
        if self._session is None:
            raise RuntimeError("Client used outside 'async with'")
        try:
            async with self._session.get(url, headers=headers or {}, allow_redirects=True,
                                         max_redirects=10) as resp:
                moved = _moved(resp)
                if resp.status == 304:
                    raise NotModified(url, moved=moved,
                                      headers={k.lower(): v for k, v in resp.headers.items()})
                if resp.status >= 400:
                    kind = "http-5xx" if resp.status >= 500 else f"http-{resp.status}"
                    raise FetchError(url, kind, f"HTTP {resp.status} {resp.reason or ''}".strip(),
                                     retry_after=_retry_after(resp.headers.get("Retry-After")))
                body = await _read_capped(resp, url, self.limits.max_bytes)
                return FetchResult(
                    url=str(resp.url), status=resp.status,
                    headers={k.lower(): v for k, v in resp.headers.items()},
                    body=body, elapsed_ms=int((time.monotonic() - started) * 1000), moved=moved,
                )
        except FetchError:
            raise
        except (TimeoutError, aiohttp.ServerTimeoutError):
            raise FetchError(url, "timeout", f"no complete answer within {self.limits.timeout:g}s") from None
        except aiohttp.TooManyRedirects:
            raise FetchError(url, "redirects", "too many redirects") from None
        except aiohttp.ClientConnectorCertificateError as e:
            raise FetchError(url, "tls", str(e.certificate_error)) from None
        except aiohttp.ClientConnectorError as e:
            if isinstance(e.os_error, socket.gaierror):
                raise FetchError(url, "dns", f"cannot resolve {e.host}") from None
            if isinstance(e.os_error, ssl.SSLError):
                raise FetchError(url, "tls", str(e.os_error)) from None
            raise FetchError(url, "connect", f"cannot connect to {e.host}:{e.port}") from None
        except aiohttp.InvalidURL:
            raise FetchError(url, "bad-url", "not a valid URL") from None
        except (aiohttp.ClientPayloadError, aiohttp.ClientResponseError) as e:
            raise FetchError(url, "protocol", str(e)[:200]) from None
        except aiohttp.ClientError as e:
            raise FetchError(url, "connect", f"{type(e).__name__}: {e}"[:200]) from None


async def _read_capped(resp: aiohttp.ClientResponse, url: str, cap: int) -> bytes:
    """Read at most ``cap`` bytes after decompression, so a gzip bomb stops at the cap."""
    length = resp.content_length
    if length is not None and length > cap and "gzip" not in resp.headers.get("Content-Encoding", ""):
        raise FetchError(url, "too-large", f"Content-Length {length} > {cap} bytes")
    chunks, size = [], 0
    async for chunk in resp.content.iter_chunked(65536):
        size += len(chunk)
        if size > cap:
            raise FetchError(url, "too-large", f"body over {cap} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _moved(resp: aiohttp.ClientResponse) -> str | None:
    """The final URL if the request was redirected by permanent redirects (301/308) only:
    a 302/307 anywhere in the chain means the old URL stays the feed's address."""
    if not resp.history or any(r.status not in (301, 308) for r in resp.history):
        return None
    return str(resp.url)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date; None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    when = schedule.http_date(value)
    return None if when is None else max(0.0, when - time.time())


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()
