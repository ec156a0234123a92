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

from .. import urlsecrets

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MASK = urlsecrets.MASK
_FIELD = re.compile(r"""(?<![\w.])([a-z_][a-z0-9_]*)=('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\S+)""")
_RESERVED = {"ts", "level", "logger", "msg", "exc"}


def secrets_of(urls: Iterable[str], marked: Iterable[str] = ()) -> list[str]:
    """Every part of these apprise URLs that may be a credential (user and password, a host
    that is a token, path tokens, query values of secret-looking keys, header values: see
    urlsecrets.parts) and every value the config took from ${NAME} (``marked``), short ones
    included, longest first."""
    return urlsecrets.values(urls, marked)


class Redact(logging.Filter):
    """Replace every secret in a record's final text (message, args and traceback) by ****.
    Secrets of 8 characters or more go wherever they occur; shorter ones where they stand alone
    (a 3-letter password is masked in ``user:abc@host``, not in the word ``abcde``)."""

    def __init__(self, secrets: Iterable[str]):
        super().__init__()
        self.secrets = list(secrets)
        self.pattern = urlsecrets.masker(self.secrets)

    def mask_urls(self, urls: Iterable[str], marked: Iterable[str] = ()) -> None:
        """Add the secrets of these channel URLs (the daemon calls it after a SIGHUP reload)."""
        self.secrets = sorted(set(self.secrets) | set(secrets_of(urls, marked)), key=len, reverse=True)
        self.pattern = urlsecrets.masker(self.secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.pattern is None:
            return True
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
            record.exc_info, record.exc_text = None, None
        record.msg, record.args = urlsecrets.mask(text, self.pattern), None
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
