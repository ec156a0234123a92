"""Signed, expiring one-click feedback links (issue 17): ``PUBLIC_URL/feedback/<token>``.

A token is ``ALERT.VERDICT.EXPIRES.SIGNATURE``: the outbox id, ``relevant`` or ``not``, the Unix
time it stops working, and an HMAC-SHA256 of the three under the link key (the standard
library's ``hmac``: three fields need no serialisation library, and ``compare_digest`` is the
constant-time check); ``ALERT.VERDICT.RULE.EXPIRES.SIGNATURE`` judges the story for one of its
rules only (a rule ID holds no dot). It is readable on purpose, so a person can see what a link
will do. Minting
and checking are pure: data and a key in, a token or a ``Claim`` out; the one I/O here is
``key``, which reads the configured secret or creates the key file once.

What the token cannot say (whether it was used already, whether the alert still exists) is the
store's to answer: a used token's hash is recorded in the same transaction as the verdict
(store/feedback.py), so each link works once.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import re
import secrets
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from .errors import MonitorError

VERDICTS = ("relevant", "not")
_RULE = re.compile(r"[a-z0-9][a-z0-9_-]*")  # a rule ID (rules/tree.py): no dot, so a token splits on dots
_DOMAIN = b"rss-monitor/feedback/1:"  # a key used for something else one day cannot mint these


class BadLink(Exception):
    """A token that records nothing: ``why`` is said to the person who clicked; ``kind`` is
    malformed | forged | expired (the HTTP status follows from it)."""

    def __init__(self, kind: str, why: str):
        super().__init__(why)
        self.kind = kind
        self.why = why


class Claim(NamedTuple):
    """What a checked token asks for."""

    alert_id: int
    verdict: str
    expires: float
    token_id: str  # sha256 of the whole token: what the store records once it is used
    rule: str | None = None  # the one rule of the story it judges; None: every rule


def _sign(key: bytes, payload: str) -> str:
    mac = hmac.new(key, _DOMAIN + payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def mint(key: bytes, alert_id: int, verdict: str, expires: float, rule: str | None = None) -> str:
    """The token for a verdict on an alert (``rule``: on that rule of its story only), good
    until ``expires`` (Unix time). Pure."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, got {verdict!r}")
    if rule is not None and not _RULE.fullmatch(rule):
        raise ValueError(f"not a rule ID: {rule!r}")
    payload = f"{int(alert_id)}.{verdict}.{'' if rule is None else rule + '.'}{int(expires)}"
    return f"{payload}.{_sign(key, payload)}"


def token_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check(key: bytes, token: str, now: float) -> Claim:
    """The claim of a token made with ``key`` and not expired at ``now``; else BadLink saying
    why. The signature is checked before anything it signs is believed. Pure."""
    parts = token.split(".")
    rule = parts.pop(2) if len(parts) == 5 else None
    if len(parts) != 4 or not parts[0].isdigit() or not parts[2].isdigit() or \
            (rule is not None and not _RULE.fullmatch(rule)):
        raise BadLink("malformed", "This is not a feedback link of this monitor (malformed). Nothing was recorded.")
    payload = ".".join(parts[:2] + ([rule] if rule is not None else []) + parts[2:3])
    if not hmac.compare_digest(parts[3].encode(), _sign(key, payload).encode()) or parts[1] not in VERDICTS:
        raise BadLink("forged", "This link's signature does not match: it was changed, or not made by this "
                      "monitor. Nothing was recorded.")
    expires = float(parts[2])
    if expires <= now:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(expires))
        raise BadLink("expired", f"This link expired on {when}. Nothing was recorded; "
                      "use 'monitor feedback' instead.")
    return Claim(int(parts[0]), parts[1], expires, token_id(token), rule)


class Links:
    """Mints the two links of an alert message: ``PUBLIC_URL/feedback/<token>`` for each
    verdict, good for ``ttl`` seconds from the moment the message is rendered."""

    def __init__(self, public_url: str, key: Callable[[], bytes], ttl: float,
                 clock: Callable[[], float] = time.time):
        self.base = public_url.rstrip("/")
        self._key = key
        self.ttl = ttl
        self.clock = clock

    @property
    def key(self) -> bytes:
        return self._key()

    def urls(self, alert_id: int, rules: Sequence[str] = ()) -> dict[str, Any]:
        """{"relevant": URL, "not": URL} for an alert; when its story fired more than one rule
        (``rules``), also "rules": [{"rule": ID, "relevant": URL, "not": URL}, ...], links that
        judge the story for that rule only (a story about one topic that names another)."""
        expires = self.clock() + self.ttl
        out: dict[str, Any] = {v: f"{self.base}/feedback/{mint(self.key, alert_id, v, expires)}" for v in VERDICTS}
        if len(rules) > 1:
            out["rules"] = [{"rule": r, **{v: f"{self.base}/feedback/{mint(self.key, alert_id, v, expires, r)}"
                                          for v in VERDICTS}} for r in rules if _RULE.fullmatch(r)]
        return out

    def check(self, token: str) -> Claim:
        return check(self.key, token, self.clock())


def key(secret: str, key_file: Path) -> bytes:
    """The link key: the configured ``[web] secret`` when set, else the key file next to the
    database, created once (32 random bytes, hex, mode 0600) and read from then on, so links
    stay valid across restarts. OSError when the file cannot be created or read."""
    if secret:
        return secret.encode()
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)  # the database's folder, made first here
        # Written whole to a private temporary file, then linked into place: a second process
        # starting at the same moment reads the one key that won, never a half-written file.
        tmp = key_file.with_name(f".{key_file.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
        try:
            os.link(tmp, key_file)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    text = key_file.read_text("ascii").strip()
    if len(text) < 32:
        raise OSError(f"{key_file}: link key file is too short ({len(text)} characters); "
                      "remove it to make a new one (links already sent stop working)")
    return text.encode()


def maker(public_url: str, secret: str, key_file: Path, days: float) -> Links:
    """The Links of ``[web]``, its key read (or its file created) now and kept; a failure is a
    MonitorError naming the file."""

    @functools.cache
    def read() -> bytes:
        try:
            return key(secret, key_file)
        except OSError as e:
            raise MonitorError(f"web: cannot read or create the link key {key_file}: {e.strerror or e}") from None

    read()
    return Links(public_url, read, days * 86400)


def of(config: Any) -> Links | None:
    """A config's ``[web]`` feedback link maker, its key read now; None when public_url is off
    (the daemon, and ``monitor web``, which serves the links too)."""
    w = config.web
    return maker(w.public_url, w.secret, config.link_key_file, w.link_days) if w.public_url else None
