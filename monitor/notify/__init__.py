"""Alert -> message -> apprise. Channels come from the config (name -> apprise URLs -> tag).

Every URL is checked when the Notifier is built, because apprise accepts a broken config
quietly and then notifies nobody (../shared/LIBRARY-NOTES.md). ``send`` returns the service's Answer, or
raises NotifyError with it, so the outbox row can say why and when to try again.

What the service answered: apprise returns only success or failure and does not honour
Retry-After (../shared/LIBRARY-NOTES.md). Its HTTP plugins all send through ``requests.Session.send``
(``requests.request`` builds a Session per call), so we wrap that one public method: inside
our own sends (a ContextVar, which apprise 2.x copies into its worker threads) it records each
response's status, Retry-After and the head of its body, and outside them it does nothing.
That is less fragile than parsing log lines ("error=429." differs per plugin and carries no
headers). Channels that do not speak HTTP (SMTP) are described by apprise's per-service log
capture (``AppriseResult``), including its "Socket Exception: (451, ...)" line.

The ``log://`` scheme is ours: it writes the alert to the daemon's log, so ``make run``
shows alerts with no credentials at all.

``json://`` and ``jsons://`` URLs are read and checked by apprise, but alerts and digests are
posted to them by webhook.py as one JSON object whose fields are the alert: apprise's json plugin
can only send the message as a string inside its own envelope (webhook.py says why). Plain-text
messages (ops notices, ``notify-test``) still go through apprise there.

Slack: apprise adds a footer and an icon to every message by default; a channel's Slack URL
gets ``footer=no`` and ``image=no`` unless it says otherwise itself (issue 14).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import parse_qsl, urlsplit

import apprise
from apprise.decorators import notify as apprise_plugin

from .. import schedule, webhook
from ..errors import ConfigError, NotifyError
from ..models import Alert, Answer, Channel, Digest
from ..render import Renderer, builtin, kind
from . import plugins

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)
alerts_log = logging.getLogger("monitor.alerts")


def _log_channel(body: str, title: str, notify_type: str, *args: object, **kwargs: object) -> bool:
    alerts_log.info("ALERT %s\n%s", title, body)
    return True


# registered when the first Notifier has told apprise which schemes it uses (plugins.py)
plugins.ours("log", lambda: apprise_plugin(on="log", name="rss-monitor log channel")(_log_channel))


def render(alert: Alert) -> tuple[str, str]:
    """Title and plain-text body of an alert, from the built-in templates."""
    title, body, _ = builtin().render(alert, "text")
    return title, body


class Outgoing(NamedTuple):
    """One HTTP request apprise made (or, in a dry run, would have made)."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes


class Preview(NamedTuple):
    """What a dry run shows for one URL of a channel: the URL in apprise's privacy form, the
    title and body apprise is handed, and the HTTP requests apprise built from them (stopped at
    requests' door), or None for a URL that does not speak HTTP: it is never handed to apprise."""

    target: str
    title: str
    body: str
    requests: tuple[Outgoing, ...] | None


# The schemes whose apprise plugins send through ``requests`` and nothing else (read in apprise
# 2.3's plugins: no smtplib, socket or websocket), so a dry run may let apprise build the real
# requests and stop them at requests' door. Any other scheme, mailto:// (SMTP) first, and our own
# log:// is never handed to apprise in a dry run: a plugin's send() cannot be stopped half-way.
HTTP_ONLY = frozenset({"json", "jsons", "xml", "xmls", "form", "forms", "slack", "discord", "mmost", "mmosts",
                       "tgram", "ntfy", "ntfys", "gotify", "gotifys", "pover"})


