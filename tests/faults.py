"""A fault-injecting HTTP server for the reliability tests and benches: per path it serves a
healthy body or one of the ways the open web fails. Loopback only; one listening socket per
host address (127.0.0.x, all on one port), so per-host politeness applies as on the internet.

    srv = FaultServer(hosts=4)
    srv.ok("/good.xml", rss_text)                 # a healthy resource (mutable: call again)
    srv.fault("/bad.xml", "gzip-bomb", host=2)    # -> its URL on 127.0.0.4
    srv.close()

Nothing big is ever built in memory: the 1 GB bodies are streamed from one 64 KB block, the
gzip bomb is compressed once from a zero block (about 1 MB on the wire, 1 GB inflated).
"""

from __future__ import annotations

import select
import socket
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GB = 1024 ** 3
BLOCK = 64 * 1024

# Bodies for the "body" faults: each names the failure it stands for.
BILLION_LAUGHS = (
    b'<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE rss [\n <!ENTITY lol "lol">\n'
    + b"".join(b' <!ENTITY lol%d "%s">\n' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
               for i in range(1, 10))
    + b']>\n<rss version="2.0"><channel><title>&lol9;</title><link>http://example.org/</link>'
      b"<description>&lol9;</description><item><title>&lol9;</title><guid>lol</guid>"
      b"<description>&lol9;</description></item></channel></rss>"
)
MALFORMED_XML = b'<?xml version="1.0"?>\n<root><unclosed attr="x></root><<>>&&\x00garbage'
HTML_PAGE = (b"<!DOCTYPE html><html><head><title>Welcome</title></head><body><h1>Our homepage"
             b"</h1><p>This is not a feed.</p></body></html>")
# Declared UTF-8, actually UTF-16 without a BOM: the bytes decode to nothing sensible.
WRONG_ENCODING = ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>'
                  "Nachrichten über Kursk</title><item><title>Grüße</title></item></channel></rss>"
                  ).encode("utf-16-le")
# Declared UTF-8, actually Latin-1: invalid UTF-8 byte sequences in otherwise good XML.
LATIN1_AS_UTF8 = ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>'
                  "Nachrichten für Köln</title><item><title>Größere Straßenschäden</title>"
                  "<guid>latin-1</guid><description>Überschwemmung in Düsseldorf</description>"
                  "</item></channel></rss>").encode("latin-1")

_BOMB: bytes | None = None
_BOMB_LOCK = threading.Lock()


