"""What the console's tests share: a seeded database (a real feed through ``monitor once``), the
console served by the real ``monitor web`` in a subprocess, and a cookie-keeping HTTP client
that reads the CSRF token off the pages like a browser would."""

from __future__ import annotations

import http.cookiejar
import json
import re
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from html import escape
from pathlib import Path

from conftest import monitor_cmd, page, rss, run_cli, write_config

OLD = [{"title": "Wetter: Sonniges Wochenende erwartet", "link": "/a/wetter", "guid": "w-1",
        "description": "Der Deutsche Wetterdienst sagt viel Sonne voraus."}]
KURSK = {"title": "Gefechte im Gebiet Kursk dauern an", "link": "/a/kursk", "guid": "k-1",
         "description": "Neue Berichte aus der Grenzregion Kursk."}
KURSK_PAGE = page("Gefechte im Gebiet Kursk dauern an", [
    "Im russischen Gebiet Kursk gehen die Kämpfe zwischen ukrainischen und russischen Einheiten "
    "weiter, wie mehrere Militärbeobachter am Montag mitteilten.",
    "Nach Angaben aus Kiew sind dort inzwischen auch nordkoreanische Soldaten an der Front im "
    "Einsatz. Die Zahl der nordkoreanischen Truppen im Gebiet Kursk wird auf mehrere Tausend geschätzt.",
    "Die Lage für die Zivilbevölkerung in den Dörfern nahe der Grenze bleibt angespannt.",
])
HOSTILE_TITLE = 'Kursk: <script>alert("title")</script><img src=x onerror=alert(1)>'
HOSTILE_TEXT = ('Im Gebiet Kursk <script>fetch("http://evil.invalid/x")</script> kämpfen Truppen. '
                '<a href="javascript:alert(2)">klick</a> <style>body{display:none}</style> '
                '<iframe src="http://evil.invalid/"></iframe>')


def seed(tmp_path: Path, feed_server, *, hostile: bool = False, extra: str = "", database: str | None = None) -> Path:
    """A config and a database holding one alerted Kursk story (two rules: Kursk and North
    Korean troops), made by the real pipeline: a baseline poll, then the story appears."""
    for it in OLD:
        feed_server.add(it["link"], page(it["title"], [it["description"] * 3]), content_type="text/html; charset=utf-8")
    feed_server.add(KURSK["link"], KURSK_PAGE, content_type="text/html; charset=utf-8")
    feed_url = feed_server.add("/feed.xml", rss([{**it, "link": feed_server.url(it["link"])} for it in OLD]))
    cfg = write_config(tmp_path, feeds=[feed_url], channels={"console": ["log://"]}, extra=extra, database=database)
    first = run_cli("once", "--config", str(cfg))
    assert first.returncode == 0, first.stderr
    story = dict(KURSK)
    if hostile:
        # escaped once more than markup: what the feed means is these characters as text
        story = {**story, "title": escape(HOSTILE_TITLE), "description": escape(HOSTILE_TEXT), "link": "/a/hostile"}
        feed_server.add("/a/hostile", "<html><body><p>" + HOSTILE_TEXT.replace("<", "&lt;") * 2 + "</p></body></html>",
                        content_type="text/html; charset=utf-8")
    feed_server.add("/feed.xml", rss([{**it, "link": feed_server.url(it["link"])} for it in [story, *OLD]]))
    second = run_cli("once", "--config", str(cfg))
    assert second.returncode == 0, second.stderr
    assert "alerts=" in second.stdout and "alerts=0" not in second.stdout, second.stdout
    return cfg


class Web:
    """``monitor web --port 0`` on ``cfg``, in a subprocess; ``url`` once it listens."""

    def __init__(self, cfg: Path, *args: str, env: dict | None = None):
        import os

        self.proc = subprocess.Popen([*monitor_cmd(), "web", "--config", str(cfg), "--port", "0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ, **(env or {})})
        self.lines: list[str] = []
        self.url = ""
        ready = threading.Event()

        def read() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.lines.append(line)
                m = re.search(r"http listening on=(http://\S+)", line)
                if m and not self.url:
                    self.url = m.group(1)
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        ready.wait(60)
        assert self.url, "monitor web did not start:\n" + "".join(self.lines)

    def stop(self) -> int:
        self.proc.terminate()
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)

    def __enter__(self) -> Web:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kw):  # type: ignore[no-untyped-def]
        return None


class Client:
    """A browser-like client: keeps cookies, reads the page's CSRF token, does not follow redirects."""

    def __init__(self, base: str, headers: dict | None = None):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), NoRedirect())
        self.headers = headers or {}
        self.csrf = ""

    def request(self, method: str, path: str, data: dict | None = None, headers: dict | None = None,
                body: bytes | None = None) -> tuple[int, dict, str]:
        if data is not None:
            body = urllib.parse.urlencode(data).encode()
            headers = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
        req = urllib.request.Request(self.base + path, data=body, method=method,
                                     headers={**self.headers, **(headers or {})})
        try:
            with self.opener.open(req, timeout=60) as resp:
                status, head, text = resp.status, dict(resp.headers), resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            status, head, text = e.code, dict(e.headers), e.read().decode("utf-8", "replace")
        m = re.search(r'<meta name="csrf" content="([^"]+)"', text)
        if m:
            self.csrf = m.group(1)
        return status, head, text

    def get(self, path: str, **kw) -> tuple[int, dict, str]:  # type: ignore[no-untyped-def]
        return self.request("GET", path, **kw)

    def post(self, path: str, data: dict | None = None, *, csrf: bool = True, **kw) -> tuple[int, dict, str]:  # type: ignore[no-untyped-def]
        form = dict(data or {})
        if csrf:
            form.setdefault("csrf", self.csrf)
        return self.request("POST", path, data=form, **kw)

    def json(self, path: str) -> tuple[int, object]:
        status, _, text = self.get(path)
        return status, json.loads(text) if text.strip().startswith(("{", "[")) else text

    def login(self, name: str, password: str) -> int:
        self.get("/login")
        status, _, _ = self.post("/login", {"name": name, "password": password, "next": "/"})
        return status


def add_user(cfg: Path, name: str, role: str, password: str) -> None:
    res = run_cli("users", "add", name, "--role", role, "--password-stdin", "--config", str(cfg), input=password + "\n")
    assert res.returncode == 0, res.stderr


def wait_until(pred, what: str, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def store_only_match(db: Path | str) -> None:
    """A story of the database's first feed that the Kursk rule matched below its digest_at:
    stored only, no alert ("Wetterbericht mit Kursk am Rande"), written as the pipeline's
    record() writes one."""
    from monitor.models import Article, Entry, FeedUpdate, Match
    from monitor.store import Store

    store = Store(db)
    try:
        feed = store.feeds()[0]
        e = Entry(uid="link:https://x.example/wetter", guid=None, title="Wetterbericht mit Kursk am Rande",
                  link="https://x.example/wetter", summary="Sonne und Regen", content="", published=None,
                  content_hash="h-wetter")
        quiet = Match(rule_id="kursk", rule_title="Kursk region", terms=("Kursk",), field="body",
                      snippet="… **Kursk** …", channels=("console",), salience=0.1, tier="store")
        store.record(feed, now=time.time(), update=FeedUpdate(last_ok_at=time.time()), baseline=False,
                     new=[(e, Article(title=e.title, text="Sonne in Bayern, Regen bei Kursk.", url=e.link), [quiet])])
    finally:
        store.close()
