"""Log output: key=value lines by default, one JSON object a line with ``log_format = "json"``
(or ``monitor run --log-json``), and a filter that masks channel secrets in every record.

Our own log lines name channels, never their URLs (``Notifier.describe`` gives apprise's
privacy form where a URL must be shown). The filter is the second line of defence for words
we do not control: an exception or a library's error text that quotes a URL with its token."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterable
from typing import TextIO
from urllib.parse import parse_qsl, unquote, urlsplit

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MASK = "****"
_FIELD = re.compile(r"""(?<![\w.])([a-z_][a-z0-9_]*)=('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\S+)""")
_RESERVED = {"ts", "level", "logger", "msg", "exc"}


def secrets_of(urls: Iterable[str]) -> list[str]:
    """The parts of apprise URLs that may be credentials: user and password, a host that is not
    a host name (``slack://TOKEN/...``), path segments and query values that look like tokens."""
    out: set[str] = set()
    for url in urls:
        try:
            u = urlsplit(url)
            host = re.sub(r":\d*$", "", u.netloc.rpartition("@")[2])  # as written: hostname lowercases
            parts = [u.username or "", host, *u.path.split("/"), *(v for _, v in parse_qsl(u.query))]
            password = u.password
        except ValueError:
            continue
        if password:
            out.update({password, unquote(password)})
        for p in parts:
            if (len(p) >= 8 and any(c.isdigit() for c in p) and "." not in p) or len(p) >= 20:
                out.update({p, unquote(p)})
        if u.username and host and "." not in host:  # user@token forms
            out.add(u.username)
    return sorted((s for s in out if len(s) >= 3), key=len, reverse=True)


class Redact(logging.Filter):
    """Replace every secret in a record's final text (message, args and traceback) by ****."""

    def __init__(self, secrets: Iterable[str]):
        super().__init__()
        self.secrets = list(secrets)

    def mask_urls(self, urls: Iterable[str]) -> None:
        """Add the secrets of these channel URLs (the daemon calls it after a SIGHUP reload)."""
        self.secrets = sorted(set(self.secrets) | set(secrets_of(urls)), key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
            record.exc_info, record.exc_text = None, None
        for s in self.secrets:
            text = text.replace(s, MASK)
        record.msg, record.args = text, None
        return True


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", ...}``: the message's key=value fields become keys."""

    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        out: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname, "logger": record.name, "msg": msg,
        }
        for key, value in _FIELD.findall(msg.split("\n", 1)[0]):
            if key not in _RESERVED and key not in out:
                out[key] = value[1:-1] if value[:1] in "'\"" and value[-1:] == value[:1] else value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def handler(stream: TextIO, fmt: str, secrets: Iterable[str] = ()) -> logging.Handler:
    h = logging.StreamHandler(stream)
    h.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    h.addFilter(Redact(secrets))
    return h
