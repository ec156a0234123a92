"""The console's editing pages (issue 18): feeds (health, poll now, add by page or feed URL,
pause, remove, OPML in and out) and rules (the list with files, lines, load errors, alerts per
day and feedback precision; the playground; saving a rule file). Changes are for editors; each
calls what its command calls (``feeds poll|add|remove|import-opml|export-opml``). A rule file
saved here is checked with every other file first, written atomically, and reloaded: the YAML
file stays the source of truth."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from aiohttp import web

from ..errors import MonitorError, RuleError
from ..schedule import feed_row
from .views import Base

log = logging.getLogger(__name__)
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,80}\.ya?ml$")
HISTORY_CAP = 5000  # stored articles one playground run reads at most
SHOWN = 200  # matches a playground run lists
NEW_FILE = "rules:\n  - id: my-topic\n    title: My topic\n    any: [\"a word\", \"another\"]\n"


def check_rule_file(folder: Path, name: str, text: str, channels: set[str], has_default: bool,
                    limits: Any) -> list[RuleError]:
    """Every problem the folder would have with ``name`` holding ``text``: the folder copied to a
    temporary one with the file replaced, checked as the daemon checks it (ids across files,
    channels, sizes). Messages name the real file."""
    from .. import rules

    with tempfile.TemporaryDirectory(prefix="rules-check-") as tmp:
        for p in rules.folder.files(folder) if folder.is_dir() else []:
            if p.name != name:
                (Path(tmp) / p.name).write_bytes(p.read_bytes())
        (Path(tmp) / name).write_text(text, "utf-8")
        problems = rules.check(tmp, channels, has_default, limits)
        for e in problems:
            e.path = str(folder / Path(e.path).name) if e.path.startswith(tmp) else e.path
    return problems


def rule_file_warnings(folder: Path, name: str, limits: Any) -> list[RuleError]:
    """What ``monitor rules check`` would warn of in the file ``name`` of ``folder`` (valid, but
    likely not meant: rules.warnings), read as saved."""
    from .. import rules

    parsed, _errors = rules.folder.parse_dir(folder, limits)
    return [w for w in rules.warnings(parsed.rules) if Path(w.path).name == name]


def write_atomically(path: Path, text: str) -> None:
    """The file whole or not at all: a temporary file beside it, synced, renamed over it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run_rules(ruleset: Any, articles: Any, now: float, feed_of: Any = None) -> dict[str, Any]:
    """The playground's work, off the event loop: every article through ``rules.match``, each
    match counted by tier (what would have alerted, gone to the digest, been stored)."""
    from .. import rules

    tiers = {"alert": 0, "digest": 0, "store": 0}
    shown: list[dict[str, Any]] = []
    matched: set[tuple[Any, str]] = set()  # (entry id, rule id) of every match, for the reported misses
    ran: set[Any] = set()  # the stored entries run on
    seen = 0
    for row, article in articles:
        seen += 1
        if row:
            ran.add(row.get("id"))
        feed = feed_of(row) if feed_of else None
        for m in rules.match(ruleset, article, feed, now):
            matched.add((row.get("id") if row else None, m.rule_id))
            tiers[m.tier] = tiers.get(m.tier, 0) + 1
            if len(shown) < SHOWN:
                shown.append({"entry_id": row.get("id") if row else None, "title": article.title,
                              "url": article.url, "rule_id": m.rule_id, "tier": m.tier, "salience": m.salience,
                              "terms": list(m.terms), "snippet": m.snippet, "features": dict(m.features)})
    return {"articles": seen, "tiers": tiers, "matches": shown, "matched": matched, "ran": ran}


def learning(stored: Any, relevant: int, not_relevant: int) -> dict[str, Any]:
    """What the rules page says of a rule's learning (issue 17): the model it scores with and
    what weighs most in it, or how far its feedback is from the minimum that trains one."""
    from .. import learn

    if stored is not None and stored.trained:
        try:
            top = learn.top(learn.Model.loads(stored.model), 3)
        except ValueError as e:  # a damaged model: the pipeline keeps the plain salience too
            return {"trained": False, "text": f"model unreadable ({e}): plain salience"}
        weights = ", ".join(f"{w:+.2f} {name}" for name, w in top)
        return {"trained": True, "examples": stored.examples, "trained_at": stored.trained_at,
                "text": f"learned from {stored.examples} verdicts ({stored.positives} relevant): {weights}"}
    if stored is not None:  # trained on its last run with too little: the counts it had then
        relevant, not_relevant = stored.positives, stored.examples - stored.positives
    return {"trained": False, "text": f"plain salience: {relevant} relevant and {not_relevant} not of the "
            f"{learn.MIN_VERDICTS} verdicts, {learn.MIN_EACH} of each, that train a model"}


