"""The console's reading pages (issue 18): the inbox (and its live stream), a story, feedback,
search and channels. Each is a store call and a template; each button calls the store method
its command calls (``monitor feedback`` → ``give_feedback``, ``feedback --match`` → ``judge_match``,
``alerts retry`` → ``revive``,
``notify-test`` → ``Notifier.send_text``/``dry_run``)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .. import learn
from ..feedback import progress
from ..models import why

if TYPE_CHECKING:
    from .auth import Viewer
    from .console import Env

log = logging.getLogger(__name__)
STATES = ("pending", "sending", "sent", "failed", "dead", "held")
VERDICTS = {"relevant": "relevant", "not": "not relevant"}
LIVE_EVERY = 2.0  # seconds between looks for new alerts on the live inbox
TEXT_CAP = 200_000  # characters of an article shown with its evidence marked


def _number(value: str | None, what: str) -> float | None:
    """A filter's epoch seconds, from a date (2026-12-01), a date and time, or seconds ago (7d)."""
    from .. import dates

    if not value:
        return None
    value = value.strip()
    try:
        return time.time() - dates.duration(value)
    except ValueError:
        pass
    ts = dates.timestamp(value)  # a zoneless date or time is UTC (dates.py)
    if ts is None:
        raise web.HTTPBadRequest(text=f"{what}: expected a date (2026-12-01), a date and time, or an age (7d)")
    return ts


def filters(query: Any) -> dict[str, Any]:
    """The inbox and search filters of a query string, checked: a bad one is a 400 naming it."""
    out: dict[str, Any] = {}
    for key in ("rule", "channel"):
        if query.get(key):
            out[key] = query[key]
    if query.get("state"):
        if query["state"] not in STATES:
            raise web.HTTPBadRequest(text=f"state: expected one of {', '.join(STATES)}")
        out["state"] = query["state"]
    if query.get("feedback"):
        if query["feedback"] not in ("relevant", "not", "none"):
            raise web.HTTPBadRequest(text="feedback: expected relevant, not or none")
        out["feedback"] = query["feedback"]
    out["since"] = _number(query.get("since"), "since")
    out["until"] = _number(query.get("until"), "until")
    return {k: v for k, v in out.items() if v is not None}


