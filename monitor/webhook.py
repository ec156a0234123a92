"""The project's own JSON poster for ``json://`` and ``jsons://`` channels (issue 14).

Why not apprise's: its json plugin always posts ``{"version", "title", "message", "attachments",
"type"}`` with the body as the ``message`` *string*. Its ``:key=value`` URL parameters only
rename or drop those five keys or add fixed strings; nothing puts a message's own fields at the
top level, so an alert sent through it is a JSON text inside JSON, parsed twice by every
receiver. So the document is posted here, and apprise still does the rest: it parses and checks
the URL when the channel is built (notify.py hands us its reading as a ``Target``), and every
other kind of channel.

The post goes through ``requests`` like apprise's own HTTP plugins, so notify.py's recording of
``requests.Session.send`` sees it: the service's status, Retry-After and body reach the outbox,
and a dry run stops it at the door (``Notifier.preview_alert``). The URL's own parameters keep
their apprise meaning: ``+Header=v`` headers, ``-name=v`` query parameters, ``method=``, user and
password (basic auth), ``verify=``, ``cto=``/``rto=`` timeouts, and ``:key=value`` (rename a
top-level key, drop it with an empty value, or add a fixed field).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Target:
    """One json:// URL as apprise read it."""

    url: str  # scheme://host[:port]/path, without credentials
    method: str = "POST"
    headers: tuple[tuple[str, str], ...] = ()
    params: tuple[tuple[str, str], ...] = ()
    extras: tuple[tuple[str, str], ...] = ()  # ``:key=value``
    auth: tuple[str, str] | None = None
    verify: bool = True
    timeout: tuple[float, float] | float = (4.0, 4.0)
    redirects: bool = True


def shaped(document: Mapping[str, Any], extras: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """``document`` with the URL's ``:key=value`` applied as apprise applies them to its own
    payload: an existing key is renamed to ``value`` (dropped when ``value`` is empty), a new
    key is added with ``value`` as its text. Pure."""
    out = dict(document)
    for key, value in extras:
        if key in out:
            moved = out.pop(key)
            if value:
                out[value] = moved
        else:
            out[key] = value
    return out


def post(target: Target, document: Mapping[str, Any], user_agent: str = "rss-monitor") -> bool:
    """Send ``document`` as one JSON object. True for a 2xx answer; False for any other answer
    or none (what the service said is recorded by notify.py)."""
    import requests  # here: a config without json:// channels never loads it (issue 16: check's start-up)

    headers = {"User-Agent": user_agent, "Content-Type": "application/json", **dict(target.headers)}
    body = json.dumps(shaped(document, target.extras), ensure_ascii=False).encode("utf-8")
    try:
        r = requests.request(target.method, target.url, data=body, params=dict(target.params), headers=headers,
                             auth=target.auth, verify=target.verify, timeout=target.timeout,
                             allow_redirects=target.redirects)
    except requests.RequestException:
        return False
    return 200 <= r.status_code < 300
