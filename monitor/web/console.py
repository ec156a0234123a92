"""The team's console (issue 18): server-rendered pages from Jinja2 templates, each with a
JSON twin (the same path + ``.json``), on the daemon's own aiohttp server or alone (``monitor web``).

The console is another edge (ARCHITECTURE): it renders what the store answers through the same
store methods the CLI uses, and each button calls what the matching command calls. It has its
own database connection and thread (a slow search never delays the daemon's writes; SQLite's WAL
lets both read at once). Feed and article text is data, never markup: Jinja2 escapes every
value (autoescape), and the Content-Security-Policy allows scripts and styles from this origin
only, so a hostile feed's ``<script>`` is text even if a template had a hole.

Routes: views.py (inbox, story, feedback, search, channels, the live inbox), admin.py (feeds,
rules and the playground); login and the guard (auth, CSRF, headers) here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote, urlencode, urlsplit

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from ..errors import MonitorError
from .admin import Admin
from .auth import COOKIE, Gate, Session, Viewer, fingerprint
from .views import Views

if TYPE_CHECKING:
    from ..config import Config
    from ..notify import Notifier
    from ..rules import RuleSet

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
# Scripts, styles and images from this origin only: no inline script can run, whatever a page holds.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
           "Referrer-Policy": "same-origin", "Cache-Control": "no-store"}
NOT_CONSOLE = ("/healthz", "/metrics", "/feedback/")  # the daemon's own endpoints: not behind the login
PUBLIC = ("/login", "/static/")  # reachable without a session
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Hooks(NamedTuple):
    """What the daemon (or ``monitor web``) lends the console: its rules as now loaded, why the
    rule files last failed to load, a way to reload them now, its notifier."""

    ruleset: Callable[[], RuleSet]
    rule_problems: Callable[[], str | None]
    reload_rules: Callable[[], None]
    notifier: Callable[[], Notifier]


class Env(NamedTuple):
    """What the console needs from where it runs (the daemon, or ``monitor web`` alone)."""

    db: Any  # an AsyncStore on the console's own connection
    config: Callable[[], Config]
    ruleset: Callable[[], RuleSet]
    rule_problems: Callable[[], str | None]  # why the rule files did not load, as last tried
    reload_rules: Callable[[], None]  # after a rule is saved (the daemon also sees the file change)
    notifier: Callable[[], Notifier]
    clock: Callable[[], float] = time.time


def build(config: Callable[[], Config], ruleset: Callable[[], RuleSet], rule_problems: Callable[[], str | None],
          reload_rules: Callable[[], None], notifier: Callable[[], Notifier]) -> Console:
    """The console on its own connection to the config's database, its key read (``[web]
    secret``, else the key file beside the database, as the feedback links use). Blocking:
    call it off the event loop. MonitorError when the key or the database cannot be opened."""
    from .. import links
    from ..store import connect
    from ..store.aio import AsyncStore

    cfg = config()
    try:
        key = links.key(cfg.web.secret, cfg.link_key_file)
    except OSError as e:
        raise MonitorError(f"web: cannot read or create the console key {cfg.link_key_file}: {e.strerror or e}") \
            from None
    db = AsyncStore(connect(cfg.database, busy_timeout=cfg.monitor.busy_timeout))
    w = cfg.web
    return Console(Env(db, config, ruleset, rule_problems, reload_rules, notifier), key, session_days=w.session_days,
                   proxy_header=w.proxy_user_header, proxy_addresses=tuple(w.proxy_addresses), proxy_role=w.proxy_role)


def iso(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if ts else ""


def words_ago(ts: float | None, now: float) -> str:
    """"3 min ago", "in 2 h", "just now": the server's words; console.js refreshes them."""
    if not ts:
        return "never"
    d = now - ts
    ahead, d = d < 0, abs(d)
    if d < 45:
        return "just now" if not ahead else "in a moment"
    for size, unit in ((86400 * 365, "y"), (86400, "d"), (3600, "h"), (60, "min")):
        if d >= size:
            n = math.floor(d / size)
            return f"in {n} {unit}" if ahead else f"{n} {unit} ago"
    return "just now"


def marked(snippet: str | None) -> Markup:
    """A snippet's ``**hit**`` marks as <mark>, every other character escaped."""
    parts = (snippet or "").split("**")
    if len(parts) % 2 == 0:  # an odd number of marks: the last one is text
        parts[-2:] = [parts[-2] + "**" + parts[-1]]
    return Markup("").join(Markup("<mark>{}</mark>").format(p) if i % 2 else escape(p) for i, p in enumerate(parts))


