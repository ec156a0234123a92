"""Alert -> message for one kind of channel, from Jinja2 templates the user may override.

Kinds: ``slack`` (CommonMark that apprise turns into Slack mrkdwn), ``email`` (HTML; apprise
adds the plain-text part), ``json`` (the alert as one JSON object, posted by webhook.py) and
``text`` (everything else). Every kind names the story's rules the same way (their titles), its
topic terms apart from context words, and the highest severity: ``rules_of``, ``matched``,
``highest`` below, pure, shared by the templates and the JSON documents.

A JSON webhook gets one object whose fields are the alert (issue 14): no JSON string inside
another message to parse twice, no outbox state (state, attempts, sent_at, ...: stale the moment
the row is marked sent), times in ISO 8601 with their zone, and a ``schema`` name whose version
changes only when a field changes meaning or goes away (fields may be added). The README tables
the fields ("JSON webhooks"). The built-in templates live in ``monitor/templates``; a file of the same name
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
from collections.abc import Mapping
from html import escape as html_escape
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote

from . import dates
from .errors import ConfigError
from .models import SEVERITIES, Alert, AlertRule, Digest, DigestItem, why

if TYPE_CHECKING:  # Jinja2 is imported when a Renderer first compiles a template (Renderer.env)
    from jinja2.sandbox import SandboxedEnvironment
    from markupsafe import Markup

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
ALERT_SCHEMA = "rss-monitor.alert/1"
DIGEST_SCHEMA = "rss-monitor.digest/1"

SAMPLE = Alert(id=0, channel="sample", rule_id="sample", rule_title="Sample <rule> & *co*",
               title="<script>alert(1)</script> & *bold* > quote", link="https://example.org/a?x=1&y=<2>",
               feed_title="Feed & <Co>", published="2026-01-01T00:00:00Z", terms=("a&b", "<c>"),
               snippet="x <script> & **a&b** > y *z*", severity="urgent", language="en",
               rules=(AlertRule("sample", "Sample <rule> & *co*", ("a&b", "<c>"), ("<ctx>",), "urgent"),
                      AlertRule("other", "Other & <rule>", ("d",), (), "info")), context=("<ctx>",))


SAMPLE_LINKS = {"relevant": "https://monitor.example/feedback/0.relevant.1.<x>&y",
                "not": "https://monitor.example/feedback/0.not.1.<x>&y",
                "rules": [{"rule": r, "relevant": f"https://monitor.example/feedback/0.relevant.{r}.1.<x>&y",
                           "not": f"https://monitor.example/feedback/0.not.{r}.1.<x>&y"} for r in ("sample", "other")]}
# {"relevant": URL, "not": URL}: an alert's feedback links (links.py); with "rules", when its
# story fired several: [{"rule": ID, "relevant": URL, "not": URL}], each judging that rule only
Links = Mapping[str, Any]


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
    from markupsafe import Markup

    parts = _HIT.split(snippet or "")
    return Markup("".join(f"<strong>{html_escape(p)}</strong>" if i % 2 else html_escape(p)
                          for i, p in enumerate(parts)))


# Template filters; the dates are read by ``dates`` (a time without a zone is UTC).
when = dates.readable  # '2026-11-01T08:00:00Z' -> '2026-11-01 08:00 UTC'; anything else unchanged
iso = dates.iso  # ISO 8601 with its zone, from a stored text or a Unix time; None when unknown


def fields(alert: Alert) -> dict[str, Any]:
    """Every field of the alert, JSON-ready."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(alert).items()}


def rules_of(alert: Alert) -> tuple[AlertRule, ...]:
    """Every rule that fired on the alert's story, the lead first. Rows written before alerts
    carried their rules have none listed: then the lead rule is the one."""
    if alert.rules:
        return alert.rules
    return (AlertRule(alert.rule_id, alert.rule_title, alert.terms, alert.context, alert.severity),)


def highest(alert: Alert) -> str:
    """The most severe of the story's rules (info < normal < urgent)."""
    return max((r.severity for r in rules_of(alert)), key=_rank, default=alert.severity)


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else SEVERITIES.index("normal")


def names(alert: Alert) -> str:
    """The rules as every channel names them: their titles, the lead first."""
    return ", ".join(dict.fromkeys(r.title for r in rules_of(alert)))


