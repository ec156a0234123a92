"""All HTTP, with aiohttp: conditional GET, gzip, timeouts, a body cap, our User-Agent.

Errors are classified once here (``FetchError.kind``: dns, connect, timeout, tls,
http-NNN, too-large, blocked-address, ...) so that the feed's health says what went wrong.

SSRF guard: every address a host resolves to (and every IP-literal host) passes
``addresses.Policy`` inside the connector, after DNS and just before the connect, on every
redirect hop; a host with no allowed address is a ``blocked-address`` FetchError and no
packet is sent to it. The refusal names the fix of whoever refused: ``[fetch] allow_private``
for the daemon and the commands that read the config (the default), the ``--allow-private``
flag for ``monitor parse``/``extract``, which pass their own ``allow_fix`` (issue 14).
"""

from __future__ import annotations

import hashlib
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from . import USER_AGENT, addresses, schedule
from .errors import FetchError, NotModified
from .models import Feed, FetchResult

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"
# What a refusal tells the user to change; ``{entry}`` allows the refused address on the refused
# port only (``127.0.0.1:8731``), not the whole host: the narrowest fix that works (issue 15).
CONFIG_FIX = 'add "{entry}" to [fetch] allow_private'


@dataclass(frozen=True)
class Limits:
    connect_timeout: float = 10
    timeout: float = 30
    max_bytes: int = 10 * 1024 * 1024
    concurrency: int = 10
    per_host: int = 2
    user_agent: str = USER_AGENT
    allow_private: tuple[str, ...] = ()  # what the SSRF guard lets through: CIDRs, host:port


class BlockedAddress(OSError):
    """Raised in the connector when the policy refuses every address of a host; ``address``
    is the one refused (the first, for a name with several), ``port`` the port asked for."""

    def __init__(self, message: str, address: str, port: int):
        super().__init__(message)
        self.address, self.port = address, port


# The guard hooks the one method every connection's name resolution goes through, IP
# literals included (aiohttp hands those past the resolver). Fail loudly, not open, if a
# future aiohttp renames it.
if not callable(getattr(aiohttp.TCPConnector, "_resolve_host", None)):
    raise ImportError("aiohttp.TCPConnector._resolve_host is gone: the SSRF guard needs porting")


class _GuardedConnector(aiohttp.TCPConnector):
    def __init__(self, policy: addresses.Policy, **kw: Any):
        super().__init__(**kw)
        self._policy = policy

    async def _resolve_host(self, host: str, port: int, traces: Sequence[Any] | None = None
                            ) -> list[ResolveResult]:
        # "2130706433", "0x7f.1": forms the C resolver reads as IPv4; name the address they are.
        legacy = addresses.legacy_ipv4(host)
        if legacy and (why := self._policy.refusal(legacy, port)):
            what = host if legacy == host else f"{host} is {legacy}, which"
            raise BlockedAddress(f"{what} is a {why} address", legacy, port)
        hosts = await super()._resolve_host(host, port, traces=traces)
        if self._policy.trusts(host, port):  # "localhost:8731": this lookup's addresses, this port
            return hosts
        allowed = [h for h in hosts if self._policy.refusal(h["host"], port) is None]
        if not allowed:
            first = hosts[0]["host"] if hosts else host
            what = host if first == host.strip("[]") else f"{host} resolves to {first}, which"
            raise BlockedAddress(f"{what} is a {self._policy.refusal(first, port)} address", first, port)
        return allowed


class Client:
    """One aiohttp session for the daemon's life; ``async with Client(limits) as http``."""

    def __init__(self, limits: Limits = Limits(), observe: Callable[[str, float], None] | None = None,
                 resolver: AbstractResolver | None = None, allow_fix: str = CONFIG_FIX):
        self.limits = limits
        self.allow_fix = allow_fix  # how the user allows a refused address, with {entry}
        self.observe = observe  # (kind: feed | page | get, seconds) after every request, for metrics
        self.policy = addresses.Policy(limits.allow_private)
        self.resolver = resolver  # None: aiohttp's default; tests pass one that maps made-up names
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Client:
        connector = _GuardedConnector(
            self.policy, limit=self.limits.concurrency, limit_per_host=self.limits.per_host,
            ttl_dns_cache=300, resolver=self.resolver,
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
        result, unchanged = await self.check(feed)
        if unchanged is not None:
            raise NotModified(feed.url, unchanged, moved=result.moved, headers=result.headers)
        return result

    async def check(self, feed: Feed) -> tuple[FetchResult, str | None]:
        """``feed`` without the exception, for the poll: the answer and, when the feed is
        unchanged, why ("304", "same body"; a 304's result has no body). Most polls are
        unchanged, and a NotModified raised inside aiohttp's response context and unwound
        through three coroutines cost such a poll ~5 % of its CPU (issue 16, G3: 0.570 -> 0.540
        ms a poll side by side, bench/polling/unchanged_ab.py)."""
        headers = {"Accept": FEED_ACCEPT}
        if feed.etag:
            headers["If-None-Match"] = feed.etag
        if feed.last_modified:
            headers["If-Modified-Since"] = feed.last_modified
        started = time.monotonic()
        try:  # get() inlined: one coroutine frame less to resume every poll
            result = await self._get(feed.url, headers, started, quiet=True)
        finally:
            if self.observe is not None:
                self.observe("feed", time.monotonic() - started)
        if result.status == 304:
            return result, "304"
        if feed.body_hash and result.digest == feed.body_hash:
            return result, "same body"
        return result, None

    async def page(self, url: str) -> FetchResult:
        return await self.get(url, {"Accept": PAGE_ACCEPT}, kind="page")

    async def get(self, url: str, headers: dict[str, str] | None = None, kind: str = "get") -> FetchResult:
        started = time.monotonic()
        try:
            return await self._get(url, headers, started)
        finally:
            if self.observe is not None:
                self.observe(kind, time.monotonic() - started)

    async def _get(self, url: str, headers: dict[str, str] | None, started: float,
                   quiet: bool = False) -> FetchResult:
        """One GET; a 304 raises NotModified, or with ``quiet`` is returned (``check``)."""
        if self._session is None:
            raise RuntimeError("Client used outside 'async with'")
        try:
            async with self._session.get(url, headers=headers or {}, allow_redirects=True,
                                         max_redirects=10) as resp:
                moved = _moved(resp)
                if resp.status == 304:
                    kept = {k.lower(): v for k, v in resp.headers.items()}
                    if quiet:
                        return FetchResult(url=url, status=304, headers=kept, body=b"", moved=moved,
                                           elapsed_ms=int((time.monotonic() - started) * 1000))
                    raise NotModified(url, moved=moved, headers=kept)
                if resp.status >= 400:
                    kind = "http-5xx" if resp.status >= 500 else f"http-{resp.status}"
                    raise FetchError(url, kind, f"HTTP {resp.status} {resp.reason or ''}".strip(),
                                     retry_after=schedule.retry_after(resp.headers.get("Retry-After"), time.time()))
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
            if isinstance(e.os_error, BlockedAddress):
                fix = self.allow_fix.format(entry=addresses.exactly(e.os_error.address, e.os_error.port))
                raise FetchError(url, "blocked-address", f"refused: {e.os_error}; to allow it, {fix}") from None
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
    if length is not None and "Content-Encoding" not in resp.headers:
        return await resp.read()  # what is read stops at Content-Length: no chunk bookkeeping
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


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()