def _int(value: str | None, what: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{what}: expected a number") from None


def evidence(text: str, terms: list[str]) -> list[list[tuple[str, bool]]]:
    """The article's paragraphs as (text, is-evidence) pieces: every whole-word occurrence of a
    matched term marked, case-insensitively (terms are the words as the article wrote them)."""
    words = sorted({t for t in terms if t and len(t) < 200}, key=len, reverse=True)
    pattern = re.compile(r"(?<!\w)(" + "|".join(re.escape(w) for w in words) + r")(?!\w)", re.I) if words else None
    out = []
    for para in text[:TEXT_CAP].split("\n"):
        if not para.strip():
            continue
        if pattern is None:
            out.append([(para, False)])
            continue
        pieces, pos = [], 0
        for m in pattern.finditer(para):
            pieces += [(para[pos:m.start()], False), (m.group(0), True)]
            pos = m.end()
        pieces.append((para[pos:], False))
        out.append([p for p in pieces if p[0]])
    return out


class Base:
    """What the page mixins (Views, Admin) use of the Console (console.py) that assembles them."""

    env: Env
    page_size: int
    stopping: asyncio.Event

    if TYPE_CHECKING:
        def page(self, request: web.Request, template: str, data: Any, *, status: int = 200,
                 **extra: Any) -> web.Response: ...
        def html(self, request: web.Request, template: str, **ctx: Any) -> str: ...
        def editor(self, request: web.Request) -> Viewer: ...
        def back(self, request: web.Request, default: str, note: str = "") -> web.HTTPSeeOther: ...
        @staticmethod
        def wants_json(request: web.Request) -> bool: ...


class Views(Base):

    def routes(self, r: web.UrlDispatcher) -> None:
        r.add_get("/", self.inbox)
        r.add_get("/inbox.json", self.inbox)
        r.add_get("/events", self.events)
        r.add_get(r"/story/{id:\d+}", self.story)
        r.add_get(r"/story/{id:\d+}.json", self.story)
        r.add_post(r"/story/{id:\d+}/feedback", self.feedback)
        r.add_post(r"/match/{id:\d+}/feedback", self.judge_match)
        r.add_post(r"/entry/{id:\d+}/miss", self.report_miss)
        r.add_get("/search", self.search)
        r.add_get("/search.json", self.search)
        r.add_get("/channels", self.channels)
        r.add_get("/channels.json", self.channels)
        r.add_post("/channels/retry", self.retry)
        r.add_post("/channels/test", self.test_send)

    # -- inbox --------------------------------------------------------------------------------
    async def inbox(self, request: web.Request) -> web.Response:
        q = request.query
        chosen = filters(q)
        before = _int(q.get("before"), "before")
        rows = await self.env.db.inbox(**chosen, before=before, limit=self.page_size + 1)
        more = len(rows) > self.page_size
        rows = rows[: self.page_size]
        data = {"alerts": rows, "filters": chosen, "next": rows[-1]["id"] if more and rows else None,
                "newest": max((r["id"] for r in rows), default=0)}  # where the page's live stream starts
        cfg = self.env.config()
        return self.page(request, "inbox.html", data, rules=[r.id for r in self.env.ruleset().rules],
                         channels=sorted(cfg.channels), states=STATES, live=not before,
                         note=q.get("note", ""))

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: each new story on the inbox as an ``alert`` event carrying its
        row, rendered by the server (escaped like the page), and its JSON. A comment every 15 s
        keeps proxies from closing the stream."""
        chosen = filters(request.query)
        last = _int(request.query.get("after"), "after")
        if last is None:  # a reconnecting EventSource says where it was
            last = _int(request.headers.get("Last-Event-ID"), "Last-Event-ID")
        if last is None:
            newest = await self.env.db.inbox(limit=1)
            last = newest[0]["id"] if newest else 0
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                               "X-Accel-Buffering": "no"})
        response.headers.update(request.get("security_headers", {}))
        await response.prepare(request)
        await response.write(b"retry: 3000\n\n")
        quiet = 0.0
        while not self.stopping.is_set():
            try:
                rows = await self.env.db.inbox(**chosen, after=last, limit=20)
            except Exception as e:  # noqa: BLE001 - a database problem ends nothing: said, retried
                log.warning("console live inbox: cannot read new alerts error=%r", str(e))
                rows = []
            for row in sorted(rows, key=lambda r: r["id"]):
                last = max(last, row["id"])
                html = self.html(request, "row.html", a=row)
                payload = json.dumps({"id": row["id"], "html": html, "alert": row}, ensure_ascii=False, default=str)
                await response.write(f"id: {row['id']}\nevent: alert\ndata: {payload}\n\n".encode())
                quiet = 0.0
            quiet += LIVE_EVERY
            if quiet >= 15:
                await response.write(b": still here\n\n")
                quiet = 0.0
            try:
                await asyncio.wait_for(self.stopping.wait(), LIVE_EVERY)
            except TimeoutError:
                pass
        return response

    # -- a story ------------------------------------------------------------------------------
    async def story(self, request: web.Request) -> web.Response:
        alert_id = int(request.match_info["id"])
        story = await self.env.db.story(alert_id)
        if story is None:
            raise web.HTTPNotFound(text=f"There is no alert {alert_id} (pruned, or never made).")
        article = story.get("article") or {}
        terms = [t for m in story.get("matches", []) for t in (*m.get("terms", ()), *m.get("context", ()))]
        text = article.get("text") or (story.get("entry") or {}).get("summary") or ""
        ruleset = self.env.ruleset()
        rules = [{"id": m["rule_id"], "path": getattr(ruleset.get(m["rule_id"]), "path", ""),
                  "line": getattr(ruleset.get(m["rule_id"]), "line", 0),
                  "why": why(m.get("features") or ())} for m in story.get("matches", [])]
        return self.page(request, "story.html", story, paragraphs=evidence(text, terms), explained=rules,
                         note=request.query.get("note", ""))

    async def feedback(self, request: web.Request) -> web.StreamResponse:
        """A verdict from the console: what ``monitor feedback`` records, by the signed-in user."""
        return await self._judge(request, "alert")

    async def judge_match(self, request: web.Request) -> web.StreamResponse:
        """A verdict on a story that did not alert, from a search hit: what ``monitor feedback
        --match`` records ("relevant": it should have alerted), by the signed-in user."""
        return await self._judge(request, "match")

    async def _judge(self, request: web.Request, on: str) -> web.StreamResponse:
        """The form's verdict on alert or match ``{id}``, recorded by the store call its command makes."""
        number = int(request.match_info["id"])
        form = await request.post()
        verdict = str(form.get("verdict", ""))
        if verdict not in VERDICTS:
            raise web.HTTPBadRequest(text="verdict: expected relevant or not")
        note = str(form.get("note", "")).strip()[:500] or None
        rule = str(form.get("rule", "")).strip() or None  # a verdict on one rule of the story
        viewer = request["viewer"]
        who = viewer.name if viewer.mode != "open" else "console"
        judge = self.env.db.give_feedback if on == "alert" else self.env.db.judge_match
        given = await judge(number, verdict, who, self.env.clock(), note, via="console", rule=rule)
        if given is None:
            raise web.HTTPNotFound(text=f"There is no {on} {number}.")
        if given.outcome == "no-rule":
            raise web.HTTPBadRequest(text=f"rule {rule!r} did not fire on this story (its rules: "
                                          f"{', '.join(given.rules)})")
        log.info("feedback recorded %s=%d%s verdict=%s%s by=%s via=console", on, number,
                 f" alert={given.alert_id}" if on == "match" else "", verdict, f" rule={rule}" if rule else "", who)
        effect = learn.effect(verdict, given.rules)
        learning = await progress(self.env.db, given.rules)
        if self.wants_json(request):
            return web.json_response({"outcome": given.outcome, f"{on}_id": number, "alert_id": given.alert_id,
                                      "verdict": verdict, "rules": list(given.rules), "effect": effect,
                                      "learning": learning})
        done = " ".join([f"Recorded: {VERDICTS[verdict]}" + (f" for {rule}." if rule else "."),
                         *filter(None, [effect]), *(f"{line}." for line in learning)])
        raise self.back(request, f"/story/{number}" if on == "alert" else "/search", done)

    async def report_miss(self, request: web.Request) -> web.StreamResponse:
        """A stored story that a rule did not match and should have, from a search hit: what
        ``monitor feedback ENTRY relevant --entry --rule RULE`` records ("withdraw": takes the
        signed-in user's report back), by the signed-in user."""
        number = int(request.match_info["id"])
        form = await request.post()
        rule = str(form.get("rule", "")).strip()
        ids = [r.id for r in self.env.ruleset().rules]
        if rule not in ids:
            raise web.HTTPBadRequest(text=f"rule: expected one of {', '.join(ids)}")
        viewer = request["viewer"]
        who = viewer.name if viewer.mode != "open" else "console"
        if form.get("withdraw"):
            done = await self.env.db.withdraw_miss(number, rule, who)
            note = f"Withdrawn: {rule} should have matched it" if done else "There was no report of yours to withdraw"
        else:
            outcome = await self.env.db.report_miss(number, rule, who, self.env.clock(),
                                                    str(form.get("note", "")).strip()[:500] or None, via="console")
            if outcome is None:
                raise web.HTTPNotFound(text=f"There is no stored entry {number}.")
            if outcome == "matched":
                raise web.HTTPConflict(text=f"{rule} did match this story: judge that match instead.")
            note = f"Recorded: {rule} should have matched it"
            log.info("miss reported entry=%d rule=%s by=%s via=console", number, rule, who)
        if self.wants_json(request):
            return web.json_response({"entry_id": number, "rule": rule, "note": note})
        raise self.back(request, "/search", note)

    # -- search -------------------------------------------------------------------------------
    async def search(self, request: web.Request) -> web.Response:
        q = request.query
        text = q.get("q", "").strip()[:500]
        chosen = filters(q)
        offset = max(0, _int(q.get("offset"), "offset") or 0)
        found = await self.env.db.search(text, **chosen, limit=self.page_size, offset=offset) if text \
            else {"total": 0, "hits": []}
        data = {"q": text, "filters": chosen, "offset": offset, **found}
        cfg = self.env.config()
        return self.page(request, "search.html", data, rules=[r.id for r in self.env.ruleset().rules],
                         channels=sorted(cfg.channels), states=STATES, page_size=self.page_size,
                         note=q.get("note", ""))

    # -- channels -----------------------------------------------------------------------------
    async def channels(self, request: web.Request) -> web.Response:
        return await self._channels_with(request, None)

    async def retry(self, request: web.Request) -> web.StreamResponse:
        """``monitor alerts retry ID``: a dead letter (or every one) goes back to the outbox."""
        self.editor(request)
        form = await request.post()
        alert_id = _int(str(form.get("alert_id", "")), "alert_id")
        n = await self.env.db.revive(self.env.clock(), alert_id)
        raise self.back(request, "/channels", f"{n} alert(s) back in the outbox")

    async def test_send(self, request: web.Request) -> web.Response:
        """``monitor notify-test CHANNEL [--dry-run]``: one test message, and what the service said."""
        from ..errors import NotifyError

        viewer = self.editor(request)
        form = await request.post()
        channel, dry = str(form.get("channel", "")), bool(form.get("dry_run"))
        notifier = self.env.notifier()
        if channel not in notifier.known():
            raise web.HTTPBadRequest(text=f"channel: no channel named {channel!r}")
        title = "rss-monitor test alert"
        body = (f"A test message from the console ({viewer.name}) on {socket.gethostname()} at "
                f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}. If you read this, alerts reach this channel.")
        result: dict[str, Any] = {"channel": channel, "dry_run": dry}
        if dry:
            previews = await asyncio.to_thread(notifier.dry_run, channel, title, body)
            result["previews"] = [{"target": p.target, "requests": [
                {"method": r.method, "host": r.url.split("://", 1)[-1].split("/", 1)[0],
                 "body": r.body.decode("utf-8", "replace")} for r in p.requests] if p.requests is not None else None,
                "title": p.title, "body": p.body} for p in previews]
        else:
            try:
                answer = await asyncio.to_thread(notifier.send_text, channel, title, body)
                result.update(ok=True, answer=answer.detail)
            except NotifyError as e:
                result.update(ok=False, answer=str(e))
            log.info("console test send channel=%s ok=%s by=%s", channel, result["ok"], viewer.name)
        if self.wants_json(request):
            return web.json_response(result)
        return await self._channels_with(request, result)

    async def _channels_with(self, request: web.Request, result: dict[str, Any] | None) -> web.Response:
        cfg = self.env.config()
        states = {s["channel"]: s for s in await self.env.db.channel_states()}
        notifier = self.env.notifier()
        rows = [{"name": name, "targets": notifier.describe(name) if name in notifier.known() else [],
                 "digest": ch.digest, "quiet_hours": ch.quiet_hours, "rate_limit": ch.rate_limit,
                 **states.get(name, {})} for name, ch in cfg.channels.items()]
        dead = [{"id": a.id, "channel": a.channel, "title": a.title, "rule_id": a.rule_id, "last_error": a.last_error,
                 "dead_at": a.dead_at, "attempts": a.attempts} for a in await self.env.db.alerts("dead", 100)]
        return self.page(request, "channels.html", {"channels": rows, "dead": dead},
                         note=request.query.get("note", ""), result=result)