def matched(alert: Alert) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The topics' own terms of every rule, then the context words none of them hit as a
    topic term: "Matched: Kursk · context: Russia, Ukraine"."""
    rules = rules_of(alert)
    terms = tuple(dict.fromkeys(t for r in rules for t in r.terms))
    context = tuple(dict.fromkeys(c for r in rules for c in r.context if c not in terms))
    return terms, context


def plain(snippet: str) -> str:
    """The snippet without its ``**hit**`` marks."""
    return _HIT.sub(r"\1", snippet or "")


def alert_document(alert: Alert, links: Links | None = None) -> dict[str, Any]:
    """The alert as one JSON object (schema ``rss-monitor.alert/1``); ``feedback``: its two
    feedback links (issue 17), null when ``[web] public_url`` is off."""
    terms, context = matched(alert)
    return {
        "schema": ALERT_SCHEMA,
        "id": alert.id,
        "channel": alert.channel,
        "title": alert.title,
        "link": alert.link,
        "feed": alert.feed_title,
        "published": iso(alert.published),
        "detected": iso(alert.created_at),
        "language": alert.language,
        "severity": highest(alert),
        "rules": [{"id": r.rule_id, "title": r.title, "terms": list(r.terms), "context": list(r.context),
                   "severity": r.severity, **_salience(r)} for r in rules_of(alert)],
        "terms": list(terms),
        "context": list(context),
        "snippet": plain(alert.snippet),
        "snippet_marked": alert.snippet,
        "feedback": dict(links) if links else None,
    }


def _salience(r: AlertRule) -> dict[str, Any]:
    """How much the story is about the rule's topic (issue 17): its salience, tier, the features
    in words and as they are; nulls for a story matched before salience (migration 13)."""
    if not r.features:
        return {"salience": None, "tier": None, "why": None, "features": None}
    return {"salience": r.salience, "tier": r.tier, "why": why(r.features), "features": dict(r.features)}


def _item(item: DigestItem, links: Links | None) -> dict[str, Any]:
    doc = alert_document(item.alert, links)
    del doc["schema"], doc["channel"]  # the digest's
    return {**doc, "reason": item.reason, "sources": [{"feed": f, "link": link} for f, link in item.sources]}


def digest_document(digest: Digest, title: str, count: int, links: Mapping[int, Links] | None = None) -> dict[str, Any]:
    """A digest as one JSON object (schema ``rss-monitor.digest/1``): its items are alerts in
    the alert schema's fields, each with why it was held (``reason``), its other sources and its
    feedback links (``links``: by alert id; null for a follow-up, or without ``[web] public_url``)."""
    return {
        "schema": DIGEST_SCHEMA,
        "id": digest.id,
        "channel": digest.channel,
        "title": title,
        "count": count,
        "held_back": digest.held_back,
        "rate_limit": digest.rate_limit or None,
        "items": [_item(i, None if i.reason == "followup" else (links or {}).get(i.alert.id)) for i in digest.items],
    }


def digest_title(d: Digest) -> str:
    """"Digest: 3 alerts, 2 more sources"; a digest of a feed's first poll alone says so:
    "While you were away: 5 alerts". Pure."""
    count = sum(1 for i in d.items if i.reason != "followup")
    away = sum(1 for i in d.items if i.reason == "backlog")
    sources = sum(len(i.sources) for i in d.items)
    if away and away == len(d.items):
        return f"While you were away: {count} alerts"
    return (f"Digest: {count} alerts" + (f" ({away} while you were away)" if away else "")
            + (f", {sources} more sources" if sources else ""))


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


def why_line(alert: Alert) -> str:
    """Why the story alerted (issue 17): its tier, salience and features in words, or "" for an
    alert recorded without them (before migration 13). A story that fired several rules says it
    for each, by the rule's title as the Rules: line names them: "Kursk region: alert · salience
    0.95 · title and lead; 5 of 8 sentences | North Korean troops: digest · …"."""
    if not alert.features:
        return ""
    weighed = [r for r in alert.rules if r.features]
    if len(weighed) < 2:
        return f"{alert.tier} · salience {alert.salience:.2f} · {why(alert.features)}"
    return " | ".join(f"{r.title}: {r.tier} · salience {r.salience:.2f} · {why(r.features)}" for r in weighed)


def _environment(folder: Path | None) -> SandboxedEnvironment:
    from jinja2 import ChoiceLoader, FileSystemLoader
    from jinja2.sandbox import SandboxedEnvironment

    loaders = [FileSystemLoader(str(folder))] if folder else []
    env = SandboxedEnvironment(loader=ChoiceLoader([*loaders, FileSystemLoader(str(BUILTIN))]),
                               autoescape=lambda name: bool(name and name.endswith("html.j2")),
                               keep_trailing_newline=False)
    env.filters.update(md=md, hits_md=hits_md, hits_html=hits_html, when=when, json=_json, url=url,
                       highest=highest, names=names, why=why_line)
    return env