@dataclass
class _Exchange:
    """The HTTP traffic of one send: responses (status, reason, headers, body head), transport
    errors, and in a dry run the requests themselves, which are then not sent."""

    dry_run: bool = False
    responses: list[tuple[int, str, dict[str, str], str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    outgoing: list[Outgoing] = field(default_factory=list)


_exchange: contextvars.ContextVar[_Exchange | None] = contextvars.ContextVar("monitor_exchange", default=None)
_real_send: Callable[..., requests.Response] | None = None  # requests' own, once _install has wrapped it
_ERRNO = re.compile(r"\[Errno -?\d+\][^'\")>]*|[Rr]ead timed out|timed out|Name or service not known")


def _recording_send(self: requests.Session, request: requests.PreparedRequest, **kw: Any) -> requests.Response:
    import requests

    assert _real_send is not None
    ex = _exchange.get()
    if ex is None:
        return _real_send(self, request, **kw)
    if ex.dry_run:
        body = request.body if isinstance(request.body, bytes) else str(request.body or "").encode()
        headers = {k: v if isinstance(v, str) else v.decode() for k, v in request.headers.items()}
        ex.outgoing.append(Outgoing(str(request.method), str(request.url), headers, body))
        raise requests.ConnectionError("dry run: not sent")
    host = urlsplit(str(request.url)).hostname or "?"
    try:
        r = _real_send(self, request, **kw)
    except requests.RequestException as e:
        # Never str(e) whole: urllib3 puts the URL's path in it, and Slack's secret is the path.
        found = _ERRNO.search(str(e))
        ex.errors.append(f"{type(e).__name__} from {host}: {found.group(0).strip() if found else 'no answer'}")
        raise
    text = r.content[:300].decode("utf-8", "replace").strip() if not kw.get("stream") else ""
    ex.responses.append((r.status_code, r.reason or "", dict(r.headers), text))
    return r


SLACK_QUIET = (("footer", "no"), ("image", "no"))  # apprise's defaults are yes: its name and icon


def quiet_slack(url: str) -> str:
    """A Slack URL with apprise's footer and icon turned off, unless the URL sets them itself.
    Appended as text: apprise reads ``#channel`` as part of the path, not as a fragment. Pure."""
    query = url.split("?", 1)[1] if "?" in url else ""
    given = {k.lower() for k, _ in parse_qsl(query, keep_blank_values=True)}
    extra = "&".join(f"{k}={v}" for k, v in SLACK_QUIET if k not in given)
    if not extra:
        return url
    return url + ("&" if "?" in url else "?") + extra


def _target(service: Any) -> webhook.Target:
    """apprise's reading of a json:// URL, as what webhook.py needs to post to it."""
    scheme = "https" if service.secure else "http"
    port = f":{service.port}" if isinstance(service.port, int) else ""
    auth = (service.user, service.password or "") if service.user else None
    return webhook.Target(
        url=f"{scheme}://{service.host}{port}{service.fullpath or '/'}", method=service.method,
        headers=tuple(service.headers.items()), params=tuple(service.params.items()),
        extras=tuple(service.payload_extras.items()), auth=auth, verify=service.verify_certificate,
        timeout=service.request_timeout, redirects=service.redirects)


def _install() -> None:
    """Wrap requests' send, at the first send or preview: imported before, requests would cost
    every ``monitor check`` 40 ms, and a channel of log:// alone never uses it (issue 16)."""
    global _real_send
    import requests

    if requests.Session.send is not _recording_send:
        _real_send = requests.Session.send
        requests.Session.send = _recording_send  # type: ignore[method-assign]


@contextmanager
def _recording(dry_run: bool = False) -> Iterator[_Exchange]:
    _install()
    ex = _Exchange(dry_run)
    token = _exchange.set(ex)
    try:
        yield ex
    finally:
        _exchange.reset(token)


def _answer(results: list[apprise.AppriseResult], ex: _Exchange) -> Answer:
    """The service's answer: every HTTP response (the last one's status and Retry-After), else
    apprise's account of a non-HTTP exchange. ``results``: one per kind of URL in the channel."""
    ok = all(bool(r) for r in results)
    parts = [f"HTTP {st} {reason}".strip() + (f": {body}" if body else "") for st, reason, _, body in ex.responses]
    parts += ex.errors
    status = retry_after = None
    if ex.responses:
        status = ex.responses[-1][0]
        waits = [schedule.retry_after(h.get("Retry-After"), time.time()) for st, _, h, _ in ex.responses
                 if st in (429, 503)]
        retry_after = max((w for w in waits if w is not None), default=None)
    elif not ex.errors:  # not HTTP: apprise's words (HTTP ones may name a secret URL path)
        for service in (s for r in results if not isinstance(r, bool) for s in r):  # bool: webhook.py's
            for attempt in service:
                parts += [e.message for e in attempt if e.level not in ("DEBUG", "TRACE")
                          or e.message.startswith(("Socket Exception", "Response Details"))]
    detail = "; ".join(dict.fromkeys(p for p in parts if p)) or ("accepted" if ok else f"apprise reported {results!r}")
    return Answer(ok, detail[:1000], status, retry_after)


def _accepted(answer: Answer) -> Answer:
    """``answer`` when the service took the message; NotifyError with what it said otherwise."""
    if not answer.ok:
        raise NotifyError(answer.detail, status=answer.status, retry_after=answer.retry_after)
    return answer


class Notifier:
    def __init__(self, channels: Mapping[str, Channel],
                 links: Callable[[int, Sequence[str]], dict[str, Any]] | None = None):
        """``links``: an alert id and its story's rules -> its feedback links (links.Links.urls),
        minted as each message is rendered; None: messages carry no links (``[web] public_url``
        is off)."""
        self.channels = dict(channels)
        self.links = links
        self._apprise: dict[str, apprise.Apprise] = {}
        self._kinds: dict[str, dict[str, apprise.Apprise]] = {}  # channel -> message kind -> its URLs
        self._hooks: dict[str, list[webhook.Target]] = {}  # channel -> its json:// URLs, posted by webhook.py
        self._renderers: dict[str, Renderer] = {}  # templates folder -> its checked templates
        self._locks: dict[str, threading.Lock] = {}
        # apprise's per-service capture sees only what its logger lets through; its DEBUG line
        # "Socket Exception: (451, ...)" is the only place an SMTP refusal is spelled out.
        logging.getLogger("apprise").setLevel(logging.DEBUG)
        plugins.ready(url.split("://", 1)[0] for ch in self.channels.values() for url in ch.urls if "://" in url)
        for name, ch in self.channels.items():
            a = apprise.Apprise()
            kinds: dict[str, apprise.Apprise] = {}
            for i, url in enumerate(ch.urls):
                if not a.add(url, tag=ch.tag):
                    scheme = url.split("://", 1)[0] if "://" in url else url[:12]
                    raise ConfigError(
                        f"channels.{name}.urls[{i}]: apprise cannot use this {scheme}:// URL "
                        "(unknown scheme, or a part missing; see apprise's URL docs)"
                    )
                service = a[len(a) - 1]  # its own URL: a pasted hooks.slack.com URL says slack://
                k = kind(service.url(privacy=True))
                if k == "slack" and quiet_slack(url) != url:
                    a.pop(len(a) - 1)
                    a.add(quiet_slack(url), tag=ch.tag)
                    service = a[len(a) - 1]
                if k == "json":
                    self._hooks.setdefault(name, []).append(_target(service))
                kinds.setdefault(k, apprise.Apprise()).add(service)
            self._apprise[name] = a
            self._kinds[name] = kinds
            if ch.templates not in self._renderers:
                self._renderers[ch.templates] = Renderer(ch.templates) if ch.templates else builtin()
            self._locks[name] = threading.Lock()

    def targets(self, names: Iterable[str]) -> tuple[str, ...]:
        """Channel names for what a rule lists: each item is a channel name or a tag."""
        out: list[str] = []
        for n in names:
            for name, ch in self.channels.items():
                if (n == name or n == ch.tag) and name not in out:
                    out.append(name)
        return tuple(out)

    def known(self) -> set[str]:
        return set(self.channels) | {ch.tag for ch in self.channels.values()}

    def describe(self, name: str) -> list[str]:
        """The channel's URLs in apprise's privacy form: safe for logs."""
        return [s.url(privacy=True) for s in self._apprise[name]]

    def send(self, alert: Alert) -> Answer:
        """Deliver one alert through its channel (blocking). Raise NotifyError unless apprise
        reports success for every URL of the channel."""
        return _accepted(_answer(*self._notify_alert(alert, dry_run=False)))

    def preview_alert(self, alert: Alert) -> list[Outgoing]:
        """The HTTP requests sending this alert would make, rendered per kind: nothing is sent."""
        return self._notify_alert(alert, dry_run=True)[1].outgoing

    def _notify_alert(self, alert: Alert, *, dry_run: bool) -> tuple[list[Any], _Exchange]:
        """Render the alert once per kind of URL in its channel and send each rendering there."""
        kinds = self._kinds.get(alert.channel)
        if kinds is None:
            raise NotifyError(f"channel {alert.channel!r} is no longer in the config")
        renderer = self._renderers[self.channels[alert.channel].templates]
        level = apprise.NotifyType.WARNING if alert.severity == "urgent" else apprise.NotifyType.INFO
        results: list[Any] = []
        links = self._links_of(alert)
        with self._locks[alert.channel], _recording(dry_run) as ex:
            for k, a in kinds.items():
                title, body, fmt = renderer.render(alert, k, links)
                if k == "json":
                    results.append(self._post(alert.channel, json.loads(body)))
                else:
                    results.append(self._call(a, title, body, fmt, level))
        return results, ex

    def _links_of(self, alert: Alert) -> dict[str, Any] | None:
        """The feedback links of ``alert``'s message: the story's, and a pair per rule it fired;
        None without ``[web] public_url``."""
        return None if self.links is None else self.links(alert.id, [r.rule_id for r in alert.rules])

    def _post(self, channel: str, document: dict[str, Any]) -> bool:
        """One JSON object to each of the channel's json:// URLs (webhook.py)."""
        return all([webhook.post(t, document) for t in self._hooks.get(channel, ())])

    def send_digest(self, digest: Digest) -> Answer:
        """Deliver a digest (noise.py) through its channel as one message: plain text, and one
        JSON object (schema rss-monitor.digest/1) to its json:// URLs."""
        return _accepted(_answer(*self._notify_digest(digest, dry_run=False)))

    def preview_digest(self, digest: Digest) -> list[Outgoing]:
        """The HTTP requests sending this digest would make: nothing is sent."""
        return self._notify_digest(digest, dry_run=True)[1].outgoing

    def _notify_digest(self, digest: Digest, *, dry_run: bool) -> tuple[list[Any], _Exchange]:
        kinds = self._kinds.get(digest.channel)
        if kinds is None:
            raise NotifyError(f"channel {digest.channel!r} is no longer in the config")
        renderer = self._renderers[self.channels[digest.channel].templates]
        # every story's own feedback links: a mention listed below alert_at is judged where it is read
        links = {i.alert.id: got for i in digest.items if i.reason != "followup" and (got := self._links_of(i.alert))}
        title, body = renderer.digest(digest, links)
        results: list[Any] = []
        with self._locks[digest.channel], _recording(dry_run) as ex:
            for k, a in kinds.items():
                if k == "json":
                    results.append(self._post(digest.channel, renderer.digest_json(digest, links)))
                else:
                    results.append(self._call(a, title, body, apprise.NotifyFormat.TEXT, apprise.NotifyType.INFO))
        return results, ex

    def send_text(self, channel: str, title: str, body: str) -> Answer:
        """Deliver a plain-text message (an alert, an ops notice) through a channel."""
        result, ex = self._notify(channel, title, body, dry_run=False)
        return _accepted(_answer([result], ex))

    def preview(self, channel: str, title: str, body: str) -> list[Outgoing]:
        """The HTTP requests the channel would make for this message, built by apprise itself
        and stopped at requests' door: nothing leaves the machine."""
        return self._notify(channel, title, body, dry_run=True)[1].outgoing

    def dry_run(self, channel: str, title: str, body: str) -> list[Preview]:
        """What sending this plain-text message through the channel would send, URL by URL:
        nothing leaves the machine, whatever the kind of URL (issue 14: mailto:// is SMTP, which
        ``preview`` cannot stop)."""
        a = self._apprise.get(channel)
        if a is None:
            raise NotifyError(f"channel {channel!r} is no longer in the config")
        out = []
        with self._locks[channel]:
            for service in a:
                target = service.url(privacy=True)
                built: tuple[Outgoing, ...] | None = None
                if target.split("://", 1)[0].lower() in HTTP_ONLY:
                    one = apprise.Apprise()
                    one.add(service)
                    with _recording(dry_run=True) as ex:
                        self._call(one, title, body, apprise.NotifyFormat.TEXT, apprise.NotifyType.INFO)
                    built = tuple(ex.outgoing)
                out.append(Preview(target, title, body, built))
        return out

    def _notify(self, channel: str, title: str, body: str, *, dry_run: bool) -> tuple[Any, _Exchange]:
        a = self._apprise.get(channel)
        if a is None:
            raise NotifyError(f"channel {channel!r} is no longer in the config")
        with self._locks[channel], _recording(dry_run) as ex:  # one message at a time per channel
            result = self._call(a, title, body, apprise.NotifyFormat.TEXT, apprise.NotifyType.INFO)
        return result, ex

    @staticmethod
    def _call(a: apprise.Apprise, title: str, body: str, fmt: str, level: apprise.NotifyType) -> Any:
        try:
            return a.notify(title=title, body=body, body_format=apprise.NotifyFormat(fmt), notify_type=level,
                            log_level=logging.DEBUG)
        except Exception as e:  # a plugin bug must not kill the sender
            raise NotifyError(f"apprise raised {type(e).__name__}: {e}") from e


NOISE_KEYS = ("digest", "quiet_hours", "timezone", "rate_limit", "followup_every")


def channels_from(config_channels: Mapping[str, object]) -> dict[str, Channel]:
    """Config sections -> Channel models (kept here so config.py stays apprise-free)."""
    return {
        name: Channel(name=name, urls=tuple(sec.urls), tag=sec.tag or name,  # type: ignore[attr-defined]
                      templates=getattr(sec, "templates", "") or "",
                      **{k: getattr(sec, k) for k in NOISE_KEYS if hasattr(sec, k)})
        for name, sec in config_channels.items()
    }