def gzip_bomb(size: int = GB) -> bytes:
    """``size`` zero bytes (a multiple of 1 MB) as gzip, about 1 MB on the wire. One 1 MB
    block is deflated once with a full flush (byte-aligned, no back references) and repeated,
    so building it takes no time; cached for the default size."""
    global _BOMB
    with _BOMB_LOCK:
        if _BOMB is not None and size == GB:
            return _BOMB
        zero = bytes(1024 * 1024)
        c = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate: we write the gzip frame
        block = c.compress(zero) + c.flush(zlib.Z_FULL_FLUSH)
        end = zlib.compressobj(9, zlib.DEFLATED, -15)
        last = end.compress(b"") + end.flush()  # an empty final block
        crc = 0
        for _ in range(size // len(zero)):
            crc = zlib.crc32(zero, crc)
        data = (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + block * (size // len(zero)) + last
                + struct.pack("<II", crc, size & 0xFFFFFFFF))
        if size == GB:
            _BOMB = data
        return data


# Every fault kind this server knows, with what it does.
KINDS = {
    "hang": "accepts the request and never answers",
    "reset": "reads the request, then resets the connection (RST)",
    "drip": "a valid feed at 1 byte/s",
    "http-500": "HTTP 500",
    "http-503": "HTTP 503 with Retry-After: 120",
    "http-429": "HTTP 429 with Retry-After: 120",
    "huge": "a 1 GB body announced by Content-Length",
    "huge-chunked": "a 1 GB body, chunked, no Content-Length",
    "gzip-bomb": "1 MB of gzip that inflates to 1 GB",
    "billion-laughs": "nested XML entities (exponential expansion)",
    "malformed-xml": "broken XML that is no feed",
    "wrong-encoding": "UTF-16 bytes declared as UTF-8",
    "latin1-as-utf8": "Latin-1 bytes declared as UTF-8",
    "redirect-loop": "302 to itself, for ever",
    "html": "an HTML page instead of a feed",
    "empty": "200 with an empty body",
}

# What the daemon should record for each kind: (health status, start of last_error) as
# `monitor feeds --json` shows them. Bad but readable bytes (entities stripped, encoding
# sniffed) make an "ok" feed. Used by tests/test_faults.py and bench/faults.py.
EXPECTED = {
    "hang": ("failing", "timeout: no complete answer within"),
    "reset": ("failing", "connect: ClientOSError: [Errno 104] Connection reset by peer"),
    "drip": ("failing", "timeout: no complete answer within"),
    "http-500": ("failing", "http-5xx: HTTP 500"),
    "http-503": ("failing", "http-5xx: HTTP 503"),
    "http-429": ("failing", "http-429: HTTP 429"),
    "huge": ("failing", "too-large: Content-Length 1073741824 >"),
    "huge-chunked": ("failing", "too-large: body over"),
    "gzip-bomb": ("failing", "too-large: body over"),
    "billion-laughs": ("ok", None),
    "malformed-xml": ("failing", "not-a-feed: not a feed (<unknown>:2:"),
    "wrong-encoding": ("ok", None),
    "latin1-as-utf8": ("ok", None),
    "redirect-loop": ("failing", "redirects: too many redirects"),
    "html": ("failing", "not-a-feed: not a feed (text/html"),
    "empty": ("failing", "not-a-feed: not a feed (empty body)"),
}


@dataclass
class Route:
    kind: str  # "ok" or one of KINDS
    body: bytes = b""
    content_type: str = "application/rss+xml; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


class _Handler(BaseHTTPRequestHandler):
    server: _HTTP
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        owner = self.server.owner
        path = self.path.split("?")[0]
        route = owner.routes.get(path)
        with owner.lock:
            owner.hits[path] = owner.hits.get(path, 0) + 1
        if route is None:
            return self._send(404, b"not found", "text/plain")
        getattr(self, "_" + route.kind.replace("-", "_"), self._body)(route)

    # --- healthy and simple answers -------------------------------------------------------
    def _ok(self, route: Route) -> None:
        self._send(200, route.body, route.content_type, route.headers)

    def _body(self, route: Route) -> None:
        self._send(200, route.body, route.content_type, route.headers)

    def _http_500(self, route: Route) -> None:
        self._send(500, b"internal error", "text/plain")

    def _http_503(self, route: Route) -> None:
        self._send(503, b"busy", "text/plain", {"Retry-After": "120"})

    def _http_429(self, route: Route) -> None:
        self._send(429, b"slow down", "text/plain", {"Retry-After": "120"})

    def _redirect_loop(self, route: Route) -> None:
        self.send_response(302)
        self.send_header("Location", self.path.split("?")[0] + "?again")
        self.send_header("Content-Length", "0")
        self.end_headers()

    # --- connection-level faults ----------------------------------------------------------
    def _hang(self, route: Route) -> None:
        self._wait_for_close(None)

    def _reset(self, route: Route) -> None:
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _drip(self, route: Route) -> None:
        body = route.body or b"<rss></rss>"
        self.send_response(200)
        self.send_header("Content-Type", route.content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.flush()
        for i in range(len(body)):
            if not self._write(body[i:i + 1]) or self._wait_for_close(1.0):
                return

    def _huge(self, route: Route, chunked: bool = False) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(GB))
        self.end_headers()
        block = (b"<item><title>filler</title></item>" * (BLOCK // 34 + 1))[:BLOCK]
        head = b'<?xml version="1.0"?><rss version="2.0"><channel>'
        sent = 0
        while sent < GB and not self.server.owner.closing.is_set():
            data = (head + block)[:BLOCK] if sent == 0 else block
            if chunked:
                data = b"%x\r\n%s\r\n" % (len(data), data)
            if not self._write(data):
                return
            sent += BLOCK
        if chunked:
            self._write(b"0\r\n\r\n")

    def _huge_chunked(self, route: Route) -> None:
        self._huge(route, chunked=True)

    def _gzip_bomb(self, route: Route) -> None:
        bomb = gzip_bomb()
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(bomb)))
        self.end_headers()
        for i in range(0, len(bomb), BLOCK):
            if not self._write(bomb[i:i + BLOCK]):
                return

    # --- helpers ----------------------------------------------------------------------------
    def _write(self, data: bytes) -> bool:
        try:
            self.wfile.write(data)
            self.wfile.flush()
            return True
        except OSError:  # the client gave up: that is the point
            self.close_connection = True
            return False

    def _wait_for_close(self, seconds: float | None) -> bool:
        """Wait ``seconds`` (None: until the client or the server closes). True when the
        client hung up or the server is closing."""
        end = None if seconds is None else time.monotonic() + seconds
        closing = self.server.owner.closing
        while not closing.is_set():
            left = 0.2 if end is None else min(0.2, end - time.monotonic())
            if left <= 0:
                return False
            readable, _, _ = select.select([self.connection], [], [], left)
            if readable:
                try:
                    if self.connection.recv(1, socket.MSG_PEEK) == b"":
                        break
                except OSError:
                    break
        self.close_connection = True
        return True

    def _send(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self._write(body)


class _HTTP(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    owner: FaultServer

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that give up mid-answer are the normal case here


class FaultServer:
    """``hosts`` loopback addresses (127.0.0.2 ...) on one port, one route table."""

    def __init__(self, hosts: int = 1, first: int = 2) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: dict[str, int] = {}
        self.lock = threading.Lock()
        self.closing = threading.Event()
        self.addresses = [f"127.0.0.{first + i}" for i in range(hosts)]
        self._servers: list[_HTTP] = []
        port = 0
        for addr in self.addresses:
            srv = _HTTP((addr, port), _Handler)
            srv.owner = self
            port = srv.server_address[1]
            self._servers.append(srv)
            threading.Thread(target=srv.serve_forever, args=(0.1,), daemon=True).start()
        self.port = port

    def url(self, path: str, host: int = 0) -> str:
        return f"http://{self.addresses[host % len(self.addresses)]}:{self.port}{path}"

    def ok(self, path: str, body: bytes | str, content_type: str = "application/rss+xml; charset=utf-8",
           host: int = 0) -> str:
        data = body.encode() if isinstance(body, str) else body
        self.routes[path] = Route("ok", data, content_type)
        return self.url(path, host)

    def fault(self, path: str, kind: str, host: int = 0, body: bytes = b"") -> str:
        """Serve fault ``kind`` (a key of KINDS) at ``path``; ``body`` for "drip"."""
        if kind not in KINDS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(KINDS)}")
        data = {"billion-laughs": BILLION_LAUGHS, "malformed-xml": MALFORMED_XML, "html": HTML_PAGE,
                "wrong-encoding": WRONG_ENCODING, "latin1-as-utf8": LATIN1_AS_UTF8,
                "drip": body}.get(kind, b"")
        ctype = "text/html; charset=utf-8" if kind == "html" else "application/rss+xml; charset=utf-8"
        self.routes[path] = Route(kind, data, ctype)
        return self.url(path, host)

    def close(self) -> None:
        self.closing.set()
        for srv in self._servers:
            srv.shutdown()
            srv.server_close()