class Renderer:
    """The templates of one folder (or the built-ins alone); a folder's are checked when built."""

    def __init__(self, folder: str | Path | None = None):
        self.folder = Path(folder) if folder else None
        self._builtin = self if self.folder is None else builtin()
        if self.folder is not None:
            unknown = sorted(p.name for p in self.folder.glob("*.j2") if p.name not in NAMES)
            if unknown:
                raise ConfigError(f"{self.folder}: unknown template {', '.join(unknown)} "
                                  f"(expected one of: {', '.join(NAMES)})")
            self._check()

    @functools.cached_property
    def env(self) -> SandboxedEnvironment:
        """Built at the first template used: the built-ins alone are not checked at start (below),
        so a config without a templates folder never imports Jinja2 in ``monitor check`` (15-20 ms
        of its start-up, issue 16). A user's folder is checked, so built, in __init__."""
        return _environment(self.folder)

    def _check(self) -> None:
        """Render a sample alert in every kind, with and without links, and a sample digest:
        ConfigError naming the file and line of a template that fails, before any alert does.
        Run for a user's folder (its templates, and the built-ins it falls back to); the
        built-ins alone are not checked at every start, which cost ``monitor check`` 20 ms."""
        for k in KINDS:
            try:
                self._render(SAMPLE, k)
                self._render(SAMPLE, k, SAMPLE_LINKS)
            except ConfigError:
                raise
            except Exception as e:
                raise ConfigError(f"{self._where(e, k)}: template error: {type(e).__name__}: {e}") from None
        try:
            self._digest(Digest(0, "sample", (DigestItem(SAMPLE, "rate", (("Feed <b>", "https://x/?a=<1>"),)),
                                              DigestItem(SAMPLE, "backlog")), held_back=1, rate_limit="5/h"),
                         {SAMPLE.id: SAMPLE_LINKS})
        except Exception as e:
            where = self._filename(DIGEST) or DIGEST
            raise ConfigError(f"{where}: template error: {type(e).__name__}: {e}") from None

    def _where(self, e: BaseException, k: str) -> str:
        """'file:line' of the template line that raised: Jinja2 rewrites tracebacks so that a
        template's frames carry its file name and line."""
        from jinja2 import TemplateSyntaxError

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
        from jinja2 import TemplateError

        try:
            return self.env.get_template(name).filename
        except TemplateError:
            return None

    def _render(self, alert: Alert, k: str, links: Links | None = None) -> Message:
        template, fmt = KINDS[k]
        terms, context_words = matched(alert)
        context = {"alert": alert, "fields": fields(alert), "kind": k, "rules": rules_of(alert),
                   "names": names(alert), "terms": terms, "context": context_words, "severity": highest(alert),
                   "document": alert_document(alert, links), "links": links}
        title = " ".join(self.env.get_template(TITLE).render(context).split())
        body = self.env.get_template(template).render(context).strip()
        if k == "json":  # posted as the top-level fields (webhook.py): an object, nothing else
            try:
                if not isinstance(json.loads(body), dict):
                    raise ValueError("expected one JSON object {...}")
            except ValueError as e:
                raise ConfigError(f"{self._filename(template)}: does not render valid JSON: {e}") from None
        return Message(title, body, fmt)

    def digest(self, d: Digest, links: Mapping[int, Links] | None = None) -> tuple[str, str]:
        """Title and plain-text body of a digest, its alerts grouped by rule, then story, each
        with why it came and its feedback ``links`` (by alert id) when given. A user template
        failing on it is logged and the built-in one used."""
        try:
            return self._digest(d, links or {})
        except Exception as e:
            if self._builtin is self:
                raise
            log.error("template failed kind=digest digest=%d error=%r; using the built-in one", d.id,
                      f"{type(e).__name__}: {e}")
            return self._builtin._digest(d, links or {})

    def _digest(self, d: Digest, links: Mapping[int, Links]) -> tuple[str, str]:
        rules: dict[str, list[DigestItem]] = {}
        backlog: dict[str, list[DigestItem]] = {}  # a feed's first poll (issue 14): its own section
        mentions: dict[str, list[DigestItem]] = {}  # below the rules' alert_at (issue 17): "Also mentioned"
        for item in d.items:
            into = backlog if item.reason == "backlog" else mentions if item.reason == "mention" else rules
            into.setdefault(names(item.alert), []).append(item)
        count = sum(1 for i in d.items if i.reason != "followup")
        body = self.env.get_template(DIGEST).render({"digest": d, "rules": rules, "backlog": backlog,
                                                     "mentions": mentions, "count": count,
                                                     "feedback": links}).strip()
        return digest_title(d), body

    def digest_json(self, d: Digest, links: Mapping[int, Links] | None = None) -> dict[str, Any]:
        """A digest as one JSON object for a webhook (``digest_document``)."""
        return digest_document(d, digest_title(d), sum(1 for i in d.items if i.reason != "followup"), links)

    def render(self, alert: Alert, kind: str, links: Links | None = None) -> Message:
        """The alert as a message of this kind, with its feedback ``links`` when given. A user
        template that fails on this alert is logged and the built-in one is used: the alert
        still goes out."""
        try:
            return self._render(alert, kind, links)
        except Exception as e:
            if self._builtin is self:
                raise
            log.error("template failed kind=%s alert=%d at=%s error=%r; using the built-in one", kind, alert.id,
                      self._where(e, kind), f"{type(e).__name__}: {e}")
            return self._builtin._render(alert, kind, links)


@functools.cache
def builtin() -> Renderer:
    """The built-in templates alone, compiled once."""
    return Renderer(None)
