"""monitor.fetch.Client against the real loopback FeedServer: conditional GET, gzip, the
body cap, timeouts and the classification of failures into ``FetchError.kind``."""

from __future__ import annotations

import asyncio
import email.utils
import time
import tracemalloc
import zlib
from datetime import UTC, datetime

import pytest
from servers import FeedServer, free_port

from monitor import schedule
from monitor.errors import FetchError, NotModified
from monitor.fetch import Client, Limits, body_hash
from monitor.models import Feed, FetchResult

FEED = (
    '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
    "<title>Pegelstände</title><link>http://example.org/</link><description>x</description>"
    "<item><title>Rhein steigt bei Köln</title><link>http://example.org/rhein</link></item>"
    "</channel></rss>"
)
LOOPBACK = ("127.0.0.1/32", "::1/128")  # the SSRF guard refuses the test server unless allowed
FAST = Limits(connect_timeout=2, timeout=5, allow_private=LOOPBACK)


@pytest.fixture
def feed_server():
    """conftest's server, but one that shuts down in 50 ms instead of 500 ms."""
    srv = FeedServer(poll_interval=0.05)
    yield srv
    srv.close()


def get(url: str, limits: Limits = FAST) -> FetchResult:
    async def go() -> FetchResult:
        async with Client(limits) as http:
            return await http.get(url)

    return asyncio.run(go())


def fetch_feed(feed: Feed, limits: Limits = FAST) -> FetchResult:
    async def go() -> FetchResult:
        async with Client(limits) as http:
            return await http.feed(feed)

    return asyncio.run(go())


def header(headers: dict[str, str], name: str) -> str | None:
    """The request header as the server received it, whatever case the client used."""
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


def answers(server, n: int, within: float = 2.0) -> list[tuple[str, int]]:
    """The server's answers once it has logged ``n`` of them, in the order it decided them
    (each is logged before it is written, so a redirect's next request is logged after it; the
    wait covers a thread that has not logged yet when the test looks)."""
    deadline = time.monotonic() + within
    while len(server.answers) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    return list(server.answers)


