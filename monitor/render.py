"""Alert -> message for one kind of channel, from Jinja2 templates the user may override.

Kinds: ``slack`` (CommonMark that apprise turns into Slack mrkdwn), ``email`` (HTML; apprise
adds the plain-text part), ``json`` (every field of the alert, for webhooks) and ``text``
(everything else). The built-in templates live in ``monitor/templates``; a file of the same name
in the user's folder (``notify.templates``) replaces one.

Templates are user files, so they run in Jinja2's sandbox; HTML ones autoescape. Every template
is compiled *and* rendered once for a hostile sample alert when the Renderer is built, so a
broken one is a ConfigError naming its file and line at start-up (``monitor check``), not a
traceback at send time. Should one still fail on a real alert, the built-in one is used.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import re
from datetime import datetime
from html import escape as html_escape
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

from jinja2 import ChoiceLoader, FileSystemLoader, TemplateError, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from .errors import ConfigError
from .models import Alert, Digest, DigestItem

log = logging.getLogger(__name__)
BUILTIN = Path(__file__).parent / "templates"
TITLE = "title.j2"
# kind -> (body template, the format apprise is told the body is in)
KINDS = {"slack": ("slack.j2", "markdown"), "email": ("email_html.j2", "html"),
         "json": ("json.j2", "text"), "text": ("text.j2", "text")}
DIGEST = "digest.j2"  # plain text, every kind: one message listing a channel's held alerts
NAMES = (TITLE, DIGEST, *(t for t, _ in KINDS.values()))
_SCHEMES = {"slack": "slack", "mailto": "email", "mailtos": "email", "json": "json", "jsons": "json"}
_HIT = re.compile(r"\*\*(.+?)\*\*")
# CommonMark characters that would format or link feed text; apprise turns \< \> into &lt; &gt;
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>])")

SAMPLE = Alert(id=0, channel="sample", rule_id="sample", rule_title="Sample <rule> & *co*",
               title="<script>alert(1)</script> & *bold* > quote", link="https://example.org/a?x=1&y=<2>",
               feed_title="Feed & <Co>", published="2026-01-01T00:00:00Z", terms=("a&b", "<c>"),
               snippet="x <script> & **a&b** > y *z*", severity="urgent", language="en")


class Message(NamedTuple):
    title: str
    body: str
    format: str  # apprise's NotifyFormat value: markdown | html | text


def kind(url: str) -> str:
    """The message kind for an apprise URL, by its scheme. Pure."""
    return _SCHEMES.get(url.split("://", 1)[0].lower(), "text")


def md(text: object) -> str:
    """Feed text made literal in CommonMark: it cannot bold, link or open a Slack <!channel>."""
    return _MD_SPECIAL.sub(r"\\\1", str(text or ""))


def url(link: object) -> str:
    """A feed's link made safe inside <...>: spaces, quotes and angle brackets percent-encoded."""
    return quote(str(link or ""), safe=":/?#[]@!$&'()*+,;=%~")


def hits_md(snippet: str) -> str:
    """The snippet in CommonMark: hits stay **bold** (Slack *bold* after apprise), the rest literal."""
    parts = _HIT.split(snippet or "")
    return "".join(f"**{md(p)}**" if i % 2 else md(p) for i, p in enumerate(parts))


def hits_html(snippet: str) -> Markup:
    """The snippet in HTML: hits in <strong>, everything escaped."""
    parts = _HIT.split(snippet or "")
    return Markup("".join(f"<strong>{html_escape(p)}</strong>" if i % 2 else html_escape(p)
                          for i, p in enumerate(parts)))


