"""monitor.fetch.Client against the real loopback FeedServer: conditional GET, gzip, the
body cap, timeouts and the classification of failures into ``FetchError.kind``."""

from __future__ import annotations

import asyncio
import time
import tracemalloc
import zlib

import pytest
from servers import FeedServer, free_port

from monitor.errors import FetchError, NotModified
from monitor.fetch import Client, Limits, body_hash
from monitor.models import Feed, FetchResult

FEED = (
    '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
    "<title>Pegelstände</title><link>http://example.org/</link><description>x</description>"
    "<item><title>Rhein steigt bei Köln</title><link>http://example.org/rhein</link></item>"
    "</channel></rss>"
)
FAST = Limits(connect_timeout=2, timeout=5)


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
    """The server's answers once it has logged ``n`` of them (it logs after writing, so
    the client can be done a moment before the server's thread records the answer)."""
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
        get(url, Limits(timeout=5, max_bytes=100_000))

    assert err.value.kind == "too-large"
    assert "Content-Length 300000" in err.value.detail


def test_body_at_cap_is_accepted(feed_server):
    url = feed_server.add("/exact.xml", b"y" * 100_000)

    assert len(get(url, Limits(timeout=5, max_bytes=100_000)).body) == 100_000


def test_gzip_body_over_cap_after_decompression_is_refused(feed_server):
    # 5 MB of text compresses to a few KB: Content-Length is small, the stream is not.
    url = feed_server.add("/bomb.xml", b"Hochwasser " * 480_000, gzip=True)

    with pytest.raises(FetchError) as err:
        get(url, Limits(timeout=5, max_bytes=1 << 20))

    assert err.value.kind == "too-large"
    assert err.value.detail == f"body over {1 << 20} bytes"


def test_gzip_bomb_is_not_inflated_past_the_cap(feed_server):
    bomb = gzip_of_zeros(64)  # ~64 KB on the wire, 64 MiB inflated
    url = feed_server.add("/bomb.gz", bomb, etag=False, headers={"Content-Encoding": "gzip"})

    async def go() -> tuple[FetchError, int]:
        async with Client(Limits(timeout=10, max_bytes=1 << 20)) as http:
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
        get(url, Limits(connect_timeout=2, timeout=0.3))

    assert err.value.kind == "timeout"
    assert err.value.url == url
    assert time.monotonic() - started < 1.4


def test_slow_answer_within_timeout_is_fine(feed_server):
    url = feed_server.add("/slow.xml", FEED, delay=0.2)

    assert get(url, Limits(connect_timeout=2, timeout=3)).status == 200


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