def gzip_of_zeros(megabytes: int) -> bytes:
    """A gzip stream of ``megabytes`` MiB of zeros, built without holding them in memory."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: gzip container
    chunk = bytes(1 << 20)
    return b"".join([*(comp.compress(chunk) for _ in range(megabytes)), comp.flush()])


def test_200_returns_body_and_lower_cased_headers(feed_server):
    url = feed_server.add("/feed.xml", FEED, headers={"X-Pegel-Stand": "7,10 m"})

    result = get(url)

    assert result.status == 200
    assert result.url == url
    assert result.body == FEED.encode()
    assert all(k == k.lower() for k in result.headers)
    assert result.headers["x-pegel-stand"] == "7,10 m"
    assert result.content_type == "application/rss+xml; charset=utf-8"
    assert result.etag and result.etag.startswith('"')
    assert result.elapsed_ms >= 0


def test_user_agent_is_ours(feed_server):
    url = feed_server.add("/feed.xml", FEED)

    get(url)

    [(path, headers)] = feed_server.log
    assert path == "/feed.xml"
    assert header(headers, "User-Agent").startswith("rss-monitor/")


def test_etag_from_first_fetch_gets_304_and_server_saw_if_none_match(feed_server):
    url = feed_server.add("/feed.xml", FEED)
    first = fetch_feed(Feed(id=1, url=url))
    assert first.etag

    with pytest.raises(NotModified) as err:
        fetch_feed(Feed(id=1, url=url, etag=first.etag))

    assert err.value.kind == "not-modified"
    assert err.value.detail == "304"
    assert header(feed_server.log[0][1], "If-None-Match") is None
    assert header(feed_server.log[1][1], "If-None-Match") == first.etag
    assert answers(feed_server, 2) == [("/feed.xml", 200), ("/feed.xml", 304)]


def test_changed_feed_with_old_etag_is_fetched_again(feed_server):
    url = feed_server.add("/feed.xml", FEED)
    first = fetch_feed(Feed(id=1, url=url))
    changed = FEED.replace("Rhein steigt", "Rhein fällt")
    feed_server.add("/feed.xml", changed)

    second = fetch_feed(Feed(id=1, url=url, etag=first.etag))

    assert second.body == changed.encode()
    assert second.etag != first.etag


def test_same_body_hash_is_not_modified_when_server_ignores_etags(feed_server):
    url = feed_server.add("/feed.xml", FEED, etag=False)
    first = fetch_feed(Feed(id=1, url=url))
    assert first.etag is None

    with pytest.raises(NotModified) as err:
        fetch_feed(Feed(id=1, url=url, body_hash=body_hash(first.body)))

    assert err.value.detail == "same body"
    # The server answered 200 both times: the hash, not a 304, recognised the body.
    assert answers(feed_server, 2) == [("/feed.xml", 200), ("/feed.xml", 200)]
    assert header(feed_server.log[1][1], "If-None-Match") is None


def test_different_body_hash_returns_the_new_body(feed_server):
    url = feed_server.add("/feed.xml", FEED, etag=False)
    stale = body_hash(b"<rss>an older version</rss>")

    result = fetch_feed(Feed(id=1, url=url, body_hash=stale))

    assert result.body == FEED.encode()
    # hashed once: the fetch's comparison left the digest the poll stores (pipeline.poll)
    assert result.__dict__.get("digest") == body_hash(FEED.encode())


def test_gzip_body_is_decompressed(feed_server):
    big = FEED.replace("</channel>", "<!--" + "Hochwasser " * 2000 + "--></channel>")
    url = feed_server.add("/feed.xml", big, gzip=True)

    result = get(url)

    assert result.headers["content-encoding"] == "gzip"
    # What went over the wire was much smaller than what we got back.
    assert int(result.headers["content-length"]) < len(big) // 10
    assert result.body == big.encode()


def test_body_over_cap_refused_by_content_length(feed_server):
    url = feed_server.add("/big.xml", b"x" * 300_000)

    with pytest.raises(FetchError) as err:
        get(url, Limits(allow_private=LOOPBACK, timeout=5, max_bytes=100_000))

    assert err.value.kind == "too-large"
    assert "Content-Length 300000" in err.value.detail


def test_body_at_cap_is_accepted(feed_server):
    url = feed_server.add("/exact.xml", b"y" * 100_000)

    assert len(get(url, Limits(allow_private=LOOPBACK, timeout=5, max_bytes=100_000)).body) == 100_000


def test_gzip_body_over_cap_after_decompression_is_refused(feed_server):
    # 5 MB of text compresses to a few KB: Content-Length is small, the stream is not.
    url = feed_server.add("/bomb.xml", b"Hochwasser " * 480_000, gzip=True)

    with pytest.raises(FetchError) as err:
        get(url, Limits(allow_private=LOOPBACK, timeout=5, max_bytes=1 << 20))

    assert err.value.kind == "too-large"
    assert err.value.detail == f"body over {1 << 20} bytes"


def test_gzip_bomb_is_not_inflated_past_the_cap(feed_server):
    bomb = gzip_of_zeros(64)  # ~64 KB on the wire, 64 MiB inflated
    url = feed_server.add("/bomb.gz", bomb, etag=False, headers={"Content-Encoding": "gzip"})

    async def go() -> tuple[FetchError, int]:
        async with Client(Limits(allow_private=LOOPBACK, timeout=10, max_bytes=1 << 20)) as http:
            tracemalloc.start()
            try:
                with pytest.raises(FetchError) as err:
                    await http.get(url)
                return err.value, tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()

    error, peak = asyncio.run(go())

    assert error.kind == "too-large"
    # Inflating the whole bomb would allocate 64 MiB; reading stops near the 1 MiB cap.
    assert peak < 16 << 20, f"peak allocation {peak / 2**20:.1f} MiB"


def test_slow_answer_beyond_timeout_is_timeout(feed_server):
    url = feed_server.add("/slow.xml", FEED, delay=1.5)

    started = time.monotonic()
    with pytest.raises(FetchError) as err:
        get(url, Limits(allow_private=LOOPBACK, connect_timeout=2, timeout=0.3))

    assert err.value.kind == "timeout"
    assert err.value.url == url
    assert time.monotonic() - started < 1.4


def test_slow_answer_within_timeout_is_fine(feed_server):
    url = feed_server.add("/slow.xml", FEED, delay=0.2)

    assert get(url, Limits(allow_private=LOOPBACK, connect_timeout=2, timeout=3)).status == 200


@pytest.mark.parametrize(
    ("status", "kind"),
    [(404, "http-404"), (410, "http-410"), (429, "http-429"), (500, "http-5xx"),
     (503, "http-5xx")],
)
def test_http_error_status_is_classified(feed_server, status, kind):
    url = feed_server.add(f"/status/{status}", b"nope", status=status, content_type="text/plain")

    with pytest.raises(FetchError) as err:
        get(url)

    assert not isinstance(err.value, NotModified)
    assert err.value.kind == kind
    assert err.value.detail.startswith(f"HTTP {status}")
    assert err.value.url == url


def test_unknown_path_is_http_404(feed_server):
    with pytest.raises(FetchError) as err:
        get(feed_server.url("/nothing-here.xml"))

    assert err.value.kind == "http-404"
    assert answers(feed_server, 1) == [("/nothing-here.xml", 404)]


def test_closed_port_is_connect():
    url = f"http://127.0.0.1:{free_port()}/feed.xml"

    with pytest.raises(FetchError) as err:
        get(url)

    assert err.value.kind == "connect"
    assert err.value.url == url


def test_redirect_is_followed_and_final_url_reported(feed_server):
    target = feed_server.add("/new/feed.xml", FEED)
    old = feed_server.add("/old/feed.xml", b"", status=301, etag=False,
                          headers={"Location": "/new/feed.xml"})

    result = get(old)

    assert result.url == target
    assert result.body == FEED.encode()
    assert [p for p, _ in feed_server.log] == ["/old/feed.xml", "/new/feed.xml"]


def test_client_outside_async_with_is_a_programming_error():
    async def go() -> None:
        await Client(FAST).get("http://127.0.0.1:9/")

    with pytest.raises(RuntimeError, match="async with"):
        asyncio.run(go())


# --- permanent redirects: FetchResult.moved / NotModified.moved ---------------------------

def redirect(server, path: str, to: str, status: int) -> str:
    return server.add(path, b"", status=status, etag=False, content_type="text/plain",
                      headers={"Location": to})


@pytest.mark.parametrize("status", [301, 308])
def test_permanent_redirect_reports_moved(feed_server, status):
    target = feed_server.add("/new/feed.xml", FEED)
    old = redirect(feed_server, "/old/feed.xml", "/new/feed.xml", status)

    result = get(old)

    assert result.moved == target
    assert result.url == target
    assert answers(feed_server, 2) == [("/old/feed.xml", status), ("/new/feed.xml", 200)]


def test_no_redirect_is_not_moved(feed_server):
    assert get(feed_server.add("/feed.xml", FEED)).moved is None


@pytest.mark.parametrize("status", [302, 307])
def test_temporary_redirect_is_not_moved(feed_server, status):
    target = feed_server.add("/today/feed.xml", FEED)
    old = redirect(feed_server, "/feed.xml", "/today/feed.xml", status)

    result = get(old)

    assert result.url == target  # followed ...
    assert result.moved is None  # ... but the feed keeps its address


@pytest.mark.parametrize("chain", [(301, 302), (302, 301), (308, 307)])
def test_mixed_redirect_chain_is_not_moved(feed_server, chain):
    target = feed_server.add("/c/feed.xml", FEED)
    redirect(feed_server, "/b/feed.xml", "/c/feed.xml", chain[1])
    old = redirect(feed_server, "/a/feed.xml", "/b/feed.xml", chain[0])

    result = get(old)

    assert result.url == target
    assert result.moved is None
    assert answers(feed_server, 3) == [("/a/feed.xml", chain[0]), ("/b/feed.xml", chain[1]),
                                       ("/c/feed.xml", 200)]


def test_two_permanent_redirects_are_moved_to_the_end(feed_server):
    target = feed_server.add("/c/feed.xml", FEED)
    redirect(feed_server, "/b/feed.xml", "/c/feed.xml", 308)
    old = redirect(feed_server, "/a/feed.xml", "/b/feed.xml", 301)

    assert get(old).moved == target


def test_permanent_redirect_to_304_is_not_modified_with_moved(feed_server):
    target = feed_server.add("/new/feed.xml", FEED)
    etag = fetch_feed(Feed(id=1, url=target)).etag
    assert etag
    old = redirect(feed_server, "/old/feed.xml", "/new/feed.xml", 301)

    with pytest.raises(NotModified) as err:
        fetch_feed(Feed(id=1, url=old, etag=etag))

    assert err.value.detail == "304"
    assert err.value.moved == target
    assert header(feed_server.log[-1][1], "If-None-Match") == etag  # kept across the redirect
    assert answers(feed_server, 3)[1:] == [("/old/feed.xml", 301), ("/new/feed.xml", 304)]


def test_temporary_redirect_to_304_is_not_modified_without_moved(feed_server):
    target = feed_server.add("/new/feed.xml", FEED)
    etag = fetch_feed(Feed(id=1, url=target)).etag
    old = redirect(feed_server, "/old/feed.xml", "/new/feed.xml", 302)

    with pytest.raises(NotModified) as err:
        fetch_feed(Feed(id=1, url=old, etag=etag))

    assert err.value.moved is None


def test_permanent_redirect_to_the_same_body_is_not_modified_with_moved(feed_server):
    target = feed_server.add("/new/feed.xml", FEED, etag=False)
    old = redirect(feed_server, "/old/feed.xml", "/new/feed.xml", 308)

    with pytest.raises(NotModified) as err:
        fetch_feed(Feed(id=1, url=old, body_hash=body_hash(FEED.encode())))

    assert err.value.detail == "same body"
    assert err.value.moved == target


# --- Retry-After ------------------------------------------------------------------------

def http_error(server, status: int, retry_after: str | None) -> FetchError:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    url = server.add(f"/busy/{status}", b"slow down", status=status, etag=False,
                     content_type="text/plain", headers=headers)
    with pytest.raises(FetchError) as err:
        get(url)
    assert not isinstance(err.value, NotModified)
    return err.value


def test_retry_after_seconds_on_429(feed_server):
    error = http_error(feed_server, 429, "120")

    assert error.kind == "http-429"
    assert error.retry_after == 120


def test_retry_after_http_date_on_429(feed_server):
    when = email.utils.format_datetime(datetime.fromtimestamp(time.time() + 120, UTC), usegmt=True)

    error = http_error(feed_server, 429, when)

    assert error.kind == "http-429"
    assert error.retry_after == pytest.approx(120, abs=3)


# -0000 ("no zone information", RFC 5322) and asctime carry no zone: UTC, monitor.dates' one rule
@pytest.mark.parametrize("value", ["Wed, 21 Oct 2015 07:28:00 GMT", "Wed, 21 Oct 2015 07:28:00 -0000",
                                   "Wed Oct 21 07:28:00 2015"])
def test_retry_after_http_date_in_the_past_is_zero(feed_server, value):
    assert http_error(feed_server, 429, value).retry_after == 0


@pytest.mark.parametrize("value", ["soon", "1.5", "-5", "120 seconds", "Wed, 32 Foo 2026 07:28:00 GMT"])
def test_garbage_retry_after_is_none(feed_server, value):
    error = http_error(feed_server, 429, value)

    assert error.kind == "http-429"
    assert error.retry_after is None


def test_no_retry_after_is_none(feed_server):
    assert http_error(feed_server, 429, None).retry_after is None


def test_retry_after_superscript_digit_is_none(feed_server):
    # "Â²" goes out latin-1 encoded as the bytes C2 B2, which aiohttp reads as UTF-8 "²".
    error = http_error(feed_server, 429, "Â²")

    assert error.kind == "http-429"
    assert error.retry_after is None


def test_retry_after_on_503_is_http_5xx(feed_server):
    error = http_error(feed_server, 503, " 3600 ")

    assert error.kind == "http-5xx"
    assert error.detail.startswith("HTTP 503")
    assert error.retry_after == 3600


# --- NotModified carries the response headers ----------------------------------------------

def test_same_body_not_modified_carries_response_headers(feed_server):
    url = feed_server.add("/feed.xml", FEED, etag=False,
                          headers={"Cache-Control": "public, max-age=1800", "X-Pegel": "7,10 m"})

    with pytest.raises(NotModified) as err:
        fetch_feed(Feed(id=1, url=url, body_hash=body_hash(FEED.encode())))

    assert err.value.detail == "same body"
    assert err.value.moved is None
    assert err.value.headers["cache-control"] == "public, max-age=1800"
    assert err.value.headers["x-pegel"] == "7,10 m"
    # ... so the scheduler can still honour the server's hint on an unchanged feed.
    assert schedule.server_hint(err.value.headers, None, time.time()) == 1800


def test_304_not_modified_carries_response_headers(feed_server):
    url = feed_server.add("/feed.xml", FEED)
    etag = fetch_feed(Feed(id=1, url=url)).etag

    with pytest.raises(NotModified) as err:
        fetch_feed(Feed(id=1, url=url, etag=etag))

    assert err.value.headers["etag"] == etag  # the loopback server's 304 sends the ETag
    assert all(k == k.lower() for k in err.value.headers)


def test_check_says_unchanged_without_raising_and_keeps_a_304s_headers(feed_server):
    """The poll's path (``Client.check``): the answer and why it is unchanged, no exception, and
    a 304's headers as a 200's are kept (lower-case names), for the scheduler's hints."""
    url = feed_server.add("/feed.xml", FEED, headers={"Cache-Control": "public, max-age=1800"})

    async def go(feed: Feed) -> tuple[FetchResult, str | None]:
        async with Client(FAST) as http:
            return await http.check(feed)

    first, why = asyncio.run(go(Feed(id=1, url=url)))
    assert why is None and first.status == 200 and first.body == FEED.encode()
    again, why = asyncio.run(go(Feed(id=1, url=url, etag=first.etag)))
    assert why == "304" and again.status == 304 and again.body == b"" and again.moved is None
    assert again.headers["etag"] == first.etag and all(k == k.lower() for k in again.headers)
    assert schedule.server_hint(again.headers, None, time.time()) == 1800
    same, why = asyncio.run(go(Feed(id=1, url=url, body_hash=body_hash(first.body))))
    assert why == "same body" and same.status == 200
    assert answers(feed_server, 3) == [("/feed.xml", 200), ("/feed.xml", 304), ("/feed.xml", 200)]


def test_every_feed_request_is_timed_for_the_metrics_304_and_failures_too(feed_server):
    """``observe`` (the daemon's fetch-time histogram) hears of every feed request, whatever
    its end: a body, a 304, an error."""
    url = feed_server.add("/feed.xml", FEED)
    seen: list[tuple[str, float]] = []

    async def go() -> list[str]:
        ends = []
        async with Client(FAST, observe=lambda kind, s: seen.append((kind, s))) as http:
            etag = (await http.feed(Feed(id=1, url=url))).etag
            for feed in (Feed(id=1, url=url, etag=etag), Feed(id=2, url=url.replace("feed.xml", "missing.xml"))):
                try:
                    await http.feed(feed)
                except FetchError as e:
                    ends.append(e.kind)
            await http.page(url)
        return ends

    assert asyncio.run(go()) == ["not-modified", "http-404"]
    assert [kind for kind, _ in seen] == ["feed", "feed", "feed", "page"]
    assert all(0 <= s < 10 for _, s in seen)
