"""Alert -> message -> apprise. Channels come from the config (name -> apprise URLs -> tag).

Every URL is checked when the Notifier is built, because apprise accepts a broken config
quietly and then notifies nobody (LIBRARY-NOTES). ``send`` raises NotifyError with what the
service answered, taken from apprise's own log lines, so the outbox row can say why.

The ``log://`` scheme is ours: it writes the alert to the daemon's log, so ``make run``
shows alerts with no credentials at all.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping

import apprise
from apprise.decorators import notify as apprise_plugin

from .errors import ConfigError, NotifyError
from .models import Alert, Channel

log = logging.getLogger(__name__)
alerts_log = logging.getLogger("monitor.alerts")


@apprise_plugin(on="log", name="rss-monitor log channel")
def _log_channel(body: str, title: str, notify_type: str, *args: object, **kwargs: object) -> bool:
    alerts_log.info("ALERT %s\n%s", title, body)
    return True


def render(alert: Alert) -> tuple[str, str]:
    """Title and plain-text body of an alert (templates per channel kind come later)."""
    title = f"[{alert.rule_title}] {alert.title}".strip()
    lines = [alert.title]
    if alert.link:
        lines.append(alert.link)
    source = " · ".join(x for x in (alert.feed_title, alert.published) if x)
    if source:
        lines.append(f"Source: {source}")
    lines.append(f"Matched: {', '.join(alert.terms)} (rule {alert.rule_id})")
    if alert.snippet:
        lines += ["", alert.snippet]
    return title, "\n".join(lines)


class _Capture(logging.Handler):
    """Collects apprise's warnings during one send: its only account of what went wrong."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


class Notifier:
    def __init__(self, channels: Mapping[str, Channel]):
        self.channels = dict(channels)
        self._apprise: dict[str, apprise.Apprise] = {}
        self._lock = threading.Lock()
        for name, ch in self.channels.items():
            a = apprise.Apprise()
            for i, url in enumerate(ch.urls):
                if not a.add(url, tag=ch.tag):
                    scheme = url.split("://", 1)[0] if "://" in url else url[:12]
                    raise ConfigError(
                        f"channels.{name}.urls[{i}]: apprise cannot use this {scheme}:// URL "
                        "(unknown scheme, or a part missing; see apprise's URL docs)"
                    )
            self._apprise[name] = a

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

    def send(self, alert: Alert) -> None:
        """Deliver one alert through its channel (blocking). Raise NotifyError unless apprise
        reports success for every URL of the channel."""
        title, body = render(alert)
        self.send_text(alert.channel, title, body)

    def send_text(self, channel: str, title: str, body: str) -> None:
        """Deliver a plain-text message (an alert, an ops notice) through a channel."""
        a = self._apprise.get(channel)
        if a is None:
            raise NotifyError(f"channel {channel!r} is no longer in the config")
        capture = _Capture()
        logger = logging.getLogger("apprise")
        with self._lock:
            logger.addHandler(capture)
            try:
                result = a.notify(title=title, body=body, body_format=apprise.NotifyFormat.TEXT)
            except Exception as e:  # a plugin bug must not kill the sender
                raise NotifyError(f"apprise raised {type(e).__name__}: {e}") from e
            finally:
                logger.removeHandler(capture)
        if not result:
            detail = "; ".join(capture.lines[-3:]) or f"apprise reported {result!r}"
            raise NotifyError(detail[:500])


def channels_from(config_channels: Mapping[str, object]) -> dict[str, Channel]:
    """Config sections -> Channel models (kept here so config.py stays apprise-free)."""
    return {
        name: Channel(name=name, urls=tuple(sec.urls), tag=sec.tag or name)  # type: ignore[attr-defined]
        for name, sec in config_channels.items()
    }
