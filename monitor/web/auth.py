"""Who is asking the console, and whether they may (issue 18).

Three ways in, decided per request:
- **open**: no user in the database and no trusted proxy. Whoever reaches the port is an editor;
  the console only starts like that on loopback (console.py refuses another address), and every
  page says so.
- **login**: users exist (``monitor users add``). A login sets a session cookie signed with the
  console key (HMAC-SHA256), naming the user, when it was issued and a fingerprint of the
  password hash: a new password or a removed user ends every session at once.
- **proxy**: a request from an address in ``[web] proxy_addresses`` carrying ``[web]
  proxy_user_header`` is that user (their role from the users table, else ``proxy_role``). The
  header from anywhere else is ignored.

Every visitor holds one cookie, ``monitor_session``: a random nonce, and the user once logged in.
The CSRF token of every form is an HMAC of that nonce: a page of another site can neither read
it nor make the browser send it (SameSite=Strict besides), and it applies in every mode, the open
one too. Failed logins are counted per address and per name; past ``LIMIT`` in ``WINDOW``
seconds a login is refused before the password is checked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

COOKIE = "monitor_session"
LIMIT = 5  # failed logins per address, and per name, in WINDOW
WINDOW = 900.0


class Viewer(NamedTuple):
    name: str
    role: str  # viewer | editor
    mode: str  # open | login | proxy

    @property
    def editor(self) -> bool:
        return self.role == "editor"


class Session(NamedTuple):
    nonce: str
    user: str | None
    issued: float
    fingerprint: str


def fingerprint(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Gate:
    """Signs and reads session cookies, makes and checks CSRF tokens, counts failed logins.
    Pure but for the clock: the user table is read by the caller (console.py)."""

    def __init__(self, key: bytes, *, session_days: float = 7, proxy_header: str = "",
                 proxy_addresses: Sequence[str] = (), proxy_role: str = "viewer",
                 clock: Callable[[], float] = time.time):
        self.key = hmac.new(key, b"rss-monitor console v1", hashlib.sha256).digest()
        self.ttl = session_days * 86400
        self.proxy_header = proxy_header
        self.proxies = [ipaddress.ip_network(a, strict=False) for a in proxy_addresses]
        self.proxy_role = proxy_role
        self.clock = clock
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    # -- the cookie ---------------------------------------------------------------------------
    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self.key, payload.encode(), hashlib.sha256).digest())

    def seal(self, session: Session) -> str:
        payload = _b64(json.dumps([session.nonce, session.user, session.issued, session.fingerprint],
                                  separators=(",", ":")).encode())
        return f"{payload}.{self._sign(payload)}"

    def open(self, cookie: str | None) -> Session | None:
        """The session the cookie carries, or None when it is absent, forged or malformed.
        Expiry is checked here; whether the user still exists is the caller's."""
        if not cookie or cookie.count(".") != 1:
            return None
        payload, sig = cookie.split(".")
        if not hmac.compare_digest(sig, self._sign(payload)):
            return None
        try:
            nonce, user, issued, fp = json.loads(_unb64(payload))
        except (ValueError, TypeError):
            return None
        if not isinstance(nonce, str) or not isinstance(issued, int | float):
            return None
        if user is not None and self.clock() - issued > self.ttl:
            user = None  # expired: the nonce stays, the login goes
        return Session(nonce, user if isinstance(user, str) else None, float(issued), str(fp or ""))

    def anonymous(self) -> Session:
        return Session(secrets.token_urlsafe(18), None, self.clock(), "")

    def logged_in(self, user: str, password_hash: str) -> Session:
        """A new session for ``user``: a new nonce too, so a token seen before login is dead."""
        return Session(secrets.token_urlsafe(18), user, self.clock(), fingerprint(password_hash))

    # -- CSRF ---------------------------------------------------------------------------------
    def csrf(self, session: Session) -> str:
        return self._sign("csrf:" + session.nonce)[:32]

    def csrf_ok(self, session: Session | None, token: str | None) -> bool:
        return bool(session and token) and hmac.compare_digest(self.csrf(session), token or "")  # type: ignore[arg-type]

    # -- the proxy ----------------------------------------------------------------------------
    def proxy_user(self, peer: str | None, headers: Any) -> str | None:
        """The user a trusted proxy names, or None (no proxy configured, another address, no header)."""
        if not self.proxy_header or not self.proxies or not peer:
            return None
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return None
        if not any(address in net for net in self.proxies):
            return None
        name = (headers.get(self.proxy_header) or "").strip()
        return name or None

    # -- login attempts -----------------------------------------------------------------------
    def _recent(self, key: str) -> deque[float]:
        q = self._failures[key]
        cutoff = self.clock() - WINDOW
        while q and q[0] < cutoff:
            q.popleft()
        return q

    def locked(self, peer: str, name: str) -> float:
        """Seconds until another login may be tried from ``peer`` or for ``name``; 0: now."""
        wait = 0.0
        for key in (f"ip:{peer}", f"name:{name.lower()}"):
            q = self._recent(key)
            if len(q) >= LIMIT:
                wait = max(wait, q[0] + WINDOW - self.clock())
        return wait

    def failed(self, peer: str, name: str) -> None:
        now = self.clock()
        for key in (f"ip:{peer}", f"name:{name.lower()}"):
            self._recent(key).append(now)
        if len(self._failures) > 10000:  # a flood of names: forget the idle ones
            for key in [k for k, q in self._failures.items() if not q]:
                del self._failures[key]

    def succeeded(self, name: str) -> None:
        self._failures.pop(f"name:{name.lower()}", None)