def _local(target: str | None) -> str:
    """A redirect target only on this site: a path, never ``//host`` or a scheme."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/"


class Console(Views, Admin):
    def __init__(self, env: Env, key: bytes, *, session_days: float = 7, proxy_header: str = "",
                 proxy_addresses: tuple[str, ...] = (), proxy_role: str = "viewer", page_size: int = 50):
        self.env = env
        self.gate = Gate(key, session_days=session_days, proxy_header=proxy_header,
                         proxy_addresses=proxy_addresses, proxy_role=proxy_role, clock=env.clock)
        self.page_size = page_size
        self.jinja = Environment(loader=FileSystemLoader(HERE / "templates"), trim_blocks=True, lstrip_blocks=True,
                                 autoescape=select_autoescape(default=True))
        self.jinja.filters.update(marked=marked, iso=iso, pct=lambda v: "-" if v is None else f"{v:.0%}")
        self.jinja.globals.update(quote=quote)
        self._users: tuple[float, int] = (-1e9, 0)  # (when counted, users in the database)
        self.stopping = asyncio.Event()

    # -- assembly -----------------------------------------------------------------------------
    def middlewares(self) -> list[Any]:
        return [self._guard]

    def install(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/login", self.login_page)
        r.add_post("/login", self.login)
        r.add_post("/logout", self.logout)
        r.add_static("/static/", HERE / "static", append_version=False)
        r.add_get("/rules/new", self.new_rule_file)
        self.routes(r)  # views.py
        self.admin_routes(r)  # admin.py
        app.on_shutdown.append(self._shutdown)

    async def _shutdown(self, app: web.Application) -> None:
        self.stopping.set()  # ends the live inbox streams, so a stop does not wait for them

    async def close(self) -> None:
        """After the server stopped: the console's database connection."""
        self.stopping.set()
        await asyncio.to_thread(self.env.db.close)

    async def exposed(self, host: str, loopback: bool) -> None:
        """Refuse to serve an open console off loopback: with no user and no trusted proxy,
        whoever reaches the port would be an editor. Raises MonitorError saying what to do."""
        if loopback or self.gate.proxy_header:
            return
        if await self.env.db.user_count() == 0:
            raise MonitorError(
                f"http.host = {host}: the console would be open to the network, and there is no user. "
                "Add one (monitor users add NAME --role editor), or trust a proxy ([web] proxy_user_header "
                "and proxy_addresses), or keep http.host on loopback, or set web.console = false")

    # -- who is asking ------------------------------------------------------------------------
    async def _user_count(self) -> int:
        at, n = self._users
        now = time.monotonic()
        if now - at > 5:  # users added by the CLI are seen within 5 s
            n = await self.env.db.user_count()
            self._users = (now, n)
        return n

    async def _viewer(self, request: web.Request, session: Session) -> Viewer | None:
        proxied = self.gate.proxy_user(request.remote, request.headers)
        if proxied is not None:
            row = await self.env.db.user(proxied)
            return Viewer(proxied, row["role"] if row else self.gate.proxy_role, "proxy")
        if await self._user_count() == 0:
            return None if self.gate.proxy_header else Viewer("anyone on this machine", "editor", "open")
        if session.user is None:
            return None
        row = await self.env.db.user(session.user)
        if row is None or fingerprint(row["password_hash"]) != session.fingerprint:
            return None  # removed, or the password changed since this login
        return Viewer(row["name"], row["role"], "login")

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path.startswith(NOT_CONSOLE):
            return await handler(request)
        if path.startswith("/static/"):
            response = await handler(request)
            response.headers.update({k: v for k, v in HEADERS.items() if k != "Cache-Control"})
            return response
        started = time.perf_counter()
        cookie = request.cookies.get(COOKIE)
        session = self.gate.open(cookie)
        fresh = session is None
        if session is None:
            session = self.gate.anonymous()
        request["session"] = session
        request["viewer"] = viewer = await self._viewer(request, session)
        try:
            if request.method not in ("GET", "HEAD", "OPTIONS"):
                await self._check_post(request, session)
            if viewer is None and not path.startswith(PUBLIC):
                raise self._refuse(request)
            response = await handler(request)
        except web.HTTPException as e:
            response = e
        response.headers.update(HEADERS)
        if not response.prepared:  # the time the server took, for browsers' tools and bench/console.py
            response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
        new = request.get("new_session")
        if new is not None or fresh:
            response.set_cookie(COOKIE, self.gate.seal(new or session), httponly=True, samesite="Strict",
                                path="/", secure=request.secure, max_age=int(self.gate.ttl))
        return response

    async def _check_post(self, request: web.Request, session: Session) -> None:
        origin = request.headers.get("Origin")
        if origin and origin != "null" and urlsplit(origin).netloc != request.host:
            raise web.HTTPForbidden(text=f"refused: a request from another site ({origin})")
        token = request.headers.get("X-CSRF-Token")
        if token is None and request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            value = form.get("csrf")
            token = value if isinstance(value, str) else None
        if not self.gate.csrf_ok(session, token):
            raise web.HTTPForbidden(text="refused: the form's security token is missing or stale; "
                                         "reload the page and try again")

    def _refuse(self, request: web.Request) -> web.HTTPException:
        if request.method in ("GET", "HEAD") and not self.wants_json(request) and request.path != "/events":
            return web.HTTPSeeOther("/login?next=" + quote(request.path_qs, safe=""))
        return web.HTTPUnauthorized(text=json.dumps({"error": "log in first"}), content_type="application/json")

    def editor(self, request: web.Request) -> Viewer:
        """The viewer, who must be an editor: 403 otherwise."""
        viewer: Viewer | None = request.get("viewer")
        if viewer is None or not viewer.editor:
            raise web.HTTPForbidden(text="refused: only an editor may change feeds, rules and channels")
        return viewer

    # -- answers ------------------------------------------------------------------------------
    @staticmethod
    def wants_json(request: web.Request) -> bool:
        return request.path.endswith(".json") or request.headers.get("Accept", "").startswith("application/json")

    def page(self, request: web.Request, template: str, data: Any, *, status: int = 200,
             **extra: Any) -> web.Response:
        """``data`` as JSON for the JSON twin, else the template rendered with it."""
        if self.wants_json(request):
            return web.Response(status=status, text=json.dumps(data, ensure_ascii=False, default=str),
                                content_type="application/json")
        return web.Response(status=status, text=self.html(request, template, data=data, **extra),
                            content_type="text/html", charset="utf-8")

    def html(self, request: web.Request, template: str, **ctx: Any) -> str:
        session: Session = request["session"]
        now = self.env.clock()
        viewer = request.get("viewer")
        return self.jinja.get_template(template).render(
            viewer=viewer, csrf=self.gate.csrf(request.get("new_session") or session), now=now, path=request.path,
            query=request.query, request_query=urlencode([(k, v) for k, v in request.query.items()
                                                          if k not in ("before", "offset", "note", "after")]),
            ago=lambda ts: self._when(ts, now), **ctx)

    @staticmethod
    def _when(ts: float | None, now: float) -> Markup:
        """A time as "3 min ago", the exact UTC time on hover; console.js shows the viewer's zone."""
        if not ts:
            return Markup('<span class="never">never</span>')
        exact = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return Markup('<time datetime="{}" title="{}">{}</time>').format(iso(ts), exact, words_ago(ts, now))

    def back(self, request: web.Request, default: str, note: str = "") -> web.HTTPSeeOther:
        """Where a form goes after it worked: the page it came from (``next``), with a note."""
        target = _local(request.query.get("next") or default)
        if note:
            target += ("&" if "?" in target else "?") + "note=" + quote(note, safe="")
        return web.HTTPSeeOther(target)

    async def new_rule_file(self, request: web.Request) -> web.StreamResponse:
        name = request.query.get("name", "").strip()
        raise web.HTTPSeeOther("/rules/file/" + quote(name if name.endswith((".yaml", ".yml")) else name + ".yaml"))

    # -- login --------------------------------------------------------------------------------
    async def login_page(self, request: web.Request, message: str = "", status: int = 200) -> web.Response:
        return web.Response(status=status, content_type="text/html", charset="utf-8", text=self.html(
            request, "login.html", message=message, next=_local(request.query.get("next")),
            users=await self._user_count()))

    async def login(self, request: web.Request) -> web.StreamResponse:
        from .. import passwords  # argon2 loads on the first login, not with the console

        form = await request.post()
        name, password = str(form.get("name", "")).strip(), str(form.get("password", ""))
        peer = request.remote or "?"
        wait = self.gate.locked(peer, name)
        if wait > 0:
            log.warning("console login refused: too many failures peer=%s name=%r", peer, name)
            response = await self.login_page(request, f"Too many failed logins. Try again in {math.ceil(wait / 60)} "
                                             "min.", 429)
            response.headers["Retry-After"] = str(math.ceil(wait))
            return response
        row = await self.env.db.user(name) if name else None
        if not await asyncio.to_thread(passwords.verify_user, row, password):
            self.gate.failed(peer, name)
            log.info("console login failed peer=%s name=%r", peer, name)
            return await self.login_page(request, "Wrong name or password.", 401)
        assert row is not None
        self.gate.succeeded(name)
        request["new_session"] = self.gate.logged_in(row["name"], row["password_hash"])
        log.info("console login user=%s role=%s peer=%s", row["name"], row["role"], peer)
        raise web.HTTPSeeOther(_local(str(form.get("next", "/"))))

    async def logout(self, request: web.Request) -> web.StreamResponse:
        request["new_session"] = self.gate.anonymous()
        raise web.HTTPSeeOther("/login")