def _plain(result: dict[str, Any]) -> dict[str, Any]:
    """A run on a text or a page: no stored entries, so no reported misses to look at."""
    result.pop("matched", None)
    result.pop("ran", None)
    return result


def history(database: Path | str, since: float, until: float | None) -> Any:
    """Stored articles first seen in [since, until), read on their own connection, capped."""
    from ..store import connect

    store = connect(database)
    try:
        for n, (row, article) in enumerate(store.stored_articles(since)):
            if n >= HISTORY_CAP or (until is not None and row["first_seen_at"] >= until):
                return
            yield row, article
    finally:
        store.close()


class Admin(Base):

    def admin_routes(self, r: web.UrlDispatcher) -> None:
        r.add_get("/feeds", self.feeds)
        r.add_get("/feeds.json", self.feeds)
        r.add_get("/feeds.opml", self.export_opml)
        r.add_post("/feeds/{action:poll|add|pause|resume|remove|import}", self.feed_action)
        r.add_get("/rules", self.rules)
        r.add_get("/rules.json", self.rules)
        r.add_get("/rules/file/{name}", self.rule_file)
        r.add_post("/rules/file/{name}", self.save_rule_file)
        r.add_get("/playground", self.playground)
        r.add_post("/playground", self.playground)
        r.add_post("/playground.json", self.playground)

    # -- feeds --------------------------------------------------------------------------------
    async def feeds(self, request: web.Request) -> web.Response:
        cfg, now = self.env.config(), self.env.clock()
        rows = [feed_row(r, cfg.poll, now) for r in await self.env.db.feed_table()]
        return self.page(request, "feeds.html", {"feeds": rows}, note=request.query.get("note", ""))

    async def export_opml(self, request: web.Request) -> web.Response:
        """``monitor feeds export-opml``: every active feed, config and added."""
        from ..opml import FeedRef, write_opml

        rows = [r for r in await self.env.db.feed_table() if r["active"]]
        data = write_opml([FeedRef(url=r["url"], title=r["title"] or "", tags=tuple(json.loads(r["tags"])),
                                   interval=r["interval_s"]) for r in rows])
        return web.Response(body=data, content_type="text/x-opml", charset="utf-8",
                            headers={"Content-Disposition": 'attachment; filename="feeds.opml"'})

    async def feed_action(self, request: web.Request) -> web.StreamResponse:
        self.editor(request)
        action = request.match_info["action"]
        form = await request.post()
        url = str(form.get("url", "")).strip()
        now, db = self.env.clock(), self.env.db
        note, status = "", 200
        try:
            if action == "poll":
                done = await db.poll_now(url, now)
                note = f"Due now: {done} (polled at the daemon's next tick)" if done else f"No active feed {url}"
            elif action in ("pause", "resume"):
                done = await db.pause_feed(url, action == "pause", now)
                note = f"{'Paused' if action == 'pause' else 'Resumed'}: {done}"
            elif action == "remove":
                outcome = await db.remove_feed(url)
                note = {"config": f"{url} is listed in the config file; remove it there",
                        "unknown": f"No active feed {url}"}.get(outcome, f"Removed: {url}")
            elif action == "add":
                note = await self._add(url, str(form.get("title", "")).strip(), str(form.get("tags", "")))
            elif action == "import":
                note = await self._import(form.get("file"))
        except MonitorError as e:
            note, status = f"{url or action}: {e}", 400
        log.info("console feeds %s url=%s by=%s: %s", action, url, request["viewer"].name, note)
        if self.wants_json(request):
            return web.json_response({"action": action, "url": url, "note": note}, status=status)
        raise self.back(request, "/feeds", note)

    async def _add(self, url: str, title: str, tags: str) -> str:
        from ..finding import find_feed, limits_of

        if not url.startswith(("http://", "https://")):
            raise MonitorError("expected an http:// or https:// URL")
        found = await find_feed(limits_of(self.env.config().fetch), url, title)
        tag_list = tuple(t.strip() for t in tags.split(",") if t.strip())
        added, _ = await self.env.db.add_feeds([(found.url, found.title or None, None, tag_list)], self.env.clock())
        where = f" (found on {found.page})" if found.page else ""
        return f"{'Added' if added else 'Already registered'}: {found.url}{where}"

    async def _import(self, field: Any) -> str:
        from ..opml import read_opml_report

        if not hasattr(field, "file"):
            raise MonitorError("choose an OPML file to import")
        data = field.file.read(8 * 1024 * 1024 + 1)
        if len(data) > 8 * 1024 * 1024:
            raise MonitorError("the OPML file is larger than 8 MiB")
        refs, notes = read_opml_report(data, field.filename or "upload.opml")
        added, known = await self.env.db.add_feeds([(r.url, r.title or None, r.interval, r.tags) for r in refs],
                                                   self.env.clock())
        return f"{field.filename}: {added} feeds added, {known} already registered, {len(notes)} skipped"

    # -- rules --------------------------------------------------------------------------------
    async def rules(self, request: web.Request) -> web.Response:
        cfg, now = self.env.config(), self.env.clock()
        stats = await self.env.db.rule_stats(now - 30 * 86400)
        missed = await self.env.db.misses_by_rule()  # stories reported as missed (migration 21)
        models = await self.env.db.rule_models()
        noisy = await self.env.db.noisy_sources()  # feeds whose stories a rule's verdicts keep calling noise
        folder = cfg.rules_dir
        rows = []
        for r in self.env.ruleset().rules:
            s = stats.get(r.id, {})
            judged = s.get("relevant", 0) + s.get("not", 0)
            rows.append({"id": r.id, "title": r.title, "file": Path(r.path).name, "line": r.line,
                         "channels": list(r.channels), "severity": r.severity, "alert_at": r.alert_at,
                         "digest_at": r.digest_at, "alerts_per_day": round(s.get("alerts", 0) / 30, 2),
                         "alerts_total": s.get("alerts_total", 0), "relevant": s.get("relevant", 0),
                         "not": s.get("not", 0), "precision": s.get("relevant", 0) / judged if judged else None,
                         "last_alert_at": s.get("last_alert_at"), "misses": missed.get(r.id, 0),
                         "noisy": noisy.get(r.id, []),
                         "learning": learning(models.get(r.id), s.get("relevant", 0), s.get("not", 0))})
        files = [p.name for p in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])] if folder.is_dir() else []
        data = {"rules": rows, "files": files, "problems": self.env.rule_problems()}
        return self.page(request, "rules.html", data, note=request.query.get("note", ""))

    def _rule_path(self, name: str) -> Path:
        if not FILE_NAME.match(name):
            raise web.HTTPBadRequest(text=f"{name}: a rule file is named like topic.yaml (letters, digits, . _ -)")
        return self.env.config().rules_dir / name

    async def rule_file(self, request: web.Request, text: str | None = None, problems: Any = None,
                        status: int = 200) -> web.Response:
        name = request.match_info["name"]
        path = self._rule_path(name)
        if text is None:
            text = path.read_text("utf-8", "replace") if path.exists() else NEW_FILE
        data = {"name": name, "exists": path.exists(), "text": text,
                "problems": [{"line": e.line, "problem": e.problem, "file": Path(e.path).name} for e in problems or []]}
        return self.page(request, "rule_file.html", data, status=status)

    async def save_rule_file(self, request: web.Request) -> web.StreamResponse:
        viewer = self.editor(request)
        from ..loading import rule_limits

        name = request.match_info["name"]
        path = self._rule_path(name)
        form = await request.post()
        text = str(form.get("text", "")).replace("\r\n", "\n")
        cfg = self.env.config()
        notifier = self.env.notifier()
        problems = await asyncio.to_thread(check_rule_file, cfg.rules_dir, name, text, notifier.known(),
                                           bool(cfg.notify.default_channels), rule_limits(cfg))
        if problems:
            log.info("console rule file refused file=%s problems=%d by=%s", name, len(problems), viewer.name)
            return await self.rule_file(request, text, problems, 400)
        cfg.rules_dir.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(write_atomically, path, text)
        log.info("console rule file saved file=%s bytes=%d by=%s", name, len(text.encode()), viewer.name)
        self.env.reload_rules()
        warned = await asyncio.to_thread(rule_file_warnings, cfg.rules_dir, name, rule_limits(cfg))
        said = "".join(f"; warning, line {w.line}: {w.problem}" for w in warned[:3])
        raise self.back(request, "/rules", f"Saved {name}; the rules are reloading{said}")

    # -- the playground -----------------------------------------------------------------------
    async def playground(self, request: web.Request) -> web.Response:
        """Run a saved rule or a drafted one on pasted text, a page at a URL, or the stored
        history of a period, and show what would have alerted, gone to the digest or been stored."""
        form: Any = await request.post() if request.method == "POST" else request.query
        ruleset = self.env.ruleset()
        rule_id, draft = str(form.get("rule", "")), str(form.get("draft", "")).replace("\r\n", "\n")
        source = str(form.get("source", "text"))
        data: dict[str, Any] = {"rule": rule_id, "draft": draft, "source": source, "text": str(form.get("text", "")),
                                "url": str(form.get("url", "")), "since": str(form.get("since", "7d")),
                                "until": str(form.get("until", "")), "result": None, "error": None}
        if request.method == "POST":
            try:
                data["result"] = await self._play(ruleset, rule_id, draft, source, data)
            except RuleError as e:  # in the draft: its line
                data["error"] = f"draft, line {e.line}: {e.problem}" if e.line else f"draft: {e.problem}"
            except (MonitorError, ValueError) as e:
                data["error"] = str(e)
        return self.page(request, "playground.html", data, status=400 if data["error"] else 200,
                         rule_ids=[r.id for r in ruleset.rules])

    async def _play(self, ruleset: Any, rule_id: str, draft: str, source: str, data: dict[str, Any]) -> dict:
        from .. import dates, rules
        from ..models import Article

        if draft.strip():
            chosen = await asyncio.to_thread(rules.parse, draft, "<draft>")
            chosen = rules.RuleSet.of(chosen.rules, {**ruleset.concepts, **chosen.concepts}, "<draft>")
        else:
            rule = ruleset.get(rule_id)
            if rule is None:
                raise ValueError("choose a saved rule or write a draft")
            chosen = rules.RuleSet.of([rule], ruleset.concepts, ruleset.source)
        now = self.env.clock()
        if source == "text":
            text = data["text"].strip()
            if not text:
                raise ValueError("paste a text to run the rule on")
            title, _, body = text.partition("\n")
            articles: Any = [({}, Article(title=title.strip(), text=body.strip() or title.strip()))]
            return _plain(await asyncio.to_thread(run_rules, chosen, articles, now))
        if source == "url":
            return await self._play_url(chosen, data["url"].strip(), now)
        since = now - dates.duration(data["since"] or "7d")
        until = dates.timestamp(data["until"]) if data["until"] else None
        database = self.env.config().database

        def feed_of(row: dict[str, Any]) -> Any:
            try:
                tags = tuple(json.loads(row.get("tags") or "[]"))
            except ValueError:
                tags = ()
            return SimpleNamespace(url=row["feed_url"], title=row["feed_title"], tags=tags)

        started = time.monotonic()
        result = await asyncio.to_thread(run_rules, chosen, history(database, since, until), now, feed_of)
        result["seconds"] = round(time.monotonic() - started, 2)
        result["capped"] = result["articles"] >= HISTORY_CAP
        # the stories the team said these rules missed: which of them this run matches (a draft
        # that fixes a rule catches them); only those first seen in the period were run on
        ids = {r.id for r in chosen.rules}
        caught, ran = result.pop("matched"), result.pop("ran")
        result["misses"] = [{"entry_id": m.entry_id, "rule_id": m.rule_id, "title": m.title, "link": m.link,
                             "given_by": m.given_by, "caught": (m.entry_id, m.rule_id) in caught,
                             "in_period": m.entry_id in ran}
                            for m in await self.env.db.misses() if m.rule_id in ids]
        return result

    async def _play_url(self, chosen: Any, url: str, now: float) -> dict[str, Any]:
        from .. import extract
        from ..fetch import Client
        from ..finding import limits_of

        if not url.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        async with Client(limits_of(self.env.config().fetch)) as http:
            res = await http.page(url)
        article = await asyncio.to_thread(extract.page, res.body, res.url)
        result = _plain(await asyncio.to_thread(run_rules, chosen, [({}, article)], now))
        result["extracted"] = {"title": article.title, "chars": len(article.text), "language": article.language}
        return result
