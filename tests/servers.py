"""Real local servers for the tests: a feed/page server with ETag/304 behaviour and fault
modes, a webhook receiver, and an SMTP server (aiosmtpd). All bind 127.0.0.1 only."""

from __future__ import annotations

import gzip
import hashlib
import json
import socket
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Resource:
    body: bytes
    content_type: str = "application/rss+xml; charset=utf-8"
    status: int = 200
    etag: bool = True  # send an ETag and honour If-None-Match
    delay: float = 0.0  # seconds before answering
    gzip: bool = False
    headers: dict[str, str] = field(default_factory=dict)


class _Handler(BaseHTTPRequestHandler):
    server: _HTTP
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802
        srv = self.server.owner
        res = srv.resources.get(self.path)
        srv.log.append((self.path, dict(self.headers)))
        if res is None:
            srv.answers.append((self.path, 404))  # before the answer leaves: the client's next request comes after
            self._send(404, b"not found", "text/plain")
            return
        host = self.headers.get("Host", "").rsplit(":", 1)[0]
        with srv.lock:
            srv.active[host] += 1
            srv.peak[host] = max(srv.peak[host], srv.active[host])
            srv.peak["*"] = max(srv.peak["*"], sum(srv.active.values()))
        try:
            self._answer(srv, res)
        finally:
            with srv.lock:
                srv.active[host] -= 1

    def _answer(self, srv: FeedServer, res: Resource) -> None:
        if res.delay:
            host = self.headers.get("Host", "").rsplit(":", 1)[0]
            with srv.lock:
                srv.working[host] += 1
                srv.peak_working[host] = max(srv.peak_working[host], srv.working[host])
            try:
                time.sleep(res.delay)
            finally:
                with srv.lock:
                    srv.working[host] -= 1
        tag = '"' + hashlib.sha1(res.body).hexdigest()[:16] + '"'
        if res.etag and self.headers.get("If-None-Match") == tag:
            srv.answers.append((self.path, 304))
            self.send_response(304)
            self.send_header("ETag", tag)
            for k, v in res.headers.items():  # RFC 9110 15.4.5: a 304 sends the caching headers a 200 would
                if k.lower() in ("cache-control", "expires", "date", "vary"):
                    self.send_header(k, v)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        headers = dict(res.headers)
        if res.etag:
            headers["ETag"] = tag
        body = res.body
        if res.gzip:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        srv.answers.append((self.path, res.status))
        self._send(res.status, body, res.content_type, headers)

    def _send(self, status: int, body: bytes, ctype: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


class _HTTP(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: object

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that died mid-request (crash test)
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class FeedServer:
    """Serves ``resources`` (path -> Resource); records every request and answer."""

    def __init__(self, poll_interval: float = 0.5) -> None:
        # poll_interval: how often serve_forever checks for shutdown; close() waits up to
        # this long, so tests that start many servers pass a smaller value.
        self.resources: dict[str, Resource] = {}
        self.log: list[tuple[str, dict]] = []
        self.answers: list[tuple[str, int]] = []
        self.lock = threading.Lock()
        self.active: Counter[str] = Counter()  # host -> requests being answered now
        self.peak: Counter[str] = Counter()  # host -> most at once ("*": all hosts)
        # host -> most requests at once inside their ``delay`` (the server at work on them): not
        # counting the microseconds between a client reading its answer and the handler's
        # bookkeeping, in which another client's request may already have arrived
        self.working: Counter[str] = Counter()
        self.peak_working: Counter[str] = Counter()
        self.httpd = _HTTP(("127.0.0.1", 0), _Handler)
        self.httpd.owner = self
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(poll_interval,),
                                       daemon=True)
        self.thread.start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def add(self, path: str, body: bytes | str, host: str = "127.0.0.1", **kw: object) -> str:
        data = body.encode() if isinstance(body, str) else body
        self.resources[path] = Resource(data, **kw)  # type: ignore[arg-type]
        return self.url(path, host)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _HookHandler(BaseHTTPRequestHandler):
    server: _HTTP
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        hook = self.server.owner
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        if not raw or len(raw) < length:  # the sender died mid-request: no service takes half a message
            self.close_connection = True
            return
        with hook.lock:
            status, headers = hook.script.pop(0) if hook.script else (hook.status, {})
            hook.answers.append(status)
        if hook.delay:
            time.sleep(hook.delay)
        if status < 300:
            hook.received.append(json.loads(raw or b"null"))
        else:
            hook.refused += 1
        body = hook.body if status < 300 else b'{"error": "refused by the test"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)


class Webhook:
    """A JSON webhook receiver (apprise ``json://``). Set ``status`` to make it fail, or queue
    ``script`` answers ((status, headers), used first, in order). ``delay``: seconds before
    answering; a message counts as received once the delay is over, before the answer goes out."""

    def __init__(self, delay: float = 0.0) -> None:
        self.received: list[dict] = []
        self.refused = 0
        self.status = 200
        self.script: list[tuple[int, dict[str, str]]] = []
        self.answers: list[int] = []
        self.delay = delay
        self.body = b"{}"
        self.lock = threading.Lock()
        self.httpd = _HTTP(("127.0.0.1", 0), _HookHandler)
        self.httpd.owner = self
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def apprise_url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.refuse = 0  # this many messages are answered "451" (try again later) first

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:  # noqa: N802
        if self.refuse > 0:
            self.refuse -= 1
            return "451 4.3.0 Mailbox busy, try again later"
        self.messages.append(message_from_bytes(envelope.content))  # type: ignore[attr-defined]
        return "250 Message accepted for delivery"


class SMTP:
    """A real SMTP server on a fixed port that can be started late (to play 'down')."""

    def __init__(self) -> None:
        self.port = free_port()
        self.inbox = _Inbox()
        self.controller: Controller | None = None

    @property
    def messages(self) -> list[Message]:
        return self.inbox.messages

    @property
    def apprise_url(self) -> str:
        return (f"mailto://127.0.0.1:{self.port}?from=monitor@example.org"
                f"&to=analysts@example.org&mode=insecure")

    def start(self) -> None:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller:
            self.controller.stop()
            self.controller = None