def when(iso: str | None) -> str:
    """'2026-11-01T08:00:00Z' -> '2026-11-01 08:00 UTC'; anything else unchanged."""
    try:
        return datetime.fromisoformat(str(iso).replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return str(iso or "")


def fields(alert: Alert) -> dict[str, Any]:
    """Every field of the alert, JSON-ready."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(alert).items()}


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


def _environment(folder: Path | None) -> SandboxedEnvironment:
    loaders = [FileSystemLoader(str(folder))] if folder else []
    env = SandboxedEnvironment(loader=ChoiceLoader([*loaders, FileSystemLoader(str(BUILTIN))]),
                               autoescape=lambda name: bool(name and name.endswith("html.j2")),
                               keep_trailing_newline=False)
    env.filters.update(md=md, hits_md=hits_md, hits_html=hits_html, when=when, json=_json, url=url)
    return env


class Renderer:
    """The templates of one folder (or the built-ins alone); checked when built."""

    def __init__(self, folder: str | Path | None = None):
        self.folder = Path(folder) if folder else None
        self.env = _environment(self.folder)
        self._builtin = self if self.folder is None else builtin()
        if self.folder is not None:
            unknown = sorted(p.name for p in self.folder.glob("*.j2") if p.name not in NAMES)
            if unknown:
                raise ConfigError(f"{self.folder}: unknown template {', '.join(unknown)} "
                                  f"(expected one of: {', '.join(NAMES)})")
        for k in KINDS:
            try:
                self._render(SAMPLE, k)
            except ConfigError:
                raise
            except Exception as e:
                raise ConfigError(f"{self._where(e, k)}: template error: {type(e).__name__}: {e}") from None
        try:
            self._digest(Digest(0, "sample", (DigestItem(SAMPLE, "rate", (("Feed <b>", "https://x/?a=<1>"),)),),
                                held_back=1, rate_limit="5/h"))
        except Exception as e:
            where = self._filename(DIGEST) or DIGEST
            raise ConfigError(f"{where}: template error: {type(e).__name__}: {e}") from None

    def _where(self, e: BaseException, k: str) -> str:
        """'file:line' of the template line that raised: Jinja2 rewrites tracebacks so that a
        template's frames carry its file name and line."""
        if isinstance(e, TemplateSyntaxError):
            return f"{e.filename or e.name}:{e.lineno}"
        files = [f for f in (self._filename(n) for n in (TITLE, KINDS[k][0])) if f]
        where, tb = self._filename(KINDS[k][0]) or KINDS[k][0], e.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename in files:
                where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"
            tb = tb.tb_next
        return where

    def _filename(self, name: str) -> str | None:
        try:
            return self.env.get_template(name).filename
        except TemplateError:
            return None

    def _render(self, alert: Alert, k: str) -> Message:
        template, fmt = KINDS[k]
        context = {"alert": alert, "fields": fields(alert), "kind": k}
        title = " ".join(self.env.get_template(TITLE).render(context).split())
        body = self.env.get_template(template).render(context).strip()
        if k == "json":
            try:
                json.loads(body)
            except ValueError as e:
                raise ConfigError(f"{self._filename(template)}: does not render valid JSON: {e}") from None
        return Message(title, body, fmt)

    def digest(self, d: Digest) -> tuple[str, str]:
        """Title and plain-text body of a digest, its alerts grouped by rule, then story. A user
        template failing on it is logged and the built-in one used."""
        try:
            return self._digest(d)
        except Exception as e:
            if self._builtin is self:
                raise
            log.error("template failed kind=digest digest=%d error=%r; using the built-in one", d.id,
                      f"{type(e).__name__}: {e}")
            return self._builtin._digest(d)

    def _digest(self, d: Digest) -> tuple[str, str]:
        rules: dict[str, list[DigestItem]] = {}
        for item in d.items:
            rules.setdefault(item.alert.rule_title, []).append(item)
        count = sum(1 for i in d.items if i.reason != "followup")
        body = self.env.get_template(DIGEST).render({"digest": d, "rules": rules, "count": count}).strip()
        sources = sum(len(i.sources) for i in d.items)
        return f"Digest: {count} alerts" + (f", {sources} more sources" if sources else ""), body

    def render(self, alert: Alert, kind: str) -> Message:
        """The alert as a message of this kind. A user template that fails on this alert is
        logged and the built-in one is used: the alert still goes out."""
        try:
            return self._render(alert, kind)
        except Exception as e:
            if self._builtin is self:
                raise
            log.error("template failed kind=%s alert=%d at=%s error=%r; using the built-in one", kind, alert.id,
                      self._where(e, kind), f"{type(e).__name__}: {e}")
            return self._builtin._render(alert, kind)


@functools.cache
def builtin() -> Renderer:
    """The built-in templates alone, compiled once."""
    return Renderer(None)
